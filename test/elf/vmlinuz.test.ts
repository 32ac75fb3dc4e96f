/**
 * Kernel images (bzImage / vmlinuz) read directly. The oracle is independent of textpoke: the kernel's own
 * scripts/extract-vmlinux method (find the compression magic, pipe the rest through the system's xz or
 * zstd, keep what comes out if it is an ELF file) and readelf -S on what it extracted.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadImage } from '../../src/elf/load.js';
import { tempDir } from '../support/build.js';
import { corpus, repoRoot } from '../support/corpus.js';

const bin = join(repoRoot, 'bin', 'textpoke.js');
function run(args: string[], timeout = 240_000): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', maxBuffer: 1 << 30, timeout });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** scripts/extract-vmlinux: try each offset where the magic occurs; the first that decompresses to an ELF wins. */
function extractVmlinux(path: string): Buffer {
  const img = readFileSync(path);
  const tries: Array<[Buffer, string[]]> = [
    [Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), ['xz', '-dc']],
    [Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), ['zstd', '-dcq']],
    [Buffer.from([0x1f, 0x8b, 0x08]), ['gzip', '-dc']],
  ];
  for (const [magic, cmd] of tries) {
    for (let at = img.indexOf(magic); at >= 0; at = img.indexOf(magic, at + 1)) {
      const r = spawnSync(cmd[0]!, cmd.slice(1), { input: img.subarray(at), maxBuffer: 1 << 30, timeout: 120_000 });
      const out = r.stdout as Buffer;
      if (out && out.length > 4 && out.readUInt32BE(0) === 0x7f454c46) return out;
    }
  }
  throw new Error(`extract-vmlinux found no ELF payload in ${path}`);
}

interface ReadelfSection {
  name: string;
  offset: number;
  size: number;
}
function readelfSections(path: string): ReadelfSection[] {
  const r = spawnSync('readelf', ['-S', '-W', path], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  const out: ReadelfSection[] = [];
  for (const l of r.stdout.split('\n')) {
    const m = /^\s*\[\s*\d+\]\s+(\S+)\s+\S+\s+[0-9a-f]+\s+([0-9a-f]+)\s+([0-9a-f]+)/.exec(l);
    if (m) out.push({ name: m[1]!, offset: parseInt(m[2]!, 16), size: parseInt(m[3]!, 16) });
  }
  return out;
}

function readelfAddr(path: string, section: string): string {
  const r = spawnSync('readelf', ['-S', '-W', path], { encoding: 'utf8', timeout: 60_000 });
  const l = r.stdout.split('\n').find((x) => x.includes(` ${section} `));
  const m = l && /\]\s+\S+\s+\S+\s+([0-9a-f]+)/.exec(l);
  assert.ok(m, `readelf: no ${section}`);
  return `0x${m[1]}`;
}

/** Entry sizes from the kernel's structures (struct alt_instr: 12 bytes before 6.3's ft_flags, 14 after; paravirt_patch_site 16; the s32 lists 4). */
function entrySize(table: string, series: string): number {
  if (table === '.altinstructions') return series === '6.1' ? 12 : 14;
  if (table === '.parainstructions') return 16;
  return 4;
}
const SECTION_TABLES = [
  '.altinstructions',
  '.parainstructions',
  '.retpoline_sites',
  '.return_sites',
  '.call_sites',
  '.ibt_endbr_seal',
  '.smp_locks',
];

const KERNELS = [
  { name: '6.1', path: () => corpus.vmlinuz61, profile: 'linux-6.1', compression: 'xz' },
  { name: '6.12', path: () => corpus.vmlinuz612, profile: 'linux-6.8', compression: 'zstd' },
  { name: '7', path: () => corpus.vmlinuz7, profile: 'linux-6.8', compression: 'zstd' },
];

