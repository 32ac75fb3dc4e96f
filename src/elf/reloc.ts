/**
 * RELA relocations. The one way to reach them is {@link Image.relocs}: the relocations applying to a
 * section as a {@link Relocations} table (parallel typed arrays sorted by offset, no object per entry),
 * read once and cached, with the lookups callers need (at an offset, from an offset, as objects, as a map).
 * {@link relocTarget} and {@link relocSymbolName} say what one relocation refers to (the image offers
 * them as methods).
 */
import { ElfError, SHT_RELA, STT_SECTION } from './parse.js';
import type { Section } from './parse.js';
import type { Image } from './image.js';

export interface Reloc {
  /** Offset of the relocated field inside its target section. */
  readonly offset: number;
  readonly type: number;
  readonly sym: number;
  readonly addend: number;
}

/** Relocations of one section as parallel arrays, sorted by offset. */
export interface RelocTable {
  readonly count: number;
  readonly offset: Float64Array;
  readonly type: Uint32Array;
  readonly sym: Uint32Array;
  readonly addend: Float64Array;
}

/**
 * The relocations applying to one section (empty when no SHT_RELA section applies to it). The entries are
 * read from the file on first use (a bad symbol index throws {@link ElfError} then).
 */
export class Relocations implements RelocTable {
  private table?: RelocTable;
  private list?: Reloc[];

  constructor(
    private readonly img: Image,
    /** The SHT_RELA section they come from, if there is one. */
    readonly rela: Section | undefined,
  ) {}

  get count(): number {
    return (this.table ??= this.read()).count;
  }
  get offset(): Float64Array {
    return (this.table ??= this.read()).offset;
  }
  get type(): Uint32Array {
    return (this.table ??= this.read()).type;
  }
  get sym(): Uint32Array {
    return (this.table ??= this.read()).sym;
  }
  get addend(): Float64Array {
    return (this.table ??= this.read()).addend;
  }

  /** Reads the entries of the SHT_RELA section, sorted by offset. */
  private read(): RelocTable {
    const img = this.img;
    const rela = this.rela;
    const n = rela ? Math.floor(rela.size / 24) : 0;
    const t = {
      count: n,
      offset: new Float64Array(n),
      type: new Uint32Array(n),
      sym: new Uint32Array(n),
      addend: new Float64Array(n),
    };
    if (!rela) return t;
    const nsyms = img.symbols.length;
    let sorted = true;
    for (let i = 0; i < n; i++) {
      const o = rela.offset + i * 24;
      const sym = img.u32(o + 12);
      if (sym >= nsyms)
        throw new ElfError(`relocation ${i} in ${rela.name} names symbol ${sym}, outside the symbol table`);
      t.offset[i] = img.u64n(o);
      t.type[i] = img.u32(o + 8);
      t.sym[i] = sym;
      t.addend[i] = img.i64n(o + 16);
      if (i && t.offset[i]! < t.offset[i - 1]!) sorted = false;
    }
    if (!sorted) {
      const idx = Array.from({ length: n }, (_, i) => i).sort((a, b) => t.offset[a]! - t.offset[b]!);
      const copy = { offset: t.offset.slice(), type: t.type.slice(), sym: t.sym.slice(), addend: t.addend.slice() };
      idx.forEach((from, to) => {
        t.offset[to] = copy.offset[from]!;
        t.type[to] = copy.type[from]!;
        t.sym[to] = copy.sym[from]!;
        t.addend[to] = copy.addend[from]!;
      });
    }
    return t;
  }

  /** Entry i as an object. */
  entry(i: number): Reloc {
    const t = (this.table ??= this.read());
    return { offset: t.offset[i]!, type: t.type[i]!, sym: t.sym[i]!, addend: t.addend[i]! };
  }

  /** Index of the first entry at or after section offset `o` (binary search). */
  indexFrom(o: number): number {
    let lo = 0;
    const t = (this.table ??= this.read());
    let hi = t.count;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (t.offset[mid]! < o) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** The (first) entry at exactly section offset `o`, or undefined. */
  at(o: number): Reloc | undefined {
    const i = this.indexFrom(o);
    if (i >= this.count || this.offset[i] !== o) return undefined;
    return this.entry(i);
  }

  /** Every entry as an object, sorted by offset (made once). */
  all(): Reloc[] {
    if (!this.list) {
      const out: Reloc[] = new Array(this.count);
      for (let i = 0; i < this.count; i++) out[i] = this.entry(i);
      this.list = out;
    }
    return this.list;
  }

  /** The entries keyed by field offset (of several at one offset, the last, as the loader's last write wins). */
  byOffset(): Map<number, Reloc> {
    const m = new Map<number, Reloc>();
    for (const r of this.all()) m.set(r.offset, r);
    return m;
  }
}

/** The SHT_RELA section applying to each section, by the target's index. */
export function relaSections(sections: readonly Section[]): Map<number, Section> {
  const m = new Map<number, Section>();
  for (const s of sections) if (s.type === SHT_RELA && s.info < sections.length) m.set(s.info, s);
  return m;
}

/** S + A of a relocation: the relative address it refers to (NaN for undefined symbols). */
export function relocTarget(img: Image, r: Reloc): number {
  const s = img.symbols[r.sym];
  if (!s) return NaN;
  return s.addr + r.addend;
}

/** Name of a relocation's symbol (section name for section symbols). */
export function relocSymbolName(img: Image, r: Reloc): string {
  const s = img.symbols[r.sym];
  if (!s) return '?';
  if (s.type === STT_SECTION) return img.sections[s.shndx]?.name ?? '?';
  return s.name;
}
