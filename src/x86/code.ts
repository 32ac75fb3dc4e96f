/**
 * Decoding through iced-x86 into compact records: one set of typed arrays per executable section,
 * instruction by instruction, restarting at every symbol so a stray data byte cannot shift the
 * boundaries of the functions after it. Every later stage (sites, patch, cfg, checks) reuses these
 * records instead of decoding again. One reused iced `Instruction`, no allocation per instruction.
 */
import iced from './iced.cjs';
const { Code, Decoder, DecoderOptions, FlowControl, Instruction, OpKind } = iced;
type Decoder = InstanceType<typeof iced.Decoder>;
type Instruction = InstanceType<typeof iced.Instruction>;
import { Image, Section, STT_FILE, STT_SECTION } from '../elf/image.js';

export { FlowControl, Code };

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

  constructor(readonly section: Section, readonly bytes: Uint8Array) {
    const cap = Math.max(16, Math.ceil(bytes.length / 3));
    this.off = new Uint32Array(cap);
    this.len = new Uint8Array(cap);
    this.flow = new Uint8Array(cap);
    this.code = new Uint16Array(cap);
    this.target = new Float64Array(cap);
  }

  grow(): void {
    const cap = this.off.length * 2;
    const g = <T extends Uint32Array | Uint8Array | Uint16Array | Float64Array>(a: T, C: new (n: number) => T): T => {
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
    const fc = insn.flowControl;
    this.flow[k] = fc;
    this.code[k] = insn.code;
    if (fc === FlowControl.UnconditionalBranch || fc === FlowControl.ConditionalBranch || fc === FlowControl.Call || fc === FlowControl.XbeginXabortXend) {
      this.target[k] = insn.op0Kind === OpKind.NearBranch64 ? Number(insn.nearBranchTarget) : NaN;
    } else this.target[k] = NaN;
  }

  /** Appends a record with only offset and length (flow, code and target left empty). */
  pushLength(o: number, n: number): void {
    if (this.count === this.off.length) this.grow();
    const k = this.count++;
    this.off[k] = o;
    this.len[k] = n;
    this.target[k] = NaN;
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
      if (off[mid]! <= o) { best = mid; lo = mid + 1; } else hi = mid - 1;
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

/** Decodes a whole executable section (bytes as given: the file's or a patched view's). */
export function decodeSection(img: Image, sec: Section, bytes: Uint8Array, lengthsOnly = false): SectionCode {
  const sc = new SectionCode(sec, bytes);
  if (bytes.length === 0) return sc;
  const starts = regionStarts(img, sec);
  const insn = (sharedInsn ??= new Instruction());
  const dec = new Decoder(64, bytes, DecoderOptions.None);
  try {
    for (let r = 0; r < starts.length; r++) {
      const from = starts[r]!;
      const to = r + 1 < starts.length ? starts[r + 1]! : bytes.length;
      // A region that starts inside the previous instruction is decoded from its own start anyway.
      sc.regionStart.push(sc.count);
      sc.regionOff.push(from);
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
    dec.free();
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
    if (!sec || !sec.exec) return undefined;
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
  /**
   * `lengthsOnly`: record instruction boundaries only (what placing sites needs), skipping flow control,
   * code and branch targets: fewer WebAssembly calls per instruction. Such a decoding is not for cfg/checks.
   */
  constructor(img: Image, private readonly bytesOf: (s: Section) => Uint8Array = (s) => img.sectionBytes(s), private readonly lengthsOnly = false) {
    super(img);
  }

  protected decode(sec: Section): SectionCode {
    return decodeSection(this.img, sec, this.bytesOf(sec), this.lengthsOnly);
  }
}
