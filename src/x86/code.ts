/**
 * Decoding through iced-x86 into compact records: one set of typed arrays per executable section,
 * instruction by instruction, restarting at every symbol so a stray data byte cannot shift the
 * boundaries of the functions after it. Every later stage (sites, patch, cfg, checks) reuses these
 * records instead of decoding again. One reused iced `Instruction`, no allocation per instruction.
 */
import iced from './iced.cjs';
const { Code, FlowControl, Instruction, OpKind } = iced;
type Instruction = InstanceType<typeof iced.Instruction>;
import { Image, Section, STT_FILE, STT_SECTION } from '../elf/image.js';
import { decoder, type Decoder } from './insn.js';

export { FlowControl, Code };

/** Per iced Code: 0 unknown, else 1 + FlowControl, plus NEAR when it is a branch to a near target. */
const CODE_KIND = new Uint8Array(8192);
const NEAR = 64;

/** Instructions of one executable section. */
export class SectionCode {
  /** Offset of each instruction from the section start, ascending. */
  off: Uint32Array;
  len: Uint8Array;
  flow: Uint8Array;
  code: Uint16Array;
  /** Near branch/call target (relative address) or NaN. */
  target: Float64Array;
  count = 0;
  /** Instruction index at which each region (symbol) starts, and the region start offsets. */
  regionStart: number[] = [];
  regionOff: number[] = [];

  /**
   * `lengthsOnly`: records hold offset and length only (`flow`, `code`, `target` stay empty).
   * `capacity`: records to make room for (default: a third of the bytes; more are added as needed).
   */
  constructor(
    readonly section: Section,
    readonly bytes: Uint8Array,
    readonly lengthsOnly = false,
    capacity?: number,
  ) {
    const cap = Math.max(16, capacity ?? Math.ceil(bytes.length / 3));
    this.off = new Uint32Array(cap);
    this.len = new Uint8Array(cap);
    const full = lengthsOnly ? 0 : cap;
    this.flow = new Uint8Array(full);
    this.code = new Uint16Array(full);
    this.target = new Float64Array(full);
  }

  grow(): void {
    const cap = this.off.length * 2;
    const g = <T extends Uint32Array | Uint8Array | Uint16Array | Float64Array>(a: T, C: new (n: number) => T): T => {
      if (a.length === 0) return a;
      const b = new C(cap);
      b.set(a);
      return b;
    };
    this.off = g(this.off, Uint32Array);
    this.len = g(this.len, Uint8Array);
    this.flow = g(this.flow, Uint8Array);
    this.code = g(this.code, Uint16Array);
    this.target = g(this.target, Float64Array);
  }

  /** Appends the record of `insn`, just decoded at section offset `o` with length `n` (at least 1). */
  push(insn: Instruction, o: number, n: number): void {
    if (this.count === this.off.length) this.grow();
    const k = this.count++;
    this.off[k] = o;
    this.len[k] = n;
    const code = insn.code;
    this.code[k] = code;
    // Flow control, and whether a branch's operand is a near target, depend on the Code alone: ask iced once
    // per Code (every call into WebAssembly costs, and this runs for every instruction of every section).
    let kind = CODE_KIND[code]!;
    if (kind === 0) {
      const fc = insn.flowControl;
      const branch =
        fc === FlowControl.UnconditionalBranch ||
        fc === FlowControl.ConditionalBranch ||
        fc === FlowControl.Call ||
        fc === FlowControl.XbeginXabortXend;
      kind = CODE_KIND[code] = 1 + fc + (branch && insn.op0Kind === OpKind.NearBranch64 ? NEAR : 0);
    }
    this.flow[k] = (kind - 1) & (NEAR - 1);
    this.target[k] = kind & NEAR ? Number(insn.nearBranchTarget) : NaN;
  }

  /** Appends a record with only offset and length (a `lengthsOnly` record). */
  pushLength(o: number, n: number): void {
    if (this.count === this.off.length) this.grow();
    const k = this.count++;
    this.off[k] = o;
    this.len[k] = n;
  }

  /** Index of the instruction starting exactly at section offset `o`, or -1. */
  indexAt(o: number): number {
    const i = this.indexContaining(o);
    return i >= 0 && this.off[i] === o ? i : -1;
  }

