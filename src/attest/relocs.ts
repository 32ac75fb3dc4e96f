/**
 * KASLR: the decompressor moves the kernel by a random offset and fixes the absolute addresses inside it
 * from the relocation table appended to vmlinux.bin (arch/x86/boot/compressed/misc.c, handle_relocations):
 * read backwards from the end of the decompressed payload, a zero-terminated list of 32-bit fields to add the
 * offset to, then (x86-64) one of 32-bit fields to subtract it from, then one of 64-bit fields to add it to;
 * each entry is the field's link-time address, truncated to 32 bits and sign-extended.
 */

export interface KaslrRelocs {
  add32: bigint[];
  sub32: bigint[];
  add64: bigint[];
}

const sext = (v: number): bigint => BigInt.asUintN(64, BigInt(v | 0));

/** Reads the table at the end of `payload` (the whole decompressed vmlinux.bin + relocs); undefined when there is none. */
export function readKaslrRelocs(payload: Uint8Array, elfEnd: number): KaslrRelocs | undefined {
  if (payload.length - elfEnd < 12) return undefined;
  const dv = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  let p = payload.length - 4;
  const list = (): bigint[] | undefined => {
    const out: bigint[] = [];
    for (;;) {
      if (p < elfEnd) return undefined;
      const v = dv.getUint32(p, true);
      p -= 4;
      if (v === 0) return out;
      out.push(sext(v));
    }
  };
  const add32 = list();
  const sub32 = add32 && list();
  const add64 = sub32 && list();
  if (!add32 || !sub32 || !add64) return undefined;
  return { add32, sub32, add64 };
}

/** Applies the offset to the fields inside [base, base + bytes.length) (a section's predicted bytes at link address `base`). */
export function applyKaslr(bytes: Uint8Array, base: bigint, r: KaslrRelocs, delta: bigint): number {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const end = base + BigInt(bytes.length);
  let n = 0;
  const at = (a: bigint, w: number): number => (a >= base && a + BigInt(w) <= end ? Number(a - base) : -1);
  const d32 = Number(BigInt.asUintN(32, delta));
  for (const a of r.add32) {
    const o = at(a, 4);
    if (o >= 0) {
      dv.setUint32(o, (dv.getUint32(o, true) + d32) >>> 0, true);
      n++;
    }
  }
  for (const a of r.sub32) {
    const o = at(a, 4);
    if (o >= 0) {
      dv.setUint32(o, (dv.getUint32(o, true) - d32) >>> 0, true);
      n++;
    }
  }
  for (const a of r.add64) {
    const o = at(a, 8);
    if (o >= 0) {
      dv.setBigUint64(o, BigInt.asUintN(64, dv.getBigUint64(o, true) + delta), true);
      n++;
    }
  }
  return n;
}
