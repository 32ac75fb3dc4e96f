/**
 * Turns file bytes into an {@link Image}: plain ELF files, the compressed modules distributions ship
 * (`.ko.xz`, `.ko.zst`, `.ko.gz`, by their magic numbers), and x86 kernel images (bzImage / vmlinuz),
 * whose compressed payload is located through the boot protocol header and unpacked to the vmlinux
 * ELF inside, in memory (see {@link ./bzimage.ts}). Browser-safe: every decompressor is pure JavaScript
 * or WebAssembly and is loaded only when a file needs it (most runs read plain ELF files).
 */
import { ElfError, Image, ParseOptions } from './image.js';
import { bannerSymbol, bzImagePayload, BzImageInfo, isBzImage } from './bzimage.js';
import { inferThunkSymbols } from './thunks.js';
import { decompressAny, compressionOf, Compression } from './decompress.js';
import { parseSymbolFile, symbolsForImage, SymbolFormat } from './symbol-file.js';

export { compressionOf, type Compression } from './decompress.js';

/** Decompresses if the bytes carry a known compression magic; otherwise returns them unchanged. */
export async function decompress(b: Uint8Array): Promise<Uint8Array> {
  const kind: Compression = compressionOf(b);
  if (kind === 'none') return b;
  return decompressAny(b, kind);
}

/** What the loader did to reach the ELF file (for notes and tests). */
export interface Loaded {
  image: Image;
  /** Set when the file was a bzImage: its header's facts and the payload's compression. */
  bzImage?: BzImageInfo;
  /** Where the symbols came from: the file itself, a symbol file, or nothing (a stripped image). */
  symbols: 'file' | SymbolFormat | 'none';
  /** The KASLR offset subtracted from the symbol file's addresses (given or found; 0 otherwise). */
  kaslrOffset: bigint;
  notes: string[];
}

export interface LoadOptions extends ParseOptions {
  /** A System.map, kallsyms dump or debug vmlinux for a linked image (ignored for relocatable objects). */
  symbolFile?: { bytes: Uint8Array; path: string };
  /** Subtracted from the symbol file's addresses (found from `_text` when not given). */
  kaslrOffset?: bigint;
}

/** Decompresses (if needed), unpacks a bzImage (if it is one), attaches outside symbols and parses. */
export async function loadImage(b: Uint8Array, path: string, options: LoadOptions = {}): Promise<Loaded> {
  const { symbolFile, kaslrOffset, ...parse } = options;
  let bzImage: BzImageInfo | undefined;
  let elf: Uint8Array;
  if (isBzImage(b)) {
    const p = await bzImagePayload(b);
    bzImage = p.info;
    elf = p.elf;
  } else elf = await decompress(b);
  let image = Image.parse(elf, path, parse);
  const notes: string[] = [];
  if (symbolFile && image.kind !== 'rel') {
    const file = parseSymbolFile(symbolFile.bytes, symbolFile.path);
    const { symbols, offset } = symbolsForImage(image, file, symbolFile.path, kaslrOffset, notes);
    image = Image.parse(elf, path, { ...parse, symbols });
    return { image, bzImage, symbols: file.format, kaslrOffset: offset, notes };
  }
  if (image.symbols.length > 0) return { image, bzImage, symbols: 'file', kaslrOffset: 0n, notes };
  if (image.kind !== 'rel') {
    notes.push(
      `${path}: no symbols (a stripped vmlinux): locations are section+offset; pass --symbols System.map, a kallsyms dump or the debug vmlinux for names and for the tables found by symbol (__jump_table, .static_call_sites, __mcount_loc)`,
    );
    // The few names the image's own evidence gives: the banner (the version) and the thunks the site tables branch to.
    const banner = bannerSymbol(image);
    const thunks = inferThunkSymbols(image);
    notes.push(...thunks.notes);
    const symbols = [...(banner ? [banner] : []), ...thunks.symbols];
    if (symbols.length > 0) image = Image.parse(elf, path, { ...parse, symbols, partialSymbols: true });
  }
  return { image, bzImage, symbols: 'none', kaslrOffset: 0n, notes };
}

/** Decompresses (if needed), unpacks a bzImage (if it is one) and parses. */
export async function imageFromBytes(b: Uint8Array, path: string, options: LoadOptions = {}): Promise<Image> {
  return (await loadImage(b, path, options)).image;
}

export { ElfError };
