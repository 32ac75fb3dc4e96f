/**
 * Linux 6.16+'s batched text-poke API (smp_text_poke_batch_add / _finish / _single, once text_poke_queue /
 * text_poke_finish / text_poke_bp): the June 2025 ordering bug and its fix.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  BATCH_SCENARIOS,
  bsearchFinds,
  compile,
  explore,
  findProtocol,
  findScenario,
  parseScenarioFile,
  renderResult,
  scenarioFromJson,
} from '../../src/model/index.js';

const FIXED = 'smp-text-poke-batch';
const BUGGY = 'smp-text-poke-batch-c8976ade0c1b';
const run = (p: string, s: string) => explore(compile(findProtocol(p)!, findScenario(s)!));

test("smp_text_poke_int3_handler's lookup: the kernel's binary search, or one direct comparison", () => {
  for (const vec of [[0], [0, 5], [0, 5, 10], [1, 2, 3, 4]])
    for (const k of vec) assert.ok(bsearchFinds(vec, k), `${vec} ${k}`);
  assert.ok(!bsearchFinds([0, 5], 3));
  assert.ok(!bsearchFinds([], 0));
  // Out of address order the search misses: [+5, +0] loses +5, [+5, +10, +0] loses +0.
  assert.ok(!bsearchFinds([5, 0], 5));
  assert.ok(bsearchFinds([5, 0], 0));
  assert.ok(!bsearchFinds([5, 10, 0], 0));
});

test("c8976ade0c1b: single() appends out of address order inside another caller's batch, and an int3 goes unhandled", () => {
  const m = compile(findProtocol(BUGGY)!, findScenario('jump-label-mixed-api')!);
  const r = explore(m);
  assert.equal(r.verdict, 'unsafe');
  assert.equal(r.property, 'unhandled-int3');
  assert.match(
    r.message!,
    /smp_text_poke_int3_handler: the binary search of text_poke_array\.vec \[\+5, \+0\] misses \+5 \(the vector is not in address order\)/,
  );
  // The interleaving: the batch queued key_mid, then jump_label_transform's single(key_lo) ran under text_mutex.
  assert.match(
    r.trace[0]!.text,
    /^text_mutex order: jump_label batch: smp_text_poke_batch_add\(key_mid\); jump_label_transform: smp_text_poke_single\(key_lo\)/,
  );
  assert.ok(
    r.trace.some((s) =>
      /smp_text_poke_single\(key_lo\): __smp_text_poke_batch_add\(key_lo\): text_poke_array\.vec\[1\] = \+0/.test(
        s.text,
      ),
    ),
  );
  const last = r.trace.at(-1)!;
  assert.equal(last.ctx, 'int3');
  assert.match(last.text, /Oops: int3/);
  // The CPU trapped on key_mid's int3 (+5) before the handler looked it up.
  const trap = r.trace.at(-2)!;
  assert.equal(trap.kind, 'exec');
  assert.equal(trap.offset, 5);
  assert.equal(trap.as, 'int3');
  assert.equal(r.trace.length, 8, 'shortest counterexample');
  assert.match(renderResult(m, r), /verdict \(architectural contract\): UNSAFE: unhandled-int3/);
});

test('c8976ade0c1b: with the vector full of the batch, single() writes past its end', () => {
  const r = run(BUGGY, 'jump-label-mixed-api-full');
  assert.equal(r.property, 'vector-overflow');
  assert.match(r.message!, /__smp_text_poke_batch_add\(key_lo\) writes text_poke_array\.vec\[2\] of a 2-entry vector/);
});

test('the fix (single() goes through smp_text_poke_batch_add(), which flushes first) is safe on both', () => {
  for (const s of BATCH_SCENARIOS) {
    const r = run(FIXED, s.name);
    assert.equal(r.verdict, 'safe', `${s.name}: ${r.message}`);
    assert.ok(r.states > 1000);
  }
  // The flush is in the plan: the batch of key_mid is finished before key_lo is appended.
  const plan = findProtocol(FIXED)!;
  const m = compile(plan, findScenario('jump-label-mixed-api')!);
  assert.ok(
    m.ops.some(
      (o) =>
        o.kind === 'set' &&
        /smp_text_poke_batch_add\(key_lo\) flushes first: smp_text_poke_batch_finish: text_poke_array_refs = 1/.test(
          o.note ?? '',
        ),
    ),
  );
  // Sorted batches of two still reach the binary search: key_mid and key_hi patched together.
  assert.ok(m.ops.some((o) => o.kind === 'set' && /text_poke_array_refs = 1 \(2 entries\)/.test(o.note ?? '')));
});

test('one caller per site by default: the batch API on a single site is text_poke_bp', () => {
  const s = findScenario('static-call-retarget')!;
  for (const p of [FIXED, BUGGY]) {
    const m = compile(findProtocol(p)!, s);
    assert.ok(!m.ops.some((o) => o.kind === 'choose'));
    assert.equal(m.ops.filter((o) => o.kind === 'sync').length, 3);
  }
});

test('a single-site protocol refuses a scenario with several sites', () => {
  assert.throws(
    () => compile(findProtocol('text-poke-bp')!, findScenario('jump-label-mixed-api')!),
    /patches one site .* has 3: use a batch protocol/,
  );
});

test('scenario files: sites, callers (historical API names too), batchMax', () => {
  const text = readFileSync(new URL('../../../examples/model/jump-label-mixed-api.json', import.meta.url), 'utf8');
  const s = parseScenarioFile(text, 'f.json');
  assert.deepEqual(s.sites, [
    { name: 'key_lo', off: 0, len: 5 },
    { name: 'key_hi', off: 5, len: 5 },
  ]);
  assert.deepEqual(s.callers![0]!.calls, [
    { fn: 'smp_text_poke_batch_add', site: 'key_hi' },
    { fn: 'smp_text_poke_batch_finish' },
  ]);
  assert.deepEqual(s.callers![1]!.calls, [{ fn: 'smp_text_poke_single', site: 'key_lo' }]);
  assert.equal(explore(compile(findProtocol(BUGGY)!, s)).property, 'unhandled-int3');
  assert.equal(explore(compile(findProtocol(FIXED)!, s)).verdict, 'safe');
  const base = { old: '0f 1f 44 00 00 0f 1f 44 00 00', new: 'e9 00 00 00 00 e9 00 00 00 00', sites: { a: 0, b: 5 } };
  const bad: Array<[unknown, RegExp]> = [
    [{ ...base, sites: { a: 1 } }, /first site must start at offset 0/],
    [{ ...base, callers: [{ calls: ['smp_text_poke_batch_add c'] }] }, /unknown site "c"/],
    [{ ...base, callers: [{ calls: ['text_poke_smp a'] }] }, /expected "<function> \[site\]"/],
    [{ ...base, callers: [{ calls: ['smp_text_poke_batch_finish a'] }] }, /takes no site/],
    [{ ...base, batchMax: 0 }, /batchMax: expected an integer 1\.\.8/],
  ];
  for (const [j, re] of bad) assert.throws(() => scenarioFromJson(j, 'x'), re);
  // Plans that cannot run: a site nobody patches, a batch left pending.
  const noPatch = scenarioFromJson({ ...base, callers: [{ calls: ['smp_text_poke_single a'] }] }, 'x');
  assert.throws(() => compile(findProtocol(FIXED)!, noPatch), /no caller patches site b/);
  const pending = scenarioFromJson(
    { ...base, callers: [{ calls: ['smp_text_poke_single a', 'smp_text_poke_batch_add b'] }] },
    'x',
  );
  assert.throws(() => compile(findProtocol(FIXED)!, pending), /leaves b pending/);
  const misaligned = scenarioFromJson({ ...base, sites: { a: 0, b: 3 } }, 'x');
  assert.throws(
    () => compile(findProtocol(FIXED)!, misaligned),
    /site b \(\+3\) does not start on an instruction boundary/,
  );
});
