/**
 * ELF64 little-endian reader: sections, symbols, RELA relocations, and one address space.
 *
 * Zero-copy: section bytes are `subarray` views over the file buffer. Addresses inside textpoke are
 * plain numbers relative to {@link Image.base} (kernel addresses such as 0xffffffff81000000 do not fit
 * a double exactly, offsets from the image base do); {@link Image.hex} turns one back into a real address.
 * Relocatable objects (`.o`, `.ko`) get addresses for their allocated sections, laid out one after the
 * other in header order (or as given in `load`), so relocated references resolve in one address space.
 *
 * @example
 * ```ts
 * const img = Image.parse(bytes, 'xfs.ko');
 * const text = img.section('.text')!;
 * const where = img.symbolize(text.addr + 0x40); // { name: 'xfs_foo', offset: 0x10, ... }
 * ```
 */

export class ElfError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ElfError';
  }
}

export const SHT_PROGBITS = 1;
export const SHT_SYMTAB = 2;
export const SHT_STRTAB = 3;
export const SHT_RELA = 4;
export const SHT_NOBITS = 8;
export const SHT_REL = 9;
export const SHT_SYMTAB_SHNDX = 18;
export const SHF_WRITE = 0x1;
export const SHF_ALLOC = 0x2;
export const SHF_EXECINSTR = 0x4;
export const SHN_UNDEF = 0;
export const SHN_ABS = 0xfff1;
export const SHN_COMMON = 0xfff2;
export const SHN_XINDEX = 0xffff;
export const STT_NOTYPE = 0;
export const STT_OBJECT = 1;
export const STT_FUNC = 2;
export const STT_SECTION = 3;
export const STT_FILE = 4;
export const STB_LOCAL = 0;
export const STB_GLOBAL = 1;
export const STB_WEAK = 2;

export const R_X86_64_NONE = 0;
export const R_X86_64_64 = 1;
export const R_X86_64_PC32 = 2;
export const R_X86_64_PLT32 = 4;
export const R_X86_64_32 = 10;
export const R_X86_64_32S = 11;
export const R_X86_64_PC64 = 24;

export type ElfKind = 'rel' | 'exec' | 'dyn';

export interface Section {
  readonly index: number;
  readonly name: string;
  readonly type: number;
  readonly flags: number;
  /** Address relative to the image base (NaN when the section has no representable address). */
  addr: number;
  readonly size: number;
  readonly offset: number;
  readonly link: number;
  readonly info: number;
  readonly addralign: number;
  readonly entsize: number;
  readonly alloc: boolean;
  readonly exec: boolean;
}

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

export interface Symbolized {
  readonly name: string;
  readonly offset: number;
  readonly sym?: Sym;
}

export interface ParseOptions {
  /** ET_REL only: load addresses (absolute) for sections by name, as /sys/module/NAME/sections/ lists them. */
  load?: ReadonlyMap<string, bigint>;
  /**
   * Linked images only: symbols from outside the file (a System.map, a /proc/kallsyms dump, the debug
   * vmlinux; see symbol-file.ts), used instead of the file's own symbol table.
   */
  symbols?: readonly ExternalSymbol[];
  /**
   * The external symbols name only a few places (inferred from the image's own tables, see
   * sites/thunks.ts), not the whole image: an address outside every symbol's extent is named by its section,
   * never as an offset from the nearest symbol before it.
   */
  partialSymbols?: boolean;
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

const TWO32 = 0x1_0000_0000;
const MAX_EXACT = Number.MAX_SAFE_INTEGER;

export class Image {
  readonly path: string;
  readonly bytes: Uint8Array;
  readonly kind: ElfKind;
  readonly machine: number;
  /** Real address that relative address 0 stands for. */
  readonly base: bigint;
  /** The base as a number when every address above it up to 2^52 stays exact (relocatable files: 0). */
  private readonly smallBase: number;
  readonly sections: Section[] = [];
  private readonly dv: DataView;
  private readonly byName = new Map<string, Section>();
  private symtab?: Sym[];
  private symByName?: Map<string, Sym>;
  private lookup?: { addrs: Float64Array; ends: Float64Array; idx: Int32Array };
  private relaIndex?: Map<number, Section>;
  private relocCache = new Map<number, Reloc[]>();
  private relocTables = new Map<number, RelocTable>();
  private allocSorted?: Section[];
  private shndxTable?: Uint32Array;
  private readonly external?: readonly ExternalSymbol[];
  /** The symbols name only a few places ({@link ParseOptions.partialSymbols}), or there are none. */
  get fewSymbols(): boolean {
    return this.partialSymbols || this.symbols.length === 0;
  }
  private readonly partialSymbols: boolean;

