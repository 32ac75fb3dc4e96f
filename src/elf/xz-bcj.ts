/**
 * The kernel's xz payloads (`xz --check=crc32 --x86 --lzma2=...`) put the x86 BCJ filter in front of LZMA2.
 * The xz decoder textpoke uses (xz-decompress, xz-embedded built without BCJ) rejects that filter chain,
 * so this module re-wraps the stream: each block keeps its LZMA2 data under a header naming LZMA2 alone,
 * the stream declares no integrity check, and the index is rebuilt with the new block sizes. After the
 * decoder has run, the x86 BCJ filter is undone here (the algorithm of xz's `simple/x86.c`), and each
 * block's CRC32 check (the kernel's --check=crc32) is verified against the original stream; other check
 * types are not verified here.
 */

let crcTable: Uint32Array | undefined;
/** CRC32 (IEEE, as xz and gzip use). */
export function crc32(b: Uint8Array, start = 0, end = b.length): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = crcTable[(c ^ b[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export class XzFormatError extends Error {}

function vli(b: Uint8Array, pos: number): [number, number] {
  let v = 0;
  let mul = 1;
  for (let i = 0; i < 9; i++) {
    if (pos >= b.length) throw new XzFormatError('truncated xz number');
    const x = b[pos++]!;
    v += (x & 0x7f) * mul;
    mul *= 128;
    if (!(x & 0x80)) return [v, pos];
  }
  throw new XzFormatError('bad xz number');
}

function putVli(out: number[], v: number): void {
  while (v >= 0x80) {
    out.push((v % 128) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
}

function le32(b: Uint8Array, o: number): number {
  return (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
}
function putLe32(out: number[], v: number): void {
  out.push(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff);
}

const CHECK_SIZE = [0, 4, 4, 4, 8, 8, 8, 16, 16, 16, 32, 32, 32, 64, 64, 64];
const FILTER_X86 = 0x04;
const FILTER_LZMA2 = 0x21;

interface Block {
  /** The LZMA2 filter properties byte. */
  lzma2Props: number;
  /** BCJ x86 start offset (0 unless the filter had properties). */
  bcjStart: number | null;
  dataStart: number;
  dataSize: number;
  uncompressed: number;
  check: Uint8Array;
}

export interface Rewrapped {
  /** An xz stream the LZMA2-only decoder accepts. */
  stream: Uint8Array;
  blocks: Block[];
  checkType: number;
  /** True when some block had the BCJ x86 filter (undo with {@link unfilter}). */
  bcj: boolean;
}

/**
 * Parses one xz stream (trailing bytes after its footer are ignored, as the kernel's appended size is)
 * and re-wraps it without BCJ filters. Returns undefined when no block uses a filter other than LZMA2
 * (the stream can be decoded as it is).
 */
export function rewrapXz(b: Uint8Array): Rewrapped | undefined {
  if (b.length < 32) throw new XzFormatError('truncated xz stream');
  const checkType = b[7]! & 0x0f;
  const checkSize = CHECK_SIZE[checkType]!;
  if (crc32(b, 6, 8) !== le32(b, 8)) throw new XzFormatError('xz stream header CRC mismatch');
  // Blocks: read headers one after the other; their sizes come from the index, found from the footer.
  // The footer is the first "YZ" that ends a valid footer after the blocks; find it by walking the blocks.
  const blocks: Block[] = [];
  let pos = 12;
  const index: Array<[number, number]> = [];
  // Read the index first: scan for the footer from the end of a well-formed stream (skip the kernel's
  // 4-byte size and any padding after it).
  let footer = -1;
  for (let end = b.length; end >= 24 && end > b.length - 64; end--) {
    if (b[end - 2] === 0x59 && b[end - 1] === 0x5a && crc32(b, end - 8, end - 2) === le32(b, end - 12)) {
      footer = end - 12;
      break;
    }
  }
  if (footer < 0) throw new XzFormatError('xz stream footer not found (truncated?)');
  const backward = (le32(b, footer + 4) + 1) * 4;
  const indexStart = footer - backward;
  if (indexStart < 12 || b[indexStart] !== 0) throw new XzFormatError('bad xz index');
  if (crc32(b, indexStart, footer - 4) !== le32(b, footer - 4)) throw new XzFormatError('xz index CRC mismatch');
  let [records, ip] = vli(b, indexStart + 1);
  for (let r = 0; r < records; r++) {
    let unpadded: number;
    let uncompressed: number;
    [unpadded, ip] = vli(b, ip);
    [uncompressed, ip] = vli(b, ip);
    index.push([unpadded, uncompressed]);
  }
  let bcj = false;
  for (const [unpadded, uncompressed] of index) {
    const hsize = (b[pos]! + 1) * 4;
    if (b[pos] === 0 || pos + hsize > indexStart) throw new XzFormatError('bad xz block header');
    if (crc32(b, pos, pos + hsize - 4) !== le32(b, pos + hsize - 4))
      throw new XzFormatError('xz block header CRC mismatch');
    const flags = b[pos + 1]!;
    let p = pos + 2;
    if (flags & 0x40) [, p] = vli(b, p);
    if (flags & 0x80) [, p] = vli(b, p);
    const nf = (flags & 3) + 1;
    let lzma2Props = -1;
    let bcjStart: number | null = null;
    for (let f = 0; f < nf; f++) {
      let id: number;
      let psize: number;
      [id, p] = vli(b, p);
      [psize, p] = vli(b, p);
      if (id === FILTER_LZMA2 && psize === 1) lzma2Props = b[p]!;
      else if (id === FILTER_X86) {
        bcjStart = psize === 4 ? le32(b, p) : 0;
        bcj = true;
      } else throw new XzFormatError(`unsupported xz filter 0x${id.toString(16)}`);
      p += psize;
    }
    if (lzma2Props < 0) throw new XzFormatError('xz block without LZMA2');
    const dataStart = pos + hsize;
    const dataSize = unpadded - hsize - checkSize;
    const padded = Math.ceil((unpadded - checkSize) / 4) * 4 + checkSize;
    const checkAt = pos + Math.ceil((hsize + dataSize) / 4) * 4;
    blocks.push({
      lzma2Props,
      bcjStart,
      dataStart,
      dataSize,
      uncompressed,
      check: b.subarray(checkAt, checkAt + checkSize),
    });
    pos += padded;
  }
  if (pos !== indexStart) throw new XzFormatError('xz blocks and index disagree');
  if (!bcj) return undefined;
  // Build the new stream: check type none, one LZMA2 filter per block.
  const head: number[] = [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0x00, 0x00];
  putLe32(head, crc32(new Uint8Array([0, 0])));
  const parts: Uint8Array[] = [new Uint8Array(head)];
  const newIndex: number[] = [0];
  putVli(newIndex, blocks.length);
  for (const blk of blocks) {
    const h: number[] = [0, 0x00, FILTER_LZMA2, 1, blk.lzma2Props];
    while ((h.length + 4) % 4) h.push(0);
    h[0] = (h.length + 4) / 4 - 1;
    putLe32(h, crc32(new Uint8Array(h)));
    parts.push(new Uint8Array(h));
    parts.push(b.subarray(blk.dataStart, blk.dataStart + blk.dataSize));
    const pad = (4 - (blk.dataSize % 4)) % 4;
    if (pad) parts.push(new Uint8Array(pad));
    putVli(newIndex, h.length + blk.dataSize);
    putVli(newIndex, blk.uncompressed);
  }
  while (newIndex.length % 4) newIndex.push(0);
  putLe32(newIndex, crc32(new Uint8Array(newIndex)));
  parts.push(new Uint8Array(newIndex));
  const foot: number[] = [];
  const tail = [0, 0, 0, 0, 0, 0];
  const bs = newIndex.length / 4 - 1;
  tail[0] = bs & 0xff;
  tail[1] = (bs >>> 8) & 0xff;
  tail[2] = (bs >>> 16) & 0xff;
  tail[3] = (bs >>> 24) & 0xff;
  putLe32(foot, crc32(new Uint8Array(tail)));
  foot.push(...tail, 0x59, 0x5a);
  parts.push(new Uint8Array(foot));
  const total = parts.reduce((a, p) => a + p.length, 0);
  const stream = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    stream.set(p, o);
    o += p.length;
  }
  return { stream, blocks, checkType, bcj };
}

/** Undoes the x86 BCJ filter in place (decoder direction), as xz's simple/x86.c does for one buffer. */
export function bcjX86Decode(buf: Uint8Array, startOffset = 0): void {
  const MASK_TO_ALLOWED = [true, true, true, false, true, false, false, false];
  const MASK_TO_BIT = [0, 1, 2, 2, 3, 3, 3, 3];
  const test = (x: number): boolean => x === 0x00 || x === 0xff;
  if (buf.length <= 4) return;
  const size = buf.length - 4;
  let prevPos = -1;
  let prevMask = 0;
  for (let i = 0; i < size; i++) {
    if ((buf[i]! & 0xfe) !== 0xe8) continue;
    const d = i - prevPos;
    if (d > 3) prevMask = 0;
    else {
      prevMask = (prevMask << (d - 1)) & 7;
      if (prevMask !== 0) {
        const x = buf[i + 4 - MASK_TO_BIT[prevMask]!]!;
        if (!MASK_TO_ALLOWED[prevMask] || test(x)) {
          prevPos = i;
          prevMask = (prevMask << 1) | 1;
          continue;
        }
      }
    }
    prevPos = i;
    if (test(buf[i + 4]!)) {
      let src = (buf[i + 1]! | (buf[i + 2]! << 8) | (buf[i + 3]! << 16) | (buf[i + 4]! << 24)) >>> 0;
      let dest: number;
      for (;;) {
        dest = (src - ((startOffset + i + 5) >>> 0)) >>> 0;
        if (prevMask === 0) break;
        const j = MASK_TO_BIT[prevMask]! * 8;
        const x = (dest >>> (24 - j)) & 0xff;
        if (!test(x)) break;
        src = (dest ^ (2 ** (32 - j) - 1)) >>> 0;
      }
      dest &= 0x01ffffff;
      if (dest & 0x01000000) dest |= 0xfe000000;
      buf[i + 1] = dest & 0xff;
      buf[i + 2] = (dest >>> 8) & 0xff;
      buf[i + 3] = (dest >>> 16) & 0xff;
      buf[i + 4] = (dest >>> 24) & 0xff;
      i += 4;
    } else prevMask = (prevMask << 1) | 1;
  }
}

/** Undoes BCJ per block of the decoded output and verifies each block's CRC32 check. */
export function unfilter(out: Uint8Array, w: Rewrapped): void {
  let o = 0;
  for (const blk of w.blocks) {
    const part = out.subarray(o, o + blk.uncompressed);
    if (part.length !== blk.uncompressed) throw new XzFormatError('xz output shorter than its index says');
    if (blk.bcjStart !== null) bcjX86Decode(part, blk.bcjStart);
    if (w.checkType === 1 && crc32(part) !== le32(blk.check, 0)) throw new XzFormatError('xz block CRC32 mismatch');
    o += blk.uncompressed;
  }
}