for (const k of KERNELS) {
  test(`vmlinuz ${k.name}: the ELF inside equals extract-vmlinux's, and sites' section-table counts equal readelf's`, async (t) => {
    const path = k.path();
    const oracle = extractVmlinux(path);
    const dir = tempDir();
    const ref = join(dir, 'vmlinux');
    writeFileSync(ref, oracle);
    const loaded = await loadImage(readFileSync(path), path);
    assert.equal(loaded.bzImage?.compression, k.compression);
    assert.equal(loaded.image.bytes.length, oracle.length);
    assert.equal(sha(loaded.image.bytes), sha(oracle));
    assert.equal(loaded.symbols, 'none');
    assert.match(
      loaded.image.symbol('linux_banner') ? 'banner' : '',
      /banner/,
      'the stripped image gets its banner located for detection',
    );

    // Detection reads the banner; 6.1's Debian banner also names gcc's Debian version, so the profile is given.
    const r = run(['sites', '--summary', '--json', '--profile', k.profile, path]);
    assert.equal(r.code, 0, r.err);
    const counts = JSON.parse(r.out).files[0].counts as Record<string, number>;
    const secs = readelfSections(ref);
    let compared = 0;
    for (const table of SECTION_TABLES) {
      const s = secs.find((x) => x.name === table);
      if (!s) {
        assert.equal(counts[table], undefined, `${table}: no section, no count`);
        continue;
      }
      let expected = s.size / entrySize(table, k.name);
      assert.ok(Number.isInteger(expected), `${table}: size ${s.size} is a whole number of entries`);
      // .smp_locks is padded to a page with zero words, which are no entries.
      if (table === '.smp_locks') {
        expected = 0;
        for (let o = s.offset; o < s.offset + s.size; o += 4) if (oracle.readInt32LE(o) !== 0) expected++;
      }
      assert.equal(counts[table], expected, `${table}: sites ${counts[table]}, readelf ${expected}`);
      compared++;
    }
    assert.ok(compared >= 4, `compared ${compared} tables`);
    t.diagnostic(`${k.name}: ${JSON.stringify(counts)}`);

    // The thunks the stripped image's tables branch to are named from that evidence; the oracle reads the
    // extracted file's bytes itself: every .return_sites entry is `e9 rel32` to the inferred return thunk, and
    // objdump shows a ret there and each register's retpoline (`mov %REG,(%rsp)`) in its inferred thunk.
    const img = loaded.image;
    const thunk = img.symbol('__x86_return_thunk');
    assert.ok(thunk, `${k.name}: __x86_return_thunk inferred (${loaded.notes.join('; ')})`);
    const rs = secs.find((x) => x.name === '.return_sites')!;
    const rsAddr = BigInt(readelfAddr(ref, '.return_sites'));
    const textAddr = BigInt(readelfAddr(ref, '.text'));
    const text = secs.find((x) => x.name === '.text')!;
    let checked = 0;
    for (let o = 0; o < rs.size; o += 4 * 97) {
      const site = rsAddr + BigInt(o) + BigInt(oracle.readInt32LE(rs.offset + o));
      const fo = text.offset + Number(site - textAddr);
      if (site < textAddr || site >= textAddr + BigInt(text.size)) continue; // init/exit text
      assert.equal(oracle[fo], 0xe9, `return site ${site.toString(16)} is a jmp rel32`);
      const dest = site + 5n + BigInt(oracle.readInt32LE(fo + 1));
      assert.equal(dest, img.base + BigInt(thunk.addr), `return site ${site.toString(16)} jumps to the inferred thunk`);
      checked++;
    }
    assert.ok(checked > 100, `${checked} return sites compared`);
    const array = img.symbol('__x86_indirect_thunk_array');
    assert.ok(array, `${k.name}: __x86_indirect_thunk_array inferred`);
    // Every distinct destination of the .retpoline_sites branches (decoded here from the bytes: [cs] e8/e9
    // rel32 or 0f 8x rel32) is named as a register's thunk, and nothing past a thunk takes its name.
    const rp = secs.find((x) => x.name === '.retpoline_sites')!;
    const rpAddr = BigInt(readelfAddr(ref, '.retpoline_sites'));
    const dests = new Set<bigint>();
    for (let o = 0; o < rp.size; o += 4) {
      const site = rpAddr + BigInt(o) + BigInt(oracle.readInt32LE(rp.offset + o));
      if (site < textAddr || site >= textAddr + BigInt(text.size)) continue;
      let fo = text.offset + Number(site - textAddr);
      let len = 5;
      if (oracle[fo] === 0x2e) {
        fo++;
        len++;
      }
      const at = oracle[fo] === 0x0f ? fo + 2 : fo + 1;
      if (oracle[fo] === 0x0f) len++;
      dests.add(site + BigInt(len) + BigInt(oracle.readInt32LE(at)));
    }
    assert.ok(dests.size >= 10, `${dests.size} thunks used`);
    for (const d of dests) {
      const s = img.symbolize(Number(d - img.base));
      assert.ok(
        s.offset === 0 && /^__x86_indirect_thunk_(?!array)/.test(s.name),
        `${d.toString(16)} (a .retpoline_sites destination) is named ${s.name}+${s.offset}`,
      );
    }
    assert.equal(
      img.symbolize(thunk.addr + 1).name,
      '.text',
      "the byte after the return thunk's ret stays .text+offset",
    );
    const thunks = [
      '__x86_return_thunk',
      ...['rax', 'rcx', 'rdx', 'rbx', 'rbp', 'rsi', 'rdi', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15'].map(
        (r) => `__x86_indirect_thunk_${r}`,
      ),
    ];
    for (const name of thunks) {
      const sym = img.symbol(name);
      if (!sym) continue; // a register no retpoline site uses
      const at = img.base + BigInt(sym.addr);
      const d = spawnSync(
        'objdump',
        ['-d', `--start-address=0x${at.toString(16)}`, `--stop-address=0x${(at + 16n).toString(16)}`, ref],
        { encoding: 'utf8', timeout: 60_000 },
      );
      const reg = name.replace('__x86_indirect_thunk_', '');
      assert.match(
        d.stdout,
        name === '__x86_return_thunk' ? /:\s+c3\s+ret/ : new RegExp(`mov\\s+%${reg},\\(%rsp\\)`),
        `${name}: ${d.stdout}`,
      );
    }
  });
}

