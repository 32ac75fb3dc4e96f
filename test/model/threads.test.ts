/**
 * What seeds 002 and 004 argue, as checks on counterexamples (not just verdicts).
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { compile, explore, findProtocol, findScenario, PROTOCOLS, SCENARIOS } from '../../src/model/index.js';
import type { Result, Scenario } from '../../src/model/index.js';

/** Seed 004's premise, as a scenario tweak: an aligned 8-byte fetch is atomic (the default contract is architectural). */
const aligned8 = (s: Scenario): Scenario => ({ ...s, fetchUnit: 8 });

function run(protocol: string, scenario: string, tweak?: (s: Scenario) => Scenario): Result {
  let s = findScenario(scenario)!;
  if (tweak) s = tweak(s);
  return explore(compile(findProtocol(protocol)!, s));
}

test('a plain copy tears: a CPU fetches a call whose rel32 is half old, half new', () => {
  const r = run('memcpy', 'static-call-retarget');
  assert.equal(r.property, 'torn-instruction');
  const last = r.trace.at(-1)!;
  assert.equal(last.kind, 'exec');
  assert.equal(last.as, 'torn');
  assert.match(last.asm!, /^call /);
  // The patcher stored part of the new bytes before the fetch.
  assert.ok(r.trace.slice(0, -1).some((s) => s.kind === 'write' && s.cpu === 0));
  // Shortest: one store, one fetch.
  assert.equal(r.trace.length, 2);
});

test('text_poke_bp: safe for one instruction, also across a word boundary', () => {
  assert.equal(run('text-poke-bp', 'static-call-retarget').verdict, 'safe');
  assert.equal(run('text-poke-bp', 'static-call-retarget-crossing').verdict, 'safe');
});

test('text_poke_bp: unsafe when a CPU stands between two old instructions (seed 002)', () => {
  const r = run('text-poke-bp', 'multi-insn-alternative');
  assert.equal(r.property, 'torn-instruction');
  const execs = r.trace.filter((s) => s.kind === 'exec');
  const victim = execs.at(-1)!;
  // The CPU ran the first old instruction, then executes at the old boundary +2 from new bytes.
  assert.equal(victim.offset, 2);
  assert.ok(execs.some((s) => s.cpu === victim.cpu && s.offset === 0 && s.as === 'old'));
  // ... after the syncs that were meant to protect it.
  assert.ok(r.trace.some((s) => s.kind === 'sync'));
});

test('aligned atomic write (aligned-8 contract): safe inside one word, torn when the site straddles the boundary', () => {
  assert.equal(run('atomic-write', 'static-call-retarget', aligned8).verdict, 'safe');
  const r = run('atomic-write', 'static-call-retarget-crossing', aligned8);
  assert.equal(r.property, 'torn-instruction');
  const last = r.trace.at(-1)!;
  // The torn fetch reads the two words from different memory versions.
  assert.equal(last.reads!.length, 2);
  assert.notEqual(last.reads![0]!.version, last.reads![1]!.version);
});

test('under the architectural contract only the int3-then-sync discipline keeps an in-word site whole', () => {
  for (const p of ['atomic-write', 'int3-nosync', 'prefix-int3']) {
    assert.equal(run(p, 'static-call-retarget', aligned8).verdict, 'safe', p);
    const r = run(p, 'static-call-retarget');
    assert.equal(r.property, 'torn-instruction', p);
    // The torn fetch read the bytes of one aligned word from different versions: what aligned-8 rules out.
    const versions = new Set(r.trace.at(-1)!.reads!.map((x) => x.version));
    assert.ok(versions.size > 1, p);
  }
  assert.equal(run('text-poke-bp', 'static-call-retarget').verdict, 'safe');
});

test('NMI-context patching survives NMI and not #MC', () => {
  assert.equal(run('xen-nmi', 'nmi-on-patcher').verdict, 'safe');
  const r = run('xen-nmi', 'mce-during-nmi-patch');
  assert.equal(r.property, 'torn-instruction');
  assert.ok(
    r.trace.some((s) => s.kind === 'mce' && s.cpu === 0),
    'the #MC arrives on the patching CPU',
  );
  assert.equal(r.trace.at(-1)!.ctx, 'mce');
  // Without the #MC the same run is safe: NMIs stay latched while the patcher is in its NMI handler.
  assert.equal(run('xen-nmi', 'mce-during-nmi-patch', (s) => ({ ...s, patcher: { nmi: 1, mce: 0 } })).verdict, 'safe');
  // A plain copy outside NMI context is torn by the NMI itself.
  assert.ok(run('memcpy', 'nmi-on-patcher').trace.some((s) => s.kind === 'nmi'));
});

