import test from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { readdirSync } from 'node:fs';
import { corpus, repoRoot } from '../support/corpus.js';

/** Every .ko under a directory: the oracle for how many files a directory run must check. */
function countModules(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory()) n += countModules(join(dir, e.name));
    else if (e.name.endsWith('.ko')) n++;
  }
  return n;
}

const bin = join(repoRoot, 'bin', 'textpoke.js');

test('every Linux 6.1 module on the default patched view: retpoline and rethunk report nothing; site checks run on every module', () => {
  const checks =
    'retpoline,rethunk,sls,site-boundary,site-length,site-reloc,site-jump-label,site-static-call,site-smp-lock,site-mcount,site-cacheline';
  const r = spawnSync(process.execPath, [bin, 'check', '--checks', checks, '-j', '2', corpus.modules61], {
    encoding: 'utf8',
    maxBuffer: 1 << 28,
  });
  assert.equal(r.status, 0, r.stderr.slice(0, 2000));
  assert.equal(r.stderr, '');
  const files = countModules(corpus.modules61);
  assert.ok(files > 3000, `only ${files} modules in the corpus`);
  assert.match(r.stdout, new RegExp(`^\\n?${files} files checked, 0 findings\\n`, 'm'));
  for (const id of checks.split(',')) assert.match(r.stdout, new RegExp(`^  ${id}\\s+0$`, 'm'));
});
