#!/usr/bin/env node
// `npm run bench`: every benchmark, peers side by side in one run. `--quick` for one run each;
// `--only=a,b` for some suites (the suites are the bench/*.mjs files that export run()).
// A suite whose command fails (non-zero exit, killed, not started) is not timed: it is reported with the
// reason, left out of the results, and the run exits 1. Each suite that ran (not --quick) writes
// bench/results/SUITE.txt (what it printed) and SUITE.json (its numbers); they are committed, and
// docs/benchmarks.md quotes them.
import { mkdirSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { cores, root } from './lib.mjs';

const ORDER = ['sites', 'check', 'vmlinux', 'model', 'report'];
const known = readdirSync(join(root, 'bench'))
  .filter((n) => n.endsWith('.mjs') && n !== 'lib.mjs' && n !== 'run.mjs')
  .map((n) => n.slice(0, -4))
  .sort((a, b) => (ORDER.indexOf(a) + 1 || 99) - (ORDER.indexOf(b) + 1 || 99) || (a < b ? -1 : 1));
const quick = process.argv.includes('--quick');
const only = process.argv
  .find((a) => a.startsWith('--only='))
  ?.slice(7)
  .split(',')
  .filter(Boolean);
const unknown = (only ?? []).filter((s) => !known.includes(s));
if (unknown.length) {
  process.stderr.write(`bench: no suite ${unknown.join(', ')} (suites: ${known.join(', ')})\n`);
  process.exit(2);
}
const suites = known.filter((s) => !only || only.includes(s));
process.stdout.write(
  `textpoke benchmarks on ${cores} cores (${quick ? 'quick: 1 run each' : 'median of several runs'}): ${suites.join(', ')}\n`,
);
const all = {};
const failed = [];
const resultsDir = join(root, 'bench', 'results');
mkdirSync(resultsDir, { recursive: true });
const date = new Date().toISOString();
const machine = `${cores} cores, ${os.cpus()[0]?.model ?? 'unknown CPU'}, Node.js ${process.version}`;
const write = (name, text) => {
  writeFileSync(join(resultsDir, `${name}.tmp`), text);
  renameSync(join(resultsDir, `${name}.tmp`), join(resultsDir, name));
};
for (const s of suites) {
  // What the suite prints is kept, as printed, in bench/results/SUITE.txt (committed: the figures the
  // docs quote), beside its numbers in SUITE.json.
  const printed = [];
  const stdoutWrite = process.stdout.write.bind(process.stdout);
  process.stdout.write = (chunk, ...rest) => {
    printed.push(String(chunk));
    return stdoutWrite(chunk, ...rest);
  };
  try {
    // A suite without run() is a script that did its work (and printed it) when imported.
    const mod = await import(join(root, 'bench', `${s}.mjs`));
    all[s] = typeof mod.run === 'function' ? await mod.run({ quick }) : { printed: true };
  } catch (e) {
    failed.push(`${s}: not timed, a run failed: ${e instanceof Error ? e.message : String(e)}`);
    continue;
  } finally {
    process.stdout.write = stdoutWrite;
  }
  // A --quick run (one run each) is a trial: it leaves the committed figures alone.
  if (quick) continue;
  write(`${s}.txt`, `npm run bench -- --only=${s}\n${date} on ${machine}\n${printed.join('')}`);
  write(`${s}.json`, `${JSON.stringify({ date, machine, results: all[s] }, null, 2)}\n`);
}
for (const f of failed) process.stderr.write(`bench: ${f}\n`);
process.exit(failed.length ? 1 : 0);
