import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { callTo, compile, explore, parseScenarioFile, scenarioFromJson, escapeXml } from '../../src/model/index.js';

const example = (f: string) => readFileSync(new URL(`../../../examples/model/${f}`, import.meta.url), 'utf8');

test('a scenario file with its own protocol: steps, variables, handler rules', () => {
  const s = parseScenarioFile(example('wait-handler-self-deadlock.json'), 'f.json');
  assert.equal(s.name, 'wait-handler-self-deadlock');
  assert.equal(s.base, 0xffff82d040201000n);
  assert.deepEqual(s.old, [0x0f, 0x1f, 0x00]);
  assert.deepEqual(s.cpus, []);
  assert.equal(s.protocol!.ops.length, 8);
  assert.deepEqual(s.protocol!.ops[3], {
    kind: 'write',
    bytes: [
      [1, 0x01],
      [2, 0xca],
    ],
  });
  assert.deepEqual(s.protocol!.int3![0]!.program, [
    { kind: 'wait', cond: { kind: 'varEq', v: 0, val: 0 } },
    { kind: 'retry' },
  ]);
  const r = explore(compile(undefined, s));
  assert.equal(r.property, 'deadlock');
  assert.match(r.message!, /patching CPU spins in its own int3 handler/);
});

test("the deadlock needs the waiting handler: with text_poke_bp's emulating handler the same steps are safe", () => {
  const s = parseScenarioFile(example('wait-handler-self-deadlock.json'), 'f.json');
  s.protocol!.int3 = [
    { at: 'first', cpu: 'any', when: { v: 0, val: 1 }, program: [{ kind: 'emulate', version: 'new' }] },
  ];
  assert.equal(explore(compile(undefined, s)).verdict, 'safe');
});

test('cpus as a count with shared passes/nmi/mce', () => {
  const s = scenarioFromJson({ old: 'e8 00 00 00 00', new: 'e8 10 00 00 00', cpus: 3, passes: 2, nmi: 1 }, 'x');
  assert.equal(s.cpus.length, 3);
  assert.deepEqual(s.cpus[2], { passes: 2, nmi: 1, mce: 0 });
  assert.equal(s.fetchUnit, 1, 'the architectural contract by default');
  assert.equal(scenarioFromJson({ old: '90', new: '90', contract: 'aligned-8' }, 'x').fetchUnit, 8);
  assert.equal(s.handlersRunSite, true);
});

test('bad scenario files are rejected with a message naming the problem', () => {
  const bad: Array<[unknown, RegExp]> = [
    [[], /expected a JSON object/],
    [{ old: 'e8 00 00 00 00', new: 'e8 00 00 00 00', colour: 1 }, /unknown key "colour"/],
    [{ old: 'zz', new: '90' }, /not a hex byte string/],
    [{ old: '90', new: '90', fetchUnit: 3 }, /power of two/],
    [{ old: '90', new: '90', contract: 'cache-line' }, /contract: expected architectural or aligned-8/],
    [{ old: '90', new: '90', contract: 'aligned-8', fetchUnit: 8 }, /either "contract" or "fetchUnit"/],
    [{ old: '90', new: '90', cpus: 9 }, /cpus: expected an integer 0\.\.4/],
    [{ old: '90', new: '90', protocol: { ops: [{ jump: 1 }] } }, /protocol\.ops\[0\]: expected one of/],
    [{ old: '90', new: '90', protocol: { ops: [{ set: ['nope', 1] }] } }, /unknown variable "nope"/],
    [{ old: '90', new: '90', protocol: { ops: [], int3: [{ do: ['retry', 'serialize'] }] } }, /last step must return/],
  ];
  for (const [j, re] of bad) assert.throws(() => scenarioFromJson(j, 'x'), re);
  assert.throws(() => parseScenarioFile('{', 'f.json'), /^Error: f\.json: not JSON/);
});

test('a site that does not decode is reported, not explored', () => {
  const s = scenarioFromJson({ old: '0f 0f', new: '90 90' }, 'x');
  assert.throws(
    () => compile(undefined, { ...s, protocol: { ops: [] } }),
    /cannot decode|runs past the end of the site/,
  );
});

test('callTo encodes a rel32 call and escapeXml escapes markup', () => {
  assert.deepEqual(callTo(0x1000n, 0x1005n + 0x10n), [0xe8, 0x10, 0, 0, 0]);
  assert.deepEqual(callTo(0x1000n, 0x1000n), [0xe8, 0xfb, 0xff, 0xff, 0xff]);
  assert.equal(escapeXml(`<a href="x">&'</a>`), '&lt;a href=&quot;x&quot;&gt;&amp;&apos;&lt;/a&gt;');
});

test('an instruction the patch leaves alone counts as new code after the protocol ends', () => {
  // nop; nop3 -> nop; clac: the first instruction is the same before and after.
  // One atomic store of the changed bytes, fetched in one piece (aligned-8): only the unchanged nop is at stake.
  const s = scenarioFromJson(
    { base: '0xffffffff81000400', old: '90 0f 1f 00', new: '90 0f 01 ca', cpus: 1, passes: 2, contract: 'aligned-8' },
    'shared',
  );
  const r = explore(
    compile(undefined, {
      ...s,
      protocol: {
        ops: [
          {
            kind: 'write',
            bytes: [
              [2, 0x01],
              [3, 0xca],
            ],
          },
          { kind: 'sync' },
        ],
      },
    }),
  );
  assert.equal(r.verdict, 'safe', r.message);
});
