import test from 'node:test';
import assert from 'node:assert/strict';
import {
  compile,
  explore,
  FETCH_CONTRACTS,
  PROTOCOLS,
  SCENARIOS,
  renderTable,
  verdictTable,
} from '../../src/model/index.js';
import type { FetchContract } from '../../src/model/index.js';
import { EXPECTED } from './expected.js';

const CONTRACTS = Object.keys(FETCH_CONTRACTS) as FetchContract[];

test('the expected tables cover every built-in protocol and scenario, under both fetch contracts', () => {
  assert.deepEqual(Object.keys(EXPECTED).sort(), [...CONTRACTS].sort());
  for (const k of CONTRACTS) {
    assert.deepEqual(Object.keys(EXPECTED[k]).sort(), PROTOCOLS.map((p) => p.name).sort());
    for (const row of Object.values(EXPECTED[k]))
      assert.deepEqual(Object.keys(row).sort(), SCENARIOS.map((s) => s.name).sort());
  }
});

test('built-in scenarios default to the architectural contract', () => {
  for (const s of SCENARIOS) assert.equal(compile(PROTOCOLS[0], s).contract, 'architectural');
});

for (const k of CONTRACTS) {
  for (const p of PROTOCOLS) {
    for (const s of SCENARIOS) {
      test(`verdict (${k}): ${p.name} on ${s.name} is ${EXPECTED[k][p.name]![s.name]}`, () => {
        const r = explore(compile(p, { ...s, fetchUnit: FETCH_CONTRACTS[k] }));
        const want = EXPECTED[k][p.name]![s.name]!;
        if (want === 'safe') {
          assert.equal(r.verdict, 'safe', r.message);
          assert.equal(r.trace.length, 0);
          assert.ok(r.states > 1);
        } else {
          assert.equal(r.verdict, 'unsafe');
          assert.equal(r.property, want, r.message);
          assert.ok(r.trace.length > 0, 'an unsafe verdict comes with a trace');
        }
      });
    }
  }
}

test('renderTable prints one Markdown row per protocol and contract, naming the contract', () => {
  const cells = verdictTable().filter((c) => c.scenario === 'nmi-on-patcher' || c.scenario === 'static-call-retarget');
  assert.ok(cells.every((c) => CONTRACTS.includes(c.contract)));
  const md = renderTable(cells);
  const lines = md.trim().split('\n');
  assert.equal(lines.length, 2 + PROTOCOLS.length * CONTRACTS.length);
  assert.equal(lines[0], '| protocol | fetch contract | static-call-retarget | nmi-on-patcher |');
  assert.match(md, /\| xen-nmi \| architectural \| UNSAFE: torn-instruction \| safe \|/);
  assert.match(md, /\| atomic-write \| architectural \| UNSAFE: torn-instruction \| safe \|/);
  assert.match(md, /\| atomic-write \| aligned-8 \| safe \| safe \|/);
});
