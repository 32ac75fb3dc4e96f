/**
 * x86 kernel images (bzImage, what distributions install as /boot/vmlinuz-*): the boot protocol header
 * (Documentation/arch/x86/boot.rst) says where the compressed payload lies (`payload_offset` and
 * `payload_length`, protocol 2.08 and later), the payload's magic number says how it is compressed, and
 * its last four bytes give the decompressed size (the kernel appends it for every format). Inside is
 * `vmlinux.bin`: the vmlinux ELF file stripped of its symbols (objcopy -S), then the relocation table
 * KASLR uses. The ELF file is returned in memory; nothing is written.
 *
 * @example
 * ```ts
 * const { info, elf } = await bzImagePayload(bytes); // info.compression === 'zstd'
 * const img = Image.parse(elf, 'vmlinuz-6.12.117+deb12-amd64');
 * ```
 */
import { ElfError, ExternalSymbol, Image, STB_GLOBAL, STT_OBJECT } from './image.js';
import { Compression, decompressAny, payloadCompressionOf } from './decompress.js';

export interface BzImageInfo {
  /** Boot protocol version, e.g. 0x20f. */
  protocol: number;
  /** The header's kernel_version string, e.g. '6.1.0-57-amd64 (debian-kernel@...) #1 SMP ... Debian 6.1.158-1 (...)'. */
  kernelVersion: string | null;
  compression: Compression;
  /** File offset and length of the compressed payload. */
  payloadOffset: number;
  payloadLength: number;
  /** The decompressed size the image records (vmlinux.bin plus relocations). */
  decompressedSize: number;
}

function u16(b: Uint8Array, o: number): number {
  return b[o]! | (b[o + 1]! << 8);
}
function u32(b: Uint8Array, o: number): number {
  return (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
}

/** A bzImage: the "HdrS" boot header signature at 0x202 and the 0xaa55 boot sector signature at 0x1fe. */
export function isBzImage(b: Uint8Array): boolean {
  return (
    b.length >= 0x250 &&
    b[0x202] === 0x48 &&
    b[0x203] === 0x64 &&
    b[0x204] === 0x72 &&
    b[0x205] === 0x53 &&
    b[0x1fe] === 0x55 &&
    b[0x1ff] === 0xaa
  );
}

/** Reads the header; throws ElfError naming what is wrong. */
export function bzImageInfo(b: Uint8Array): BzImageInfo {
  if (!isBzImage(b)) throw new ElfError('not a bzImage (no HdrS boot header)');
  const protocol = u16(b, 0x206);
  if (protocol < 0x208)
    throw new ElfError(
      `bzImage boot protocol ${(protocol >> 8).toString(16)}.${(protocol & 0xff).toString(16).padStart(2, '0')} predates payload_offset (2.08): extract it with the kernel's scripts/extract-vmlinux`,
    );
  const setupSects = b[0x1f1] || 4;
  const payloadOffset = (setupSects + 1) * 512 + u32(b, 0x248);
  const payloadLength = u32(b, 0x24c);
  if (payloadLength < 8 || payloadOffset + payloadLength > b.length) {
    throw new ElfError(
      `truncated bzImage: payload at 0x${payloadOffset.toString(16)} (+${payloadLength} bytes) runs past the end of the file (${b.length} bytes)`,
    );
  }
  const payload = b.subarray(payloadOffset, payloadOffset + payloadLength);
  const compression = payloadCompressionOf(payload);
  if (compression === 'none')
    throw new ElfError(`bzImage payload at 0x${payloadOffset.toString(16)} has no known compression magic (corrupt?)`);
  let kernelVersion: string | null = null;
  const kv = u16(b, 0x20e);
  if (kv) {
    const at = kv + 0x200;
    let end = at;
    while (end < b.length && end - at < 512 && b[end] !== 0) end++;
    if (end < b.length && b[end] === 0) kernelVersion = String.fromCharCode(...b.subarray(at, end));
  }
  return {
    protocol,
    kernelVersion,
    compression,
    payloadOffset,
    payloadLength,
    decompressedSize: u32(payload, payload.length - 4),
  };
}

/** Locates, decompresses and checks the payload: the vmlinux ELF bytes (with the relocation table after them). */
export async function bzImagePayload(b: Uint8Array): Promise<{ info: BzImageInfo; elf: Uint8Array }> {
  const info = bzImageInfo(b);
  const payload = b.subarray(info.payloadOffset, info.payloadOffset + info.payloadLength);
  // zstd and xz stop at their frame's end; the others are handed the payload without the appended size.
  const body =
    info.compression === 'zstd' || info.compression === 'lz4' ? payload.subarray(0, payload.length - 4) : payload;
  const elf = await decompressAny(body, info.compression, info.decompressedSize);
  if (elf.length !== info.decompressedSize) {
    throw new ElfError(
      `bzImage payload (${info.compression}) decompressed to ${elf.length} bytes, the image records ${info.decompressedSize} (corrupt?)`,
    );
  }
  if (!(elf[0] === 0x7f && elf[1] === 0x45 && elf[2] === 0x4c && elf[3] === 0x46))
    throw new ElfError(`bzImage payload (${info.compression}) is not an ELF file`);
  return { info, elf };
}

/**
 * The kernel's `linux_banner` ("Linux version 6.1.0-57-amd64 (...) ..."), found as a string in .rodata when
 * the image has no symbols: target detection reads the version from it.
 */
export function bannerAddress(img: Image): bigint | undefined {
  const ro = img.section('.rodata');
  if (!ro) return undefined;
  const b = img.sectionBytes(ro);
  const pat = [0x4c, 0x69, 0x6e, 0x75, 0x78, 0x20, 0x76, 0x65, 0x72, 0x73, 0x69, 0x6f, 0x6e, 0x20]; // "Linux version "
  outer: for (let i = b.indexOf(0x4c); i >= 0 && i + pat.length < b.length; i = b.indexOf(0x4c, i + 1)) {
    if (i > 0 && b[i - 1] !== 0) continue;
    for (let k = 1; k < pat.length; k++) if (b[i + k] !== pat[k]) continue outer;
    const d = b[i + pat.length]!;
    if (d >= 0x30 && d <= 0x39) return img.base + BigInt(ro.addr + i);
  }
  return undefined;
}

/** A stripped linked image's `linux_banner` symbol, at its banner string (when it has one). */
export function bannerSymbol(img: Image): ExternalSymbol | undefined {
  if (img.symbols.length > 0 || img.kind === 'rel') return undefined;
  const at = bannerAddress(img);
  return at === undefined ? undefined : { name: 'linux_banner', addr: at, type: STT_OBJECT, bind: STB_GLOBAL };
}
