/**
 * Locating a patch table and reading its fields, the same way for relocatable objects (field value
 * from the RELA entry: S + A) and linked images (field value from the bytes: P + s32, or absolute u64).
 */
import { Image, Reloc, Section, STT_SECTION } from '../elf/image.js';
import type { TableSpec } from '../target/profile.js';
import type { Ref } from './site.js';

export class TableError extends Error {}

export class TableData {
  readonly count: number;
  /** File offset and relative address of entry 0. */
  private readonly fileOff: number;
  private readonly addr: number;
  private readonly relocSection?: Section;
  /** Offset of the table inside its section (relocation offsets are section-relative). */
  private readonly secOff: number;
  readonly problems: string[] = [];

  constructor(
    readonly img: Image,
    readonly spec: TableSpec,
    where: { section: Section; start: number; size: number },
  ) {
    this.secOff = where.start;
    this.fileOff = where.section.offset + where.start;
    this.addr = where.section.addr + where.start;
    if (where.size % spec.entry !== 0) {
      this.problems.push(
        `${spec.id}: size ${where.size} is not a multiple of the ${spec.entry}-byte entry (${where.size % spec.entry} trailing bytes ignored)`,
      );
    }
    this.count = Math.floor(where.size / spec.entry);
    if (img.kind === 'rel') this.relocSection = where.section;
  }

  /** Relative address of entry i's field. */
  fieldAddr(i: number, off: number): number {
    return this.addr + i * this.spec.entry + off;
  }

  u8(i: number, off: number): number {
    return this.img.u8(this.fileOff + i * this.spec.entry + off);
  }
  u16(i: number, off: number): number {
    return this.img.u16(this.fileOff + i * this.spec.entry + off);
  }
  u32(i: number, off: number): number {
    return this.img.u32(this.fileOff + i * this.spec.entry + off);
  }

  private reloc(i: number, off: number): Reloc | undefined {
    return this.relocSection
      ? this.img.relocs(this.relocSection).at(this.secOff + i * this.spec.entry + off)
      : undefined;
  }

  private refFromReloc(r: Reloc): Ref & { addend: number } {
    const sym = this.img.symbols[r.sym]!;
    const name = sym.type === STT_SECTION ? undefined : sym.name;
    return { addr: this.img.relocTarget(r), name, addend: r.addend };
  }

  /** A self-relative s32 (or s64 when `wide`) field: what it points at. Undefined in an ET_REL field with no relocation and a zero value. */
  rel(i: number, off: number, wide = false): (Ref & { addend?: number }) | undefined {
    if (this.relocSection) {
      const r = this.reloc(i, off);
      if (r) return this.refFromReloc(r);
    }
    const o = this.fileOff + i * this.spec.entry + off;
    const v = wide ? this.img.i64n(o) : this.img.i32(o);
    if (this.relocSection && v === 0) return undefined;
    return { addr: this.fieldAddr(i, off) + v };
  }

  /**
   * A self-relative key field whose low two bits carry flags (static call TAIL/INIT, jump label
   * branch/NOP): the key without the bits, its name, and the bits. In a relocatable object the bits ride
   * in the addend (the key symbol may be undefined).
   */
  flaggedKey(i: number, off: number, wide = false): { key: Ref; bits: number } | undefined {
    const k = this.rel(i, off, wide);
    if (!k) return undefined;
    const bits = (k.addend !== undefined ? k.addend : k.addr) & 3;
    const addr = k.addr - bits;
    return { key: { addr, name: k.name ?? (Number.isNaN(addr) ? undefined : this.img.symbolize(addr).name) }, bits };
  }

  /** In a linked image, whether the u64 at (i, off) is zero (a NULL entry); false in a relocatable object. */
  zero64(i: number, off: number): boolean {
    return !this.relocSection && this.img.u64big(this.fileOff + i * this.spec.entry + off) === 0n;
  }

  /** An absolute u64 address field. */
  abs64(i: number, off: number): (Ref & { addend?: number }) | undefined {
    if (this.relocSection) {
      const r = this.reloc(i, off);
      if (r) return this.refFromReloc(r);
      return undefined;
    }
    return { addr: this.img.rel(this.img.u64big(this.fileOff + i * this.spec.entry + off)) };
  }
}

/**
 * Finds a table: start/stop symbols in linked images (the tables inside .rodata and .init.data
 * have no section of their own), else the section of the same name.
 */
export function locateTable(img: Image, spec: TableSpec): TableData | undefined {
  if (img.kind !== 'rel') {
    for (let k = 0; k < spec.start.length; k++) {
      const a = img.symbol(spec.start[k]!);
      const b = img.symbol(spec.stop[k]!);
      if (!a || !b || Number.isNaN(a.addr) || Number.isNaN(b.addr)) continue;
      if (b.addr < a.addr) throw new TableError(`${spec.id}: end symbol ${spec.stop[k]} lies before ${spec.start[k]}`);
      if (b.addr === a.addr)
        return new TableData(img, spec, { section: img.sectionAt(a.addr) ?? img.sections[0]!, start: 0, size: 0 });
      const sec = img.sectionAt(a.addr);
      if (!sec || b.addr > sec.addr + sec.size)
        throw new TableError(`${spec.id}: ${spec.start[k]}..${spec.stop[k]} lies outside every section`);
      return new TableData(img, spec, { section: sec, start: a.addr - sec.addr, size: b.addr - a.addr });
    }
  }
  const sec = img.section(spec.id);
  if (!sec || sec.type === 8 /* NOBITS */) return undefined;
  return new TableData(img, spec, { section: sec, start: 0, size: sec.size });
}
