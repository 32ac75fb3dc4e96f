/** --cpu host and --cpu-from on the command line of apply, diff and check. */
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../support/build.js';
import { corpus, repoRoot } from '../support/corpus.js';

const bin = join(repoRoot, 'bin', 'textpoke.js');
function run(args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', maxBuffer: 1 << 28, timeout: 180_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}
const fx = join(repoRoot, 'test', 'fixtures', 'cpu');

test('diff --cpu-from: a retpoline machine keeps the retpoline calls, a Zen 4 (AutoIBRS) machine makes them indirect calls', () => {
  const ko = corpus.module61('fs/xfs/xfs.ko');
  const sky = run(['diff', '--summary', '--cpu-from', join(fx, 'skylake'), ko]);
  assert.equal(sky.code, 0, sky.err);
  assert.match(sky.out, /--cpu from .*skylake: \d+ sites changed/);
  assert.match(sky.out, /note: --cpu from .*skylake: cpuinfo: GenuineIntel family 6 model 85/);
  assert.doesNotMatch(sky.out, /retpolines/);
  const zen = run(['diff', '--summary', '--cpu-from', join(fx, 'zen4.txt'), ko]);
  assert.equal(zen.code, 0, zen.err);
  assert.match(zen.out, /\d+\s+\d+\s+retpolines/);
  // Returns: a plain ret on Skylake (no return thunk), a jmp to srso_alias_return_thunk on Zen 4 (fewer bytes change).
  const bytes = (out: string): number => Number(/(\d+)\s+returns/.exec(out)![1]);
  assert.ok(bytes(sky.out) > bytes(zen.out), `${bytes(sky.out)} > ${bytes(zen.out)}`);
});

test('apply and check take --cpu host (this machine) and reject a bad --cpu-from with one line', () => {
  const ko = corpus.module61('fs/xfs/xfs.ko');
  const dir = tempDir();
  if (existsSync('/proc/cpuinfo')) {
    const a = run(['apply', '--cpu', 'host', ko, '-o', join(dir, 'x.ko')]);
    assert.equal(a.code, 0, a.err);
    assert.match(a.out, /writes for --cpu host/);
    assert.match(a.out, /note: --cpu host: cpuinfo: /);
    const c = run(['check', '--cpu', 'host', '--checks', 'site-boundary', ko]);
    assert.ok(c.code === 0 || c.code === 1, c.err);
  }
  const bad = run(['apply', '--cpu-from', join(fx, 'nope'), ko, '-o', join(dir, 'y.ko')]);
  assert.equal(bad.code, 2);
  assert.equal(bad.err.trim().split('\n').length, 1, bad.err);
  assert.match(bad.err, /nope: no such file/);
  assert.ok(!existsSync(join(dir, 'y.ko')));
  const none = run(['apply', ko, '-o', join(dir, 'z.ko')]);
  assert.equal(none.code, 2);
  assert.match(none.err, /--cpu SPEC, --cpu host or --cpu-from/);
});

test('surface and report take --cpu-from and --cpu host: retpoline calls stay thunk calls on the retpoline machine, become bare calls on Zen 4', () => {
  const ko = corpus.module61('fs/9p/9p.ko');
  const totals = (out: string): number[] => out.trim().split('\n').at(-1)!.trim().split(/\s+/).slice(1).map(Number);
  const sky = run(['surface', '--cpu-from', join(fx, 'skylake'), ko]);
  const zen = run(['surface', '--cpu-from', join(fx, 'zen4.txt'), ko]);
  assert.equal(sky.code, 0, sky.err);
  assert.equal(zen.code, 0, zen.err);
  const [skyBare, , skyThunk] = totals(sky.out);
  const [zenBare, , zenThunk] = totals(zen.out);
  assert.ok(skyThunk! > 0 && zenThunk === 0, `${sky.out}\n${zen.out}`);
  assert.equal(zenBare, skyBare! + skyThunk!);
  const dir = tempDir();
  const r = run(['report', '--cpu', 'host', '--model-states', '0', '-o', join(dir, 'r.html'), ko]);
  assert.equal(r.code, 0, r.err);
  assert.ok(existsSync(join(dir, 'r.html')));
});
