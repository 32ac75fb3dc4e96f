import test from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Image } from '../../src/elf/image.js';
import { prepare } from '../../src/checks/run.js';
import { Disassembly } from '../../src/x86/code.js';
import { assemble } from '../support/build.js';
import { corpus } from '../support/corpus.js';

/** Incremental decoding of a patched view must equal decoding all of its bytes again. */
function same(path: string, cpu: string, profile?: string): number {
  const img = Image.parse(readFileSync(path), path);
  const { view } = prepare(img, { cpu, profile });
  assert.ok(view.patched);
  const full = new Disassembly(img, view.bytesOf);
  let n = 0;
  for (const sc of view.code()) {
    const f = full.of(sc.section);
    assert.equal(sc.count, f.count, `${path} ${sc.section.name}: count`);
    for (let i = 0; i < f.count; i++) {
      if (
        sc.off[i] !== f.off[i] ||
        sc.len[i] !== f.len[i] ||
        sc.flow[i] !== f.flow[i] ||
        sc.code[i] !== f.code[i] ||
        !Object.is(sc.target[i], f.target[i])
      ) {
        assert.fail(
          `${path} ${sc.section.name} #${i} at ${img.where(sc.section.addr + f.off[i]!)}: incremental ${sc.off[i]}/${sc.len[i]}/${sc.code[i]}/${sc.target[i]} vs full ${f.off[i]}/${f.len[i]}/${f.code[i]}/${f.target[i]}`,
        );
      }
    }
    assert.deepEqual(sc.regionOff, f.regionOff);
    assert.deepEqual(sc.regionStart, f.regionStart);
    n += f.count;
  }
  view.dispose();
  return n;
}

test('patched view decoding: incremental equals full on xen-syms and on real modules, for several CPUs', () => {
  assert.ok(same(corpus.xenSyms, 'intel-server') > 300_000);
  same(corpus.xenSyms, 'all');
  const dir = join(corpus.modules61, 'arch/x86/kvm');
  const mods = [
    ...readdirSync(dir).map((f) => join(dir, f)),
    corpus.module61('fs/xfs/xfs.ko'),
    corpus.module61('drivers/net/ethernet/intel/e1000e/e1000e.ko'),
  ];
  for (const m of mods) for (const cpu of ['intel-server', 'old', 'amd-server']) same(m, cpu);
});

test('patched view decoding: a patched instruction that runs over the next symbol, as a full decoding sees it', () => {
  // A 2-byte alternative at the end of f whose replacement (48 b8: movabs $imm64) swallows the first 8 bytes
  // of g: a full decoding restarts at g, and so must the incremental one (g keeps its region and records).
  const obj = assemble('overrun.S', {
    inline: `
  .text
  .globl f, g
  .type f, @function
f:
  nop
1: .byte 0x66, 0x90
  .size f, . - f
  .type g, @function
g:
  mov $1, %eax
  mov $2, %ecx
  ret
  .size g, . - g
  .section .altinstr_replacement, "ax"
2: .byte 0x48, 0xb8
  .section .altinstructions, "a"
  .long 1b - .
  .long 2b - .
  .word 117          /* X86_FEATURE_ALWAYS */
  .byte 2, 2
`,
  });
  assert.ok(same(obj, 'intel-server', 'linux-6.1') >= 5);
});
