/**
 * Where a direct call or jump goes, also in relocatable objects, where the rel32 field holds 0 and
 * the real destination is the field's relocation (S + A - P, read back as S + A + 4 for a trailing field).
 */
import type { Reloc, Section } from '../elf/image.js';
import type { SectionCode } from '../x86/code.js';
import type { View } from './view.js';

export interface Dest {
  /** Relative address, NaN when the destination is an undefined symbol. */
  readonly addr: number;
  /** Symbol name of the destination when known (relocation symbol or symbol at the address). */
  readonly name: string;
}

/** A section's relocations looked up by section offset. */
export interface RelocsByOffset {
  get(offset: number): Reloc | undefined;
  has(offset: number): boolean;
}

const NO_RELOCS: RelocsByOffset = { get: () => undefined, has: () => false };
const relocCache = new WeakMap<View, Map<number, RelocsByOffset>>();

/**
 * Relocations of a section keyed by section offset (cached per view): binary search in the image's sorted
 * relocation arrays, no map or object per relocation.
 */
export function relocsOf(view: View, sec: Section): RelocsByOffset {
  let perView = relocCache.get(view);
  if (!perView) relocCache.set(view, (perView = new Map()));
  let m = perView.get(sec.index);
  if (!m) {
    const img = view.img;
    if (img.kind !== 'rel') m = NO_RELOCS;
    else {
      const t = img.relocs(sec);
      const find = (o: number): number => {
        // The last entry at `o`, as a map built in file order would keep.
        const i = t.indexFrom(o + 1) - 1;
        return i >= 0 && t.offset[i] === o ? i : -1;
      };
      m = {
        get: (o) => {
          const i = find(o);
          return i < 0 ? undefined : { offset: o, type: t.type[i]!, sym: t.sym[i]!, addend: t.addend[i]! };
        },
        has: (o) => find(o) >= 0,
      };
    }
    perView.set(sec.index, m);
  }
  return m;
}

/** The relocation applying to the last 4 bytes of instruction `i` (a rel32 or disp32 field), if any. */
export function trailingReloc(view: View, sc: SectionCode, i: number): Reloc | undefined {
  // A patched view of a relocatable object holds relocated (and rewritten) bytes: its targets are in the bytes.
  if (view.img.kind !== 'rel' || view.patched) return undefined;
  return relocsOf(view, sc.section).get(sc.off[i]! + sc.len[i]! - 4);
}

/** Destination of a direct branch or call at instruction `i`, or undefined for an indirect one. */
export function destOf(view: View, sc: SectionCode, i: number): Dest | undefined {
  const t = sc.target[i]!;
  if (Number.isNaN(t)) return undefined;
  const r = trailingReloc(view, sc, i);
  if (r) {
    const img = view.img;
    const s = img.symbols[r.sym];
    const addr = img.relocTarget(r) + 4;
    if (s && s.type !== 3 /* STT_SECTION */ && s.name)
      return {
        addr: Number.isNaN(s.addr) ? NaN : addr,
        name:
          r.addend === -4
            ? s.name
            : `${s.name}${r.addend + 4 >= 0 ? '+' : '-'}0x${Math.abs(r.addend + 4).toString(16)}`,
      };
    return { addr, name: Number.isNaN(addr) ? img.relocSymbolName(r) : img.where(addr) };
  }
  const ext = view.externName?.(t);
  if (ext !== undefined) return { addr: NaN, name: ext };
  const sym = view.img.symbolize(t);
  return { addr: t, name: sym.offset === 0 ? sym.name : `${sym.name}+0x${sym.offset.toString(16)}` };
}

/** Bare destination name without an offset (for matching thunks and no-return functions). */
export function destName(view: View, sc: SectionCode, i: number): string | undefined {
  return destOf(view, sc, i)?.name;
}
