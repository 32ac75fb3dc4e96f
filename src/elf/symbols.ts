/**
 * Symbols: the file's own symbol table (with SHT_SYMTAB_SHNDX for many sections), or symbols given from
 * outside a linked image (a System.map, a /proc/kallsyms dump, the debug vmlinux; see symbol-file.ts), and
 * the lookups over them: by name, and address -> symbol + offset.
 */
import {
  ElfError,
  SHN_ABS,
  SHN_COMMON,
  SHN_UNDEF,
  SHN_XINDEX,
  SHT_SYMTAB,
  SHT_SYMTAB_SHNDX,
  STB_LOCAL,
  STT_FUNC,
  STT_NOTYPE,
  STT_OBJECT,
} from './parse.js';
import type { Section } from './parse.js';
import type { Image } from './image.js';
import { lastAtOrBelow } from './sorted.js';

export interface Sym {
  readonly index: number;
  readonly name: string;
  /** Address relative to the image base; NaN for undefined or unrepresentable symbols. */
  readonly addr: number;
  readonly size: number;
  readonly type: number;
  readonly bind: number;
  readonly shndx: number;
}

export interface Symbolized {
  readonly name: string;
  readonly offset: number;
  readonly sym?: Sym;
}

/** A symbol given from outside the ELF file, at its link-time (absolute) address. */
export interface ExternalSymbol {
  readonly name: string;
  readonly addr: bigint;
  /** Size in bytes when known (a debug vmlinux); otherwise derived from the next symbol for functions. */
  readonly size?: number;
  readonly type: number;
  readonly bind: number;
}

/** An image's symbols, read on first use, with the lookups over them. */
export class SymbolTable {
  private list?: Sym[];
  private byName?: Map<string, Sym>;
  private lookup?: { addrs: Float64Array; ends: Float64Array; idx: Int32Array };

  constructor(
    private readonly img: Image,
    /** Symbols from outside the file (linked images only). */
    readonly external?: readonly ExternalSymbol[],
    /** The external symbols name only a few places: see ParseOptions.partialSymbols. */
    readonly partial = false,
  ) {}

  get all(): Sym[] {
    if (!this.list)
      this.list = this.external && this.img.kind !== 'rel' ? this.fromExternal(this.external) : this.read();
    return this.list;
  }

  /** The symbol of that name: a global one before a local one, a defined one before an undefined one. */
  named(name: string): Sym | undefined {
    if (!this.byName) {
      const m = new Map<string, Sym>();
      for (const s of this.all) {
        if (!s.name) continue;
        const prev = m.get(s.name);
        if (
          !prev ||
          (prev.bind === STB_LOCAL && s.bind !== STB_LOCAL) ||
          (prev.shndx === SHN_UNDEF && s.shndx !== SHN_UNDEF)
        )
          m.set(s.name, s);
      }
      this.byName = m;
    }
    return this.byName.get(name);
  }

  private read(): Sym[] {
    const img = this.img;
    const st = img.sections.find((s) => s.type === SHT_SYMTAB);
    if (!st) return [];
    if (st.link >= img.sections.length) throw new ElfError('symbol table names a string table that does not exist');
    const strs = img.sections[st.link]!;
    const shx = img.sections.find((s) => s.type === SHT_SYMTAB_SHNDX && s.link === st.index);
    const shndxTable = shx ? new Uint32Array(img.bytes.slice(shx.offset, shx.offset + shx.size).buffer) : undefined;
    const n = Math.floor(st.size / 24);
    const out: Sym[] = new Array(n);
    const isRel = img.kind === 'rel';
    for (let i = 0; i < n; i++) {
      const o = st.offset + i * 24;
      const info = img.bytes[o + 4]!;
      let shndx = img.u16(o + 6);
      if (shndx === SHN_XINDEX && shndxTable) shndx = shndxTable[i] ?? 0;
      const type = info & 0xf;
      let addr: number;
      if (shndx === SHN_UNDEF || shndx === SHN_COMMON) addr = NaN;
      else if (isRel) {
        if (shndx === SHN_ABS) addr = img.u64n(o + 8);
        else {
          const sec = img.sections[shndx];
          addr = sec?.alloc ? sec.addr + img.u64n(o + 8) : NaN;
        }
      } else {
        addr = img.rel(img.u64big(o + 8));
      }
      out[i] = {
        index: i,
        name: img.cstr(strs.offset, strs.size, img.u32(o)),
        addr,
        size: img.u64n(o + 16),
        type,
        bind: info >> 4,
        shndx,
      };
    }
    return out;
  }

