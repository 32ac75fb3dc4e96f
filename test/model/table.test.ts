import test from 'node:test';
import assert from 'node:assert/strict';
import { compile, explore, PROTOCOLS, SCENARIOS, renderTable, verdictTable } from '../../src/model/index.js';
import { EXPECTED } from './expected.js';

test('the expected table covers every built-in protocol and scenario', () => {
  assert.deepEqual(Object.keys(EXPECTED).sort(), PROTOCOLS.map((p) => p.name).sort());
  for (const row of Object.values(EXPECTED)) assert.deepEqual(Object.keys(row).sort(), SCENARIOS.map((s) => s.name).sort());
});

for (const p of PROTOCOLS) {
  for (const s of SCENARIOS) {
    test(`verdict: ${p.name} on ${s.name} is ${EXPECTED[p.name]![s.name]}`, () => {
      const r = explore(compile(p, s));
      const want = EXPECTED[p.name]![s.name]!;
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

test('renderTable prints one Markdown row per protocol', () => {
  const cells = verdictTable().filter((c) => c.scenario === 'nmi-on-patcher');
  const md = renderTable(cells);
  const lines = md.trim().split('\n');
  assert.equal(lines.length, 2 + PROTOCOLS.length);
  assert.match(md, /\| xen-nmi \| safe \|/);
  assert.match(md, /\| memcpy \| UNSAFE: torn-instruction \|/);
});
