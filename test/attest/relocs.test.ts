/** The KASLR relocation table after the vmlinux ELF inside a bzImage payload (arch/x86/boot/compressed/misc.c). */
import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { applyKaslr, readKaslrRelocs } from '../../src/attest/relocs.js';
import { loadImage } from '../../src/elf/load.js';
import { corpus } from '../support/corpus.js';

for (const [name, path] of [
  ['6.1', () => corpus.vmlinuz61],
  ['6.12', () => corpus.vmlinuz612],
] as const) {
  test(`vmlinuz ${name}: the three relocation lists and their terminators fill the payload after the ELF file, and point at kernel addresses`, async () => {
    const { image: img } = await loadImage(readFileSync(path()), name);
    const dv = new DataView(img.bytes.buffer, img.bytes.byteOffset, img.bytes.byteLength);
    let end = Number(dv.getBigUint64(40, true)) + dv.getUint16(60, true) * 64;
    for (const s of img.sections) if (s.type !== 8) end = Math.max(end, s.offset + s.size);
    const r = readKaslrRelocs(img.bytes, end)!;
    assert.ok(r, 'table found');
    assert.equal((r.add32.length + r.sub32.length + r.add64.length + 3) * 4, img.bytes.length - end);
    // A 32-bit field to move holds a sign-extended kernel address (R_X86_64_32S); a 64-bit one a kernel address.
    let ok32 = 0;
    for (const a of r.add32) {
      const rel = img.rel(a);
      const v = BigInt.asUintN(64, BigInt(dv.getInt32(img.fileOffset(rel), true)));
      if (v >= 0xffffffff80000000n) ok32++;
    }
    assert.ok(ok32 / r.add32.length > 0.999, `${ok32} of ${r.add32.length}`);
    let ok64 = 0;
    for (const a of r.add64) {
      const rel = img.rel(a);
      const sec = img.sectionAt(rel);
      if (!sec || sec.type === 8) continue;
      if (dv.getBigUint64(img.fileOffset(rel), true) >= 0xffffffff80000000n) ok64++;
    }
    assert.ok(ok64 > r.add64.length * 0.9, `${ok64} of ${r.add64.length}`);
    // Moving .text by an offset and back restores it; moving it changes exactly the fields inside it.
    const text = img.section('.text')!;
    const b = new Uint8Array(img.sectionBytes(text));
    const base = img.base + BigInt(text.addr);
    const n = applyKaslr(b, base, r, 0x1e000000n);
    assert.ok(n > 1000, `${n} fields in .text`);
    let changed = 0;
    const orig = img.sectionBytes(text);
    for (let i = 0; i < b.length; i++) if (b[i] !== orig[i]) changed++;
    assert.ok(changed > 0 && changed <= n * 4);
    applyKaslr(b, base, r, -0x1e000000n);
    assert.ok(b.every((x, i) => x === orig[i]));
  });
}
