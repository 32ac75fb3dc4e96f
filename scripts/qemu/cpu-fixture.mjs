#!/usr/bin/env node
/**
 * Saves one ground-truth run's CPU files as a test fixture (test/fixtures/cpu/qemu-*): the guest's /proc/cpuinfo,
 * /proc/cmdline and vulnerabilities files (what `--cpu-from` and `attest --cpu host` read) beside
 * kernel-features.txt, the oracle: every feature bit the booted kernel set (boot_cpu_data) and its
 * x86_return_thunk, with the feature table they are named in.
 *
 *   node scripts/qemu/cpu-fixture.mjs --json RUN.json --kernel 7.3 --model EPYC-Rome --out test/fixtures/cpu/qemu-7-epyc-rome
 *
 * RUN.json is `scripts/qemu-groundtruth.mjs --attest --json` output; the files come from that run's attest root.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const arg = (n) => {
  const i = process.argv.indexOf(n);
  if (i < 0 || i + 1 >= process.argv.length) {
    console.error(`cpu-fixture: ${n} is required`);
    process.exit(2);
  }
  return process.argv[i + 1];
};
const json = JSON.parse(readFileSync(arg('--json'), 'utf8'));
const kernel = arg('--kernel');
const model = arg('--model');
const out = arg('--out');
const run = json.runs.find((r) => r.kernel === kernel && r.model === model);
if (!run) {
  console.error(`cpu-fixture: no run ${kernel} ${model} in the JSON`);
  process.exit(2);
}
const mod = run.comparison?.modules?.find((m) => m.features?.kernel);
if (!mod) {
  console.error('cpu-fixture: the run has no kernel capabilities');
  process.exit(1);
}
const root = join(run.systemMap, '..', 'attest', 'root');
rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, 'vulnerabilities'), { recursive: true });
writeFileSync(join(out, 'cpuinfo'), readFileSync(join(root, 'proc/cpuinfo')));
writeFileSync(join(out, 'cmdline'), readFileSync(join(root, 'proc/cmdline')));
const vd = join(root, 'sys/devices/system/cpu/vulnerabilities');
for (const f of readdirSync(vd)) writeFileSync(join(out, 'vulnerabilities', f), readFileSync(join(vd, f)));
writeFileSync(
  join(out, 'kernel-features.txt'),
  [
    `# Every feature bit the booted kernel set (boot_cpu_data.x86_capability, read from guest memory by scripts/qemu-groundtruth.mjs), and its x86_return_thunk`,
    `# kernel ${run.guest.release}, model ${model}, table ${mod.target.features}`,
    `table ${mod.target.features}`,
    ...mod.features.kernel.names,
    `thunk ${mod.features.kernel.thunk}`,
  ].join('\n') + '\n',
);
console.log(`${out}: ${mod.features.kernel.names.length} features, thunk ${mod.features.kernel.thunk}`);
