/**
 * Cross-check with SPIN: every built-in protocol x scenario, written as Promela by --promela, must get
 * the same verdict from SPIN (spin -a, gcc, pan) as from textpoke's own explorer. Needs the Debian
 * package `spin` (installed by `npm test` through scripts/setup-system.mjs) and gcc; fails, never skips, when they are missing.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  compile,
  explore,
  FETCH_CONTRACTS,
  findProtocol,
  findScenario,
  parseScenarioFile,
  PROTOCOLS,
  SCENARIOS,
  toPromela,
} from '../../src/model/index.js';
import type { FetchContract, Model } from '../../src/model/index.js';
import { EXPECTED, expectedVerdict } from './expected.js';

const execFileP = promisify(execFile);
/** The spin executable: SPIN_PATH, or `spin` on PATH (Debian package spin). */
const SPIN = process.env.SPIN_PATH ?? 'spin';
/** Each spin, gcc or pan run is killed past this (the largest model takes a few seconds). */
const STEP_MS = 120_000;
const run = (cmd: string, args: string[], opts: { cwd: string; maxBuffer?: number }) =>
  execFileP(cmd === 'spin' ? SPIN : cmd, args, { ...opts, timeout: STEP_MS, killSignal: 'SIGKILL' });

/** One probe per file: a spin that is missing or cannot start fails every test at once with this line. */
let spinProblem: string | null | undefined;
function requireSpin(): void {
  if (spinProblem === undefined) {
    const r = spawnSync(SPIN, ['-V'], { encoding: 'utf8', timeout: 10_000, killSignal: 'SIGKILL' });
    spinProblem = r.error
      ? `spin cannot start (${SPIN}): ${(r.error as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : r.error.message} (apt-get install spin, or set SPIN_PATH)`
      : r.status !== 0 || !/Spin Version/.test(r.stdout)
        ? `spin cannot start (${SPIN}): \`${SPIN} -V\` exited ${r.status ?? r.signal} without a version (apt-get install spin, or set SPIN_PATH)`
        : null;
  }
  if (spinProblem) {
    const e = new Error(spinProblem);
    e.stack = `Error: ${spinProblem}`;
    throw e;
  }
}

interface SpinVerdict {
  verdict: 'safe' | 'unsafe';
  states: number;
  assertion: string;
}

async function spinVerdict(model: Model): Promise<SpinVerdict> {
  requireSpin();
  const dir = mkdtempSync(join(tmpdir(), 'textpoke-spin-'));
  try {
    writeFileSync(join(dir, 'model.pml'), toPromela(model));
    await run('spin', ['-a', 'model.pml'], { cwd: dir });
    await run('gcc', ['-O0', '-w', '-DSAFETY', '-DNOREDUCE', '-DMEMLIM=2048', '-o', 'pan', 'pan.c'], { cwd: dir });
    const { stdout } = await run('./pan', ['-E', '-m1000000'], { cwd: dir, maxBuffer: 1 << 24 });
    const errors = /errors: (\d+)/.exec(stdout);
    assert.ok(errors, `pan printed no error count:\n${stdout}`);
    assert.doesNotMatch(stdout, /max search depth too small/);
    assert.doesNotMatch(stdout, /invalid array index|hlen < H/, 'the Promela model itself overflowed');
    return {
      verdict: Number(errors[1]) === 0 ? 'safe' : 'unsafe',
      states: Number(/(\d+) states, stored/.exec(stdout)?.[1] ?? 0),
      assertion: /assertion violated\s+(\S+)/.exec(stdout)?.[1] ?? '',
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs jobs two at a time (spin and gcc are single-threaded). */
async function pool<T>(jobs: Array<() => Promise<T>>, width = 2): Promise<T[]> {
  const out: T[] = new Array(jobs.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < jobs.length) {
        const i = next++;
        out[i] = await jobs[i]!();
      }
    }),
  );
  return out;
}

test('spin and gcc are installed (CI installs the Debian package spin)', { timeout: 30_000 }, () => {
  requireSpin();
  assert.doesNotThrow(() => execFileSync('gcc', ['--version'], { timeout: 10_000 }), 'gcc is missing');
});

test('SPIN reaches the same verdict as textpoke on every built-in protocol x scenario, and where the fetch contract changes it', {
  timeout: 600_000,
}, async () => {
  // Every pair under the default (architectural) contract; under aligned-8 the pairs whose verdict the
  // relaxation changes (the others are pinned under aligned-8 by table.test.ts; SPIN runs cost a gcc each).
  const all = PROTOCOLS.flatMap((p) => SCENARIOS.map((s) => ({ k: 'architectural' as FetchContract, p, s })));
  const relaxed = all
    .filter(({ p, s }) => EXPECTED.architectural[p.name]![s.name] !== EXPECTED['aligned-8'][p.name]![s.name])
    .map((x) => ({ ...x, k: 'aligned-8' as FetchContract }));
  assert.ok(relaxed.length > 0);
  const pairs = [...all, ...relaxed];
  const results = await pool(
    pairs.map(({ k, p, s }) => async () => ({
      k,
      p: p.name,
      s: s.name,
      spin: await spinVerdict(compile(p, { ...s, fetchUnit: FETCH_CONTRACTS[k] })),
    })),
  );
  const wrong = results.filter((r) => r.spin.verdict !== expectedVerdict(r.k, r.p, r.s));
  assert.deepEqual(
    wrong.map((r) => `${r.p} on ${r.s} (${r.k}): SPIN says ${r.spin.verdict} (${r.spin.assertion})`),
    [],
  );
  // SPIN explores without symmetry reduction, so it stores at least as many states on the safe runs.
  for (const r of results.filter((x) => x.spin.verdict === 'safe')) assert.ok(r.spin.states > 1, `${r.p}/${r.s}`);
});

test('SPIN agrees on the deadlock examples (custom protocols from scenario files)', { timeout: 300_000 }, async () => {
  for (const f of ['wait-handler-self-deadlock.json', 'wait-handler-sync-deadlock.json']) {
    const path = new URL(`../../../examples/model/${f}`, import.meta.url);
    const scen = parseScenarioFile(readFileSync(path, 'utf8'), f);
    const model = compile(undefined, scen);
    const ours = explore(model);
    assert.equal(ours.property, 'deadlock');
    const spin = await spinVerdict(model);
    assert.equal(spin.verdict, 'unsafe');
    assert.match(spin.assertion, /deadlock/);
  }
});

test('SPIN agrees on the batched text-poke API: the June 2025 bug and the overflow are found, the fix is safe', {
  timeout: 600_000,
}, async () => {
  const cases: Array<[string, string, string]> = [
    ['smp-text-poke-batch-c8976ade0c1b', 'jump-label-mixed-api', 'unhandled_int3'],
    ['smp-text-poke-batch-c8976ade0c1b', 'jump-label-mixed-api-full', 'vector_overflow'],
    ['smp-text-poke-batch', 'jump-label-mixed-api', ''],
    ['smp-text-poke-batch', 'jump-label-mixed-api-full', ''],
  ];
  const results = await pool(
    cases.map(
      ([p, s]) =>
        () =>
          spinVerdict(compile(findProtocol(p)!, findScenario(s)!)),
    ),
  );
  cases.forEach(([p, s, assertion], i) => {
    const r = results[i]!;
    assert.equal(r.verdict, assertion ? 'unsafe' : 'safe', `${p} on ${s}`);
    if (assertion) assert.match(r.assertion, new RegExp(assertion));
    else assert.ok(r.states > 100_000, `${p} on ${s}: ${r.states} states`);
  });
});
