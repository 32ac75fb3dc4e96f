/**
 * Decoded code of a patched view without decoding everything again: each section's records are copied
 * from the decoding as built, and only what changed is redone. Patchers rewrite a few sites (whole
 * instructions as built), so the instructions overlapping each write are decoded again through iced-x86
 * from the new bytes until decoding is back on a boundary as built; a module loader's relocations change
 * only displacement and immediate fields (never lengths or flow), so for those only the targets of
 * relocated direct branches are recomputed from the new rel32. test/cfg/patched-code.test.ts checks the
 * result equals a full decoding of the patched bytes on real modules and on xen-syms.
 */
import { decoder, newInstruction } from '../x86/insn.js';
import type { Decoder, Instruction } from '../x86/insn.js';
import type { Image, Section } from '../elf/image.js';
import { Disassembly, SectionCache, SectionCode } from '../x86/code.js';

/** What checks need of decoded code (Disassembly has this shape). */
export interface CodeSource {
  readonly img: Image;
  at(addr: number): SectionCode | undefined;
  of(sec: Section): SectionCode;
}

export interface Write {
  /** Relative address and length of bytes a patcher wrote. */
  readonly addr: number;
  readonly length: number;
}

export class PatchedCode extends SectionCache implements CodeSource {
  /** Writes per section index, sorted. */
  private readonly writes = new Map<number, [number, number][]>();
  private insn?: Instruction;

  constructor(
    img: Image,
    private readonly built: Disassembly,
    private readonly bytesOf: (s: Section) => Uint8Array,
    writes: readonly Write[],
    private readonly relocated: boolean,
  ) {
    super(img);
    for (const w of writes) {
      const sec = img.sectionAt(w.addr);
      if (!sec?.exec) continue;
      let l = this.writes.get(sec.index);
      if (!l) this.writes.set(sec.index, (l = []));
      l.push([w.addr - sec.addr, w.addr - sec.addr + Math.max(1, w.length)]);
    }
    for (const l of this.writes.values()) l.sort((a, b) => a[0] - b[0]);
  }

  /** The built decoding, with only what the writes and relocations changed decoded again. */
  protected decode(sec: Section): SectionCode {
    const b = this.built.of(sec);
    const writes = this.writes.get(sec.index) ?? [];
    const relocs = this.relocated && this.img.kind === 'rel' ? this.img.relocs(sec) : undefined;
    if (writes.length === 0 && (!relocs || relocs.count === 0)) return b;
    const bytes = this.bytesOf(sec);
    const sc = new SectionCode(sec, bytes, false, b.count + 16);
    const regions = b.regionOff.length;
    let region = 0;
    let dec: Decoder | undefined;
    // Records [from, to) of the built decoding, unchanged, in bulk (region starts shifted to the new indexes).
    const copyRecords = (from: number, to: number): void => {
      if (to <= from) return;
      while (sc.count + (to - from) > sc.off.length) sc.grow();
      for (; region < b.regionStart.length && b.regionStart[region]! < to; region++) {
        sc.regionStart.push(sc.count + b.regionStart[region]! - from);
        sc.regionOff.push(b.regionOff[region]!);
      }
      sc.off.set(b.off.subarray(from, to), sc.count);
      sc.len.set(b.len.subarray(from, to), sc.count);
      sc.flow.set(b.flow.subarray(from, to), sc.count);
      sc.code.set(b.code.subarray(from, to), sc.count);
      sc.target.set(b.target.subarray(from, to), sc.count);
      sc.count += to - from;
    };
    try {
      let k = 0;
      for (let w = 0; w < writes.length; ) {
        // The first built instruction overlapping write w.
        const ws = writes[w]![0];
        let first = Math.max(k, b.indexContaining(ws));
        while (first < b.count && b.off[first]! + b.len[first]! <= ws) first++;
        if (first >= b.count || b.off[first]! >= writes[w]![1]) {
          w++;
          continue;
        }
        copyRecords(k, first);
        k = first;
        // Decode again from this instruction until past the write and back on a boundary as built.
        const o = b.off[k]!;
        let stop = writes[w]![1];
        dec ??= decoder(bytes);
        let p = o;
        let kk = k;
        for (;;) {
          while (w < writes.length && writes[w]![0] < stop && writes[w]![1] > stop) stop = writes[w]![1];
          // At or past the next symbol: a full decoding restarts there (the outer loop goes on from it).
          if (p > o && region < regions && b.regionOff[region]! <= p) p = b.regionOff[region]!;
          while (kk < b.count && b.off[kk]! < p) kk++;
          if (p >= stop && (kk >= b.count || b.off[kk] === p)) break;
          if (p > o && region < regions && b.regionOff[region] === p) break;
          if (p >= bytes.length) break;
          if (region < regions && b.regionOff[region] === p) {
            sc.regionStart.push(sc.count);
            sc.regionOff.push(p);
            region++;
          }
          this.decodeInto(sc, dec, sec, p);
          p += sc.len[sc.count - 1]!;
        }
        while (region < regions && b.regionStart[region]! < kk) region++;
        k = kk;
        while (w < writes.length && writes[w]![1] <= (k < b.count ? b.off[k]! : Infinity)) w++;
      }
      copyRecords(k, b.count);
    } finally {
      dec?.free();
    }
    if (relocs) {
      // A loader relocation in the rel32 of a direct branch moves its target: recompute it from the new bytes.
      const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      let i = 0;
      for (let r = 0; r < relocs.count; r++) {
        const at = relocs.offset[r]!;
        while (i < sc.count && sc.off[i]! + sc.len[i]! <= at) i++;
        if (i >= sc.count) break;
        const end = sc.off[i]! + sc.len[i]!;
        if (end === at + 4 && sc.len[i]! >= 5 && !Number.isNaN(sc.target[i]!))
          sc.target[i] = sec.addr + end + dv.getInt32(at, true);
      }
    }
    return sc;
  }

  /** Decodes one instruction at section offset `o` of the new bytes into the next record (as decodeSection does). */
  private decodeInto(sc: SectionCode, dec: Decoder, sec: Section, o: number): void {
    const insn = (this.insn ??= newInstruction());
    dec.position = o;
    dec.ip = BigInt(sec.addr + o);
    dec.decodeOut(insn);
    sc.push(insn, o, insn.length || 1);
  }
}
