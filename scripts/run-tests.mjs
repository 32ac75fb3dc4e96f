#!/usr/bin/env node
// Runs the compiled test files (dist/test/**/*.test.js) with node's test runner, two files at a time (those
// that boot VMs one at a time), each in its own process group with a time limit, under a watchdog for the
// whole run; the runner always exits.
//
// - Only files compiled from current sources run: dist/test/X.test.js is picked only when test/X.test.ts
//   exists (tsc never deletes the output of a removed or renamed test).
// - Every test has node's --test-timeout; every file has a wall-clock limit, after which its whole process
//   group (the test process and any server, browser, VM or model checker it started) is killed and the file
//   fails with one line. A file whose tests finished but whose process stays alive (an open server or
//   child) is killed the same way.
// - The whole run has a watchdog: past it every running file is killed and the runner exits non-zero.
//
// TEXTPOKE_TEST_ROOT runs another tree's tests (the runner's own test uses it).
// Arguments are substrings of dist/test paths (only matching files run). Limits (seconds) can be changed
// with TEXTPOKE_TEST_FILE_TIMEOUT (default 900), TEXTPOKE_TEST_TIMEOUT (per test, default file limit - 30)
// and TEXTPOKE_TEST_RUN_TIMEOUT (default 1800); TEXTPOKE_TEST_JOBS sets how many files run at once (2).
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join, relative, resolve, dirname, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = process.env.TEXTPOKE_TEST_ROOT
  ? resolve(process.env.TEXTPOKE_TEST_ROOT)
  : resolve(dirname(fileURLToPath(import.meta.url)), '..');
const seconds = (name, dflt) => {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) {
    process.stderr.write(`run-tests: ${name}=${v} is not a positive number of seconds\n`);
    process.exit(2);
  }
  return n;
};
const fileLimit = seconds('TEXTPOKE_TEST_FILE_TIMEOUT', 900);
const testLimit = seconds('TEXTPOKE_TEST_TIMEOUT', Math.max(1, fileLimit - 30));
const runLimit = seconds('TEXTPOKE_TEST_RUN_TIMEOUT', 1800);
const jobs = Math.max(1, Math.floor(seconds('TEXTPOKE_TEST_JOBS', 2)));

const filter = process.argv.slice(2);
const distTest = join(root, 'dist', 'test');
function find(dir, out = []) {
  if (!existsSync(dir)) return out;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) find(p, out);
    else if (e.name.endsWith('.test.js')) out.push(p);
  }
  return out;
}
const compiled = find(distTest).sort();
const stale = compiled.filter((f) => !existsSync(join(root, 'test', relative(distTest, f)).replace(/\.js$/, '.ts')));
const files = compiled
  .filter((f) => !stale.includes(f))
  .filter((f) => !filter.length || filter.some((x) => f.includes(x)));
if (stale.length)
  process.stderr.write(
    `run-tests: ignoring ${stale.length} compiled test file(s) with no source: ${stale.map((f) => relative(root, f)).join(', ')}\n`,
  );
if (!files.length) {
  process.stderr.write(
    `run-tests: no test files ${filter.length ? `matching ${filter.join(' ')} ` : ''}under dist/test (run npm run build first)\n`,
  );
  process.exit(1);
}

const running = new Map(); // pid -> { name, child }
function killGroup(child) {
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    /* already gone */
  }
}
function killAll() {
  for (const { child } of running.values()) killGroup(child);
}
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    killAll();
    process.stderr.write(`run-tests: ${sig}: killed the running test files\n`);
    process.exit(130);
  });
}
process.on('exit', killAll);

// A runner started from inside a test (the runner's own test) must not look like a nested node:test run.
/** @type {NodeJS.ProcessEnv} */
const childEnv = { ...process.env, FORCE_COLOR: process.stdout.isTTY ? '1' : '0' };
delete childEnv.NODE_TEST_CONTEXT;

/** Runs one file in its own process group; resolves to its result, never rejects, always within the file limit. */
function runFile(file) {
  const name = relative(root, file);
  const started = Date.now();
  return new Promise((done) => {
    const child = spawn(
      process.execPath,
      ['--test', '--test-reporter=spec', `--test-timeout=${Math.round(testLimit * 1000)}`, file],
      {
        cwd: root,
        detached: true, // a process group of its own: killed as a whole
        stdio: ['ignore', 'pipe', 'pipe'],
        env: childEnv,
      },
    );
    const chunks = [];
    running.set(child.pid, { name, child, chunks });
    child.stdout.on('data', (b) => chunks.push(b));
    child.stderr.on('data', (b) => chunks.push(b));
    let reason = '';
    const timer = setTimeout(() => {
      reason = `killed after ${fileLimit} s (the file's time limit): a test hung or left a server, browser or child process running`;
      killGroup(child);
    }, fileLimit * 1000);
    child.on('error', (e) => {
      reason = `could not start: ${e.message}`;
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      running.delete(child.pid);
      // Whatever the file started and left behind goes with it.
      killGroup(child);
      const ok = code === 0 && !reason;
      if (!reason && code !== 0) reason = signal ? `killed by ${signal}` : `exit ${code}`;
      done({ name, ok, reason, output: Buffer.concat(chunks).toString('utf8'), ms: Date.now() - started });
    });
  });
}

const watchdog = setTimeout(() => {
  // What the killed files printed so far says where they were.
  for (const r of running.values())
    process.stdout.write(
      `\n# ${r.name} (killed by the watchdog; its output so far)\n${Buffer.concat(r.chunks).toString('utf8')}`,
    );
  process.stderr.write(
    `\nrun-tests: the run passed its ${runLimit} s limit; killing ${[...running.values()].map((r) => r.name).join(', ') || 'nothing'}\n`,
  );
  killAll();
  process.exit(1);
}, runLimit * 1000);

// The files that boot VMs (test/groundtruth/) keep both cores busy on their own: they run one at a time, in
// the first lane and first (they are the longest), while the other lanes take the rest; two of them at once
// would run four guests on two cores and double their time.
const vm = (f) => relative(distTest, f).startsWith(`groundtruth${sep}`);
const vmFiles = files.filter(vm);
const others = files.filter((f) => !vm(f));
const results = [];
async function lane(own) {
  for (let f = own.shift() ?? others.shift(); f; f = own.shift() ?? others.shift()) {
    const r = await runFile(f);
    process.stdout.write(
      `\n# ${r.name} (${(r.ms / 1000).toFixed(1)} s)${r.ok ? '' : ` FAILED: ${r.reason}`}\n${r.output}`,
    );
    results.push(r);
  }
}
const t0 = Date.now();
await Promise.all(Array.from({ length: Math.min(jobs, files.length) }, (_, i) => lane(i === 0 ? vmFiles : [])));
clearTimeout(watchdog);
const failed = results.filter((r) => !r.ok);
process.stdout.write(
  `\nrun-tests: ${results.length} files in ${((Date.now() - t0) / 1000).toFixed(0)} s, ${failed.length} failed\n`,
);
for (const r of failed) process.stdout.write(`  FAILED ${r.name}: ${r.reason}\n`);
process.exit(failed.length ? 1 : 0);
