/**
 * The test runner itself (scripts/run-tests.mjs), on a throw-away tree: a test that hangs, a file that
 * leaves a server listening after its tests pass, and a stale compiled test whose source is gone. The
 * runner must kill the first two at their limits, never run the third, and exit non-zero in bounded time.
 */
import test, { after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../support/build.js';
import { repoRoot } from '../support/corpus.js';

const runner = join(repoRoot, 'scripts', 'run-tests.mjs');

const trees: string[] = [];
after(() => {
  for (const d of trees) rmSync(d, { recursive: true, force: true });
});

function tree(files: Record<string, string>): string {
  const dir = tempDir('textpoke-runner-');
  trees.push(dir);
  writeFileSync(join(dir, 'package.json'), '{"type": "module"}\n');
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(join(dir, rel, '..'), { recursive: true });
    writeFileSync(join(dir, rel), text);
  }
  return dir;
}

function runTree(dir: string, env: Record<string, string>, args: string[] = []) {
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [runner, ...args], {
    encoding: 'utf8',
    env: { ...process.env, TEXTPOKE_TEST_ROOT: dir, ...env },
    timeout: 60_000,
    killSignal: 'SIGKILL',
  });
  return { code: r.status, signal: r.signal, out: `${r.stdout}\n${r.stderr}`, ms: Date.now() - t0 };
}

test('a hanging test, and a file that leaves a server running, are killed; a stale compiled test never runs; the runner exits 1', {
  timeout: 90_000,
}, () => {
  const dir = tree({
    'test/ok.test.ts': '',
    'dist/test/ok.test.js': "import test from 'node:test'; test('passes', () => {});\n",
    'test/hang.test.ts': '',
    'dist/test/hang.test.js':
      "import test from 'node:test'; test('waits forever', () => new Promise(() => { setInterval(() => {}, 1000); }));\n",
    'test/server.test.ts': '',
    'dist/test/server.test.js':
      "import test from 'node:test'; import { createServer } from 'node:http';\n" +
      "test('starts a server and forgets it', async () => { await new Promise((ok) => createServer().listen(0, '127.0.0.1', ok)); });\n",
    // compiled from a test that was since deleted: must not run
    'dist/test/gone.test.js':
      "import test from 'node:test'; test('stale', () => { throw new Error('STALE TEST RAN'); });\n",
  });
  const r = runTree(dir, { TEXTPOKE_TEST_FILE_TIMEOUT: '8', TEXTPOKE_TEST_TIMEOUT: '4' });
  assert.equal(r.signal, null, `the runner itself had to be killed:\n${r.out}`);
  assert.equal(r.code, 1, r.out);
  assert.ok(r.ms < 30_000, `took ${r.ms} ms`);
  assert.doesNotMatch(r.out, /STALE TEST RAN/);
  assert.match(r.out, /ignoring 1 compiled test file\(s\) with no source: dist\/test\/gone\.test\.js/);
  assert.match(r.out, /3 files in \d+ s, 2 failed/);
  assert.match(r.out, /FAILED dist\/test\/hang\.test\.js: /);
  assert.match(r.out, /FAILED dist\/test\/server\.test\.js: /);
  assert.match(r.out, /test timed out after 4000ms/);
  assert.doesNotMatch(r.out, /FAILED dist\/test\/ok\.test\.js/);
  // With node's per-test limit out of reach, the file's own limit kills the process group.
  const k = runTree(dir, { TEXTPOKE_TEST_FILE_TIMEOUT: '5', TEXTPOKE_TEST_TIMEOUT: '600' }, ['server']);
  assert.equal(k.code, 1, k.out);
  assert.ok(k.ms < 20_000, `took ${k.ms} ms`);
  assert.match(k.out, /FAILED dist\/test\/server\.test\.js: killed after 5 s/);
});

test('the whole-run watchdog kills what is running and exits 1', { timeout: 60_000 }, () => {
  const dir = tree({
    'test/slow.test.ts': '',
    'dist/test/slow.test.js':
      "import test from 'node:test'; test('finishes', () => {}); test('sleeps', () => new Promise((ok) => setTimeout(ok, 120_000)));\n",
  });
  // 8 s: long enough for the first test's line to be out even on a loaded machine (with 3 s it once was not).
  const r = runTree(dir, { TEXTPOKE_TEST_RUN_TIMEOUT: '8' });
  assert.equal(r.code, 1, r.out);
  assert.ok(r.ms < 30_000, `took ${r.ms} ms`);
  assert.match(r.out, /passed its 8 s limit; killing dist\/test\/slow\.test\.js/);
  assert.match(r.out, /# dist\/test\/slow\.test\.js \(killed by the watchdog; its output so far\)\n[\s\S]*finishes/);
});

test('passing files exit 0; a filter that matches nothing exits 1 with one line', { timeout: 60_000 }, () => {
  const dir = tree({
    'test/ok.test.ts': '',
    'dist/test/ok.test.js': "import test from 'node:test'; test('passes', () => {});\n",
  });
  const ok = runTree(dir, {});
  assert.equal(ok.code, 0, ok.out);
  assert.match(ok.out, /1 files in \d+ s, 0 failed/);
  const none = runTree(dir, {}, ['no-such-test']);
  assert.equal(none.code, 1);
  assert.match(none.out, /no test files matching no-such-test/);
});

test('the browser tests with a browser that cannot start fail at once with one line, and the runner exits', {
  timeout: 150_000,
}, () => {
  for (const chromium of [join(tempDir(), 'no-chromium'), '/bin/false']) {
    const t0 = Date.now();
    const r = spawnSync(process.execPath, [runner, 'dist/test/e2e/', 'dist/test/report-html/escape'], {
      encoding: 'utf8',
      env: { ...process.env, CHROMIUM_PATH: chromium },
      timeout: 60_000,
      killSignal: 'SIGKILL',
    });
    const out = `${r.stdout}\n${r.stderr}`;
    const ms = Date.now() - t0;
    assert.equal(r.signal, null, `the runner did not exit within a minute:\n${out}`);
    assert.equal(r.status, 1, out);
    assert.ok(ms < 60_000, `${ms} ms`);
    assert.match(out, /run-tests: 3 files in \d+ s, 3 failed/);
    const reasons = out.split('\n').filter((l) => l.includes('BrowserUnavailable: chromium cannot start'));
    assert.ok(reasons.length >= 4, out);
    assert.ok(
      reasons.every((l) => l.includes(chromium)),
      'each reason names the executable',
    );
  }
});
