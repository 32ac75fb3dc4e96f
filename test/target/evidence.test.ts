/**
 * Numbering and layout from a build's own evidence, on every Xen build of the corpus and on synthetic cases:
 * FSCAPINTS from known_features (readelf's symbol size is the oracle), every alternative named, no warning on
 * the builds as detected, and a warning naming the contradiction when a --profile disagrees with the file.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { Image } from '../../src/elf/image.js';
import { detectTarget, linuxTarget } from '../../src/target/detect.js';
import { featureName, featureNumber, featureTable, xenTableWithWords } from '../../src/target/features/index.js';
import { readSites } from '../../src/sites/read.js';
import { sitesOf } from '../../src/sites/site.js';
import { crossCheckSites } from '../../src/sites/crosscheck.js';
import { corpus, corpusVersion, pinned, repoRoot } from '../support/corpus.js';
import { assemble, tempDir } from '../support/build.js';
import { expandPaths } from '../../src/cli/files.js';
import { imageFromBytes } from '../../src/elf/load.js';

/** readelf -sW: size of a symbol (decimal column) and value. */
function readelfSymbol(path: string, name: string): { value: bigint; size: number } {
  const out = execFileSync('readelf', ['-sW', path], { encoding: 'utf8', maxBuffer: 1 << 30 });
  for (const line of out.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f[7] === name)
      return { value: BigInt('0x' + f[1]), size: f[2]!.startsWith('0x') ? parseInt(f[2]!, 16) : Number(f[2]) };
  }
  throw new Error(`${name} not in ${path}`);
}

const XEN = [
  {
    id: 'xen-4.17',
    path: () => corpus.xenSyms,
    profile: 'xen-4.17',
    build: '4.17.7+13-g2445b30a44-0+deb12u1',
    alts: 4525,
    features: 'xen-4.17.7',
  },
  {
    id: 'xen-4.17-bookworm',
    path: () => corpus.xenSyms417Bookworm,
    profile: 'xen-4.17',
    build: '4.17.5+72-g01140da4e8-1',
    alts: 4919,
    features: 'xen-4.17.6',
  },
  {
    id: 'xen-4.20',
    path: () => corpus.xenSyms420,
    profile: 'xen-4.20',
    build: '4.20.4+63-g7abfd2bce2-0+deb13u1',
    alts: 4603,
    features: 'xen-4.20.4',
  },
] as const;

for (const x of XEN) {
  test(`${x.id}: numbering from known_features, every alternative named, count = readelf's table size / 14, no warning`, (t) => {
    const path = x.path();
    const img = Image.parse(readFileSync(path), path);
    const target = detectTarget(img);
    assert.equal(target.os, 'xen');
    assert.equal(target.version, corpusVersion(x.id));
    assert.equal(
      target.profile!.id.startsWith(`xen-${target.version!.split('.').slice(0, 2).join('.')}`),
      true,
      target.profile!.id,
    );
    assert.deepEqual(target.warnings, []);
    const ft = featureTable(target.profile!.features);
    // Oracles: known_features is FSCAPINTS words, forced_caps NCAPINTS words.
    const fs = readelfSymbol(path, 'known_features').size / 4;
    const nc = readelfSymbol(path, 'forced_caps').size / 4;
    assert.equal(ft.words, fs, `${ft.id}: FSCAPINTS`);
    assert.equal(ft.limit, nc * 32, `${ft.id}: NCAPINTS`);
    assert.ok(target.evidence!.some((e) => e.startsWith('known_features is')));
    const { sites, counts, errors } = readSites(img, target.profile!);
    assert.deepEqual(errors, []);
    const a = readelfSymbol(path, '__alt_instructions').value;
    const b = readelfSymbol(path, '__alt_instructions_end').value;
    assert.equal(counts['.altinstructions'], Number(b - a) / 14);
    const alts = sitesOf(sites, '.altinstructions');
    assert.equal(alts.length, sites.length, 'a Xen image has only alternatives');
    for (const s of alts) {
      assert.match(
        featureName(ft, s.feature!),
        /^X86_(FEATURE|BUG|SPEC)_/,
        `${img.where(s.addr)}: feature ${s.feature} unnamed`,
      );
      assert.equal(s.problems, undefined, `${img.where(s.addr)}: ${s.problems}`);
    }
    assert.deepEqual(crossCheckSites(target, sites), []);
    // Branch hardening is the synthetic word's bit 15 of this build.
    assert.equal(featureNumber(ft, 'SC_NO_BRANCH_HARDEN'), fs * 32 + 15);
    if (pinned(x.id, x.build, t.diagnostic.bind(t))) {
      assert.equal(counts['.altinstructions'], x.alts);
      assert.equal(target.profile!.id, x.profile);
      assert.equal(ft.id, x.features);
    }
  });
}

