/**
 * The CLI on every build of the corpus: `sites`, `diff` (every preset), `surface` and `check` run without a crash
 * or an error line, and `sites` reports every feature named with no warning. Xen: the xen-syms file; Linux: a
 * sample of modules (every 400th, about ten per tree). Each run has a timeout: a hang is a failure, not a stall.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { expandPaths } from '../../src/cli/files.js';
import { PRESET_IDS } from '../../src/patch/index.js';
import { corpus, repoRoot } from '../support/corpus.js';

const bin = join(repoRoot, 'bin/textpoke.js');
function run(args: string[]): { out: string; err: string; code: number | null } {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', maxBuffer: 1 << 28, timeout: 300_000 });
  return { out: r.stdout, err: r.stderr, code: r.status };
}

const BUILDS: [string, () => string[]][] = [
  ['xen-4.17', () => [corpus.xenSyms]],
  ['xen-4.17-bookworm', () => [corpus.xenSyms417Bookworm]],
  ['xen-4.20', () => [corpus.xenSyms420]],
  ['linux-6.1', () => expandPaths([corpus.modules61]).filter((_, i) => i % 400 === 0)],
  ['linux-6.12', () => expandPaths([corpus.modules612]).filter((_, i) => i % 400 === 0)],
  ['linux-6.12-trixie', () => expandPaths([corpus.modules612Trixie]).filter((_, i) => i % 400 === 0)],
  ['linux-7', () => expandPaths([corpus.modules7]).filter((_, i) => i % 400 === 0)],
  ['linux-7-cloud', () => expandPaths([corpus.modules7Cloud]).filter((_, i) => i % 400 === 0)],
  ['linux-7-rt', () => expandPaths([corpus.modules7Rt]).filter((_, i) => i % 400 === 0)],
];

for (const [id, filesOf] of BUILDS) {
  test(`${id}: sites, diff under every preset, surface and check through the CLI: no crash, no error, every feature named, no warning`, () => {
    const files = filesOf();
    assert.ok(files.length >= 1);
    const sites = run(['sites', '--json', '-j', '1', ...files]);
    assert.equal(sites.code, 0, sites.err);
    assert.equal(sites.err, '');
    const doc = JSON.parse(sites.out) as {
      files: {
        path: string;
        target: { warnings: string[] };
        sites: { table: string; feature?: string | null }[];
        errors: string[];
      }[];
    };
    for (const f of doc.files) {
      assert.deepEqual(f.errors, [], f.path);
      assert.deepEqual(f.target.warnings, [], f.path);
      for (const s of f.sites)
        if (s.table === '.altinstructions') assert.match(s.feature ?? '', /^X86_(FEATURE|BUG|SPEC)_/, f.path);
    }
    for (const f of files.slice(0, 1)) {
      for (const p of PRESET_IDS) {
        const d = run(['diff', '--summary', '--cpu', p, f]);
        assert.equal(d.code, 0, `${p} ${f}: ${d.err}`);
        assert.doesNotMatch(d.err, /internal error|warning: (?!textpoke: )/, `${p} ${f}`);
      }
      const s = run(['surface', '--json', f]);
      assert.equal(s.code, 0, `${f}: ${s.err}`);
      assert.equal(s.err, '', f);
      JSON.parse(s.out);
    }
    const c = run(['check', '--json', '-j', '1', ...files]);
    assert.notEqual(c.code, 2, c.err);
    assert.doesNotMatch(c.err, /internal error|: warning: /);
    const cdoc = JSON.parse(c.out) as { files: { path: string; errors: string[]; target: { warnings: string[] } }[] };
    assert.equal(cdoc.files.length, files.length);
    for (const f of cdoc.files) {
      assert.deepEqual(f.errors, [], f.path);
      assert.deepEqual(f.target.warnings, [], f.path);
    }
  });
}
