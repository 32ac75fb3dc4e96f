import test from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.js';
import { BATCH_SCENARIOS, PROTOCOLS, SCENARIOS } from '../../src/model/index.js';
import { EXPECTED } from './expected.js';

async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(['model', ...args], {
    out: (t) => {
      out += t;
    },
    err: (t) => {
      err += t;
    },
    isTTY: false,
  });
  return { code, out, err };
}

const examples = new URL('../../../examples/model/', import.meta.url).pathname;

test('unsafe: exit 1, verdict, states and the step-by-step trace', async () => {
  const r = await cli('--protocol', 'memcpy', '--scenario', 'static-call-retarget');
  assert.equal(r.code, 1);
  assert.match(r.out, /fetch contract: architectural: no multi-byte fetch is atomic/);
  assert.match(r.out, /verdict \(architectural contract\): UNSAFE: torn-instruction/);
  assert.match(r.out, /states explored: \d+/);
  assert.match(r.out, /patcher: store \+1=/);
  assert.match(r.out, /cpu\d: executes \+0: e8 .*neither old nor new/);
  // Architectural contract: every byte is its own fetch, from any version since the CPU last serialized.
  assert.match(r.out, /fetched \+0\.\.\+0 = e8 from v0 \(stale\); \+1\.\.\+1 = ea from v1;/);
  // The aligned-8 relaxation reads the in-word call in one piece, so memcpy tears it only as a whole word.
  const a8 = await cli('--protocol', 'memcpy', '--scenario', 'static-call-retarget', '--contract', 'aligned-8');
  assert.match(a8.out, /verdict \(aligned-8 contract\): UNSAFE: torn-instruction/);
  assert.match(a8.out, /fetched \+0\.\.\+4 = e8 .* from v1/);
});

