import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Image } from '../../src/elf/image.js';
import { readSites } from '../../src/sites/read.js';
import { detectTarget } from '../../src/target/detect.js';
import { Disassembly } from '../../src/x86/code.js';
import { assemble } from '../support/build.js';
import { corpus } from '../support/corpus.js';

/**
 * `readSites` decodes only the stretches of code its sites need (Boundaries); placing the sites on a full
 * decoding must give the same lengths and the same problems, site for site.
 */
function same(path: string, profile?: string): number {
  const img = Image.parse(readFileSync(path), path);
  const target = detectTarget(img, profile);
  assert.ok(target.profile, path);
  const partial = readSites(img, target.profile);
  const full = readSites(img, target.profile, { disassembly: new Disassembly(img) });
  assert.equal(partial.sites.length, full.sites.length);
  let problems = 0;
  for (let i = 0; i < full.sites.length; i++) {
    const a = partial.sites[i]!;
    const b = full.sites[i]!;
    assert.equal(a.length, b.length, `${path} ${b.table} #${b.index}: length`);
    assert.deepEqual(a.problems, b.problems, `${path} ${b.table} #${b.index}: problems`);
    if (b.problems) problems++;
  }
  return problems;
}

test('partial decoding places sites exactly as a full decoding does (real binaries)', () => {
  same(corpus.xenSyms);
  for (const m of ['fs/xfs/xfs.ko', 'arch/x86/kvm/kvm.ko', 'drivers/net/ethernet/intel/e1000e/e1000e.ko'])
    same(corpus.module61(m));
});

test('partial decoding reports the same off-boundary sites as a full decoding (assembled fixture)', () => {
  // Sites inside instructions, ending inside one, and at a function's first byte.
  const obj = assemble('partial.S', {
    inline: `
  .text
  .globl f, g
f:
  nop
1: movabsq $0x1122334455667788, %rax
2: ret
g:
  ret
  .section .return_sites, "a"
  .long 1b + 2 - .
  .long 2b - .
  .long g - .
  .section .retpoline_sites, "a"
  .long 1b + 9 - .
`,
  });
  assert.equal(same(obj, 'linux-6.1'), 2);
});