  private constructor(path: string, bytes: Uint8Array, options: ParseOptions) {
    this.path = path;
    this.bytes = bytes;
    if (options.symbols) this.external = options.symbols;
    this.partialSymbols = options.partialSymbols === true;
    this.dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const b = bytes;
    if (b.length < 64) throw new ElfError(b.length >= 4 && isElfMagic(b) ? 'truncated ELF header' : 'not an ELF file');
    if (!isElfMagic(b)) throw new ElfError('not an ELF file');
    if (b[4] !== 2) throw new ElfError('not a 64-bit ELF file (only ELF64 is supported)');
    if (b[5] !== 1) throw new ElfError('not a little-endian ELF file');
    const type = this.u16(16);
    this.kind = type === 1 ? 'rel' : type === 2 ? 'exec' : type === 3 ? 'dyn' : fail(`unsupported ELF type ${type}`);
    this.machine = this.u16(18);
    const shoff = this.u64n(40);
    const shentsize = this.u16(58);
    let shnum = this.u16(60);
    let shstrndx = this.u16(62);
    if (shoff === 0) throw new ElfError('no section header table');
    if (shentsize !== 64) throw new ElfError(`bad section header entry size ${shentsize}`);
    if (shoff + 64 > b.length) throw new ElfError('section header table outside the file (truncated?)');
    if (shnum === 0) shnum = this.u64n(shoff + 32);
    if (shstrndx === SHN_XINDEX) shstrndx = this.u32(shoff + 40);
    if (shnum > (b.length - shoff) / 64)
      throw new ElfError(`section header table (${shnum} entries) runs past the end of the file (truncated?)`);
    const raw: Array<Omit<Section, 'name' | 'addr'> & { nameOff: number; abs: bigint }> = [];
    for (let i = 0; i < shnum; i++) {
      const o = shoff + i * 64;
      const flags = this.u64n(o + 8);
      const stype = this.u32(o + 4);
      const size = this.u64n(o + 32);
      const offset = this.u64n(o + 24);
      if (stype !== SHT_NOBITS && stype !== 0 && (offset > b.length || size > b.length - offset)) {
        throw new ElfError(
          `section ${i} (offset 0x${offset.toString(16)}, size 0x${size.toString(16)}) lies outside the file (truncated or corrupt)`,
        );
      }
      raw.push({
        index: i,
        nameOff: this.u32(o),
        type: stype,
        flags,
        abs: this.u64big(o + 16),
        offset,
        size,
        link: this.u32(o + 40),
        info: this.u32(o + 44),
        addralign: this.u64n(o + 48),
        entsize: this.u64n(o + 56),
        alloc: (flags & SHF_ALLOC) !== 0,
        exec: (flags & SHF_EXECINSTR) !== 0,
      });
    }
    if (shstrndx >= raw.length) throw new ElfError(`section name table index ${shstrndx} out of range`);
    const strs = raw[shstrndx]!;
    // Choose the base and convert addresses.
    let base = 0n;
    if (this.kind === 'rel' && options.load?.size) {
      // Load addresses (e.g. 0xffffffffc0a00000) are kept relative to the lowest one, which stays exact.
      const given = raw
        .filter((s) => s.alloc && options.load!.has(this.cstrRaw(strs, s.nameOff)))
        .map((s) => options.load!.get(this.cstrRaw(strs, s.nameOff))!);
      if (given.length) base = given.reduce((a, c) => (c < a ? c : a)) & ~0xfffffn;
    } else if (this.kind !== 'rel') {
      const execs = raw.filter((s) => s.exec && s.alloc).map((s) => s.abs);
      const pool = execs.length ? execs : raw.filter((s) => s.alloc).map((s) => s.abs);
      if (pool.length) base = pool.reduce((a, c) => (c < a ? c : a));
      base &= ~0xfffffn;
    }
    this.base = base;
    this.smallBase = base < 1n << 52n ? Number(base) : NaN;
    for (let i = 0; i < raw.length; i++) {
      const r = raw[i]!;
      const name = this.cstr(strs.offset, strs.size, r.nameOff);
      let addr: number;
      if (this.kind === 'rel') addr = NaN;
      else {
        const d = r.abs - base;
        addr = d >= -BigInt(MAX_EXACT) && d <= BigInt(MAX_EXACT) ? Number(d) : NaN;
      }
      // A plain literal (not rest/spread): every Section gets the same fast object shape.
      const sec: Section = {
        index: r.index,
        name,
        type: r.type,
        flags: r.flags,
        addr,
        size: r.size,
        offset: r.offset,
        link: r.link,
        info: r.info,
        addralign: r.addralign,
        entsize: r.entsize,
        alloc: r.alloc,
        exec: r.exec,
      };
      this.sections.push(sec);
      if (!this.byName.has(name)) this.byName.set(name, sec);
    }
    if (this.kind === 'rel') this.layoutRelocatable(options.load);
  }

