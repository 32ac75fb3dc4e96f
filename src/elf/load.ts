/**
 * Turns file bytes into an {@link Image}, unpacking the compressed modules distributions ship
 * (`.ko.xz`, `.ko.zst`, `.ko.gz`) by their magic numbers. Browser-safe: the decompressors are
 * pure JavaScript / WebAssembly (fflate for gzip, fzstd for zstd, xz-decompress for xz), picked
 * because each is small, maintained and runs unchanged in Node and in the playground. Each is loaded
 * only when a file needs it (most runs read plain ELF files).
 */
import { ElfError, Image, ParseOptions } from './image.js';

export type Compression = 'none' | 'xz' | 'zstd' | 'gzip';

export function compressionOf(b: Uint8Array): Compression {
  if (b.length >= 6 && b[0] === 0xfd && b[1] === 0x37 && b[2] === 0x7a && b[3] === 0x58 && b[4] === 0x5a && b[5] === 0x00) return 'xz';
  if (b.length >= 4 && b[0] === 0x28 && b[1] === 0xb5 && b[2] === 0x2f && b[3] === 0xfd) return 'zstd';
  if (b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b) return 'gzip';
  return 'none';
}

/** Decompresses if the bytes carry a known compression magic; otherwise returns them unchanged. */
export async function decompress(b: Uint8Array): Promise<Uint8Array> {
  const kind = compressionOf(b);
  try {
    switch (kind) {
      case 'none':
        return b;
      case 'gzip':
        return (await import('fflate')).gunzipSync(b);
      case 'zstd':
        return (await import('fzstd')).decompress(b);
      case 'xz': {
        const xz = (await import('xz-decompress')).default;
        const input = new ReadableStream<Uint8Array>({
          start(c) {
            c.enqueue(b);
            c.close();
          },
        });
        const out = new Response(new xz.XzReadableStream(input) as unknown as ReadableStream<Uint8Array>);
        return new Uint8Array(await out.arrayBuffer());
      }
    }
  } catch (e) {
    throw new ElfError(`corrupt ${kind} data: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** Decompresses (if needed) and parses. */
export async function imageFromBytes(b: Uint8Array, path: string, options: ParseOptions = {}): Promise<Image> {
  return Image.parse(await decompress(b), path, options);
}
