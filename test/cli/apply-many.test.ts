/**
 * apply and diff over several paths or a directory (the command-line contract, as sites has it):
 * - apply writes each input to OUT/<its path below the directory it was found under>, compressed modules
 *   decompressed with the suffix dropped, each byte for byte what apply on that file alone writes;
 * - a file that cannot be used is named once on stderr, exit 1, the others still written;
 * - OUT not empty, two inputs with one output name or a bad option: exit 2, one line, nothing written;
 * - diff prints each file's report in turn.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { tempDir } from '../support/build.js';
import { corpus, repoRoot } from '../support/corpus.js';

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

/** Every file below dir, as paths relative to it, sorted. */
function listing(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(relative(dir, p));
    }
  };
  walk(dir);
  return out.sort();
}

/** in/xfs.ko and in/tcp_bic.ko (6.1), in/sub/tcp_bic.ko.xz (6.12), in/junk.ko (ELF magic, then nothing usable). */
function tree(): { root: string; dir: string; xfs: string; bic: string; xz: string; junk: string } {
  const root = tempDir('textpoke-apply-many-');
  const dir = join(root, 'in');
  mkdirSync(join(dir, 'sub'), { recursive: true });
  const xfs = join(dir, 'xfs.ko');
  const bic = join(dir, 'tcp_bic.ko');
  const xz = join(dir, 'sub', 'tcp_bic.ko.xz');
  const junk = join(dir, 'junk.ko');
  copyFileSync(corpus.module61('fs/xfs/xfs.ko'), xfs);
  copyFileSync(corpus.module61('net/ipv4/tcp_bic.ko'), bic);
  copyFileSync(join(corpus.modules612, 'net', 'ipv4', 'tcp_bic.ko.xz'), xz);
  writeFileSync(junk, Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46]), Buffer.from('junk')]));
  return { root, dir, xfs, bic, xz, junk };
}

/** e_shnum and e_shoff of an ELF64 file: the section layout apply keeps. */
function sectionLayout(b: Buffer): { shnum: number; shoff: bigint } {
  assert.deepEqual([...b.subarray(0, 4)], [0x7f, 0x45, 0x4c, 0x46], 'an ELF file');
  return { shnum: b.readUInt16LE(0x3c), shoff: b.readBigUInt64LE(0x28) };
}

test('apply DIR -o OUT: every module written below OUT as apply writes it alone, the junk file named once, exit 1', {
  timeout: 300_000,
}, () => {
  const t = tree();
  const out = join(t.root, 'out');
  const r = run(['apply', t.dir, '--cpu', 'intel-server', '-o', out]);
  assert.equal(r.code, 1, r.err);
  assert.equal(r.err, `${t.junk}: truncated ELF header\n`);
  assert.doesNotMatch(r.err, NO_STACK);
  assert.deepEqual(
    listing(out),
    ['sub/tcp_bic.ko', 'tcp_bic.ko', 'xfs.ko'],
    'the .ko.xz written as .ko, no temporary file',
  );
  for (const f of [t.xfs, t.bic, t.xz])
    assert.match(r.out, new RegExp(`^${f}: \\d+ writes for --cpu intel-server -> `, 'm'));
  const alone = join(t.root, 'alone');
  mkdirSync(alone);
  for (const [input, name] of [
    [t.xfs, 'xfs.ko'],
    [t.bic, 'tcp_bic.ko'],
    [t.xz, 'sub/tcp_bic.ko'],
  ] as const) {
    const one = join(alone, name.replace('/', '-'));
    const a = run(['apply', input, '--cpu', 'intel-server', '-o', one, '--quiet']);
    assert.equal(a.code, 0, a.err);
    const many = readFileSync(join(out, name));
    assert.ok(many.equals(readFileSync(one)), `${name}: byte for byte what apply on ${input} alone writes`);
    if (!input.endsWith('.xz'))
      assert.deepEqual(sectionLayout(many), sectionLayout(readFileSync(input)), `${name}: the section layout kept`);
    else sectionLayout(many);
  }
});

test('apply FILE FILE -o OUT: a file named directly goes to OUT/<basename>, an empty OUT is taken', {
  timeout: 120_000,
}, () => {
  const t = tree();
  const out = join(t.root, 'out');
  mkdirSync(out);
  const r = run(['apply', t.bic, t.xz, t.junk, '--cpu', 'intel-server', '-o', join(out, 'a'), '--quiet']);
  assert.equal(r.code, 2, 'both write tcp_bic.ko: a usage error found before writing');
  assert.equal(r.err, `textpoke: ${join(out, 'a', 'tcp_bic.ko')}: would be written from both ${t.bic} and ${t.xz}\n`);
  assert.equal(r.out, '');
  assert.deepEqual(readdirSync(out), [], 'OUT not even created');
  const ok = run(['apply', t.xfs, t.xz, '--cpu', 'intel-server', '-o', out, '--quiet']);
  assert.equal(ok.code, 0, ok.err);
  assert.equal(ok.err, '');
  assert.deepEqual(listing(out), ['tcp_bic.ko', 'xfs.ko']);
});