test('xen-4.17-bookworm: forcing the version-string profile (xen-4.17.2, FSCAPINTS 18) warns, naming the contradiction', () => {
  const path = corpus.xenSyms417Bookworm;
  const img = Image.parse(readFileSync(path), path);
  const fs = readelfSymbol(path, 'known_features').size / 4;
  const forced = detectTarget(img, 'xen-4.17.2');
  assert.equal(forced.profile!.id, 'xen-4.17.2');
  if (fs !== 18) {
    assert.ok(
      forced.warnings!.some((w) => w.includes('FSCAPINTS 18') && w.includes(`known_features is ${fs} words`)),
      forced.warnings!.join('\n'),
    );
    const sites = readSites(img, forced.profile!, { decode: false }).sites;
    const cc = crossCheckSites(forced, sites);
    assert.ok(
      cc.some((w) => /alternatives have feature numbers the numbering xen-4\.17\.2 cannot name/.test(w)),
      cc.join('\n'),
    );
  }
  // A Linux profile on a Xen file says so.
  const wrong = detectTarget(img, 'linux-6.1');
  assert.ok(wrong.warnings!.some((w) => w.includes('profile linux-6.1 is for linux but the file looks like xen')));
  // The profile that agrees with the file: no warning.
  assert.deepEqual(detectTarget(img, 'xen-4.17').warnings, fs === 19 ? [] : detectTarget(img, 'xen-4.17').warnings);
});

test('renumbered Xen tables: CPUID numbers stay, synthetic and bug words move with the evidence', () => {
  const base = featureTable('xen-4.17.5');
  const id = xenTableWithWords('xen-4.17.5', { fscapints: 19, nrSynth: 1, nrBug: 1 });
  assert.notEqual(id, 'xen-4.17.5');
  const t = featureTable(id);
  assert.equal(t.words, 19);
  assert.equal(t.limit, 21 * 32);
  assert.equal(featureNumber(t, 'LM'), featureNumber(base, 'LM'));
  assert.equal(featureNumber(t, 'SC_NO_BRANCH_HARDEN'), 19 * 32 + 15);
  assert.equal(featureNumber(base, 'SC_NO_BRANCH_HARDEN'), 18 * 32 + 15);
  assert.equal(xenTableWithWords('xen-4.17.5', { fscapints: 18, nrSynth: 1, nrBug: 1 }), 'xen-4.17.5');
  // 4.22: two synthetic words, so the bug word starts at (FSCAPINTS + 2) * 32.
  const t422 = featureTable('xen-4.22.0');
  assert.equal(t422.limit, (19 + 2 + 1) * 32);
  assert.equal(featureNumber(t422, 'X86_BUG_FPU_PTRS'), 21 * 32);
  assert.equal(featureNumber(t422, 'XEN_REP_MOVSB'), 19 * 32 + 32);
  // 4.21 renamed synthetic bit 7 (CLFLUSH_MONITOR was a bug in earlier releases; XEN_FRED from 4.21).
  assert.equal(featureName(featureTable('xen-4.21.0'), 19 * 32 + 7), 'X86_FEATURE_XEN_FRED');
});

