#!/usr/bin/env node
// `npm run bench`: every benchmark, peers side by side in one run. `--quick` for one run each.
// Results also go to bench/results/latest.json (git-ignored).
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cores, root } from './lib.mjs';

const quick = process.argv.includes('--quick');
const only = process.argv.find((a) => a.startsWith('--only='))?.slice(7).split(',');
const suites = ['sites', 'check', 'model', 'hypercalls', 'report'].filter((s) => !only || only.includes(s));
process.stdout.write(`textpoke benchmarks on ${cores} cores (${quick ? 'quick: 1 run each' : 'median of several runs'})\n`);
const all = {};
for (const s of suites) {
  const file = join(root, 'bench', `${s}.mjs`);
  if (!existsSync(file)) continue;
  const mod = await import(file);
  if (typeof mod.run === 'function') all[s] = await mod.run({ quick });
}
mkdirSync(join(root, 'bench', 'results'), { recursive: true });
const out = join(root, 'bench', 'results', 'latest.json');
writeFileSync(out + '.tmp', JSON.stringify({ date: new Date().toISOString(), cores, results: all }, null, 2));
renameSync(out + '.tmp', out);
