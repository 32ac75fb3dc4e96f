/**
 * One command-line contract for every command that reads binaries (sites, check, surface, symbols
 * --ambiguous, report; apply and diff for one file here, over several in apply-many.test.ts):
 * - files, directories and compressed modules are taken alike;
 * - a file that is read but cannot be used is a finding: exit 1, named once on stderr, the other files still
 *   reported and the output still written;
 * - a path that does not exist, an empty directory or a bad option is exit 2 with one line and nothing written;
 * - addresses are never printed as negative hex.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../support/build.js';
import { corpus, repoRoot } from '../support/corpus.js';
import { setAddend } from '../support/mutate.js';

const bin = join(repoRoot, 'bin', 'textpoke.js');
function run(args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [bin, ...args], {
    encoding: 'utf8',
    maxBuffer: 1 << 28,
    timeout: 120_000,
    killSignal: 'SIGKILL',
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}
const NO_STACK = /\n\s+at |Error:|TypeError|RangeError/;

/** good.ko (6.1, plain), sub/tcp_bic.ko.xz (6.12, compressed), bad.ko (ELF magic, then nothing usable), a README skipped. */
function tree(): { dir: string; good: string; xz: string; bad: string } {
  const dir = tempDir('textpoke-contract-');
  mkdirSync(join(dir, 'sub'));
  const good = join(dir, 'good.ko');
  const xz = join(dir, 'sub', 'tcp_bic.ko.xz');
  const bad = join(dir, 'bad.ko');
  copyFileSync(corpus.module61('net/ipv4/tcp_bic.ko'), good);
  copyFileSync(join(corpus.modules612, 'net', 'ipv4', 'tcp_bic.ko.xz'), xz);
  writeFileSync(bad, Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46]), Buffer.from('garbage')]));
  writeFileSync(join(dir, 'README'), 'not a module\n');
  return { dir, good, xz, bad };
}

const COMMANDS: { name: string; args: (out: string) => string[]; output?: boolean }[] = [
  { name: 'sites', args: () => ['sites', '--json'] },
  { name: 'check', args: () => ['check', '--json'] },
  { name: 'check as built', args: () => ['check', '--json', '--cpu', 'as-built'] },
  { name: 'surface', args: () => ['surface', '--json'] },
  { name: 'symbols', args: () => ['symbols', '--ambiguous', '--json'] },
  { name: 'report', args: (out) => ['report', '-o', out, '--model-states', '0'], output: true },
];

for (const c of COMMANDS) {
  test(`${c.name}: a directory with a plain and a compressed module and a bad file: exit 1, the bad one named once, the others reported`, {
    timeout: 120_000,
  }, () => {
    const t = tree();
    const out = join(t.dir, 'out', 'r.html');
    mkdirSync(join(t.dir, 'out'));
    const r = run([...c.args(out), t.dir]);
    assert.equal(r.code, 1, r.err);
    assert.equal(r.err, `${t.bad}: truncated ELF header\n`);
    const text = c.output ? readFileSync(out, 'utf8') : r.out;
    for (const f of [t.good, t.xz, t.bad]) assert.ok(text.includes(f), `${f} is in the output`);
    assert.ok(!text.includes(join(t.dir, 'README')));
    if (!c.output) {
      const doc = JSON.parse(r.out) as { files: { path: string }[] };
      assert.ok(
        doc.files.some((f) => f.path === t.xz),
        'the compressed module is read',
      );
    } else assert.deepEqual(readdirSync(join(t.dir, 'out')), ['r.html'], 'no temporary file left');
  });

  test(`${c.name}: a path that does not exist is exit 2 with one line and nothing written`, { timeout: 60_000 }, () => {
    const t = tree();
    const missing = join(t.dir, 'missing.ko');
    const out = join(t.dir, 'r.html');
    const r = run([...c.args(out), t.good, missing]);
    assert.equal(r.code, 2);
    assert.equal(r.err, `textpoke: ${missing}: no such file\n`);
    assert.equal(r.out, '');
    assert.ok(!existsSync(out));
    const empty = join(t.dir, 'empty');
    mkdirSync(empty);
    const e = run([...c.args(out), empty]);
    assert.equal(e.code, 2);
    assert.equal(e.err, `textpoke: ${empty}: no ELF files or compressed modules in this directory\n`);
    assert.equal(e.out, '');
  });
}

