#!/usr/bin/env node
// Benchmark for `textpoke model`: explores the largest single-site scenario (static-call-retarget:
// 2 executing CPUs, an NMI and an #MC each) under every protocol and both fetch contracts, and the batch
// protocols on their multi-site scenarios; prints states/s, and compares with SPIN (the peer) on the
// biggest run when spin and gcc are installed.
// Usage: npm run build && node bench/model.mjs [--no-spin]
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BATCH_SCENARIOS, compile, explore, FETCH_CONTRACTS, findScenario, PROTOCOLS, toPromela } from 'textpoke/model';

const scenario = findScenario('static-call-retarget');
if (!scenario) throw new Error('scenario static-call-retarget is missing');
const rows = [];
let states = 0;
let seconds = 0;
let biggest =
  /** @type {{ model: any, states: number, seconds: number, protocol: string, scenario: string, contract: string } | null} */ (
    null
  );
const measure = (p, s, contract) => {
  const model = compile(p, { ...s, fetchUnit: FETCH_CONTRACTS[contract] });
  const t0 = performance.now();
  const r = explore(model);
  const sec = (performance.now() - t0) / 1000;
  rows.push({ protocol: p.name, scenario: s.name, contract, verdict: r.verdict, states: r.states, seconds: sec });
  states += r.states;
  seconds += sec;
  if (!biggest || r.states > biggest.states)
    biggest = { model, states: r.states, seconds: sec, protocol: p.name, scenario: s.name, contract };
};
for (const contract of Object.keys(FETCH_CONTRACTS)) for (const p of PROTOCOLS) measure(p, scenario, contract);
// The batch protocols on their multi-site scenarios (three jump labels, two callers).
for (const s of BATCH_SCENARIOS) for (const p of PROTOCOLS.filter((x) => x.multiSite)) measure(p, s, 'architectural');
if (!biggest) throw new Error('no protocols');
console.log(
  `textpoke model benchmark: scenario ${scenario.name} (2 executing CPUs, an NMI and an #MC each) under both fetch contracts, and the batch scenarios`,
);
for (const r of rows) {
  console.log(
    `  ${r.protocol.padEnd(33)} ${r.scenario.padEnd(30)} ${r.contract.padEnd(13)} ${r.verdict.padEnd(7)} ${String(r.states).padStart(9)} states  ${r.seconds.toFixed(2).padStart(6)} s  ${Math.round(
      r.states / Math.max(r.seconds, 1e-6),
    )
      .toString()
      .padStart(8)} states/s`,
  );
}
console.log(`  all runs: ${states} states in ${seconds.toFixed(2)} s = ${Math.round(states / seconds)} states/s`);
console.log(
  `  largest single run: ${biggest.protocol} on ${biggest.scenario} (${biggest.contract}), ${biggest.states} states in ${biggest.seconds.toFixed(2)} s (target: under 10 s) ${biggest.seconds < 10 ? 'OK' : 'TOO SLOW'}`,
);

if (!process.argv.includes('--no-spin')) {
  let have = true;
  try {
    execFileSync('spin', ['-V']);
    execFileSync('gcc', ['--version']);
  } catch {
    have = false;
  }
  if (!have) {
    console.log('  SPIN peer: spin or gcc not installed, skipped');
  } else {
    const dir = mkdtempSync(join(tmpdir(), 'textpoke-bench-'));
    try {
      writeFileSync(join(dir, 'model.pml'), toPromela(biggest.model));
      const t0 = performance.now();
      execFileSync('spin', ['-a', 'model.pml'], { cwd: dir });
      execFileSync('gcc', ['-O2', '-w', '-DSAFETY', '-DNOREDUCE', '-DMEMLIM=4096', '-o', 'pan', 'pan.c'], { cwd: dir });
      const t1 = performance.now();
      const out = execFileSync('./pan', ['-E', '-m1000000'], { cwd: dir, maxBuffer: 1 << 24 }).toString();
      const t2 = performance.now();
      const spinStates = Number(/(\d+) states, stored/.exec(out)?.[1] ?? 0);
      const run = (t2 - t1) / 1000;
      console.log(
        `  SPIN peer (${biggest.protocol} on ${biggest.scenario}): ${spinStates} states (no symmetry reduction) in ${run.toFixed(2)} s = ${Math.round(spinStates / run)} states/s; spin -a + gcc -O2 took ${((t1 - t0) / 1000).toFixed(2)} s`,
      );
      console.log(
        `  ratio (time to a verdict, textpoke / SPIN incl. compile): ${(biggest.seconds / ((t2 - t0) / 1000)).toFixed(2)}`,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}
