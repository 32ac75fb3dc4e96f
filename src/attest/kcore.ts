/**
 * /proc/kcore: an ELF core file whose PT_LOAD program headers map kernel virtual addresses to file offsets.
 * The file is as large as the address space (sparse): it is read through a `readAt` callback, a few bytes at
 * a time, never whole. Also used to write the small kcore files tests build (see {@link buildKcore}).
 */

export interface KcoreSegment {
  vaddr: bigint;
  offset: number;
  size: number;
}

export class KcoreError extends Error {}

export type ReadAt = (offset: number, length: number) => Uint8Array;

/** A parsed kcore: read(abs, len) answers from the segment holding [abs, abs+len), undefined outside them. */
export class Kcore {
  private constructor(
    readonly segments: KcoreSegment[],
    private readonly readAt: ReadAt,
  ) {}

  static open(readAt: ReadAt): Kcore {
    const h = readAt(0, 64);
    if (h.length < 64 || h[0] !== 0x7f || h[1] !== 0x45 || h[2] !== 0x4c || h[3] !== 0x46)
      throw new KcoreError('not an ELF core file');
    if (h[4] !== 2 || h[5] !== 1) throw new KcoreError('not a 64-bit little-endian ELF core file');
    const dv = new DataView(h.buffer, h.byteOffset, h.byteLength);
    if (dv.getUint16(16, true) !== 4) throw new KcoreError('not an ELF core file (e_type is not ET_CORE)');
    const phoff = Number(dv.getBigUint64(32, true));
    const phentsize = dv.getUint16(54, true);
    const phnum = dv.getUint16(56, true);
    if (phentsize !== 56 || phnum === 0) throw new KcoreError('no program headers');
    const ph = readAt(phoff, phnum * 56);
    if (ph.length < phnum * 56) throw new KcoreError('program headers run past the end of the file (truncated?)');
    const pv = new DataView(ph.buffer, ph.byteOffset, ph.byteLength);
    const segments: KcoreSegment[] = [];
    for (let i = 0; i < phnum; i++) {
      const o = i * 56;
      if (pv.getUint32(o, true) !== 1) continue; // PT_LOAD
      segments.push({
        offset: Number(pv.getBigUint64(o + 8, true)),
        vaddr: pv.getBigUint64(o + 16, true),
        size: Number(pv.getBigUint64(o + 32, true)),
      });
    }
    segments.sort((a, b) => (a.vaddr < b.vaddr ? -1 : a.vaddr > b.vaddr ? 1 : 0));
    return new Kcore(segments, readAt);
  }

  read(abs: bigint, len: number): Uint8Array | undefined {
    for (const s of this.segments) {
      if (abs >= s.vaddr && abs + BigInt(len) <= s.vaddr + BigInt(s.size)) {
        const b = this.readAt(s.offset + Number(abs - s.vaddr), len);
        return b.length === len ? b : undefined;
      }
    }
    return undefined;
  }
}

/** A minimal ELF core file with one PT_LOAD per chunk (tests and offline fixtures). */
export function buildKcore(chunks: ReadonlyArray<{ vaddr: bigint; bytes: Uint8Array }>): Uint8Array {
  const phoff = 64;
  let data = phoff + chunks.length * 56;
  data = (data + 4095) & ~4095;
  const offs: number[] = [];
  let total = data;
  for (const c of chunks) {
    offs.push(total);
    total += (c.bytes.length + 4095) & ~4095;
  }
  const out = new Uint8Array(total);
  const dv = new DataView(out.buffer);
  out.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
  dv.setUint16(16, 4, true); // ET_CORE
  dv.setUint16(18, 62, true); // EM_X86_64
  dv.setUint32(20, 1, true);
  dv.setBigUint64(32, BigInt(phoff), true);
  dv.setUint16(52, 64, true);
  dv.setUint16(54, 56, true);
  dv.setUint16(56, chunks.length, true);
  chunks.forEach((c, i) => {
    const o = phoff + i * 56;
    dv.setUint32(o, 1, true);
    dv.setUint32(o + 4, 7, true);
    dv.setBigUint64(o + 8, BigInt(offs[i]!), true);
    dv.setBigUint64(o + 16, c.vaddr, true);
    dv.setBigUint64(o + 32, BigInt(c.bytes.length), true);
    dv.setBigUint64(o + 40, BigInt(c.bytes.length), true);
    out.set(c.bytes, offs[i]!);
  });
  return out;
}
