/**
 * The decompressors, one per format, each loaded on first use. Chosen so that the library also runs in
 * the browser (pure JavaScript or WebAssembly, no native code) and each is a maintained, widely used
 * package: fflate (gzip), fzstd (zstd, small inputs) and zstddec (zstd when the output size is known:
 * WebAssembly, several times faster on a 60 MB kernel), xz-decompress (xz-embedded in WebAssembly; the
 * kernel's BCJ x86 filter is undone in ./xz-bcj.ts), lz4js (LZ4 blocks of the kernel's legacy LZ4 frame),
 * lzma1 (the .lzma "alone" format, an ES module port of LZMA-JS), bz2 (bzip2).
 */
import { ElfError } from './image.js';
import { rewrapXz, unfilter, XzFormatError } from './xz-bcj.js';

export type Compression = 'none' | 'xz' | 'zstd' | 'gzip' | 'lz4' | 'lzma' | 'bzip2' | 'lzo';

export function compressionOf(b: Uint8Array): Compression {
  if (
    b.length >= 6 &&
    b[0] === 0xfd &&
    b[1] === 0x37 &&
    b[2] === 0x7a &&
    b[3] === 0x58 &&
    b[4] === 0x5a &&
    b[5] === 0x00
  )
    return 'xz';
  if (b.length >= 4 && b[0] === 0x28 && b[1] === 0xb5 && b[2] === 0x2f && b[3] === 0xfd) return 'zstd';
  if (b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b) return 'gzip';
  return 'none';
}

/** Formats only kernel payloads use (their magic numbers are too short to sniff arbitrary files by). */
export function payloadCompressionOf(b: Uint8Array): Compression {
  const k = compressionOf(b);
  if (k !== 'none') return k;
  if (b.length >= 4 && b[0] === 0x02 && b[1] === 0x21 && b[2] === 0x4c && b[3] === 0x18) return 'lz4';
  if (b.length >= 3 && b[0] === 0x42 && b[1] === 0x5a && b[2] === 0x68) return 'bzip2';
  if (b.length >= 13 && b[0] === 0x5d && b[1] === 0x00 && b[2] === 0x00) return 'lzma';
  if (b.length >= 4 && b[0] === 0x89 && b[1] === 0x4c && b[2] === 0x5a && b[3] === 0x4f) return 'lzo';
  return 'none';
}

async function xz(b: Uint8Array): Promise<Uint8Array> {
  const w = rewrapXz(b);
  const mod = (await import('xz-decompress')).default;
  const input = new ReadableStream<Uint8Array>({
    start(c) {
      c.enqueue(w ? w.stream : b);
      c.close();
    },
  });
  const out = new Uint8Array(
    await new Response(new mod.XzReadableStream(input) as unknown as ReadableStream<Uint8Array>).arrayBuffer(),
  );
  if (w) unfilter(out, w);
  return out;
}

let zstdDecoder: Promise<{ decode(a: Uint8Array, size?: number): Uint8Array }> | undefined;
async function zstd(b: Uint8Array, size?: number): Promise<Uint8Array> {
  if (size !== undefined && size > 0) {
    zstdDecoder ??= (async () => {
      const { ZSTDDecoder } = await import('zstddec');
      const d = new ZSTDDecoder();
      await d.init();
      return d;
    })();
    const out = (await zstdDecoder).decode(b, size);
    if (out.length !== size) throw new Error(`zstd output is ${out.length} bytes, expected ${size}`);
    return out;
  }
  return (await import('fzstd')).decompress(b);
}

/** The kernel's LZ4 format: "legacy" frames (magic 0x184c2102, then blocks of a little-endian size and data). */
async function lz4Legacy(b: Uint8Array, size?: number): Promise<Uint8Array> {
  const lz4 = (await import('lz4js')) as unknown as {
    decompressBlock(src: Uint8Array, dst: Uint8Array, s: number, n: number, d: number): number;
  };
  const decompressBlock = lz4.decompressBlock ?? (lz4 as unknown as { default: typeof lz4 }).default.decompressBlock;
  const CHUNK = 8 << 20;
  let out = new Uint8Array(size ?? Math.max(CHUNK, b.length * 4));
  let s = 4;
  let d = 0;
  while (s + 4 <= b.length) {
    const n = (b[s]! | (b[s + 1]! << 8) | (b[s + 2]! << 16) | (b[s + 3]! << 24)) >>> 0;
    if (n === 0x184c2102) {
      s += 4;
      continue;
    } // concatenated frame
    if (size !== undefined && d >= size) break; // the kernel's appended size follows the last block
    if (s + 4 + n > b.length) throw new Error('truncated lz4 block');
    if (out.length < d + CHUNK) {
      const grown = new Uint8Array(Math.max(out.length * 2, d + CHUNK));
      grown.set(out.subarray(0, d));
      out = grown;
    }
    d = decompressBlock(b, out, s + 4, n, d);
    s += 4 + n;
  }
  return out.subarray(0, d);
}

async function lzma(b: Uint8Array): Promise<Uint8Array> {
  const { decompress } = (await import('lzma1' as string)) as { decompress(b: Uint8Array): Uint8Array };
  return decompress(b);
}

async function bzip2(b: Uint8Array): Promise<Uint8Array> {
  const m = (await import('bz2' as string)) as { decompress?: Bz2Fn; default?: { decompress: Bz2Fn } };
  const f = m.decompress ?? m.default?.decompress ?? (globalThis as { bz2?: { decompress: Bz2Fn } }).bz2?.decompress;
  if (!f) throw new Error('bzip2 decoder unavailable');
  return f(b, true);
}
type Bz2Fn = (b: Uint8Array, checkCRC?: boolean) => Uint8Array;

/**
 * Decompresses `b` as `kind`; `size` is the expected output size when the container records it (a
 * bzImage payload's last four bytes). Throws ElfError on corrupt data.
 */
export async function decompressAny(b: Uint8Array, kind: Compression, size?: number): Promise<Uint8Array> {
  try {
    switch (kind) {
      case 'none':
        return b;
      case 'gzip':
        return (await import('fflate')).gunzipSync(b);
      case 'zstd':
        return await zstd(b, size);
      case 'xz':
        return await xz(b);
      case 'lz4':
        return await lz4Legacy(b, size);
      case 'lzma':
        return await lzma(b);
      case 'bzip2':
        return await bzip2(b);
      case 'lzo':
        throw new ElfError(
          "LZO-compressed kernel images are not supported (no maintained pure JavaScript decoder); decompress it with the kernel's scripts/extract-vmlinux",
        );
    }
  } catch (e) {
    if (e instanceof ElfError) throw e;
    const why = e instanceof XzFormatError || e instanceof Error ? e.message : String(e);
    throw new ElfError(`corrupt ${kind} data: ${why}`);
  }
}
