import test from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { corpus, repoRoot } from '../support/corpus.js';

const bin = join(repoRoot, 'bin', 'textpoke.js');

test('all 4,022 Linux 6.1 modules on the default patched view: retpoline and rethunk report nothing; site checks run on every module', () => {
  const checks = 'retpoline,rethunk,sls,site-boundary,site-length,site-reloc,site-jump-label,site-static-call,site-smp-lock,site-mcount,site-cacheline';
  const r = spawnSync(process.execPath, [bin, 'check', '--checks', checks, '-j', '2', corpus.modules61], { encoding: 'utf8', maxBuffer: 1 << 28 });
  assert.equal(r.status, 0, r.stderr.slice(0, 2000));
  assert.equal(r.stderr, '');
  assert.match(r.stdout, /^\n?4022 files checked, 0 findings\n/m);
  for (const id of checks.split(',')) assert.match(r.stdout, new RegExp(`^  ${id}\\s+0$`, 'm'));
});