test('apply PATH... -o OUT: OUT not empty, OUT a file or a bad --cpu is exit 2 with one line and nothing written', {
  timeout: 120_000,
}, () => {
  const t = tree();
  const out = join(t.root, 'out');
  mkdirSync(out);
  writeFileSync(join(out, 'keep'), 'mine\n');
  const r = run(['apply', t.dir, '--cpu', 'intel-server', '-o', out]);
  assert.equal(r.code, 2);
  assert.equal(r.err, `textpoke: ${out}: not empty (apply writes into a new or empty directory)\n`);
  assert.equal(r.out, '');
  assert.deepEqual(listing(out), ['keep']);
  assert.equal(readFileSync(join(out, 'keep'), 'utf8'), 'mine\n');
  const file = join(out, 'keep');
  const f = run(['apply', t.xfs, t.bic, '--cpu', 'intel-server', '-o', file]);
  assert.equal(f.code, 2);
  assert.equal(f.err, `textpoke: ${file}: not a directory (several inputs need an output directory)\n`);
  assert.equal(readFileSync(file, 'utf8'), 'mine\n');
  // A --cpu no kernel knows, found when the first usable module is read.
  const fresh = join(t.root, 'fresh');
  const c = run(['apply', t.dir, '--cpu', 'pentium', '-o', fresh]);
  assert.equal(c.code, 2);
  assert.match(c.err, /^textpoke: unknown CPU preset 'pentium'.*\n$/);
  assert.equal(c.out, '');
  assert.ok(!existsSync(fresh));
  // A feature 6.12 knows and 6.1 does not: sub/tcp_bic.ko.xz (6.12) is patched first, then tcp_bic.ko (6.1) fails;
  // what was written for the first is removed again.
  const late = run(['apply', t.dir, '--cpu', 'intel-server,+AVX_IFMA', '-o', fresh]);
  assert.equal(late.code, 2);
  assert.match(late.err, /^textpoke: unknown CPU feature 'AVX_IFMA' for feature table linux-6\.1[.\d]*\n$/);
  assert.equal(late.out, '');
  assert.ok(!existsSync(fresh));
  mkdirSync(fresh);
  const lateEmpty = run(['apply', t.dir, '--cpu', 'intel-server,+AVX_IFMA', '-o', fresh]);
  assert.equal(lateEmpty.code, 2);
  assert.deepEqual(readdirSync(fresh), [], 'an empty OUT given is left empty');
  rmSync(fresh, { recursive: true });
  const missing = join(t.root, 'System.map');
  const m = run(['apply', t.dir, '--cpu', 'intel-server', '--symbols', missing, '-o', fresh]);
  assert.equal(m.code, 2);
  assert.equal(m.err, `textpoke: --symbols ${missing}: no such file\n`);
  assert.ok(!existsSync(fresh));
  assert.deepEqual(listing(t.dir), ['junk.ko', 'sub/tcp_bic.ko.xz', 'tcp_bic.ko', 'xfs.ko'], 'the inputs untouched');
});