test('Linux versions pick their profiles without notes up to 7.3; newer ones say which rules they assume', () => {
  for (const [v, id] of [
    ['6.1.0-57-amd64', 'linux-6.1'],
    ['6.12.118+deb13-amd64', 'linux-6.8'],
    ['7.0.1-amd64', 'linux-7'],
    ['7.3.4+deb13-amd64', 'linux-7'],
    ['7.3.4+deb13-cloud-amd64', 'linux-7'],
  ] as const) {
    const t = linuxTarget(v, null);
    assert.equal(t.profile!.id, id, v);
    if (!v.startsWith('6.1.0-')) assert.equal(t.note, undefined, `${v}: ${t.note}`);
  }
  const next = linuxTarget('7.4.1-amd64', null);
  assert.equal(next.profile!.id, 'linux-7');
  assert.match(next.note!, /newer than every profile; assuming linux-7's rules/);
  const gap = linuxTarget('6.15.2-amd64', null);
  assert.match(gap.note!, /no profile of its own/);
  assert.equal(featureTable('linux-7.3').words, 22);
  // 7.3 names: the stable-branch ITS bit and renamed features.
  const t7 = featureTable('linux-7.3');
  assert.equal(featureNumber(t7, 'INDIRECT_THUNK_ITS'), 21 * 32 + 10);
  assert.equal(featureNumber(featureTable('linux-6.12'), 'INDIRECT_THUNK_ITS'), 21 * 32 + 6);
  assert.equal(featureNumber(t7, 'CLEAR_BHB_VMEXIT') !== undefined, true);
  assert.equal(featureNumber(t7, 'CLEAR_BHB_LOOP_ON_VMEXIT'), undefined);
});

test('CLI: sites/check/apply print the contradiction on stderr and in JSON target.warnings; the build as detected has none', () => {
  const bin = join(repoRoot, 'bin/textpoke.js');
  const path = corpus.xenSyms417Bookworm;
  const fs = readelfSymbol(path, 'known_features').size / 4;
  const run = (args: string[]): { out: string; err: string; code: number } => {
    const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', maxBuffer: 1 << 28, timeout: 120_000 });
    return { out: r.stdout, err: r.stderr, code: r.status ?? -1 };
  };
  const plain = run(['sites', '--summary', '--json', path]);
  assert.equal(plain.code, 0, plain.err);
  assert.equal(plain.err, '');
  const doc = JSON.parse(plain.out) as {
    files: { target: { warnings: string[]; evidence: string[]; features: string } }[];
  };
  assert.deepEqual(doc.files[0]!.target.warnings, []);
  assert.ok(doc.files[0]!.target.evidence.includes(`known_features is ${fs * 4} bytes (${fs} words)`));
  if (fs === 18) return; // a build numbered like its version string: nothing contradicts xen-4.17.2
  const forced = run(['sites', '--summary', '--json', '--profile', 'xen-4.17.2', path]);
  assert.equal(forced.code, 0, forced.err);
  const w = (JSON.parse(forced.out) as typeof doc).files[0]!.target.warnings;
  assert.ok(
    w.some((x) => x.includes(`known_features is ${fs} words`)),
    w.join('\n'),
  );
  assert.ok(
    w.some((x) => /cannot name/.test(x)),
    w.join('\n'),
  );
  assert.match(forced.err, /warning: profile xen-4\.17\.2 numbers features with FSCAPINTS 18/);
  const check = run(['check', '--json', '--profile', 'xen-4.17.2', path]);
  assert.match(check.err, /warning: profile xen-4\.17\.2 numbers features with FSCAPINTS 18/);
  const cdoc = JSON.parse(check.out) as { files: { target: { warnings: string[] } }[] };
  assert.ok(cdoc.files[0]!.target.warnings.some((x) => /cannot name/.test(x)));
  const apply = run(['apply', '--cpu', 'none', '--profile', 'xen-4.17.2', '-o', join(tempDir(), 'x'), path]);
  assert.match(
    apply.err,
    /warning: \d+ of \d+ alternatives have feature numbers the numbering xen-4\.17\.2 cannot name/,
  );
});

/** A linked "vmlinux" whose x86_cap_flags/x86_bug_flags say NCAPINTS `ncap`, NBUGINTS 2, with one alternative. */
function fakeVmlinux(ncap: number, feature: number): string {
  const src = `
	.section .rodata
	.globl linux_banner
	.type linux_banner, @object
linux_banner:
	.asciz "Linux version 6.1.0-57-amd64 (debian-kernel@lists.debian.org) #1 SMP PREEMPT_DYNAMIC Debian 6.1.192-3"
	.size linux_banner, . - linux_banner
	.balign 8
	.globl x86_cap_flags
	.type x86_cap_flags, @object
x86_cap_flags:
	.fill ${ncap * 32}, 8, 0
	.size x86_cap_flags, . - x86_cap_flags
	.globl x86_bug_flags
	.type x86_bug_flags, @object
x86_bug_flags:
	.fill 64, 8, 0
	.size x86_bug_flags, . - x86_bug_flags
	.text
	.globl func
func:
1:	.byte 0x0f, 0x1f, 0x44, 0x00, 0x00
	ret
	.section .altinstr_replacement, "ax"
2:	lfence
	.section .altinstructions, "a"
	.globl __alt_instructions
__alt_instructions:
	.long 1b - ., 2b - .
	.word ${feature}
	.byte 5, 3
	.globl __alt_instructions_end
__alt_instructions_end:
`;
  const obj = assemble('vmlinux-evidence.S', { inline: src });
  const out = join(tempDir(), 'vmlinux');
  execFileSync('ld', ['-o', out, '-e', 'func', '-Ttext=0xffffffff81000000', obj]);
  return out;
}

test('vmlinux: x86_cap_flags/x86_bug_flags decide NCAPINTS/NBUGINTS over the version table, with a warning when they differ', () => {
  // As built: NCAPINTS 22, the version table agrees: X86_BUG_SPECTRE_V2 = 22*32 + 16.
  const agree = fakeVmlinux(22, 22 * 32 + 16);
  let img = Image.parse(readFileSync(agree), agree);
  let t = detectTarget(img);
  assert.equal(t.profile!.id, 'linux-6.1');
  assert.equal(t.profile!.features, 'linux-6.1.85');
  assert.deepEqual(t.warnings, []);
  assert.ok(t.evidence!.includes('x86_cap_flags is 5632 bytes (22 words)'), t.evidence!.join('; '));
  // A build with one more word than its version's table (a backport): renumbered from the file, and said.
  const more = fakeVmlinux(23, 23 * 32 + 16);
  img = Image.parse(readFileSync(more), more);
  t = detectTarget(img);
  const ft = featureTable(t.profile!.features);
  assert.equal(ft.words, 23);
  assert.equal(featureName(ft, 23 * 32 + 16), 'X86_BUG_SPECTRE_V2');
  assert.ok(
    t.warnings!.some((w) => /x86_cap_flags\/x86_bug_flags give NCAPINTS 23, NBUGINTS 2/.test(w)),
    t.warnings!.join('\n'),
  );
  assert.deepEqual(crossCheckSites(t, readSites(img, t.profile!).sites), []);
  // Forcing the version's profile on it: the contradiction is named, and the bug is misnamed or unnamed.
  const forced = detectTarget(img, 'linux-6.1');
  assert.ok(
    forced.warnings!.some((w) => w === "profile linux-6.1 has NCAPINTS 22 but this file's x86_cap_flags has 23 words"),
    forced.warnings!.join('\n'),
  );
  assert.notEqual(featureName(featureTable(forced.profile!.features), 23 * 32 + 16), 'X86_BUG_SPECTRE_V2');
});

test("modules: .rela.altinstructions fits the profile's entry size; a profile with the other size is named in a warning", () => {
  const m7 = expandPaths([corpus.modules7]).find((f) => f.endsWith('/kvm.ko.xz'))!;
  const m61 = corpus.module61('fs/xfs/xfs.ko');
  return (async () => {
    const img7 = await imageFromBytes(readFileSync(m7), m7);
    const t7 = detectTarget(img7);
    assert.ok(t7.evidence!.includes('.altinstructions relocations fit 14-byte entries'));
    assert.deepEqual(t7.warnings, []);
    const f7 = detectTarget(img7, 'linux-6.1');
    assert.ok(
      f7.warnings!.some((w) =>
        w.includes(
          "profile linux-6.1 reads 12-byte .altinstructions entries but this file's relocations fit 14-byte entries",
        ),
      ),
      f7.warnings!.join('\n'),
    );
    const img61 = Image.parse(readFileSync(m61), m61);
    assert.ok(detectTarget(img61).evidence!.includes('.altinstructions relocations fit 12-byte entries'));
    assert.ok(
      detectTarget(img61, 'linux-7').warnings!.some((w) =>
        w.includes("reads 14-byte .altinstructions entries but this file's relocations fit 12-byte"),
      ),
    );
  })();
});

/** A linked "xen-syms" with version string `version`, known_features of `fs` words and forced_caps of `nc`. */
function fakeXen(version: string, fs: number, nc: number): Image {
  const src = `
	.section .rodata
	.byte 0
	.asciz "${version}"
	.data
	.balign 4
	.globl known_features
	.type known_features, @object
known_features:
	.fill ${fs}, 4, 0
	.size known_features, . - known_features
	.globl forced_caps
	.type forced_caps, @object
forced_caps:
	.fill ${nc}, 4, 0
	.size forced_caps, . - forced_caps
	.text
	.globl start_xen
start_xen:
	ret
	.section .init.data, "aw"
	.globl __alt_instructions
__alt_instructions:
	.globl __alt_instructions_end
__alt_instructions_end:
`;
  const obj = assemble('xen-evidence.S', { inline: src });
  const out = join(tempDir(), 'xen-syms');
  execFileSync('ld', ['-o', out, '-e', 'start_xen', '-Ttext=0xffff82d040200000', obj]);
  return Image.parse(readFileSync(out), out);
}

test("Xen: a version newer than every profile reads with the newest rules and the file's numbering, and says so", () => {
  const t = detectTarget(fakeXen('4.23.0', 19, 22));
  assert.equal(t.profile!.id, 'xen-4.22');
  assert.match(t.note!, /Xen 4\.23 is newer than every profile; reading it with xen-4\.22's rules/);
  const ft = featureTable(t.profile!.features);
  assert.equal(ft.words, 19);
  assert.equal(ft.limit, 22 * 32);
  // One more CPUID word than any 4.22 release: renumbered, and a warning.
  const t2 = detectTarget(fakeXen('4.23.0', 20, 23));
  assert.equal(featureTable(t2.profile!.features).words, 20);
  assert.equal(featureNumber(featureTable(t2.profile!.features), 'SC_NO_BRANCH_HARDEN'), 20 * 32 + 15);
  assert.ok(
    t2.warnings!.some((w) => /no Xen 4\.22 release numbers so/.test(w)),
    t2.warnings!.join('\n'),
  );
  // The newest Xen profiles read without "no profile"/"newer than" notes.
  for (const v of ['4.20.4', '4.21.2', '4.22.0']) {
    const [fsv, ncv] = v === '4.20.4' ? [19, 21] : [19, 22];
    const x = detectTarget(fakeXen(v, fsv, ncv));
    assert.equal(x.profile!.id, `xen-${v.split('.').slice(0, 2).join('.')}`);
    assert.equal(x.note, undefined, `${v}: ${x.note}`);
    assert.deepEqual(x.warnings, []);
    assert.equal(x.profile!.features, `xen-${v}`);
  }
  // 4.17.5 numbered like 4.17.6 (Debian's backports): 4.17.6's names and rules, in a note; not a warning.
  const deb = detectTarget(fakeXen('4.17.5+72-g01140da4e8-1', 19, 21));
  assert.equal(deb.profile!.id, 'xen-4.17');
  assert.equal(deb.profile!.features, 'xen-4.17.6');
  assert.match(deb.note!, /known_features is 19 words .* as in Xen 4\.17\.6, not 4\.17\.5 \(FSCAPINTS 18\)/);
});

test('Xen: forced_caps too small for known_features is inconsistent evidence: ignored and warned, not a broken table', () => {
  const t = detectTarget(fakeXen('4.20.4', 19, 19));
  assert.ok(
    t.warnings!.some((w) => /inconsistent evidence: forced_caps is 19 words/.test(w)),
    t.warnings!.join('\n'),
  );
  const ft = featureTable(t.profile!.features);
  assert.equal(ft.words, 19);
  assert.ok(ft.limit > 19 * 32);
});

/** A linked image with one .BTF section holding `blob` (and a .rodata banner naming Linux 7.3.4). */
function withBtf(blob: Uint8Array): Image {
  const src = `
	.section .rodata
	.byte 0
	.asciz "Linux version 7.3.4+deb13-amd64 (debian-kernel@lists.debian.org) #1 SMP PREEMPT_DYNAMIC Debian 7.3.4-1~bpo13+1"
	.section .BTF, "a"
	.byte ${[...blob].join(', ')}
	.text
	.globl _start
_start:
	ret
	.section .altinstructions, "a"
	.long 0
`;
  const obj = assemble('btf.S', { inline: src });
  const out = join(tempDir(), 'vmlinux-btf');
  execFileSync('ld', ['-o', out, '-Ttext=0xffffffff81000000', obj]);
  return Image.parse(readFileSync(out), out);
}

/** BTF: u32 (1), __u32[n] (2), an anonymous union { x86_capability } (3), struct cpuinfo_x86 (4), struct alt_instr (5). */
function btfBlob(n: number, altSize: number): Uint8Array {
  const strs = '\0u32\0x86_capability\0cpuinfo_x86\0alt_instr\0';
  const off = (s: string): number => strs.indexOf('\0' + s + '\0') + 1;
  const types: number[] = [
    off('u32'),
    1 << 24,
    4,
    32, // INT u32, encoding bits 32
    0,
    3 << 24,
    0,
    1,
    1,
    n, // ARRAY of 1 indexed by 1, n elements
    0,
    (5 << 24) | 1,
    96,
    off('x86_capability'),
    2,
    0, // UNION (anonymous) { x86_capability }
    off('cpuinfo_x86'),
    (4 << 24) | 1,
    256,
    0,
    3,
    64, // STRUCT cpuinfo_x86 { <anonymous union> }
    off('alt_instr'),
    (4 << 24) | 1,
    altSize,
    0,
    1,
    0, // STRUCT alt_instr { u32 }
  ];
  const typeBytes = types.length * 4;
  const strBytes = Buffer.from(strs, 'latin1');
  const b = Buffer.alloc(24 + typeBytes + strBytes.length);
  b.writeUInt16LE(0xeb9f, 0);
  b[2] = 1;
  b[3] = 0;
  b.writeUInt32LE(24, 4);
  b.writeUInt32LE(0, 8);
  b.writeUInt32LE(typeBytes, 12);
  b.writeUInt32LE(typeBytes, 16);
  b.writeUInt32LE(strBytes.length, 20);
  types.forEach((v, i) => b.writeUInt32LE(v >>> 0, 24 + i * 4));
  strBytes.copy(b, 24 + typeBytes);
  return new Uint8Array(b);
}

test('BTF: x86_capability (inside an anonymous union) and struct alt_instr decide; disagreement warns; a corrupt .BTF is only a warning', () => {
  let t = detectTarget(withBtf(btfBlob(24, 14)));
  assert.equal(t.profile!.id, 'linux-7');
  assert.deepEqual(t.warnings, []);
  assert.ok(
    t.evidence!.includes('BTF: cpuinfo_x86.x86_capability has 24 words (NCAPINTS + NBUGINTS)'),
    t.evidence!.join('; '),
  );
  // One more capability word than 7.3's table: renumbered (NBUGINTS kept), said.
  t = detectTarget(withBtf(btfBlob(25, 14)));
  assert.equal(featureTable(t.profile!.features).words, 23);
  assert.ok(
    t.warnings!.some((w) => /BTF's x86_capability \(25 words\) gives, with NBUGINTS 2, NCAPINTS 23/.test(w)),
    t.warnings!.join('\n'),
  );
  // alt_instr of 12 bytes under a 14-byte profile.
  t = detectTarget(withBtf(btfBlob(24, 12)));
  assert.ok(
    t.warnings!.some((w) =>
      /reads 14-byte .altinstructions entries but this file's BTF struct alt_instr is 12-byte/.test(w),
    ),
    t.warnings!.join('\n'),
  );
  // Truncated type section: the header claims more types than there are.
  const bad = btfBlob(24, 14);
  new DataView(bad.buffer).setUint32(12, 20 * 4, true);
  new DataView(bad.buffer).setUint32(16, 20 * 4, true);
  t = detectTarget(withBtf(bad));
  assert.equal(t.profile!.id, 'linux-7');
  assert.ok(!t.evidence!.some((e) => e.startsWith('BTF')), t.evidence!.join('; '));
});