test('safe: exit 0', async () => {
  const r = await cli('--protocol', 'xen-nmi', '--scenario', 'nmi-on-patcher');
  assert.equal(r.code, 0);
  assert.match(r.out, /verdict \(architectural contract\): SAFE within the bounds \(\d+ states/);
  // The contract can be relaxed; the verdict says so.
  const a8 = await cli('--protocol', 'atomic-write', '--scenario', 'static-call-retarget', '--contract', 'aligned-8');
  assert.equal(a8.code, 0);
  assert.match(a8.out, /verdict \(aligned-8 contract\): SAFE/);
  assert.equal((await cli('--protocol', 'atomic-write', '--scenario', 'static-call-retarget')).code, 1);
});

test('--json: {"verdict","property","states","trace":[...]}', async () => {
  const bad = JSON.parse((await cli('--protocol', 'xen-nmi', '--scenario', 'mce-during-nmi-patch', '--json')).out);
  assert.equal(bad.verdict, 'unsafe');
  assert.equal(bad.contract, 'architectural');
  assert.equal(bad.fetchUnit, 1);
  assert.equal(bad.property, 'torn-instruction');
  assert.ok(Number.isInteger(bad.states) && bad.states > 0);
  assert.ok(Array.isArray(bad.trace) && bad.trace.length === 3);
  const last = bad.trace.at(-1);
  assert.equal(last.cpu, 0);
  assert.equal(last.ctx, 'mce');
  assert.equal(last.as, 'torn');
  assert.equal(last.bytes, '0f 01 00');
  assert.equal(last.reads[0].version, 1);
  const good = JSON.parse((await cli('--protocol', 'text-poke-bp', '--scenario', 'nmi-on-patcher', '--json')).out);
  assert.equal(good.verdict, 'safe');
  assert.equal(good.contract, 'architectural');
  assert.equal(good.property, null);
  const relaxed = JSON.parse(
    (await cli('--protocol', 'text-poke-bp', '--scenario', 'nmi-on-patcher', '--fetch-unit', '8', '--json')).out,
  );
  assert.equal(relaxed.contract, 'aligned-8');
  assert.deepEqual(good.trace, []);
});

test('--svg draws the trace; --promela writes the SPIN model', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'textpoke-model-'));
  try {
    const svg = join(dir, 'trace.svg');
    const pml = join(dir, 'model.pml');
    const r = await cli(
      '--protocol',
      'int3-nosync',
      '--scenario',
      'static-call-retarget-crossing',
      '--svg',
      svg,
      '--promela',
      pml,
    );
    assert.equal(r.code, 1);
    const text = readFileSync(svg, 'utf8');
    assert.match(text, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    assert.match(text, /<\/svg>\n$/);
    for (const lane of ['memory', 'patcher', 'cpu1', 'cpu2']) assert.ok(text.includes(`>${lane}</text>`), lane);
    assert.match(text, /fill="#c00"/, 'the failing step is highlighted');
    // Text content never holds a raw '<' or '&' (escaped).
    for (const m of text.matchAll(/>([^<]*)</g)) assert.doesNotMatch(m[1]!, /&(?!amp;|lt;|gt;|quot;|apos;)/);
    const p = readFileSync(pml, 'utf8');
    assert.match(p, /proctype cpu\(byte c\)/);
    assert.match(p, /assert\(!torn_instruction\)/);
    assert.ok(!existsSync(`${pml}.${process.pid}.tmp`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--promela - prints the model and explores nothing', async () => {
  const r = await cli('--protocol', 'text-poke-bp', '--scenario', 'static-call-retarget', '--promela', '-');
  assert.equal(r.code, 0);
  assert.match(r.out, /^\/\* textpoke model: protocol text-poke-bp, scenario static-call-retarget \*\//);
  assert.doesNotMatch(r.out, /verdict/);
});

test('--table prints every protocol x scenario under both contracts (bounded run here; table.test.ts pins the full verdicts)', async () => {
  const r = await cli('--table', '--max-states', '3000');
  assert.equal(r.code, 0);
  const lines = r.out.trim().split('\n');
  assert.equal(lines.length, 2 + 2 * PROTOCOLS.length);
  assert.equal(lines[0], `| protocol | fetch contract | ${SCENARIOS.map((s) => s.name).join(' | ')} |`);
  // Counterexamples are short, so unsafe cells are found within the bound; safe ones need the full space.
  for (const k of ['architectural', 'aligned-8'] as const) {
    const row = lines.find((l) => l.startsWith(`| memcpy | ${k} |`))!;
    assert.equal(
      row,
      `| memcpy | ${k} | ${SCENARIOS.map((s) => `UNSAFE: ${EXPECTED[k].memcpy![s.name]}`).join(' | ')} |`,
    );
  }
  assert.match(r.out, /incomplete/);
  const json = JSON.parse((await cli('--table', '--json', '--contract', 'aligned-8', '--max-states', '200')).out);
  assert.equal(json.length, PROTOCOLS.length * SCENARIOS.length);
  assert.ok(json.every((c: { contract: string }) => c.contract === 'aligned-8'));
});

test('--list names the protocols and scenarios', async () => {
  const r = await cli('--list');
  for (const p of PROTOCOLS) assert.ok(r.out.includes(p.name));
  for (const s of [...SCENARIOS, ...BATCH_SCENARIOS]) assert.ok(r.out.includes(s.name));
});

test('the June 2025 batch bug from the command line: trace, SVG, exit 1; the fix exits 0', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'textpoke-model-'));
  try {
    const svg = join(dir, 'bug.svg');
    const r = await cli(
      '--protocol',
      'smp-text-poke-batch-c8976ade0c1b',
      '--scenario',
      'jump-label-mixed-api',
      '--svg',
      svg,
    );
    assert.equal(r.code, 1);
    assert.match(r.out, /UNSAFE: unhandled-int3/);
    assert.match(r.out, /1\. patcher: text_mutex order: /);
    assert.match(r.out, /the handler returns 0: Oops: int3/);
    const text = readFileSync(svg, 'utf8');
    assert.match(
      text,
      /smp-text-poke-batch-c8976ade0c1b on jump-label-mixed-api \(architectural fetch contract\): UNSAFE \(unhandled-int3\)/,
    );
    assert.ok(text.includes('Oops: int3'));
    // The caller order (the longest label) fits the drawing.
    const order = /1\. patcher: (text_mutex order: .*)/.exec(r.out)![1]!;
    assert.ok(Number(/width="(\d+)"/.exec(text)![1]) > 6 * order.length, 'the SVG is wide enough for its labels');
    assert.match(text, /fill="#c00"/);
    const ok = await cli('--protocol', 'smp-text-poke-batch', '--scenario', 'jump-label-mixed-api', '--json');
    assert.equal(ok.code, 0);
    const j = JSON.parse(ok.out);
    assert.equal(j.verdict, 'safe');
    assert.equal(j.contract, 'architectural');
    const wrong = await cli('--protocol', 'text-poke-bp', '--scenario', 'jump-label-mixed-api');
    assert.equal(wrong.code, 2);
    assert.match(wrong.err, /patches one site/);
    assert.equal(wrong.err.trim().split('\n').length, 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('scenario files: a custom protocol runs without --protocol; --protocol overrides it', async () => {
  const dl = await cli('--scenario', join(examples, 'wait-handler-sync-deadlock.json'));
  assert.equal(dl.code, 1);
  assert.match(dl.out, /UNSAFE: deadlock/);
  assert.match(dl.out, /cpu1 spins in its int3 handler/);
  const jl = await cli('--scenario', join(examples, 'jump-label-text-poke-bp.json'), '--protocol', 'text-poke-bp');
  assert.equal(jl.code, 0);
  assert.match(jl.out, /scenario jump-label/);
  assert.match(jl.out, /new: \+0 jmp /);
});

test('bad usage and bad input: one line on stderr, exit 2', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'textpoke-model-'));
  try {
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{"old": "e8 00", "new": "e8"}');
    const notJson = join(dir, 'x.json');
    writeFileSync(notJson, 'old: e8');
    const cases: Array<[string[], RegExp]> = [
      [['--protocol', 'nope', '--scenario', 'static-call-retarget'], /unknown protocol 'nope'/],
      [['--protocol', 'memcpy', '--scenario', 'nope'], /unknown scenario 'nope'/],
      [['--protocol', 'memcpy'], /--scenario is required/],
      [['--scenario', 'static-call-retarget'], /--protocol is required/],
      [['--protocol', 'memcpy', '--scenario', join(dir, 'missing.json')], /cannot read scenario file/],
      [['--protocol', 'memcpy', '--scenario', bad], /differ in length/],
      [['--protocol', 'memcpy', '--scenario', notJson], /x\.json: not JSON/],
      [['--protocol', 'memcpy', '--scenario', 'static-call-retarget', '--fetch-unit', '3'], /power of two/],
      [['--table', '--protocol', 'memcpy'], /--table runs every built-in pair/],
      [
        ['--protocol', 'memcpy', '--scenario', 'static-call-retarget', '--contract', 'sloppy'],
        /--contract: expected architectural or aligned-8/,
      ],
      [
        ['--protocol', 'memcpy', '--scenario', 'static-call-retarget', '--contract', 'aligned-8', '--fetch-unit', '8'],
        /either --contract or --fetch-unit/,
      ],
    ];
    for (const [args, re] of cases) {
      const r = await cli(...args);
      assert.equal(r.code, 2, args.join(' '));
      assert.match(r.err, re);
      assert.equal(r.err.trim().split('\n').length, 1, r.err);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