  private fromExternal(ext: readonly ExternalSymbol[]): Sym[] {
    const img = this.img;
    const secs = img.sections
      .filter((s) => s.alloc && !Number.isNaN(s.addr) && s.size > 0)
      .sort((a, b) => a.addr - b.addr);
    const starts = secs.map((s) => s.addr);
    const sectionOf = (addr: number): Section | undefined => {
      const k = lastAtOrBelow(starts, addr);
      // A symbol one past a section's end (__stop_*, _etext) belongs to it.
      for (let j = k; j >= 0 && j >= k - 2; j--) if (addr <= secs[j]!.addr + secs[j]!.size) return secs[j];
      return undefined;
    };
    const rel = ext.map((e) => ({ e, addr: img.rel(e.addr) }));
    const out: Sym[] = [
      { index: 0, name: '', addr: NaN, size: 0, type: STT_NOTYPE, bind: STB_LOCAL, shndx: SHN_UNDEF },
    ];
    // Function sizes, when not given, run to the next symbol at a higher address in the same section.
    const order = rel
      .map((_, i) => i)
      .filter((i) => !Number.isNaN(rel[i]!.addr))
      .sort((a, b) => rel[a]!.addr - rel[b]!.addr);
    const next = new Float64Array(rel.length).fill(NaN);
    for (let k = 0; k < order.length; k++) {
      const a = rel[order[k]!]!.addr;
      let j = k + 1;
      while (j < order.length && rel[order[j]!]!.addr === a) j++;
      if (j < order.length) next[order[k]!] = rel[order[j]!]!.addr;
    }
    rel.forEach(({ e, addr }, i) => {
      const sec = Number.isNaN(addr) ? undefined : sectionOf(addr);
      let size = e.size ?? 0;
      if (e.size === undefined && e.type === STT_FUNC && sec?.exec) {
        const end = Math.min(sec.addr + sec.size, Number.isNaN(next[i]!) ? Infinity : next[i]!);
        size = Math.max(0, end - addr);
      }
      out.push({
        index: i + 1,
        name: e.name,
        addr,
        size,
        type: e.type,
        bind: e.bind,
        shndx: sec ? sec.index : SHN_ABS,
      });
    });
    return out;
  }

  private buildLookup(): { addrs: Float64Array; ends: Float64Array; idx: Int32Array } {
    const img = this.img;
    const syms = this.all;
    const cand: number[] = [];
    for (const s of syms) {
      if (Number.isNaN(s.addr) || !s.name) continue;
      if (s.type !== STT_FUNC && s.type !== STT_OBJECT && s.type !== STT_NOTYPE) continue;
      if (s.shndx === SHN_ABS || s.shndx === SHN_UNDEF) continue;
      if (s.name.startsWith('.L') || (s.name.startsWith('__UNIQUE_ID_') && s.type === STT_OBJECT)) continue;
      const sec = img.sections[s.shndx];
      if (!sec?.alloc) continue;
      cand.push(s.index);
    }
    const rank = (s: Sym): number =>
      (s.type === STT_FUNC ? 0 : s.type === STT_OBJECT ? 1 : 2) * 4 +
      (s.size > 0 ? 0 : 2) +
      (s.bind === STB_LOCAL ? 1 : 0);
    cand.sort((a, b) => {
      const sa = syms[a]!;
      const sb = syms[b]!;
      return sa.addr - sb.addr || rank(sa) - rank(sb);
    });
    // Keep the best-ranked symbol per address.
    const keep: number[] = [];
    for (const i of cand) {
      const last = keep.length ? syms[keep[keep.length - 1]!]! : undefined;
      if (last && last.addr === syms[i]!.addr) continue;
      keep.push(i);
    }
    const addrs = new Float64Array(keep.length);
    const ends = new Float64Array(keep.length);
    const idx = new Int32Array(keep.length);
    keep.forEach((si, k) => {
      const s = syms[si]!;
      addrs[k] = s.addr;
      ends[k] = s.addr + s.size;
      idx[k] = si;
    });
    return { addrs, ends, idx };
  }

  /**
   * address -> symbol + offset: the closest symbol at or before the address in the same section
   * (a sized function containing it first). Falls back to section+offset.
   */
  symbolize(addr: number): Symbolized {
    const img = this.img;
    if (!this.lookup) this.lookup = this.buildLookup();
    const { addrs, idx } = this.lookup;
    const k = lastAtOrBelow(addrs, addr);
    const sec = img.sectionAt(addr);
    if (k >= 0) {
      const sym = this.all[idx[k]!]!;
      const symSec = img.sections[sym.shndx];
      const inside = addr < sym.addr + sym.size;
      if (this.partial ? inside || addr === sym.addr : !sec || symSec === sec || (symSec && inside))
        return { name: sym.name, offset: addr - sym.addr, sym };
    }
    if (sec) return { name: sec.name, offset: addr - sec.addr };
    return { name: img.hex(addr), offset: 0 };
  }

  /** Function symbols (STT_FUNC, size > 0) in allocated executable sections, sorted by address. */
  functions(): Sym[] {
    const img = this.img;
    return this.all
      .filter((s) => s.type === STT_FUNC && s.size > 0 && !Number.isNaN(s.addr) && img.sections[s.shndx]?.exec)
      .sort((a, b) => a.addr - b.addr);
  }
}
