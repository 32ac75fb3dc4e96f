/**
 * Decoded code of a patched view without decoding everything again: each section's records are copied
 * from the decoding as built, and only what changed is redone. Patchers rewrite a few sites (whole
 * instructions as built), so the instructions overlapping each write are decoded again through iced-x86
 * from the new bytes until decoding is back on a boundary as built; a module loader's relocations change
 * only displacement and immediate fields (never lengths or flow), so for those only the targets of
 * relocated direct branches are recomputed from the new rel32. test/cfg/patched-code.test.ts checks the
 * result equals a full decoding of the patched bytes on real modules and on xen-syms.
 */
import iced from '../x86/iced.cjs';
const { Decoder, DecoderOptions, Instruction } = iced;
type Decoder = InstanceType<typeof iced.Decoder>;
type Instruction = InstanceType<typeof iced.Instruction>;
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

  constructor(img: Image, private readonly built: Disassembly, private readonly bytesOf: (s: Section) => Uint8Array, writes: readonly Write[], private readonly relocated: boolean) {
    super(img);
    for (const w of writes) {
      const sec = img.sectionAt(w.addr);
      if (!sec || !sec.exec) continue;
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
    const relocs = this.relocated && this.img.kind === 'rel' ? this.img.relocTable(sec) : undefined;
    if (writes.length === 0 && (!relocs || relocs.count === 0)) return b;
    const relocAt = (o: number): boolean => {
      const i = this.img.relocIndexFrom(relocs!, o);
      return i < relocs!.count && relocs!.offset[i] === o;
    };
    const bytes = this.bytesOf(sec);
    const sc = new SectionCode(sec, bytes);
    while (sc.off.length < b.count + 16) sc.grow();
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const regionAt = new Set(b.regionOff);
    let w = 0;
    let region = 0;
    let dec: Decoder | undefined;
    try {
      for (let k = 0; k < b.count;) {
        const o = b.off[k]!;
        if (region < b.regionStart.length && b.regionStart[region] === k) {
          sc.regionStart.push(sc.count);
          sc.regionOff.push(b.regionOff[region]!);
          region++;
        }
        while (w < writes.length && writes[w]![1] <= o) w++;
        const end = o + b.len[k]!;
        if (w < writes.length && writes[w]![0] < end) {
          // Decode again from this instruction until past the write and back on a boundary as built.
          let stop = writes[w]![1];
          dec ??= new Decoder(64, bytes, DecoderOptions.None);
          let p = o;
          let kk = k;
          for (;;) {
            while (w < writes.length && writes[w]![0] < stop && writes[w]![1] > stop) stop = writes[w]![1];
            while (kk < b.count && b.off[kk]! < p) kk++;
            if (p >= stop && (kk >= b.count || b.off[kk] === p)) break;
            if (p > o && regionAt.has(p)) break;
            if (p >= bytes.length) break;
            this.decodeInto(sc, dec, sec, p);
            p += sc.len[sc.count - 1]!;
          }
          k = kk;
          continue;
        }
        if (sc.count === sc.off.length) sc.grow();
        const n = sc.count++;
        sc.off[n] = o;
        sc.len[n] = b.len[k]!;
        sc.flow[n] = b.flow[k]!;
        sc.code[n] = b.code[k]!;
        let t = b.target[k]!;
        if (relocs && !Number.isNaN(t) && b.len[k]! >= 5 && relocAt(end - 4)) t = sec.addr + end + dv.getInt32(end - 4, true);
        sc.target[n] = t;
        k++;
      }
    } finally {
      dec?.free();
    }
    return sc;
  }

  /** Decodes one instruction at section offset `o` of the new bytes into the next record (as decodeSection does). */
  private decodeInto(sc: SectionCode, dec: Decoder, sec: Section, o: number): void {
    const insn = (this.insn ??= new Instruction());
    dec.position = o;
    dec.ip = BigInt(sec.addr + o);
    dec.decodeOut(insn);
    sc.push(insn, o, insn.length || 1);
  }
}
