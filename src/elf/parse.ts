/**
 * ELF64 little-endian parsing: the file header and the section header table, checked against the file's
 * size, and the reads every other part of the reader builds on (little-endian integers at file offsets,
 * NUL-terminated strings in a string table). Nothing here assigns addresses (layout.ts does) or reads
 * symbols (symbols.ts) or relocations (reloc.ts).
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

/** A section header as in the file: its name still an offset in the name table, its address absolute. */
export type RawSection = Omit<Section, 'name' | 'addr'> & { nameOff: number; abs: bigint };

/** What the headers say: the file's type and machine, and its section headers. */
export interface ElfHeaders {
  readonly kind: ElfKind;
  readonly machine: number;
  readonly raw: RawSection[];
  /** The section name table's header. */
  readonly names: RawSection;
}

const TWO32 = 0x1_0000_0000;

/** Little-endian reads at file offsets (a DataView over the file's bytes; zero-copy). */
export class ElfReader {
  private readonly dv: DataView;
  constructor(readonly bytes: Uint8Array) {
    this.dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
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
  /** The NUL-terminated string at `off` in the string table at file offset `tabOff` ('' past its end). */
  cstr(tabOff: number, tabSize: number, off: number): string {
    if (off >= tabSize) return '';
    const start = tabOff + off;
    const limit = tabOff + tabSize;
    let end = start;
    const b = this.bytes;
    while (end < limit && b[end] !== 0) end++;
    return latin1(b, start, end);
  }
}

/** Reads and checks the ELF header and the section header table; throws {@link ElfError} on bad input. */
export function parseHeaders(r: ElfReader): ElfHeaders {
  const b = r.bytes;
  if (b.length < 64) throw new ElfError(b.length >= 4 && isElfMagic(b) ? 'truncated ELF header' : 'not an ELF file');
  if (!isElfMagic(b)) throw new ElfError('not an ELF file');
  if (b[4] !== 2) throw new ElfError('not a 64-bit ELF file (only ELF64 is supported)');
  if (b[5] !== 1) throw new ElfError('not a little-endian ELF file');
  const type = r.u16(16);
  const kind: ElfKind =
    type === 1 ? 'rel' : type === 2 ? 'exec' : type === 3 ? 'dyn' : fail(`unsupported ELF type ${type}`);
  const machine = r.u16(18);
  const shoff = r.u64n(40);
  const shentsize = r.u16(58);
  let shnum = r.u16(60);
  let shstrndx = r.u16(62);
  if (shoff === 0) throw new ElfError('no section header table');
  if (shentsize !== 64) throw new ElfError(`bad section header entry size ${shentsize}`);
  if (shoff + 64 > b.length) throw new ElfError('section header table outside the file (truncated?)');
  if (shnum === 0) shnum = r.u64n(shoff + 32);
  if (shstrndx === SHN_XINDEX) shstrndx = r.u32(shoff + 40);
  if (shnum > (b.length - shoff) / 64)
    throw new ElfError(`section header table (${shnum} entries) runs past the end of the file (truncated?)`);
  const raw: RawSection[] = [];
  for (let i = 0; i < shnum; i++) {
    const o = shoff + i * 64;
    const flags = r.u64n(o + 8);
    const stype = r.u32(o + 4);
    const size = r.u64n(o + 32);
    const offset = r.u64n(o + 24);
    if (stype !== SHT_NOBITS && stype !== 0 && (offset > b.length || size > b.length - offset)) {
      throw new ElfError(
        `section ${i} (offset 0x${offset.toString(16)}, size 0x${size.toString(16)}) lies outside the file (truncated or corrupt)`,
      );
    }
    raw.push({
      index: i,
      nameOff: r.u32(o),
      type: stype,
      flags,
      abs: r.u64big(o + 16),
      offset,
      size,
      link: r.u32(o + 40),
      info: r.u32(o + 44),
      addralign: r.u64n(o + 48),
      entsize: r.u64n(o + 56),
      alloc: (flags & SHF_ALLOC) !== 0,
      exec: (flags & SHF_EXECINSTR) !== 0,
    });
  }
  if (shstrndx >= raw.length) throw new ElfError(`section name table index ${shstrndx} out of range`);
  return { kind, machine, raw, names: raw[shstrndx]! };
}

/** The name of a raw section header. */
export function sectionName(r: ElfReader, h: ElfHeaders, s: RawSection): string {
  return r.cstr(h.names.offset, h.names.size, s.nameOff);
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