test('apply, diff and check take a vmlinuz; apply writes the patched vmlinux ELF with the sections of the extracted one', () => {
  const path = corpus.vmlinuz612;
  const dir = tempDir();
  const out = join(dir, 'patched');
  const a = run(['apply', '--quiet', '--cpu', 'intel-server', '--profile', 'linux-6.8', path, '-o', out]);
  assert.ok(a.code === 0 || a.code === 1, a.err.slice(0, 2000));
  const ref = join(dir, 'vmlinux');
  writeFileSync(ref, extractVmlinux(path));
  const want = readelfSections(ref).map((s) => `${s.name} ${s.size}`);
  assert.deepEqual(
    readelfSections(out).map((s) => `${s.name} ${s.size}`),
    want,
  );
  assert.notEqual(sha(readFileSync(out)), sha(readFileSync(ref)), 'the text was patched');
  const d = run(['diff', '--cpu', 'intel-server', '--profile', 'linux-6.8', path]);
  assert.ok(d.code === 0 || d.code === 1, d.err.slice(0, 2000));
  assert.match(d.out, /\.altinstructions|alternatives|X86_FEATURE/);
  const c = run(['check', '--json', '--profile', 'linux-6.8', path]);
  assert.ok(c.code === 0 || c.code === 1, c.err.slice(0, 2000));
  const rep = JSON.parse(c.out);
  assert.equal(rep.files?.[0]?.path ?? rep.files?.[0]?.file ?? path, path);
  // With the thunks inferred, the site lists agree with the code (before, each of the 60,000 return sites and
  // 8,800 retpoline sites of this stripped image read as "not a jmp to the return thunk").
  assert.doesNotMatch(c.out, /is not a jmp to the return thunk|is not a call\/jmp to a retpoline thunk/);
  assert.ok(
    rep.files[0].target.notes.some((n: string) => /__x86_return_thunk inferred/.test(n)),
    'the load notes are in the report',
  );
  const n = (c.out.match(/"check":\s*"(retpoline|rethunk)"/g) ?? []).length;
  assert.ok(n < 200, `${n} retpoline/rethunk findings`);
});