  /** Index of the last instruction starting at or before offset `o`, or -1. */
  indexContaining(o: number): number {
    let lo = 0;
    let hi = this.count - 1;
    let best = -1;
    const off = this.off;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (off[mid]! <= o) {
        best = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return best;
  }

  /** Is offset `o` an instruction boundary (an instruction starts there, or a region/section ends there)? */
  isBoundary(o: number): boolean {
    if (o === this.bytes.length) return true;
    if (this.indexAt(o) >= 0) return true;
    const i = this.indexContaining(o - 1);
    return i >= 0 && this.off[i]! + this.len[i]! === o;
  }

  /** Instruction indexes covering [o, o+n): first index, or -1 when o is not a boundary. */
  range(o: number, n: number): { first: number; last: number; exact: boolean } | undefined {
    const first = this.indexAt(o);
    if (first < 0) return undefined;
    let last = first;
    while (last + 1 < this.count && this.off[last + 1]! < o + n) last++;
    const end = this.off[last]! + this.len[last]!;
    return { first, last, exact: end === o + n };
  }
}

/** Region start points in an executable section: every named symbol inside it, plus its start. */
function regionStarts(img: Image, sec: Section): number[] {
  const set = new Set<number>([0]);
  for (const s of img.symbols) {
    if (s.shndx !== sec.index || s.type === STT_SECTION || s.type === STT_FILE || Number.isNaN(s.addr)) continue;
    const o = s.addr - sec.addr;
    if (o >= 0 && o < sec.size) set.add(o);
  }
  return [...set].sort((a, b) => a - b);
}

let sharedInsn: Instruction | undefined;

/**
 * Decodes an executable section (bytes as given: the file's or a patched view's), region by region.
 * With `points` (section offsets whose boundaries will be asked about), only offsets and lengths are
 * recorded, and only where they can answer for those points: a region holding none is skipped, the others
 * are decoded from their start to just past their furthest point. Queries at other offsets of such a
 * decoding are not meaningful.
 */
export function decodeSection(img: Image, sec: Section, bytes: Uint8Array, points?: readonly number[]): SectionCode {
  const lengthsOnly = points !== undefined;
  const sc = new SectionCode(sec, bytes, lengthsOnly);
  if (bytes.length === 0) return sc;
  const starts = regionStarts(img, sec);
  const sorted = points ? Float64Array.from(points).sort() : undefined;
  let pi = 0;
  const insn = (sharedInsn ??= new Instruction());
  let dec: Decoder | undefined;
  try {
    for (let r = 0; r < starts.length; r++) {
      const from = starts[r]!;
      let to = r + 1 < starts.length ? starts[r + 1]! : bytes.length;
      sc.regionStart.push(sc.count);
      sc.regionOff.push(from);
      if (sorted) {
        // The furthest point inside [from, to): decode until the instruction holding it is recorded.
        while (pi < sorted.length && sorted[pi]! < from) pi++;
        let last = -1;
        while (pi < sorted.length && sorted[pi]! < to) last = sorted[pi++]!;
        if (last < 0) continue;
        to = last + 1;
      }
      // A region that starts inside the previous instruction is decoded from its own start anyway.
      dec ??= decoder(bytes);
      dec.position = from;
      dec.ip = BigInt(sec.addr + from);
      let o = from;
      while (o < to) {
        dec.decodeOut(insn);
        let n = insn.length;
        if (n === 0) {
          n = 1;
          dec.position = o + 1;
        }
        if (lengthsOnly) sc.pushLength(o, n);
        else sc.push(insn, o, n);
        o += n;
      }
    }
  } finally {
    dec?.free();
  }
  return sc;
}

/** Decoded executable sections of an image, each decoded once on first use. */
export abstract class SectionCache {
  private readonly cache = new Map<number, SectionCode>();

  constructor(readonly img: Image) {}

  /** Decoded code of the executable section holding `addr`, or undefined (not code). */
  at(addr: number): SectionCode | undefined {
    const sec = this.img.sectionAt(addr);
    if (!sec?.exec) return undefined;
    return this.of(sec);
  }

  of(sec: Section): SectionCode {
    let sc = this.cache.get(sec.index);
    if (!sc) {
      sc = this.decode(sec);
      this.cache.set(sec.index, sc);
    }
    return sc;
  }

  protected abstract decode(sec: Section): SectionCode;
}

/** Lazily decoded executable sections of one image (or of one patched view of it). */
export class Disassembly extends SectionCache {
  constructor(
    img: Image,
    private readonly bytesOf: (s: Section) => Uint8Array = (s) => img.sectionBytes(s),
  ) {
    super(img);
  }

  protected decode(sec: Section): SectionCode {
    return decodeSection(this.img, sec, this.bytesOf(sec));
  }
}

/**
 * Instruction boundaries at the starts and ends of given spans of an image's own bytes (offsets and lengths
 * only, see {@link decodeSection}): what placing patch sites needs, at a fraction of a full decoding.
 * Not for cfg/checks.
 */
export class Boundaries extends SectionCache {
  private readonly points = new Map<number, number[]>();

  /** `spans`: relative address and length of each span whose start, end and length will be asked about. */
  constructor(img: Image, spans: Iterable<{ addr: number; length: number }>) {
    super(img);
    for (const { addr, length } of spans) {
      const sec = Number.isNaN(addr) ? undefined : img.sectionAt(addr);
      if (!sec?.exec) continue;
      let list = this.points.get(sec.index);
      if (!list) this.points.set(sec.index, (list = []));
      const o = addr - sec.addr;
      list.push(o);
      if (length > 0) list.push(o + length - 1, o + length);
    }
  }

  protected decode(sec: Section): SectionCode {
    return decodeSection(this.img, sec, this.img.sectionBytes(sec), this.points.get(sec.index) ?? []);
  }
}