test("diff DIR: each file's report in turn, the junk file named once, exit 1", { timeout: 300_000 }, () => {
  const t = tree();
  const r = run(['diff', t.dir, '--cpu', 'intel-server', '--summary']);
  assert.equal(r.code, 1, r.err);
  assert.equal(r.err, `${t.junk}: truncated ELF header\n`);
  const heads = [...r.out.matchAll(/^(\S+): --cpu intel-server: (\d+) sites changed$/gm)].map((m) => m[1]);
  assert.deepEqual(heads, [t.xz, t.bic, t.xfs], 'one report per usable file, in the order they were found');
  assert.equal(r.out.match(/^summary \(sites changed, bytes changed\):$/gm)?.length, 3);
  // Each report is the one diff prints for that file alone.
  const alone = run(['diff', t.bic, '--cpu', 'intel-server', '--summary']);
  assert.equal(alone.code, 0, alone.err);
  assert.ok(r.out.includes(alone.out), 'the one-file report appears unchanged');
  // --json: one object per file, the junk one with its error only; one file gives the same shape.
  const j = run(['diff', t.dir, '--cpu', 'intel-server', '--json']);
  assert.equal(j.code, 1, j.err);
  assert.equal(j.err, `${t.junk}: truncated ELF header\n`);
  const doc = JSON.parse(j.out) as {
    files: { path: string; errors: string[]; sites?: { where: string; before: string[]; after: string[] }[] }[];
  };
  assert.deepEqual(
    doc.files.map((f) => f.path),
    [t.junk, t.xz, t.bic, t.xfs],
  );
  assert.deepEqual(doc.files[0]!.errors, ['truncated ELF header']);
  for (const f of doc.files.slice(1)) {
    assert.deepEqual(f.errors, [], f.path);
    assert.ok(f.sites && f.sites.length > 0 && f.sites[0]!.after.length > 0, `${f.path}: its sites`);
  }
  const j1 = run(['diff', t.bic, '--cpu', 'intel-server', '--json', '--summary']);
  assert.equal(j1.code, 0, j1.err);
  const one = JSON.parse(j1.out) as { files: { path: string; summary: { label: string; sites: number }[] }[] };
  assert.deepEqual(
    one.files.map((f) => f.path),
    [t.bic],
  );
  assert.ok(one.files[0]!.summary.length > 0);
  const two = run(['diff', t.bic, t.xfs, '--cpu', 'intel-server', '--function', 'bictcp_cong_avoid']);
  assert.equal(two.code, 0, two.err);
  assert.match(two.out, new RegExp(`^${t.bic}: --cpu intel-server: \\d+ sites changed in bictcp_cong_avoid$`, 'm'));
  assert.match(two.out, new RegExp(`^${t.xfs}: --cpu intel-server: 0 sites changed in bictcp_cong_avoid$`, 'm'));
});

test('apply DIR -o OUT interrupted (SIGTERM, SIGINT) once outputs are pending: no temporary file and no OUT left, killed by that signal', {
  timeout: 180_000,
}, async () => {
  const root = tempDir('textpoke-apply-kill-');
  const dir = join(root, 'in');
  mkdirSync(dir);
  for (let i = 0; i < 24; i++) copyFileSync(corpus.module61('fs/xfs/xfs.ko'), join(dir, `xfs${i}.ko`));
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    const out = join(root, `out-${sig}`);
    const p = spawn(process.execPath, [bin, 'apply', dir, '--cpu', 'intel-server', '-o', out, '--quiet'], {
      stdio: 'ignore',
    });
    const exited = new Promise<NodeJS.Signals | null>((res) => p.on('exit', (_code, s) => res(s)));
    // Wait for a pending output (a temporary file below OUT), then interrupt.
    const deadline = Date.now() + 120_000;
    let pending = false;
    while (!pending && Date.now() < deadline && p.exitCode === null) {
      await new Promise((r) => setTimeout(r, 20));
      pending = existsSync(out) && listing(out).some((f) => f.endsWith('.tmp'));
    }
    assert.ok(pending, `${sig}: a temporary output appeared before the run ended`);
    p.kill(sig);
    assert.equal(await exited, sig, `${sig}: the process died of the signal`);
    assert.ok(!existsSync(out), `${sig}: OUT removed (${existsSync(out) ? listing(out).join(', ') : ''})`);
  }
});

test('--preempt must be a mode the kernel version has: exit 2, one line, nothing written', { timeout: 120_000 }, () => {
  const root = tempDir('textpoke-apply-preempt-');
  const out = join(root, 'out.ko');
  const bic = corpus.module61('net/ipv4/tcp_bic.ko');
  const r = run(['apply', bic, '--cpu', 'none', '--preempt', 'lazy', '-o', out]);
  assert.equal(r.code, 2, r.err);
  assert.equal(r.err, `textpoke: ${bic}: --preempt lazy: Linux 6.1 to 6.2 has the modes none, voluntary, full\n`);
  assert.ok(!existsSync(out));
  assert.equal(run(['apply', bic, '--cpu', 'none', '--preempt', 'full', '-o', out, '--quiet']).code, 0);
  // 7.x has no voluntary mode (sched_dynamic_mode()).
  const x7 = join(corpus.modules7, 'net', 'ipv4', 'tcp_bic.ko.xz');
  const v = run(['apply', x7, '--cpu', 'none', '--preempt', 'voluntary', '-o', join(root, 'x7.ko')]);
  assert.equal(v.code, 2, v.err);
  assert.match(v.err, /--preempt voluntary: Linux 7\.0 to 7\.3 has the modes full, lazy\n$/);
});