test('check on the 7.3 vmlinuz leaves out its writable, executable .data (code and data mixed, no symbols) and says so', () => {
  const path = corpus.vmlinuz7;
  const c = run(['check', '--json', path]);
  assert.ok(c.code === 0 || c.code === 1, c.err.slice(0, 2000));
  const f = JSON.parse(c.out).files[0];
  assert.ok(
    f.target.notes.some((n: string) => /\.data not checked: writable and executable/.test(n)),
    JSON.stringify(f.target.notes),
  );
  const ref = join(tempDir(), 'vmlinux');
  writeFileSync(ref, extractVmlinux(path));
  const data = readelfSections(ref).find((s) => s.name === '.data');
  const flags = spawnSync('readelf', ['-S', '-W', ref], { encoding: 'utf8' })
    .stdout.split('\n')
    .find((l) => / \.data /.test(l));
  assert.ok(data && flags && /WAX/.test(flags), `7.3's .data is WAX: ${flags}`);
  const lo = BigInt(readelfAddr(ref, '.data'));
  const inData = f.findings.filter((x: { address: string }) => {
    const a = BigInt(x.address);
    return a >= lo && a < lo + BigInt(data.size);
  });
  assert.equal(inData.length, 0, 'no finding decoded from .data');
  assert.ok(f.findings.length < 200, `${f.findings.length} findings`);
});

test('a truncated or corrupt vmlinuz: one line naming the file; apply exits 2 and writes nothing, sites reports it as an unusable file (exit 1)', () => {
  const src = readFileSync(corpus.vmlinuz612);
  const dir = tempDir();
  const cut = join(dir, 'vmlinuz-cut');
  writeFileSync(cut, src.subarray(0, src.length >> 1));
  const bad = join(dir, 'vmlinuz-bad');
  const flipped = Buffer.from(src);
  for (let i = 0; i < 64; i++) flipped[(src.length >> 1) + i * 997] ^= 0x5a;
  writeFileSync(bad, flipped);
  for (const f of [cut, bad]) {
    const out = join(dir, 'out');
    const r = run(['apply', '--cpu', 'none', '--profile', 'linux-6.8', f, '-o', out]);
    assert.equal(r.code, 2, r.out);
    const lines = r.err.trim().split('\n');
    assert.equal(lines.length, 1, r.err);
    assert.ok(lines[0]!.includes(f), lines[0]);
    assert.doesNotMatch(r.err, /\n\s+at /);
    assert.ok(!existsSync(out));
    const s = run(['sites', '--summary', f]);
    assert.equal(s.code, 1); // docs/testing.md, the command-line contract: a file read but not usable is a finding
    assert.match(s.err, new RegExp(`^${f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: (truncated bzImage|corrupt zstd)`));
  }
});

/** A minimal bzImage around `elf`: boot header at 0x1f1.., payload right after two sectors (setup_sects 1). */
function bzImage(payload: Buffer, size: number): Buffer {
  const head = Buffer.alloc(1024);
  head[0x1f1] = 1;
  head.writeUInt16LE(0xaa55, 0x1fe);
  head.write('HdrS', 0x202, 'latin1');
  head.writeUInt16LE(0x20f, 0x206);
  const sz = Buffer.alloc(4);
  sz.writeUInt32LE(size);
  const body = Buffer.concat([payload, sz]);
  head.writeUInt32LE(0, 0x248);
  head.writeUInt32LE(body.length, 0x24c);
  return Buffer.concat([head, body]);
}

test('every payload format the kernel builds: gzip, xz (BCJ x86), zstd, lz4 (legacy frames), lzma, bzip2', async () => {
  const elf = readFileSync(corpus.module61('fs/cachefiles/cachefiles.ko'));
  const fmts: Array<[string, string[]]> = [
    ['gzip', ['gzip', '-9c']],
    ['xz', ['xz', '--check=crc32', '--x86', '--lzma2=dict=1MiB', '-c']],
    ['zstd', ['zstd', '-19', '-c', '-q']],
    ['lz4', ['lz4', '-l', '-9', '-c']],
    ['lzma', ['lzma', '-9', '-c']],
    ['bzip2', ['bzip2', '-9', '-c']],
  ];
  for (const [kind, cmd] of fmts) {
    const r = spawnSync(cmd[0]!, cmd.slice(1), { input: elf, maxBuffer: 1 << 28, timeout: 120_000 });
    assert.equal(r.status, 0, `${cmd.join(' ')}: ${r.stderr}`);
    const img = bzImage(r.stdout as Buffer, elf.length);
    const got = await loadImage(img, `bz-${kind}`);
    assert.equal(got.bzImage?.compression, kind);
    assert.equal(sha(got.image.bytes), sha(elf), kind);
  }
});
