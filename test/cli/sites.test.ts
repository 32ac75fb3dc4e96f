import test from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assemble, tempDir } from '../support/build.js';
import { corpus, repoRoot } from '../support/corpus.js';
import { setAddend, setSectionField, SH_SIZE } from '../support/mutate.js';

const bin = join(repoRoot, 'bin', 'textpoke.js');
function run(args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', maxBuffer: 1 << 28 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

const obj = assemble('sites/tables61.S');

test('sites: terminal table with symbol+offset, bytes, instructions and feature names, then totals', () => {
  const r = run(['sites', obj]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /linux 6\.1\.38-test \(profile linux-6\.1\.38\)/);
  assert.match(
    r.out,
    /\.altinstructions\s+func\+0x9\s+e8 00 00 00 00 90 90 90\s+call fallback; nop; nop; nop\s+X86_FEATURE_POPCNT\s+-> popcnt %rdi,%rax/,
  );
  assert.match(r.out, /\.altinstructions\s+func\+0x11\s+0f ae e8\s+lfence\s+!X86_FEATURE_ALWAYS/);
  assert.match(r.out, /__mcount_loc\s+func\+0x4\s+e8 00 00 00 00\s+call __fentry__/);
  assert.match(r.out, /\.smp_locks\s+func\+0x30\s+f0 ff 05 00 00 00 00\s+lock incl/);
  assert.match(r.out, /totals: .*\.altinstructions 2.*__mcount_loc 1/);
});

test('sites --json keeps the documented keys; --summary drops sites; --table filters', () => {
  const r = run(['sites', '--json', obj]);
  assert.equal(r.code, 0, r.err);
  const doc = JSON.parse(r.out);
  const f = doc.files[0];
  assert.equal(f.path, obj);
  assert.deepEqual(Object.keys(f.target).slice(0, 3), ['os', 'version', 'profile']);
  assert.equal(f.target.os, 'linux');
  assert.equal(f.counts['__jump_table'], 2);
  assert.deepEqual(f.errors, []);
  const alt = f.sites.find((s: { table: string }) => s.table === '.altinstructions');
  for (const k of ['table', 'index', 'address', 'symbol', 'offset', 'length', 'feature']) assert.ok(k in alt, k);
  assert.equal(alt.symbol, 'func');
  assert.equal(alt.offset, 9);
  assert.equal(alt.length, 8);
  assert.equal(alt.feature, 'X86_FEATURE_POPCNT');
  const s = JSON.parse(run(['sites', '--json', '--summary', obj]).out).files[0];
  assert.equal(s.sites, undefined);
  assert.equal(s.counts['.return_sites'], 1);
  const t = JSON.parse(run(['sites', '--json', '--table', '.smp_locks,__mcount_loc', obj]).out).files[0];
  assert.deepEqual(Object.keys(t.counts).sort(), ['.smp_locks', '__mcount_loc']);
});

test('files that cannot be used: one line per file naming it, exit 1, the good files still reported; a missing path is exit 2 with nothing written', () => {
  const dir = tempDir();
  const good = join(dir, 'good.o');
  copyFileSync(obj, good);
  const bytes = readFileSync(obj);
  const files: Record<string, Uint8Array | string> = {
    'text.o': 'this is not an ELF file\n',
    'truncated.o': bytes.subarray(0, bytes.length - 300),
    'badsize.o': setSectionField(bytes, '.altinstructions', SH_SIZE, 13n),
    'outside.o': setAddend(bytes, '.rela.altinstructions', 0, 0x7fff0000n),
    'hugesec.o': setSectionField(bytes, '.text', 24, 0xfffffff0n),
  };
  for (const [n, b] of Object.entries(files)) writeFileSync(join(dir, n), b);
  const paths = [good, ...Object.keys(files).map((n) => join(dir, n))];
  const r = run(['sites', '--summary', ...paths]);
  assert.equal(r.code, 1, r.err);
  const lines = r.err.trim().split('\n');
  assert.equal(lines.length, 5, r.err);
  assert.ok(!/\n\s+at /.test(r.err), 'no stack trace');
  assert.match(r.err, /text\.o: not an ELF file/);
  assert.match(r.err, /truncated\.o: .*(truncated|outside the file)/);
  assert.match(r.err, /badsize\.o: \.altinstructions: size 13 is not a multiple of the 12-byte entry/);
  assert.match(r.err, /outside\.o: \.altinstructions entry 0: site address 0x[0-9a-f]+ lies outside every section/);
  assert.match(r.err, /hugesec\.o: section \d+ .*lies outside the file/);
  assert.match(r.out, /good\.o: linux/);
  assert.match(r.out, /6 files, 5 with errors/);
  const m = run(['sites', '--summary', ...paths, join(dir, 'missing.o')]);
  assert.equal(m.code, 2);
  assert.equal(m.out, '');
  assert.equal(m.err, `textpoke: ${join(dir, 'missing.o')}: no such file\n`);
});

test('a directory is searched recursively for ELF files and compressed modules; other files skipped', () => {
  const dir = tempDir();
  mkdirSync(join(dir, 'a/b'), { recursive: true });
  copyFileSync(obj, join(dir, 'a/b/one.ko'));
  copyFileSync(corpus.module61('fs/xfs/xfs.ko'), join(dir, 'a/xfs.ko'));
  writeFileSync(join(dir, 'a/README'), 'not a module');
  writeFileSync(join(dir, 'notes.txt.xz'), 'not a module either');
  const r = run(['sites', '--json', '--summary', dir]);
  assert.equal(r.code, 0, r.err);
  const doc = JSON.parse(r.out);
  assert.deepEqual(
    doc.files.map((f: { path: string }) => f.path.slice(dir.length)),
    ['/a/b/one.ko', '/a/xfs.ko'],
  );
  assert.equal(doc.files[1].counts['__jump_table'], 652);
});

test('usage errors exit 2 with one line', () => {
  const r = run(['sites', '--table', '.nonsense', obj]);
  assert.equal(r.code, 2);
  assert.match(r.err, /unknown table '\.nonsense'/);
  assert.equal(run(['sites']).code, 2);
  assert.equal(run(['no-such-command']).code, 2);
});
