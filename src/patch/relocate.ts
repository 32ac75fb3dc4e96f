/**
 * What the module loader does before any patcher runs: apply the RELA relocations of every allocated
 * section (arch/x86/kernel/module.c __apply_relocate_add: R_X86_64_64, 32, 32S, PC32, PLT32, PC64),
 * with section addresses from the layout (or the given load addresses).
 *
 * Undefined symbols: the kernel resolves them against its own symbol table. textpoke takes them from a
 * System.map-style list when given (`symbols`), otherwise gives each one a synthetic address in a block
 * past the module (one per name, 16 bytes apart) and reports how many were synthetic. Relative branches to
 * the same undefined symbol then agree everywhere (the site, its replacement, the patched bytes), which
 * is all the patchers' arithmetic needs; the absolute values mean nothing.
 */
import { Image, Relocations, SHN_ABS, SHN_COMMON, SHN_UNDEF, SHT_NOBITS, SHT_RELA } from '../elf/image.js';
import type { PatchedView } from './view.js';

export interface RelocateOptions {
  /** Undefined symbol name -> real address (System.map). */
  symbols?: ReadonlyMap<string, bigint>;
}

export interface RelocateResult {
  applied: number;
  /** Undefined symbols given synthetic addresses. */
  synthetic: number;
  /** Undefined symbols resolved from the symbol list. */
  resolved: number;
}

const R_64 = 1,
  R_PC32 = 2,
  R_PLT32 = 4,
  R_32 = 10,
  R_32S = 11,
  R_PC64 = 24,
  R_NONE = 0;

export function relocate(view: PatchedView, opts: RelocateOptions = {}): RelocateResult {
  const img: Image = view.img;
  const res: RelocateResult = { applied: 0, synthetic: 0, resolved: 0 };
  if (img.kind !== 'rel') return res;
  const known = view.externAbs.size;
  // The block for synthetic extern addresses: past the highest section, 1 MiB aligned.
  let top = 0n;
  for (const s of img.sections)
    if (s.alloc && !Number.isNaN(s.addr)) {
      const end = view.abs(s.addr) + BigInt(s.size);
      if (end > top) top = end;
    }
  view.nextSynthetic ??= ((top + 0xfffffn) & ~0xfffffn) + 0x100000n;
  view.symbolList = opts.symbols;
  const syms = img.symbols;
  const symAbs = (i: number): bigint | undefined => {
    const s = syms[i]!;
    if (s.shndx === SHN_UNDEF) {
      if (!s.name) return 0n;
      return view.extern(s.name);
    }
    if (s.shndx === SHN_ABS) return BigInt(s.addr);
    if (s.shndx === SHN_COMMON || Number.isNaN(s.addr)) return undefined;
    return view.abs(s.addr);
  };
  // Symbol values as exact numbers where they fit (every one, in a module laid out by textpoke): the
  // arithmetic below is then plain number arithmetic, with bigints only for addresses beyond 2^52.
  const UNSEEN = 0,
    NUMBER = 1,
    BIG = 2,
    NONE = 3;
  const state = new Uint8Array(syms.length);
  const value = new Float64Array(syms.length);
  const symNumber = (i: number): number => {
    if (state[i] === UNSEEN) {
      const v = symAbs(i);
      if (v === undefined) state[i] = NONE;
      else if (v < 1n << 52n && v > -(1n << 52n)) {
        state[i] = NUMBER;
        value[i] = Number(v);
      } else state[i] = BIG;
    }
    return state[i] === NUMBER ? value[i]! : NaN;
  };
  for (const rs of img.sections) {
    if (rs.type !== SHT_RELA) continue;
    const target = img.sections[rs.info];
    if (!target?.alloc || target.type === SHT_NOBITS || target.size === 0) continue;
    const t = img.relocs(target);
    if (t.count === 0) continue;
    // The loader's copy is made on the first write (a section whose relocations all fail stays as in the file).
    const size = target.size;
    let dvMade: DataView | undefined;
    const dvOf = (): DataView => {
      if (!dvMade) {
        const b = view.loaderCopy(target);
        dvMade = new DataView(b.buffer, b.byteOffset, b.byteLength);
      }
      return dvMade;
    };
    const secAbs = view.abs(target.addr);
    const secNum = view.absNumber(target.addr);
    for (let k = 0; k < t.count; k++) {
      const type = t.type[k]!;
      if (type === R_NONE) continue;
      const off = t.offset[k]!;
      const sym = t.sym[k]!;
      const addend = t.addend[k]!;
      const S = symNumber(sym);
      const Sb = Number.isNaN(S) && state[sym] !== NONE ? symAbs(sym) : undefined;
      if (Number.isNaN(S) && Sb === undefined) {
        view.finding(
          'relocate',
          target.addr + off,
          `relocation type ${type} against ${relocName(img, t, k)}: symbol has no address`,
          'model',
        );
        continue;
      }
      const width =
        type === R_64 || type === R_PC64
          ? 8
          : type === R_32 || type === R_32S || type === R_PC32 || type === R_PLT32
            ? 4
            : 0;
      if (width === 0) {
        view.finding(
          'relocate',
          target.addr + off,
          `unsupported relocation type ${type} against ${relocName(img, t, k)} (the module loader rejects it)`,
          'bug',
        );
        continue;
      }
      if (off + width > size) continue;
      // S + A, minus P for the pc-relative types, written as its low 32 or 64 bits (two's complement).
      const pcrel = type === R_PC32 || type === R_PLT32 || type === R_PC64;
      let lo: number;
      let hi: number;
      if (!Number.isNaN(S) && !Number.isNaN(secNum)) {
        const v = S + addend - (pcrel ? secNum + off : 0);
        lo = v >>> 0;
        hi = Math.floor(v / 0x1_0000_0000) >>> 0;
      } else {
        const v = (Sb ?? BigInt(S)) + BigInt(addend) - (pcrel ? secAbs + BigInt(off) : 0n);
        lo = Number(v & 0xffffffffn);
        hi = Number((v >> 32n) & 0xffffffffn);
      }
      const dv = dvOf();
      dv.setUint32(off, lo, true);
      if (width === 8) dv.setUint32(off + 4, hi, true);
      res.applied++;
    }
  }
  res.synthetic = view.syntheticCount;
  res.resolved = view.externAbs.size - known - view.syntheticCount;
  return res;
}

function relocName(img: Image, t: Relocations, k: number): string {
  return img.relocSymbolName(t.entry(k));
}
