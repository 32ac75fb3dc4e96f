/** Small ELF surgery helpers for bad-input tests. */
import { Image } from '../../src/elf/image.js';

/** Returns a copy with one section header's 64-bit field (at `field` inside the header) set. */
export function setSectionField(bytes: Uint8Array, name: string, field: number, value: bigint): Uint8Array {
  const img = Image.parse(bytes);
  const sec = img.section(name);
  if (!sec) throw new Error(`no section ${name}`);
  const out = Uint8Array.from(bytes);
  const dv = new DataView(out.buffer);
  const shoff = Number(dv.getBigUint64(40, true));
  dv.setBigUint64(shoff + sec.index * 64 + field, value, true);
  return out;
}

export const SH_SIZE = 32;

/** Returns a copy with the addend of relocation `i` in section `relaName` set. */
export function setAddend(bytes: Uint8Array, relaName: string, i: number, addend: bigint): Uint8Array {
  const img = Image.parse(bytes);
  const sec = img.section(relaName)!;
  const out = Uint8Array.from(bytes);
  new DataView(out.buffer).setBigInt64(sec.offset + i * 24 + 16, addend, true);
  return out;
}
