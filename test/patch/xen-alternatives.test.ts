/**
 * Pins each Xen 4.17 _apply_alternatives rule on hand-written entries (test/fixtures/patch/xen-alt.S):
 * pad_len NOPs (P6 vs K8, toolchain NOPs already ideal, pad_len <= 1), altcall conversion (ENDBR64 skipped,
 * jmp form, NULL pointer in both modes), rel32 fix-up of replacements of 5 bytes or more, and `base`/`priv`.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Image } from '../../src/elf/image.js';
import { applyPatches, parseCpu, PatchedView, XEN_K8_NOPS } from '../../src/patch/index.js';
import { featureNumber, featureTable } from '../../src/target/features/index.js';
import { profileById } from '../../src/target/profile.js';
import { assemble } from '../support/build.js';

const table = featureTable('xen-4.17.7');
const img = Image.parse(readFileSync(assemble('patch/xen-alt.S')), 'xen-alt.o');
const profile = profileById('xen-4.17')!;

function run(spec: string, altcallNull: 'keep' | 'ud' = 'keep'): PatchedView {
  return applyPatches(img, profile, parseCpu(spec, table), { xen: { altcallNull } }).view;
}
const addrOf = (sym: string): number => img.symbol(sym)!.addr;
function at(view: PatchedView, sym: string, n: number): number[] {
  return [...view.read(addrOf(sym), n)!];
}
function rel32(b: number[], o: number): number {
  return b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24) | 0;
}

test('fixture feature numbers match the Xen 4.17.7 table', () => {
  assert.equal(featureNumber(table, 'ALWAYS'), 93);
  assert.equal(featureNumber(table, 'BMI1'), 163);
  assert.equal(featureNumber(table, 'XEN_SMAP'), 619);
  assert.equal(featureNumber(table, 'SC_NO_BRANCH_HARDEN'), 623);
});

test('branch hardening off (SC_NO_BRANCH_HARDEN): the lfence becomes a 3-byte NOP; on: untouched', () => {
  assert.deepEqual(at(run('none,branch-harden=off'), 'x_fence', 3), [0x0f, 0x1f, 0x00]);
  assert.deepEqual(at(run('none,+SC_NO_BRANCH_HARDEN,nops=k8'), 'x_fence', 3), [0x66, 0x66, 0x90]);
  assert.deepEqual(at(run('none'), 'x_fence', 3), [0x0f, 0xae, 0xe8]);
});

test('pad_len: P6 NOPs equal to the toolchain .nops are left; K8 NOPs rewrite the padding', () => {
  const p6 = run('none');
  assert.deepEqual(at(p6, 'x_pad', 9), [0x0f, 0xae, 0xe8, 0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00]);
  const k8 = run('none,nops=k8');
  assert.deepEqual(at(k8, 'x_pad', 9), [0x0f, 0xae, 0xe8, ...XEN_K8_NOPS.nops[6]!]);
  assert.deepEqual(XEN_K8_NOPS.nops[6], [0x66, 0x66, 0x90, 0x66, 0x66, 0x90]);
});

test('pad_len <= 1 is never rewritten', () => {
  assert.deepEqual(at(run('none,nops=k8'), 'x_pad1', 4), [0x0f, 0xae, 0xe8, 0x90]);
});

test('present feature: replacement copied, then NOPs to orig_len + pad_len', () => {
  assert.deepEqual(at(run('none,+BMI1'), 'x_pad', 9), [0xc4, 0xe2, 0x78, 0xf2, 0xc1, 0x90, 0x90, 0x90, 0x90]);
});

test('altcall: call *ptr(%rip) becomes a direct call past the ENDBR64', () => {
  const b = at(run('none'), 'x_altcall', 7);
  assert.equal(b[0], 0xe8);
  assert.equal(addrOf('x_altcall') + 5 + rel32(b, 1), addrOf('func_endbr') + 4);
  assert.deepEqual(b.slice(5), [0x66, 0x90]); // orig_len 6 + pad_len 1 - repl_len 5 = P6 NOP2
});

test('altcall: jmp *ptr(%rip) becomes a direct jmp (no ENDBR64 to skip)', () => {
  const b = at(run('none'), 'x_altjmp', 6);
  assert.equal(b[0], 0xe9);
  assert.equal(addrOf('x_altjmp') + 5 + rel32(b, 1), addrOf('func_plain'));
});

test('altcall through a NULL pointer: left indirect by default, ud2; ud0 in the second pass with ud', () => {
  const keep = run('none');
  assert.deepEqual(at(keep, 'x_altnull', 2), [0xff, 0x15]);
  assert.equal(keep.patches.filter((p) => p.addr === addrOf('x_altnull')).length, 0);
  assert.ok(keep.findings.some((f) => f.addr === addrOf('x_altnull') && f.kind === 'model'));
  assert.deepEqual(at(run('none', 'ud'), 'x_altnull', 7), [0x0f, 0x0b, 0x0f, 0xff, 0xff, 0x66, 0x90]);
});

test('a replacement of 6 bytes starting with call is fixed up (Xen: repl_len >= 5)', () => {
  const b = at(run('none,+XEN_SMAP'), 'x_rel', 6);
  assert.equal(b[0], 0xe8);
  assert.equal(addrOf('x_rel') + 5 + rel32(b, 1), addrOf('func_plain'));
});

test('base/priv: of two absent entries on one origin only the first rewrites the padding', () => {
  const v = run('none,nops=k8');
  assert.deepEqual(at(v, 'x_base', 7), [0x0f, 0xae, 0xe8, ...XEN_K8_NOPS.nops[4]!]);
  assert.equal(v.patches.filter((p) => p.addr === addrOf('x_base') + 3).length, 1);
});

test('cpuid out of range and repl_len > orig_len + pad_len: bug findings, sites untouched, no crash', () => {
  const v = run('all');
  const bugs = v.findings.filter((f) => f.kind === 'bug');
  assert.deepEqual(
    bugs.map((f) => f.addr).sort((a, b) => a - b),
    [addrOf('x_badfeat'), addrOf('x_toolong')],
  );
  assert.match(bugs.find((f) => f.addr === addrOf('x_badfeat'))!.message, /cpuid 700 >= NCAPINTS \* 32 \(672\)/);
  assert.deepEqual(at(v, 'x_badfeat', 4), [0x0f, 0xae, 0xe8, 0xc3]);
  assert.deepEqual(at(v, 'x_toolong', 4), [0x0f, 0xae, 0xe8, 0xc3]);
});