  /** Parses an ELF64 little-endian file; throws {@link ElfError} with a one-line reason on bad input. */
  static parse(bytes: Uint8Array, path = '<memory>', options: ParseOptions = {}): Image {
    try {
      return new Image(path, bytes, options);
    } catch (e) {
      if (e instanceof ElfError) throw e;
      if (e instanceof RangeError) throw new ElfError('truncated or corrupt ELF structure');
      throw e;
    }
  }

  private layoutRelocatable(load?: ReadonlyMap<string, bigint>): void {
    let cursor = 0x1000;
    for (const s of this.sections) {
      if (!s.alloc || (s.size === 0 && s.type === 0)) continue;
      const given = load?.get(s.name);
      if (given !== undefined) {
        s.addr = Number(given - this.base);
        continue;
      }
      const align = Math.max(1, Math.min(s.addralign || 1, 4096));
      cursor = Math.ceil(cursor / align) * align;
      s.addr = cursor;
      cursor += Math.max(s.size, 1);
    }
    if (load?.size) {
      // Sections not given a load address go after everything that was.
      let top = 0;
      for (const s of this.sections) if (s.alloc && load.has(s.name)) top = Math.max(top, s.addr + s.size);
      for (const s of this.sections) {
        if (!s.alloc || load.has(s.name)) continue;
        const align = Math.max(1, Math.min(s.addralign || 1, 4096));
        top = Math.ceil(top / align) * align;
        s.addr = top;
        top += Math.max(s.size, 1);
      }
    }
  }

  // ---- low-level reads (file offsets) ----
  u8(o: number): number {
    return this.dv.getUint8(o);
  }
  u16(o: number): number {
    return this.dv.getUint16(o, true);
  }
  u32(o: number): number {
    return this.dv.getUint32(o, true);
  }
  i32(o: number): number {
    return this.dv.getInt32(o, true);
  }
  /** u64 as a number (exact below 2^53). */
  u64n(o: number): number {
    return this.dv.getUint32(o, true) + this.dv.getUint32(o + 4, true) * TWO32;
  }
  /** s64 as a number (exact within ±2^53). */
  i64n(o: number): number {
    return this.dv.getUint32(o, true) + this.dv.getInt32(o + 4, true) * TWO32;
  }
  u64big(o: number): bigint {
    return this.dv.getBigUint64(o, true);
  }

  private cstrRaw(strs: { offset: number; size: number }, off: number): string {
    return this.cstr(strs.offset, strs.size, off);
  }

  private cstr(tabOff: number, tabSize: number, off: number): string {
    if (off >= tabSize) return '';
    const start = tabOff + off;
    const limit = tabOff + tabSize;
    let end = start;
    const b = this.bytes;
    while (end < limit && b[end] !== 0) end++;
    return latin1(b, start, end);
  }

  // ---- sections ----
  section(name: string): Section | undefined {
    return this.byName.get(name);
  }

