/**
 * Pins the Linux 6.12 apply_alternatives rules used for the 14-byte alt_instr layout
 * (test/fixtures/patch/linux-alt14.S), where they differ from 6.1.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Image } from '../../src/elf/image.js';
import { applyPatches, parseCpu, PatchedView } from '../../src/patch/index.js';
import { featureNumber, featureTable } from '../../src/target/features/index.js';
import { profileById } from '../../src/target/profile.js';
import { assemble } from '../support/build.js';

const table = featureTable('linux-6.12');
const img = Image.parse(readFileSync(assemble('patch/linux-alt14.S')), 'linux-alt14.o');
const profile = profileById('linux-6.8')!;
const run = (spec: string): PatchedView => applyPatches(img, profile, parseCpu(spec, table)).view;
const addrOf = (sym: string): number => img.symbol(sym)!.addr;
const at = (v: PatchedView, sym: string, n: number): number[] => [...v.read(addrOf(sym), n)!];
const rel32 = (b: number[], o: number): number => b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24) | 0;

test('fixture feature numbers match the 6.12 table', () => {
  assert.equal(featureNumber(table, 'POPCNT'), 151);
  assert.equal(featureNumber(table, 'SMAP'), 308);
  assert.equal(featureNumber(table, 'ALWAYS'), 117);
});

test('a call inside a longer replacement is re-aimed (unlike 6.1)', () => {
  const b = at(run('none,+POPCNT'), 'm_call6', 6);
  assert.equal(b[0], 0xe8);
  assert.equal(addrOf('m_call6') + 5 + rel32(b, 1), addrOf('target_fn'));
  assert.equal(b[5], 0x90);
});

test('jmp rel32 re-aimed and shortened to jmp rel8 + int3 filler', () => {
  assert.deepEqual(at(run('none,+POPCNT'), 'm_jmp', 5), [0xeb, 0x04, 0xcc, 0xcc, 0xcc]);
});

test('nested alternatives: every entry of a site takes the largest instrlen', () => {
  // POPCNT entry (instrlen 4 in the table) pads to 7: pause + NOP5.
  assert.deepEqual(at(run('none,+POPCNT'), 'm_nested', 7), [0xf3, 0x90, 0x0f, 0x1f, 0x44, 0x00, 0x00]);
});

test('optimize_nops: NOPL and NOP runs merge; beyond ASM_NOP_MAX becomes jmp over int3', () => {
  // 6.3 and 6.4 (NOPs up to 8 bytes): the 10-byte run is a jmp over int3 filler.
  const run63 = applyPatches(img, profileById('linux-6.3')!, parseCpu('none', featureTable('linux-6.3'))).view;
  const b = at(run63, 'm_nops', 13);
  assert.deepEqual(b, [0xeb, 0x08, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0x48, 0x89, 0xc7]);
  // 6.5 to 6.7 have NOP9..NOP11 already, as detection of a 6.5 module picks.
  const run65 = applyPatches(img, profileById('linux-6.5')!, parseCpu('none', featureTable('linux-6.3'))).view;
  assert.deepEqual(
    at(run65, 'm_nops', 13),
    [0x66, 0x2e, 0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00, 0x48, 0x89, 0xc7],
  );
  // 6.12 (x86-64 NOP9..NOP11): one 10-byte NOP, `osp cs nopw 0(%rax,%rax,1)` (Debian's 6.12.117 booted).
  const c = at(run('none'), 'm_nops', 13);
  assert.deepEqual(c, [0x66, 0x2e, 0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00, 0x48, 0x89, 0xc7]);
});

test('optimize_nops stops at a NOP that already ends the site', () => {
  assert.deepEqual(at(run('none'), 'm_last', 4), [0x48, 0x89, 0xc7, 0x90]);
});

test("ALT_FLAG_DIRECT_CALL: the pv_ops slot's native function is called directly", () => {
  const v = run('none');
  const b = at(v, 'm_pv', 6);
  assert.equal(b[0], 0xe8);
  assert.equal(v.abs(addrOf('m_pv')) + 5n + BigInt(rel32(b, 1)), v.symbolAbs('pv_native_save_fl'));
  assert.equal(b[5], 0x90);
  assert.deepEqual(at(v, 'm_pvnop', 6), [0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00]);
});

test('7.0 rules (profile linux-7): every site is written at most once, the last eligible entry wins, bytes as 6.12', () => {
  const t7 = featureTable(profileById('linux-7')!.features);
  assert.equal(featureNumber(t7, 'POPCNT'), 151);
  assert.equal(featureNumber(t7, 'SMAP'), 308);
  const run7 = (spec: string): PatchedView => applyPatches(img, profileById('linux-7')!, parseCpu(spec, t7)).view;
  const writesAt = (v: PatchedView, sym: string): number =>
    v.patches.filter((p) => p.patcher === 'alternatives' && p.addr === addrOf(sym)).length;
  // Both entries of m_nested eligible: 6.12 writes the site twice (table order), 7.0 once.
  const both612 = run('none,+POPCNT,+SMAP');
  const both70 = run7('none,+POPCNT,+SMAP');
  assert.equal(writesAt(both612, 'm_nested'), 2);
  assert.equal(writesAt(both70, 'm_nested'), 1);
  assert.deepEqual(at(both70, 'm_nested', 7), at(both612, 'm_nested', 7));
  // Only the first eligible: it wins, padded to the group's largest instrlen.
  assert.deepEqual(at(run7('none,+POPCNT'), 'm_nested', 7), [0xf3, 0x90, 0x0f, 0x1f, 0x44, 0x00, 0x00]);
  // Over every preset the two rule sets agree byte for byte on this fixture, and 7.0 never writes a site twice.
  for (const p of ['intel-server', 'amd-server', 'old', 'all', 'none']) {
    const a = run(p);
    const b = run7(p);
    for (const s of ['m_call6', 'm_jmp', 'm_nested', 'm_nops', 'm_last'])
      assert.deepEqual(at(b, s, 7), at(a, s, 7), `${p} ${s}`);
    const seen = new Set<number>();
    for (const w of b.patches.filter((x) => x.patcher === 'alternatives')) {
      assert.ok(!seen.has(w.addr), `${p}: site ${img.where(w.addr)} written twice`);
      seen.add(w.addr);
    }
  }
});
