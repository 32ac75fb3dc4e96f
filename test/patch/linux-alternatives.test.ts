/**
 * Pins each Linux 6.1 apply_alternatives rule on hand-written entries (test/fixtures/patch/linux-alt.S):
 * every assertion here fails if the rule were implemented differently.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Image } from '../../src/elf/image.js';
import { applyPatches, parseCpu, optimizeNops, PatchedView } from '../../src/patch/index.js';
import { featureNumber, featureTable } from '../../src/target/features/index.js';
import { profileById } from '../../src/target/profile.js';
import { assemble } from '../support/build.js';

const table = featureTable('linux-6.1.85');
const img = Image.parse(readFileSync(assemble('patch/linux-alt.S')), 'linux-alt.o');
const profile = profileById('linux-6.1')!;

function run(spec: string): PatchedView {
  return applyPatches(img, profile, parseCpu(spec, table)).view;
}
function at(view: PatchedView, sym: string, n: number): number[] {
  const s = img.symbol(sym)!;
  return [...view.read(s.addr, n)!];
}
function rel32(b: number[], o: number): number {
  return b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24) | 0;
}
const addrOf = (sym: string): number => img.symbol(sym)!.addr;

test('fixture feature numbers match the 6.1 table', () => {
  assert.equal(featureNumber(table, 'POPCNT'), 151);
  assert.equal(featureNumber(table, 'SMAP'), 308);
});

test('a 5-byte call replacement is re-aimed at its target from the site', () => {
  const v = run('none,+POPCNT');
  const b = at(v, 't_call5', 5);
  assert.equal(b[0], 0xe8);
  assert.equal(addrOf('t_call5') + 5 + rel32(b, 1), addrOf('target_fn'));
});

test('a call inside a longer replacement is NOT fixed up (displacement copied verbatim)', () => {
  const v = run('none,+POPCNT');
  const b = at(v, 't_call6', 6);
  const repl = img.symbol('r_call6')!.addr;
  assert.equal(b[0], 0xe8);
  // The copied displacement still counts from the replacement's location.
  assert.equal(repl + 5 + rel32(b, 1), addrOf('target_fn'));
  assert.notEqual(addrOf('t_call6') + 5 + rel32(b, 1), addrOf('target_fn'));
  assert.equal(b[5], 0x90);
});

test('recompute_jump: a near forward jmp becomes jmp rel8 + 3-byte NOP', () => {
  const v = run('none,+POPCNT');
  assert.deepEqual(at(v, 't_jmpfwd', 5), [0xeb, 0x05, 0x0f, 0x1f, 0x00]);
});

test('recompute_jump: a backward target keeps the 5-byte jmp, re-aimed from the site', () => {
  const v = run('none,+POPCNT');
  const b = at(v, 't_jmpback', 5);
  assert.equal(b[0], 0xe9);
  assert.equal(addrOf('t_jmpback') + 5 + rel32(b, 1), addrOf('target_fn'));
});

test('optimize_nops runs on entries that are not patched', () => {
  const v = run('none');
  assert.deepEqual(at(v, 't_unpatched', 5), [0x0f, 0x1f, 0x44, 0x00, 0x00]);
  assert.ok(v.patches.some((p) => p.addr === addrOf('t_unpatched') && p.note === 'optimize_nops'));
});

test('inverted features patch when the feature is absent, not when present', () => {
  assert.deepEqual(at(run('none'), 't_inverted', 4), [0xf3, 0x90, 0x66, 0x90]);
  assert.deepEqual(at(run('none,+POPCNT'), 't_inverted', 4), [0x0f, 0x1f, 0x40, 0x00]);
});

test('table order: the later entry for the same site wins', () => {
  assert.deepEqual(at(run('none,+POPCNT,+SMAP'), 't_order', 4), [0x0f, 0x01, 0xca, 0x90]);
  assert.deepEqual(at(run('none,+POPCNT'), 't_order', 4), [0x0f, 0x01, 0xcb, 0x90]);
});

test('0x90 padding is turned into long NOPs by optimize_nops', () => {
  assert.deepEqual(at(run('none,+POPCNT'), 't_pad', 6), [0xf3, 0x90, 0x0f, 0x1f, 0x40, 0x00]);
});

test('feature number out of range: a bug finding, the site untouched', () => {
  const v = run('all');
  assert.ok(v.findings.some((f) => f.kind === 'bug' && f.addr === addrOf('t_badfeat') && /BUG/.test(f.message)));
  assert.deepEqual(at(v, 't_badfeat', 4), [0x0f, 0x1f, 0x40, 0x00]);
});

test('replacement longer than its site: a bug finding, the following code untouched', () => {
  const v = run('none,+POPCNT');
  assert.ok(v.findings.some((f) => f.kind === 'bug' && f.addr === addrOf('t_toolong')));
  assert.deepEqual(at(v, 't_toolong', 3), [0x66, 0x90, 0xc3]);
});

test('the image is never written', () => {
  const before = Buffer.from(img.bytes);
  run('all');
  run('none,+POPCNT,+SMAP');
  assert.ok(before.equals(Buffer.from(img.bytes)));
});

test('optimizeNops: runs of 0x90 after a real instruction, single 0x90 kept', () => {
  const b = Uint8Array.of(0x48, 0x89, 0xc7, 0x90, 0x90, 0x90, 0xc3, 0x90);
  optimizeNops(b, 8);
  assert.deepEqual([...b], [0x48, 0x89, 0xc7, 0x0f, 0x1f, 0x00, 0xc3, 0x90]);
});