  /** Bytes of a section as a view over the file (empty for NOBITS). */
  sectionBytes(s: Section): Uint8Array {
    if (s.type === SHT_NOBITS || s.type === 0) return new Uint8Array(0);
    return this.bytes.subarray(s.offset, s.offset + s.size);
  }

  /** Allocated sections with file bytes, sorted by address. */
  allocSections(): Section[] {
    if (!this.allocSorted) {
      this.allocSorted = this.sections
        .filter((s) => s.alloc && !Number.isNaN(s.addr) && s.size > 0)
        .sort((a, b) => a.addr - b.addr);
    }
    return this.allocSorted;
  }

  /** The allocated section holding a relative address. */
  sectionAt(addr: number): Section | undefined {
    const list = this.allocSections();
    let lo = 0;
    let hi = list.length - 1;
    let best: Section | undefined;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const s = list[mid]!;
      if (s.addr <= addr) {
        best = s;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    if (best && addr < best.addr + best.size) return best;
    // Overlapping sections (NOBITS percpu etc.): linear fallback.
    for (const s of list) if (addr >= s.addr && addr < s.addr + s.size) return s;
    return undefined;
  }

  /** Reads `len` bytes at a relative address, or undefined when they are not all in one section with file bytes. */
  read(addr: number, len: number): Uint8Array | undefined {
    const s = this.sectionAt(addr);
    if (!s || s.type === SHT_NOBITS) return undefined;
    const off = addr - s.addr;
    if (off + len > s.size) return undefined;
    return this.bytes.subarray(s.offset + off, s.offset + off + len);
  }

  /** File offset of a relative address, or -1. */
  fileOffset(addr: number): number {
    const s = this.sectionAt(addr);
    if (!s || s.type === SHT_NOBITS) return -1;
    return s.offset + (addr - s.addr);
  }

  /** Absolute address of a relative one, as hex `0x…`. */
  hex(addr: number): string {
    if (Number.isNaN(addr)) return '?';
    if (addr >= 0 && addr < 2 ** 52 && !Number.isNaN(this.smallBase))
      return '0x' + (this.smallBase + addr).toString(16);
    // Addresses are 64-bit: one below the base (a corrupt table entry) wraps as the CPU would, never prints as -0x….
    return '0x' + BigInt.asUintN(64, this.base + BigInt(addr)).toString(16);
  }

  /** Relative address of an absolute one (NaN when not representable). */
  rel(abs: bigint): number {
    const d = abs - this.base;
    return d >= -BigInt(MAX_EXACT) && d <= BigInt(MAX_EXACT) ? Number(d) : NaN;
  }

  // ---- symbols ----
  get symbols(): Sym[] {
    if (!this.symtab) this.symtab = this.readSymbols();
    return this.symtab;
  }

  symbol(name: string): Sym | undefined {
    if (!this.symByName) {
      const m = new Map<string, Sym>();
      for (const s of this.symbols) {
        if (!s.name) continue;
        const prev = m.get(s.name);
        if (
          !prev ||
          (prev.bind === STB_LOCAL && s.bind !== STB_LOCAL) ||
          (prev.shndx === SHN_UNDEF && s.shndx !== SHN_UNDEF)
        )
          m.set(s.name, s);
      }
      this.symByName = m;
    }
    return this.symByName.get(name);
  }

  private symtabSection(): Section | undefined {
    return this.sections.find((s) => s.type === SHT_SYMTAB);
  }

  private readSymbols(): Sym[] {
    if (this.external && this.kind !== 'rel') return this.externalSymbols(this.external);
    const st = this.symtabSection();
    if (!st) return [];
    if (st.link >= this.sections.length) throw new ElfError('symbol table names a string table that does not exist');
    const strs = this.sections[st.link]!;
    const shx = this.sections.find((s) => s.type === SHT_SYMTAB_SHNDX && s.link === st.index);
    if (shx) this.shndxTable = new Uint32Array(this.bytes.slice(shx.offset, shx.offset + shx.size).buffer);
    const n = Math.floor(st.size / 24);
    const out: Sym[] = new Array(n);
    const isRel = this.kind === 'rel';
    for (let i = 0; i < n; i++) {
      const o = st.offset + i * 24;
      const info = this.bytes[o + 4]!;
      let shndx = this.u16(o + 6);
      if (shndx === SHN_XINDEX && this.shndxTable) shndx = this.shndxTable[i] ?? 0;
      const type = info & 0xf;
      let addr: number;
      if (shndx === SHN_UNDEF || shndx === SHN_COMMON) addr = NaN;
      else if (isRel) {
        if (shndx === SHN_ABS) addr = this.u64n(o + 8);
        else {
          const sec = this.sections[shndx];
          addr = sec?.alloc ? sec.addr + this.u64n(o + 8) : NaN;
        }
      } else {
        addr = this.rel(this.u64big(o + 8));
      }
      out[i] = {
        index: i,
        name: this.cstr(strs.offset, strs.size, this.u32(o)),
        addr,
        size: this.u64n(o + 16),
        type,
        bind: info >> 4,
        shndx,
      };
    }
    return out;
  }

  /** True when the symbols came from outside the file ({@link ParseOptions.symbols}). */
  get externalSymbolsUsed(): boolean {
    return this.external !== undefined;
  }

  private externalSymbols(ext: readonly ExternalSymbol[]): Sym[] {
    const secs = this.sections
      .filter((s) => s.alloc && !Number.isNaN(s.addr) && s.size > 0)
      .sort((a, b) => a.addr - b.addr);
    const sectionOf = (addr: number): Section | undefined => {
      let lo = 0;
      let hi = secs.length - 1;
      let k = -1;
      while (lo <= hi) {
        const mid = (lo + hi) >> 1;
        if (secs[mid]!.addr <= addr) {
          k = mid;
          lo = mid + 1;
        } else hi = mid - 1;
      }
      // A symbol one past a section's end (__stop_*, _etext) belongs to it.
      for (let j = k; j >= 0 && j >= k - 2; j--) if (addr <= secs[j]!.addr + secs[j]!.size) return secs[j];
      return undefined;
    };
    const rel = ext.map((e) => ({ e, addr: this.rel(e.addr) }));
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
    const syms = this.symbols;
    const cand: number[] = [];
    for (const s of syms) {
      if (Number.isNaN(s.addr) || !s.name) continue;
      if (s.type !== STT_FUNC && s.type !== STT_OBJECT && s.type !== STT_NOTYPE) continue;
      if (s.shndx === SHN_ABS || s.shndx === SHN_UNDEF) continue;
      if (s.name.startsWith('.L') || (s.name.startsWith('__UNIQUE_ID_') && s.type === STT_OBJECT)) continue;
      const sec = this.sections[s.shndx];
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
    if (!this.lookup) this.lookup = this.buildLookup();
    const { addrs, idx } = this.lookup;
    let lo = 0;
    let hi = addrs.length - 1;
    let k = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (addrs[mid]! <= addr) {
        k = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    const sec = this.sectionAt(addr);
    if (k >= 0) {
      const sym = this.symbols[idx[k]!]!;
      const symSec = this.sections[sym.shndx];
      const inside = addr < sym.addr + sym.size;
      if (this.partialSymbols ? inside || addr === sym.addr : !sec || symSec === sec || (symSec && inside))
        return { name: sym.name, offset: addr - sym.addr, sym };
    }
    if (sec) return { name: sec.name, offset: addr - sec.addr };
    return { name: this.hex(addr), offset: 0 };
  }

  /** `symbol+0xoff` as objtool prints it. */
  where(addr: number): string {
    const s = this.symbolize(addr);
    return `${s.name}+0x${s.offset.toString(16)}`;
  }

  /** Function symbols (STT_FUNC, size > 0) in allocated executable sections, sorted by address. */
  functions(): Sym[] {
    return this.symbols
      .filter((s) => s.type === STT_FUNC && s.size > 0 && !Number.isNaN(s.addr) && this.sections[s.shndx]?.exec)
      .sort((a, b) => a.addr - b.addr);
  }

  // ---- relocations ----
  /** The SHT_RELA section that applies to a section, if any. */
  relaFor(target: Section): Section | undefined {
    if (!this.relaIndex) {
      this.relaIndex = new Map();
      for (const s of this.sections)
        if (s.type === SHT_RELA && s.info < this.sections.length) this.relaIndex.set(s.info, s);
    }
    return this.relaIndex.get(target.index);
  }

  /** RELA entries of a section as parallel typed arrays sorted by offset (no object per relocation). */
  relocTable(target: Section): RelocTable {
    const cached = this.relocTables.get(target.index);
    if (cached) return cached;
    const rs = this.relaFor(target);
    const n = rs ? Math.floor(rs.size / 24) : 0;
    const t: RelocTable = {
      count: n,
      offset: new Float64Array(n),
      type: new Uint32Array(n),
      sym: new Uint32Array(n),
      addend: new Float64Array(n),
    };
    if (rs) {
      const nsyms = this.symbols.length;
      let sorted = true;
      for (let i = 0; i < n; i++) {
        const o = rs.offset + i * 24;
        const sym = this.u32(o + 12);
        if (sym >= nsyms)
          throw new ElfError(`relocation ${i} in ${rs.name} names symbol ${sym}, outside the symbol table`);
        t.offset[i] = this.u64n(o);
        t.type[i] = this.u32(o + 8);
        t.sym[i] = sym;
        t.addend[i] = this.i64n(o + 16);
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
    }
    this.relocTables.set(target.index, t);
    return t;
  }

  /** Index of the first relocation at or after section offset `o` (binary search). */
  relocIndexFrom(t: RelocTable, o: number): number {
    let lo = 0;
    let hi = t.count;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (t.offset[mid]! < o) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** The relocation applying at exactly section offset `o`, or undefined. */
  relocAt(target: Section, o: number): Reloc | undefined {
    const t = this.relocTable(target);
    const i = this.relocIndexFrom(t, o);
    if (i >= t.count || t.offset[i] !== o) return undefined;
    return { offset: o, type: t.type[i]!, sym: t.sym[i]!, addend: t.addend[i]! };
  }

  /** RELA entries applying to a section, sorted by offset. */
  relocations(target: Section): Reloc[] {
    const cached = this.relocCache.get(target.index);
    if (cached) return cached;
    const t = this.relocTable(target);
    const out: Reloc[] = new Array(t.count);
    for (let i = 0; i < t.count; i++)
      out[i] = { offset: t.offset[i]!, type: t.type[i]!, sym: t.sym[i]!, addend: t.addend[i]! };
    this.relocCache.set(target.index, out);
    return out;
  }

  /** Relocations of a section keyed by field offset. */
  relocationsByOffset(target: Section): Map<number, Reloc> {
    const m = new Map<number, Reloc>();
    for (const r of this.relocations(target)) m.set(r.offset, r);
    return m;
  }

  /** S + A of a relocation: the relative address it refers to (NaN for undefined symbols). */
  relocTarget(r: Reloc): number {
    const s = this.symbols[r.sym];
    if (!s) return NaN;
    return s.addr + r.addend;
  }

  /** Name of a relocation's symbol (section name for section symbols). */
  relocSymbolName(r: Reloc): string {
    const s = this.symbols[r.sym];
    if (!s) return '?';
    if (s.type === STT_SECTION) return this.sections[s.shndx]?.name ?? '?';
    return s.name;
  }

  /** Contents of `.modinfo` as key=value strings. */
  modinfo(): string[] {
    const s = this.section('.modinfo');
    if (!s) return [];
    return latin1(this.bytes, s.offset, s.offset + s.size)
      .split('\0')
      .filter(Boolean);
  }
}

function fail(msg: string): never {
  throw new ElfError(msg);
}

export function isElfMagic(b: Uint8Array): boolean {
  return b.length >= 4 && b[0] === 0x7f && b[1] === 0x45 && b[2] === 0x4c && b[3] === 0x46;
}

/** Decodes bytes [start, end) as Latin-1 (symbol names are ASCII in practice). */
export function latin1(b: Uint8Array, start: number, end: number): string {
  if (end - start > 64) return latin1Decoder.decode(b.subarray(start, end));
  let s = '';
  for (let i = start; i < end; i++) s += String.fromCharCode(b[i]!);
  return s;
}
const latin1Decoder = new TextDecoder('latin1');
