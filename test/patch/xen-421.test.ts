/**
 * Xen 4.21's rules on hand-written entries (test/fixtures/patch/xen-421.S), through the xen-4.21 profile:
 * ALT_FLAG_NOT, `.alt_call_sites` read by `sites` and applied by `apply` (ff 15 -> 2e e8 rel32 past the
 * ENDBR64, ud2 x3 for NULL), the trailing return-thunk fix-up, and the old altcall shape no longer special.
 * The same file through the 4.17.2 profile (no ALT_FLAG_NOT, no .alt_call_sites) shows the difference.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Image } from '../../src/elf/image.js';
import { applyPatches, parseCpu, PatchedView, verifyView } from '../../src/patch/index.js';
import { readSites } from '../../src/sites/read.js';
import { sitesOf } from '../../src/sites/site.js';
import { featureNumber, featureTable } from '../../src/target/features/index.js';
import { profileById } from '../../src/target/profile.js';
import { assemble } from '../support/build.js';

const table = featureTable('xen-4.21.2');
const img = Image.parse(readFileSync(assemble('patch/xen-421.S')), 'xen-421.o');
const p421 = profileById('xen-4.21')!;

function run(spec: string, altcallNull: 'keep' | 'ud' = 'keep', profile = p421): PatchedView {
  return applyPatches(img, profile, parseCpu(spec, featureTable(profile.features)), { xen: { altcallNull } }).view;
}
const addrOf = (sym: string): number => img.symbol(sym)!.addr;
const at = (v: PatchedView, sym: string, n: number): number[] => [...v.read(addrOf(sym), n)!];
const rel32 = (b: number[], o: number): number => b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24) | 0;

test('profile xen-4.21 reads .alt_call_sites; feature numbers of the fixture', () => {
  assert.equal(featureNumber(table, 'ALWAYS'), 93);
  assert.equal(featureNumber(table, 'BMI1'), 163);
  assert.equal(table.limit, (19 + 2 + 1) * 32, '4.21.2: two synthetic words');
  const set = readSites(img, p421);
  assert.equal(set.counts['.alt_call_sites'], 3);
  const calls = set.sites.filter((s) => s.table === '.alt_call_sites');
  assert.deepEqual(
    calls.map((s) => s.addr),
    [addrOf('x_call'), addrOf('x_callnull'), addrOf('x_notcall')],
  );
  assert.equal(calls[0]!.length, 6, 'length from the decoded call *disp32(%rip)');
  const not = sitesOf(set.sites, '.altinstructions').find((s) => s.addr === addrOf('x_not'))!;
  assert.equal(not.feature, 163);
  assert.equal(not.inverted, true);
  assert.equal(
    readSites(img, profileById('xen-4.20')!).counts['.alt_call_sites'],
    undefined,
    '4.20 has no .alt_call_sites',
  );
});

test('ALT_FLAG_NOT: replaced when the feature is absent, kept when present', () => {
  assert.deepEqual(at(run('none'), 'x_not', 3), [0x0f, 0xae, 0xe8]);
  assert.deepEqual(at(run('none,+BMI1'), 'x_not', 3), [0x0f, 0x1f, 0x00]);
  // Without ALT_FLAG_NOT (4.17.2) bit 15 makes the cpuid out of range: the hypervisor would BUG().
  const old = run('none', 'keep', profileById('xen-4.17.2')!);
  assert.ok(
    old.findings.some((f) => f.addr === addrOf('x_not') && f.kind === 'bug' && /no ALT_FLAG_NOT/.test(f.message)),
  );
  assert.deepEqual(at(old, 'x_not', 3), [0x0f, 0x1f, 0x00]);
});

test('.alt_call_sites: call *fp(%rip) becomes cs call past the ENDBR64; NULL becomes ud2 x3 with ud; not a call: a bug finding', () => {
  const v = run('none');
  const b = at(v, 'x_call', 6);
  assert.deepEqual(b.slice(0, 2), [0x2e, 0xe8]);
  assert.equal(addrOf('x_call') + 6 + rel32(b, 2), addrOf('func_endbr') + 4);
  assert.deepEqual(at(v, 'x_callnull', 2), [0xff, 0x15], 'NULL kept by default');
  assert.ok(v.findings.some((f) => f.addr === addrOf('x_callnull') && f.kind === 'model'));
  assert.deepEqual(at(run('none', 'ud'), 'x_callnull', 6), [0x0f, 0x0b, 0x0f, 0x0b, 0x0f, 0x0b]);
  assert.ok(v.findings.some((f) => f.addr === addrOf('x_notcall') && f.kind === 'bug'));
  assert.deepEqual(at(v, 'x_notcall', 6), [0x0f, 0x1f, 0x44, 0x00, 0x00, 0x90]);
  assert.deepEqual(
    verifyView(v).map((c) => c.problem),
    [],
  );
});

test('a replacement ending in jmp __x86_return_thunk keeps its target from the site (4.21); 4.20 copies it verbatim', () => {
  const b = at(run('none,+BMI1'), 'x_ret', 8);
  assert.deepEqual(b.slice(0, 4), [0x0f, 0xae, 0xe8, 0xe9]);
  assert.equal(addrOf('x_ret') + 8 + rel32(b, 4), addrOf('__x86_return_thunk'));
  const old = at(run('none,+BMI1', 'keep', profileById('xen-4.20')!), 'x_ret', 8);
  assert.notEqual(addrOf('x_ret') + 8 + rel32(old, 4), addrOf('__x86_return_thunk'));
});

test('the pre-4.21 altcall shape (ALWAYS, call .-5 over call *fp(%rip)) is an altcall only up to 4.20', () => {
  const b = at(run('none'), 'x_oldshape', 5);
  assert.equal(b[0], 0xe8);
  assert.notEqual(addrOf('x_oldshape') + 5 + rel32(b, 1), addrOf('func_endbr') + 4);
  const old = at(run('none', 'keep', profileById('xen-4.20')!), 'x_oldshape', 5);
  assert.equal(addrOf('x_oldshape') + 5 + rel32(old, 1), addrOf('func_endbr') + 4);
});
