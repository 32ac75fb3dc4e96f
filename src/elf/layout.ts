/**
 * The image's one address space: which real address relative address 0 stands for (the base), each
 * section's relative address, and lookups from an address to its section.
 *
 * Addresses inside textpoke are plain numbers relative to the base (kernel addresses such as
 * 0xffffffff81000000 do not fit a double exactly, offsets from the image base do). Linked images keep their
 * link-time addresses; relocatable objects (`.o`, `.ko`) get addresses for their allocated sections, laid out
 * one after the other in header order (or as given in `load`), so relocated references resolve in one
 * address space.
 */
import { sectionName } from './parse.js';
import type { ElfHeaders, ElfReader, Section } from './parse.js';

const MAX_EXACT = Number.MAX_SAFE_INTEGER;

/** Relative address of an absolute one (NaN when not representable). */
export function relativeTo(base: bigint, abs: bigint): number {
  const d = abs - base;
  return d >= -BigInt(MAX_EXACT) && d <= BigInt(MAX_EXACT) ? Number(d) : NaN;
}

/**
 * The base and the sections with their relative addresses. Linked images: the lowest executable section's
 * address rounded down to 1 MiB. Relocatable objects: 0, or the lowest of the given load addresses rounded
 * down to 1 MiB, and a layout of the allocated sections ({@link layoutRelocatable}).
 */
export function placeSections(
  r: ElfReader,
  h: ElfHeaders,
  load?: ReadonlyMap<string, bigint>,
): { base: bigint; sections: Section[] } {
  const raw = h.raw;
  let base = 0n;
  if (h.kind === 'rel' && load?.size) {
    // Load addresses (e.g. 0xffffffffc0a00000) are kept relative to the lowest one, which stays exact.
    const given = raw
      .filter((s) => s.alloc && load.has(sectionName(r, h, s)))
      .map((s) => load.get(sectionName(r, h, s))!);
    if (given.length) base = given.reduce((a, c) => (c < a ? c : a)) & ~0xfffffn;
  } else if (h.kind !== 'rel') {
    const execs = raw.filter((s) => s.exec && s.alloc).map((s) => s.abs);
    const pool = execs.length ? execs : raw.filter((s) => s.alloc).map((s) => s.abs);
    if (pool.length) base = pool.reduce((a, c) => (c < a ? c : a));
    base &= ~0xfffffn;
  }
  const sections: Section[] = [];
  for (let i = 0; i < raw.length; i++) {
    const s = raw[i]!;
    const name = sectionName(r, h, s);
    const addr = h.kind === 'rel' ? NaN : relativeTo(base, s.abs);
    // A plain literal (not rest/spread): every Section gets the same fast object shape.
    const sec: Section = {
      index: s.index,
      name,
      type: s.type,
      flags: s.flags,
      addr,
      size: s.size,
      offset: s.offset,
      link: s.link,
      info: s.info,
      addralign: s.addralign,
      entsize: s.entsize,
      alloc: s.alloc,
      exec: s.exec,
    };
    sections.push(sec);
  }
  if (h.kind === 'rel') layoutRelocatable(sections, base, load);
  return { base, sections };
}

/**
 * Addresses for a relocatable object's allocated sections: the given load address, else packed from
 * 0x1000 in header order at each section's alignment (at most a page); with load addresses, the sections
 * not given one go after everything that was.
 */
export function layoutRelocatable(sections: Section[], base: bigint, load?: ReadonlyMap<string, bigint>): void {
  let cursor = 0x1000;
  for (const s of sections) {
    if (!s.alloc || (s.size === 0 && s.type === 0)) continue;
    const given = load?.get(s.name);
    if (given !== undefined) {
      s.addr = Number(given - base);
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
    for (const s of sections) if (s.alloc && load.has(s.name)) top = Math.max(top, s.addr + s.size);
    for (const s of sections) {
      if (!s.alloc || load.has(s.name)) continue;
      const align = Math.max(1, Math.min(s.addralign || 1, 4096));
      top = Math.ceil(top / align) * align;
      s.addr = top;
      top += Math.max(s.size, 1);
    }
  }
}

/** Address lookups over laid-out sections. */
export class AddressMap {
  /** The base as a number when every address above it up to 2^52 stays exact (relocatable files: 0). */
  private readonly smallBase: number;
  private allocSorted?: Section[];

  constructor(
    private readonly sections: readonly Section[],
    readonly base: bigint,
  ) {
    this.smallBase = base < 1n << 52n ? Number(base) : NaN;
  }

  /** Allocated sections with an address and a size, sorted by address. */
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
    return relativeTo(this.base, abs);
  }
}
