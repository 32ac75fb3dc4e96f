/**
 * ELF64 little-endian reader: sections, symbols, RELA relocations, and one address space.
 *
 * This is the façade the other layers import: {@link Image} holds a parsed file and answers through the
 * modules that do the work: parse.ts (headers, constants, low-level reads), layout.ts (the base, section
 * addresses, address lookups), symbols.ts (symbol tables, symbolize) and reloc.ts (relocations:
 * {@link Image.relocs} is the one way to reach them; {@link Image.relocTarget} and
 * {@link Image.relocSymbolName} say what one refers to).
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
 * const relocs = img.relocs(img.section('.altinstructions')!); // relocs.at(0), relocs.count, ...
 * ```
 */
import { ElfError, ElfReader, SHT_NOBITS, latin1, parseHeaders } from './parse.js';
import type { ElfKind, Section } from './parse.js';
import { AddressMap, placeSections } from './layout.js';
import { SymbolTable } from './symbols.js';
import type { ExternalSymbol, Sym, Symbolized } from './symbols.js';
import { Relocations, relaSections, relocSymbolName, relocTarget } from './reloc.js';
import type { Reloc } from './reloc.js';

export * from './parse.js';
export type { Sym, Symbolized, ExternalSymbol } from './symbols.js';
export { Relocations } from './reloc.js';
export type { Reloc, RelocTable } from './reloc.js';

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
   * elf/thunks.ts), not the whole image: an address outside every symbol's extent is named by its section,
   * never as an offset from the nearest symbol before it.
   */
  partialSymbols?: boolean;
}

export class Image {
  readonly path: string;
  readonly bytes: Uint8Array;
  readonly kind: ElfKind;
  readonly machine: number;
  /** Real address that relative address 0 stands for. */
  readonly base: bigint;
  readonly sections: Section[];
  private readonly reader: ElfReader;
  private readonly map: AddressMap;
  private readonly byName = new Map<string, Section>();
  private readonly syms: SymbolTable;
  private relaIndex?: Map<number, Section>;
  private readonly relocCache = new Map<number, Relocations>();

  private constructor(path: string, bytes: Uint8Array, options: ParseOptions) {
    this.path = path;
    this.bytes = bytes;
    this.reader = new ElfReader(bytes);
    const headers = parseHeaders(this.reader);
    this.kind = headers.kind;
    this.machine = headers.machine;
    const { base, sections } = placeSections(this.reader, headers, headers.kind === 'rel' ? options.load : undefined);
    this.base = base;
    this.sections = sections;
    for (const s of sections) if (!this.byName.has(s.name)) this.byName.set(s.name, s);
    this.map = new AddressMap(sections, base);
    this.syms = new SymbolTable(this, options.symbols, options.partialSymbols === true);
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

  // ---- low-level reads (file offsets) ----
  u8(o: number): number {
    return this.reader.u8(o);
  }
  u16(o: number): number {
    return this.reader.u16(o);
  }
  u32(o: number): number {
    return this.reader.u32(o);
  }
  i32(o: number): number {
    return this.reader.i32(o);
  }
  /** u64 as a number (exact below 2^53). */
  u64n(o: number): number {
    return this.reader.u64n(o);
  }
  /** s64 as a number (exact within ±2^53). */
  i64n(o: number): number {
    return this.reader.i64n(o);
  }
  u64big(o: number): bigint {
    return this.reader.u64big(o);
  }
  /** The NUL-terminated string at `off` in the string table at file offset `tabOff`. */
  cstr(tabOff: number, tabSize: number, off: number): string {
    return this.reader.cstr(tabOff, tabSize, off);
  }

  // ---- sections and addresses (layout.ts) ----
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
    return this.map.allocSections();
  }

  /** The allocated section holding a relative address. */
  sectionAt(addr: number): Section | undefined {
    return this.map.sectionAt(addr);
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
    return this.map.hex(addr);
  }

  /** Relative address of an absolute one (NaN when not representable). */
  rel(abs: bigint): number {
    return this.map.rel(abs);
  }

  // ---- symbols (symbols.ts) ----
  get symbols(): Sym[] {
    return this.syms.all;
  }

  symbol(name: string): Sym | undefined {
    return this.syms.named(name);
  }

  /** The symbols name only a few places ({@link ParseOptions.partialSymbols}), or there are none. */
  get fewSymbols(): boolean {
    return this.syms.partial || this.symbols.length === 0;
  }

  /** True when the symbols came from outside the file ({@link ParseOptions.symbols}). */
  get externalSymbolsUsed(): boolean {
    return this.syms.external !== undefined;
  }

  /**
   * address -> symbol + offset: the closest symbol at or before the address in the same section
   * (a sized function containing it first). Falls back to section+offset.
   */
  symbolize(addr: number): Symbolized {
    return this.syms.symbolize(addr);
  }

  /** `symbol+0xoff` as objtool prints it. */
  where(addr: number): string {
    const s = this.symbolize(addr);
    return `${s.name}+0x${s.offset.toString(16)}`;
  }

  /** Function symbols (STT_FUNC, size > 0) in allocated executable sections, sorted by address. */
  functions(): Sym[] {
    return this.syms.functions();
  }

  // ---- relocations (reloc.ts) ----
  /** The relocations applying to a section (read once; empty when no SHT_RELA section applies to it). */
  relocs(target: Section): Relocations {
    let r = this.relocCache.get(target.index);
    if (!r) {
      this.relaIndex ??= relaSections(this.sections);
      r = new Relocations(this, this.relaIndex.get(target.index));
      this.relocCache.set(target.index, r);
    }
    return r;
  }

  /** S + A of a relocation: the relative address it refers to (NaN for undefined symbols). */
  relocTarget(r: Reloc): number {
    return relocTarget(this, r);
  }

  /** Name of a relocation's symbol (section name for section symbols). */
  relocSymbolName(r: Reloc): string {
    return relocSymbolName(this, r);
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
