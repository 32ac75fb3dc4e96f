/**
 * textpoke attest offline: a synthetic machine under a temporary root (sys/module/xfs/sections, proc/kallsyms,
 * the saved Skylake CPU files) whose /proc/kcore is built from `textpoke apply` outputs for the corpus 6.1
 * vmlinuz and xfs.ko. A clean copy attests clean; a planted hook (bytes overwritten inside an xfs function)
 * is caught and named; a jump label toggled to its jmp is explained, not flagged.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildKcore, Kcore } from '../../src/attest/kcore.js';
import { applyKaslr, readKaslrRelocs } from '../../src/attest/relocs.js';
import { Image } from '../../src/elf/image.js';
import { loadImage } from '../../src/elf/load.js';
import { readSites } from '../../src/sites/read.js';
import { sitesOf } from '../../src/sites/site.js';
import { profileById } from '../../src/target/profile.js';
import { tempDir } from '../support/build.js';
import { corpus, repoRoot } from '../support/corpus.js';

const bin = join(repoRoot, 'bin', 'textpoke.js');
function run(args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', maxBuffer: 1 << 28, timeout: 300_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

const root = tempDir('textpoke-attest-');
const LOAD = 0xffffffffc1000000n;

async function machine(): Promise<{
  kcoreChunks: Array<{ vaddr: bigint; bytes: Uint8Array; name: string }>;
  xfs: Image;
  load: Map<string, bigint>;
}> {
  cpSync(join(repoRoot, 'test', 'fixtures', 'cpu', 'skylake'), root, { recursive: true });
  const modDir = join(root, 'lib/modules/6.1.0-test/kernel/fs/xfs');
  mkdirSync(modDir, { recursive: true });
  const ko = join(modDir, 'xfs.ko');
  copyFileSync(corpus.module61('fs/xfs/xfs.ko'), ko);
  const xfs = Image.parse(readFileSync(ko), ko);
  // Load addresses, one page-aligned region per allocated section, as /sys/module/xfs/sections lists them.
  const secDir = join(root, 'sys/module/xfs/sections');
  mkdirSync(secDir, { recursive: true });
  const load = new Map<string, bigint>();
  let at = LOAD;
  for (const s of xfs.sections) {
    if (!s.alloc || s.size === 0) continue;
    load.set(s.name, at);
    writeFileSync(join(secDir, s.name), `0x${at.toString(16)}\n`);
    at += (BigInt(s.size) + 0xfffn) & ~0xfffn;
  }
  // kallsyms: _text where .text is linked (no KASLR) and an address for every symbol xfs imports.
  const core = (await loadImage(readFileSync(corpus.vmlinuz61), 'vmlinuz')).image;
  const text = core.base + BigInt(core.section('.text')!.addr);
  const lines = [`${text.toString(16)} T _text`];
  let imp = 0xffffffff90000000n;
  for (const s of xfs.symbols)
    if (s.name && s.shndx === 0) {
      lines.push(`${imp.toString(16)} T ${s.name}`);
      imp += 16n;
    }
  mkdirSync(join(root, 'proc'), { recursive: true });
  writeFileSync(join(root, 'proc/kallsyms'), lines.join('\n') + '\n');
  // The prediction, from the command line: apply for the same CPU files, load addresses and symbols.
  const xo = join(root, 'xfs.patched.ko');
  let r = run([
    'apply',
    '--quiet',
    '--cpu-from',
    root,
    '--load-file',
    secDir,
    '--symbols',
    join(root, 'proc/kallsyms'),
    ko,
    '-o',
    xo,
  ]);
  assert.equal(r.code, 0, r.err);
  const vo = join(root, 'vmlinux.patched');
  r = run([
    'apply',
    '--quiet',
    '--cpu-from',
    root,
    '--profile',
    'linux-6.1',
    '--symbols',
    join(root, 'proc/kallsyms'),
    corpus.vmlinuz61,
    '-o',
    vo,
  ]);
  assert.ok(r.code === 0 || r.code === 1, r.err.slice(0, 500));
  const chunks: Array<{ vaddr: bigint; bytes: Uint8Array; name: string }> = [];
  const vp = Image.parse(readFileSync(vo), vo);
  const vt = vp.section('.text')!;
  chunks.push({ vaddr: vp.base + BigInt(vt.addr), bytes: new Uint8Array(vp.sectionBytes(vt)), name: 'vmlinux .text' });
  const xp = Image.parse(readFileSync(xo), xo);
  for (const s of xp.sections)
    if (s.alloc && s.exec && s.size && load.has(s.name))
      chunks.push({ vaddr: load.get(s.name)!, bytes: new Uint8Array(xp.sectionBytes(s)), name: s.name });
  return { kcoreChunks: chunks, xfs, load };
}

const ready = machine();

function attest(kcore: string, extra: string[] = []): { code: number; out: string; err: string } {
  return run([
    'attest',
    '--vmlinuz',
    corpus.vmlinuz61,
    '--profile',
    'linux-6.1',
    '--modules',
    join(root, 'lib/modules/6.1.0-test'),
    '--kcore',
    kcore,
    '--sysfs',
    root,
    ...extra,
  ]);
}

test('the kcore reader maps addresses through PT_LOAD segments', () => {
  const k = Kcore.open(
    (() => {
      const b = buildKcore([{ vaddr: 0xffffffff81000000n, bytes: new Uint8Array([1, 2, 3, 4]) }]);
      return (o: number, n: number) => b.subarray(o, o + n);
    })(),
  );
  assert.deepEqual([...k.read(0xffffffff81000001n, 2)!], [2, 3]);
  assert.equal(k.read(0xffffffff81000003n, 2), undefined);
  assert.equal(k.read(0xffffffff80000000n, 1), undefined);
});

test('attest: a kcore that holds exactly the prediction has nothing unexplained (exit 0)', async () => {
  const { kcoreChunks } = await ready;
  const p = join(root, 'kcore.clean');
  writeFileSync(p, buildKcore(kcoreChunks));
  const r = attest(p, ['--json']);
  assert.equal(r.code, 0, r.err + r.out.slice(0, 2000));
  const doc = JSON.parse(r.out);
  assert.equal(doc.counts.unexplained, 0);
  const names = doc.objects.map((o: { object: string }) => o.object);
  assert.deepEqual(names, ['vmlinux', 'xfs']);
  const vm = doc.objects[0];
  assert.equal(vm.sections[0].name, '.text');
  assert.equal(vm.sections[0].compared, vm.sections[0].size);
  assert.equal(vm.sections[0].differing, 0);
  assert.ok(
    doc.objects[1].sections.some((s: { name: string; compared: number }) => s.name === '.text' && s.compared > 500_000),
  );
});

test('attest: a planted hook is caught and named; a toggled jump label is explained (text, JSON, SARIF; exit 1)', async () => {
  const { kcoreChunks, xfs, load } = await ready;
  const chunks = kcoreChunks.map((c) => ({ ...c, bytes: new Uint8Array(c.bytes) }));
  const text = chunks.find((c) => c.name === '.text')!;
  const textSec = xfs.section('.text')!;
  // The hook: a jmp written over the first bytes after xfs_file_read_iter's entry (ftrace NOP and ENDBR untouched).
  const fn = xfs.symbol('xfs_file_read_iter')!;
  const hookOff = fn.addr - textSec.addr + 9;
  text.bytes.set([0xe9, 0x11, 0x22, 0x33, 0x44], hookOff);
  // The jump label: the first 2-byte site in .text, switched from its NOP to the jmp to its target.
  const { sites } = readSites(
    Image.parse(readFileSync(corpus.module61('fs/xfs/xfs.ko')), 'xfs.ko', { load }),
    profileById('linux-6.1')!,
    {},
  );
  const jl = sitesOf(sites, '__jump_table').find(
    (s) =>
      s.length === 2 &&
      s.target &&
      xfs.sectionAt(s.addr)?.name === '.text' &&
      Math.abs(s.target.addr - s.addr - 2) < 120,
  )!;
  assert.ok(jl, 'a short jump label site');
  const img = Image.parse(readFileSync(corpus.module61('fs/xfs/xfs.ko')), 'xfs.ko', { load });
  const off = jl.addr - img.section('.text')!.addr;
  assert.deepEqual([...text.bytes.subarray(off, off + 2)], [0x66, 0x90], 'predicted NOP');
  text.bytes.set([0xeb, (jl.target!.addr - (jl.addr + 2)) & 0xff], off);
  const p = join(root, 'kcore.hooked');
  writeFileSync(p, buildKcore(chunks));

  const t = attest(p);
  assert.equal(t.code, 1, t.err);
  assert.match(t.out, /UNEXPLAINED xfs: xfs_file_read_iter\+0x[0-9a-f]+ \(0xffffffffc1[0-9a-f]+, \.text\)/);
  assert.match(t.out, /live: +e9 11 22 33 44/);
  assert.match(t.out, /unexplained: 1$/m);
  assert.match(t.out, /xfs .*jump-label 1/);

  const j = attest(p, ['--json']);
  assert.equal(j.code, 1);
  const doc = JSON.parse(j.out);
  assert.equal(doc.counts.unexplained, 1);
  const runs = doc.objects.find((o: { object: string }) => o.object === 'xfs').runs;
  const hook = runs.find((x: { class: string }) => x.class === 'unexplained');
  assert.match(hook.where, /^xfs_file_read_iter\+0x/);
  assert.ok(
    hook.liveAsm.some((l: string) => /^jmp /.test(l)),
    hook.liveAsm.join('; '),
  );
  assert.ok(hook.predictedAsm.length > 0);
  const label = runs.find((x: { class: string }) => x.class === 'jump-label');
  assert.match(label.explanation, new RegExp(`jump label ${jl.key!.name}: jmp to `));
  assert.equal(label.address, `0x${(load.get('.text')! + BigInt(off)).toString(16)}`);

  const s = attest(p, ['--sarif']);
  assert.equal(s.code, 1);
  const sarif = JSON.parse(s.out);
  assert.equal(sarif.version, '2.1.0');
  assert.equal(sarif.runs[0].results.length, 1);
  assert.match(
    sarif.runs[0].results[0].locations[0].logicalLocations[0].fullyQualifiedName,
    /^xfs:xfs_file_read_iter\+0x/,
  );
});

test("attest checks a static call site against its key where kcore has the key's memory (a live /proc/kcore does)", async () => {
  const { kcoreChunks, load } = await ready;
  const chunks = kcoreChunks.map((c) => ({ ...c, bytes: new Uint8Array(c.bytes) }));
  // xfs's tracepoint keys live in its .data: the patched module's .data as the loader relocated it.
  const xo = Image.parse(readFileSync(join(root, 'xfs.patched.ko')), 'xfs.patched.ko');
  chunks.push({
    vaddr: load.get('.data')!,
    bytes: new Uint8Array(xo.sectionBytes(xo.section('.data')!)),
    name: '.data',
  });
  const img = Image.parse(readFileSync(corpus.module61('fs/xfs/xfs.ko')), 'xfs.ko', { load });
  const { sites } = readSites(img, profileById('linux-6.1')!, {});
  const sc = sitesOf(sites, '.static_call_sites').find(
    (s) => !s.tail && img.sectionAt(s.addr)?.name === '.text' && img.sectionAt(s.key.addr)?.name === '.data',
  );
  assert.ok(sc, 'a call site whose key is in xfs .data');
  const text = chunks.find((c) => c.name === '.text')!;
  const off = sc.addr - img.section('.text')!.addr;
  // Clean: the site as predicted, the key as relocated: nothing to explain.
  const clean = join(root, 'kcore.keys');
  writeFileSync(clean, buildKcore(chunks));
  const c = attest(clean, ['--json']);
  assert.equal(c.code, 0, c.out.slice(0, 2000));
  // The site made `xor %eax,%eax` (__static_call_return0) while its key still holds its tracepoint function.
  text.bytes.set([0x2e, 0x2e, 0x2e, 0x31, 0xc0], off);
  const p = join(root, 'kcore.xor');
  writeFileSync(p, buildKcore(chunks));
  const j = attest(p, ['--json']);
  assert.equal(j.code, 1, j.err);
  const runs = JSON.parse(j.out).objects.find((o: { object: string }) => o.object === 'xfs').runs;
  const bad = runs.find((x: { class: string }) => x.class === 'unexplained');
  assert.ok(bad, JSON.stringify(runs.slice(0, 3)));
  assert.match(
    bad.explanation,
    new RegExp(`static call ${sc.key.name} site holds __static_call_return0 .*, but the key holds `),
  );
  assert.equal(bad.address, `0x${(load.get('.text')! + BigInt(off)).toString(16)}`);
});

test('attest: bad inputs are one line and exit 2', async () => {
  await ready;
  const junk = join(root, 'kcore.junk');
  writeFileSync(junk, 'not a core file');
  for (const [args, re] of [
    [['--kcore', junk], /kcore\.junk: not an ELF core file/],
    [['--kcore', join(root, 'missing')], /missing: no such file/],
  ] as Array<[string[], RegExp]>) {
    const r = run(['attest', '--vmlinuz', corpus.vmlinuz61, '--sysfs', root, ...args]);
    assert.equal(r.code, 2, r.out);
    assert.equal(r.err.trim().split('\n').length, 1, r.err);
    assert.match(r.err, re);
  }
});

test('attest with KASLR: the offset comes from kallsyms _text, the text is read there and predicted with the relocation table applied', async () => {
  const { kcoreChunks } = await ready;
  const delta = 0x2a000000n;
  const root2 = tempDir('textpoke-attest-kaslr-');
  cpSync(join(repoRoot, 'test', 'fixtures', 'cpu', 'skylake'), root2, { recursive: true });
  const core = (await loadImage(readFileSync(corpus.vmlinuz61), 'vmlinuz')).image;
  const text = core.section('.text')!;
  const linked = core.base + BigInt(text.addr);
  writeFileSync(join(root2, 'proc/kallsyms'), `${(linked + delta).toString(16)} T _text\n`);
  const dv = new DataView(core.bytes.buffer, core.bytes.byteOffset, core.bytes.byteLength);
  let end = Number(dv.getBigUint64(40, true)) + dv.getUint16(60, true) * 64;
  for (const s of core.sections) if (s.type !== 8) end = Math.max(end, s.offset + s.size);
  const vt = kcoreChunks.find((c) => c.name === 'vmlinux .text')!;
  // The prediction was made with the fake kallsyms of the first machine (imports only); the core text does not depend on them.
  const moved = new Uint8Array(vt.bytes);
  applyKaslr(moved, linked, readKaslrRelocs(core.bytes, end)!, delta);
  const p = join(root2, 'kcore');
  writeFileSync(p, buildKcore([{ vaddr: linked + delta, bytes: moved }]));
  const r = run([
    'attest',
    '--vmlinuz',
    corpus.vmlinuz61,
    '--profile',
    'linux-6.1',
    '--modules',
    root2,
    '--kcore',
    p,
    '--sysfs',
    root2,
    '--json',
  ]);
  assert.equal(r.code, 0, r.err + r.out.slice(0, 3000));
  const doc = JSON.parse(r.out);
  assert.ok(
    doc.notes.some((n: string) => /KASLR offset 0x2a000000 found from _text/.test(n)),
    doc.notes.join('\n'),
  );
  assert.equal(doc.objects[0].sections[0].address, `0x${(linked + delta).toString(16)}`);
  assert.equal(doc.objects[0].sections[0].differing, 0);
  // Without the relocations the same kcore would differ: the table matters.
  let differ = 0;
  for (let i = 0; i < moved.length; i++) if (moved[i] !== vt.bytes[i]) differ++;
  assert.ok(differ > 10_000, `${differ}`);
});