test('seed 002 proposal: the patching CPU completes its own patch from the #BP', () => {
  assert.equal(run('xen-nmi-complete', 'mce-during-nmi-patch').verdict, 'safe');
  // Without IPIs, other CPUs may keep running stale code after the protocol ends (aligned-8) ...
  const r = run('xen-nmi-complete', 'static-call-retarget', aligned8);
  assert.equal(r.property, 'old-code-after-end');
  assert.ok(r.trace.at(-1)!.reads!.some((x) => x.stale));
  // ... or, architecturally, a mix of stale and fresh bytes before it ends.
  assert.equal(run('xen-nmi-complete', 'static-call-retarget').property, 'torn-instruction');
});

test('int3 without syncs tears a straddling site (a CPU read the first word before the int3)', () => {
  const r = run('int3-nosync', 'static-call-retarget-crossing');
  assert.equal(r.property, 'torn-instruction');
  const last = r.trace.at(-1)!;
  assert.ok(last.reads!.some((x) => x.stale));
  assert.equal(r.trace.filter((s) => s.kind === 'sync').length, 0);
});

test('prefix-int3 returns to the bare call; safe in one word (aligned-8), torn across words', () => {
  assert.equal(run('prefix-int3', 'static-call-retarget', aligned8).verdict, 'safe');
  const r = run('prefix-int3', 'static-call-retarget-crossing', aligned8);
  assert.equal(r.property, 'torn-instruction');
  assert.equal(r.trace.at(-1)!.offset, 1, 'the torn call is the one after the prefix');
  assert.ok(r.trace.some((s) => s.kind === 'handler' && /returns to \+1/.test(s.text)));
});

test('emulate-call only knows calls', () => {
  const r = run('emulate-call', 'nmi-on-patcher');
  assert.equal(r.property, 'unhandled-int3');
  assert.match(r.message!, /not a call/);
});

test('int3 on every old boundary does not answer the multi-instruction objection', () => {
  const r = run('int3-all-boundaries', 'multi-insn-alternative');
  assert.equal(r.property, 'torn-instruction');
  // The int3s went onto both old boundaries ...
  assert.ok(r.trace.some((s) => s.kind === 'write' && /\+2=cc/.test(s.text)));
  // ... but the CPU that stopped at +2 only fetches again after +2 holds a new byte.
  assert.equal(r.trace.at(-1)!.offset, 2);
  assert.notEqual(r.trace.at(-1)!.bytes!.slice(0, 2), 'cc');
});

test('counterexamples are shortest: BFS finds no shorter one than a hand-made bound', () => {
  // memcpy on the nmi-on-patcher scenario needs a store, the NMI, and the fetch.
  assert.equal(run('memcpy', 'nmi-on-patcher').trace.length, 3);
  assert.equal(run('xen-nmi', 'mce-during-nmi-patch').trace.length, 3);
});

test('symmetry reduction does not change verdicts', () => {
  for (const [p, s] of [
    ['text-poke-bp', 'static-call-retarget'],
    ['int3-nosync', 'static-call-retarget-crossing'],
  ] as const) {
    const m = compile(findProtocol(p)!, findScenario(s)!);
    const a = explore(m);
    const b = explore(m, { symmetry: false });
    assert.equal(a.verdict, b.verdict);
    assert.ok(b.states >= a.states);
  }
});

test('counterexamples are replayed with and without symmetry reduction, CPU numbers as the search saw them', () => {
  // The documented trace (docs/model.md): cpu1 tears the alternative at +2.
  const m = compile(findProtocol('text-poke-bp')!, findScenario('multi-insn-alternative')!);
  const a = explore(m);
  assert.equal(a.verdict, 'unsafe');
  assert.match(a.message ?? '', /^cpu1 executed \+2/);
  assert.ok(a.trace.filter((s) => s.kind === 'exec').every((s) => s.cpu === 1));
  // Every protocol and scenario, both ways: an unsafe verdict always gets its trace, of the same length.
  let unsafe = 0;
  for (const p of PROTOCOLS)
    for (const s of SCENARIOS) {
      const mm = compile(p, s);
      const x = explore(mm, { maxStates: 20_000 });
      const y = explore(mm, { maxStates: 20_000, symmetry: false });
      if (x.verdict !== 'unsafe' || y.verdict !== 'unsafe') continue;
      unsafe++;
      assert.ok(x.trace.length > 0 && y.trace.length === x.trace.length, `${p.name} on ${s.name}`);
    }
  assert.ok(unsafe >= 20, `${unsafe} unsafe pairs replayed`);
});

test('a state limit yields "incomplete", never "safe"', () => {
  const r = explore(compile(findProtocol('text-poke-bp')!, findScenario('static-call-retarget')!), { maxStates: 100 });
  assert.equal(r.verdict, 'incomplete');
});
