/**
 * The benchmark plumbing (bench/lib.mjs, bench/run.mjs): a run that fails is never timed, and only suites
 * that exist are listed or accepted.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { tempDir } from '../support/build.js';
import { repoRoot } from '../support/corpus.js';

interface BenchLib {
  exec(cmd: string, args: string[], o?: { ok?: number[] }): Promise<number>;
  median(runs: number, fn: () => Promise<unknown>): Promise<{ median: number }>;
  textpoke: string;
  RunFailed: new (m: string) => Error;
}
const lib = (): Promise<BenchLib> =>
  import(pathToFileURL(join(repoRoot, 'bench', 'lib.mjs')).href) as Promise<BenchLib>;

test('bench exec: a non-zero exit, a kill or a missing program rejects with the reason; accepted codes resolve', {
  timeout: 60_000,
}, async () => {
  const { exec, median, textpoke, RunFailed } = await lib();
  assert.equal(await exec('sh', ['-c', 'exit 0']), 0);
  assert.equal(await exec('sh', ['-c', 'exit 1'], { ok: [0, 1] }), 1);
  await assert.rejects(
    exec('sh', ['-c', 'echo boom >&2; exit 3']),
    (e: Error) => e instanceof RunFailed && /exit 3: boom/.test(e.message),
  );
  await assert.rejects(exec('sh', ['-c', 'kill -9 $$']), /killed by SIGKILL/);
  await assert.rejects(exec(join(tempDir(), 'no-such-program'), []), /could not start/);
  const missing = join(tempDir(), 'missing.ko');
  await assert.rejects(
    exec(process.execPath, [textpoke, 'sites', missing]),
    new RegExp(`exit 2: textpoke: ${missing}: no such file`),
  );
  // median() times nothing once a run fails.
  let runs = 0;
  await assert.rejects(
    median(5, async () => {
      runs++;
      await exec('sh', ['-c', 'exit 2']);
    }),
    /exit 2/,
  );
  assert.equal(runs, 1);
});

test('bench run: an unknown suite is refused with the list of those that exist', { timeout: 30_000 }, () => {
  const r = spawnSync(process.execPath, [join(repoRoot, 'bench', 'run.mjs'), '--only=hypercalls'], {
    encoding: 'utf8',
    timeout: 20_000,
  });
  assert.equal(r.status, 2);
  assert.equal(r.stderr, 'bench: no suite hypercalls (suites: sites, check, vmlinux, model, report)\n');
  assert.equal(r.stdout, '');
});