test('symbols --ambiguous DIR searches the directory (it printed "DIR: is a directory" twice and exited 0)', {
  timeout: 60_000,
}, () => {
  const t = tree();
  const r = run(['symbols', '--ambiguous', join(t.dir, 'sub'), t.good]);
  assert.equal(r.code, 0, r.err);
  assert.equal(r.err, '');
  assert.doesNotMatch(r.out, /is a directory/);
  assert.match(r.out, new RegExp(`^${t.xz}: \\d+ local names repeat`, 'm'));
  assert.match(r.out, new RegExp(`^${t.good}: \\d+ local names repeat`, 'm'));
});

test('a --cpu no kernel knows is exit 2 before anything is read or written', { timeout: 60_000 }, () => {
  const t = tree();
  for (const cmd of ['check', 'surface']) {
    const r = run([cmd, '--cpu', 'pentium', t.dir]);
    assert.equal(r.code, 2, cmd);
    assert.equal(r.out, '', cmd);
    assert.match(r.err, /^textpoke: --cpu pentium: unknown CPU preset 'pentium'.*\n$/, cmd);
  }
});

/** xfs.ko with .smp_locks entry 3 pointing 0xffffffffffcb00 bytes before the module (a corrupt relocation). */
function smpLocksOutOfRange(dir: string): string {
  const f = join(dir, 'xfs-bad-lock.ko');
  writeFileSync(f, setAddend(readFileSync(corpus.module61('fs/xfs/xfs.ko')), '.rela.smp_locks', 3, -0xffffffffffcb00n));
  return f;
}

test('apply: one out-of-range .smp_locks entry is a finding: named with a real address, exit 1, output written', {
  timeout: 120_000,
}, () => {
  const dir = tempDir('textpoke-contract-');
  const f = smpLocksOutOfRange(dir);
  const out = join(dir, 'out.ko');
  const r = run(['apply', f, '--cpu', 'intel-server', '-o', out, '--quiet']);
  assert.equal(r.code, 1, r.err);
  // The entry's address wraps below zero: printed as the 64-bit value the CPU would use, never as 0x-….
  assert.match(
    r.err,
    new RegExp(`^${f}: \\.smp_locks entry 3: site address 0xff[0-9a-f]{14} lies outside every section\\n$`),
  );
  assert.ok(existsSync(out) && statSync(out).size === statSync(f).size, 'the patched copy is written');
  assert.deepEqual(readdirSync(dir).sort(), ['out.ko', 'xfs-bad-lock.ko']);
  const s = run(['sites', '--summary', f]);
  assert.equal(s.code, 1);
  assert.doesNotMatch(s.err + s.out, /0x-/);
  const d = run(['diff', f, '--cpu', 'intel-server', '--summary']);
  assert.equal(d.code, 1);
  assert.match(d.err, /\.smp_locks entry 3: site address 0xff[0-9a-f]{14} lies outside every section/);
  assert.doesNotMatch(d.err + d.out, /0x-/);
});

test('apply and diff: a file that cannot be read as ELF is exit 2 with one line, and no output file is left', {
  timeout: 60_000,
}, () => {
  const t = tree();
  const out = join(t.dir, 'out.ko');
  for (const args of [
    ['apply', t.bad, '--cpu', 'intel-server', '-o', out],
    ['diff', t.bad, '--cpu', 'intel-server'],
  ]) {
    const r = run(args);
    assert.equal(r.code, 2, args[0]);
    assert.equal(r.err, `textpoke: ${t.bad}: truncated ELF header\n`);
    assert.doesNotMatch(r.err, NO_STACK);
  }
  assert.ok(!existsSync(out));
  assert.deepEqual(
    readdirSync(t.dir).filter((n) => n.includes('tmp')),
    [],
  );
  // A compressed module is taken as input and written uncompressed.
  const x = run(['apply', t.xz, '--cpu', 'intel-server', '-o', out, '--quiet']);
  assert.equal(x.code, 0, x.err);
  assert.deepEqual([...readFileSync(out).subarray(0, 4)], [0x7f, 0x45, 0x4c, 0x46]);
});
