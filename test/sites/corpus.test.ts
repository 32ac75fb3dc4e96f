/**
 * `textpoke sites` on the real Debian binaries of the corpus: Xen 4.17's xen-syms, every module of the newest
 * 6.1.0-N image, and samples of the 6.12 (bookworm, trixie) and 7.3 (generic, cloud) modules as shipped (.ko.xz)
 * against readelf's section sizes. Exact totals are pinned to the builds they were measured on.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Image } from '../../src/elf/image.js';
import { imageFromBytes } from '../../src/elf/load.js';
import { detectTarget } from '../../src/target/detect.js';
import { featureTable, featureName } from '../../src/target/features/index.js';
import { readSites } from '../../src/sites/read.js';
import { sitesOf } from '../../src/sites/site.js';
import { expandPaths } from '../../src/cli/files.js';
import { corpus, pinned, repoRoot } from '../support/corpus.js';
import { tempDir } from '../support/build.js';

test('xen-syms-4.17: alternatives each named, in .text/.init.text, on instruction boundaries', (tc) => {
  const img = Image.parse(readFileSync(corpus.xenSyms), corpus.xenSyms);
  const t = detectTarget(img);
  assert.equal(t.os, 'xen');
  assert.match(t.version ?? '', /^4\.17\.7/);
  assert.equal(t.profile?.id, 'xen-4.17');
  const { sites: all, counts, errors } = readSites(img, t.profile!);
  const sites = sitesOf(all, '.altinstructions');
  assert.deepEqual(errors, []);
  assert.deepEqual(Object.keys(counts), ['.altinstructions']);
  const exact = pinned('xen-4.17', '4.17.7+13-g2445b30a44-0+deb12u1', tc.diagnostic.bind(tc));
  if (exact) assert.deepEqual(counts, { '.altinstructions': 4525 });
  const ft = featureTable(t.profile!.features);
  const perFeature = new Map<string, number>();
  for (const s of sites) {
    const name = featureName(ft, s.feature!);
    assert.match(name, /^X86_(FEATURE|BUG|SPEC)_[A-Z0-9_]+$/, `feature ${s.feature} has no name`);
    perFeature.set(name, (perFeature.get(name) ?? 0) + 1);
    const sec = img.sectionAt(s.addr)!.name;
    assert.ok(sec === '.text' || sec === '.init.text', `site in ${sec}`);
    assert.equal(s.problems, undefined, `${img.where(s.addr)}: ${s.problems}`);
    assert.ok(s.repl!.length <= s.origLen! + s.padLen!, 'repl_len <= orig_len + pad_len');
  }
  assert.ok(perFeature.get('X86_FEATURE_SC_NO_BRANCH_HARDEN')! > 1000);
  if (exact) {
    assert.equal(perFeature.get('X86_FEATURE_SC_NO_BRANCH_HARDEN'), 2755);
    assert.equal(perFeature.get('X86_FEATURE_SC_NO_LOCK_HARDEN'), 1078);
    assert.equal(perFeature.get('X86_FEATURE_ALWAYS'), 252);
  }
});

test("xen-syms of bookworm's 4.17.5+72: the backported 19th featureset word is detected, every feature named", () => {
  // Debian's 4.17.5+72 carries 4.17.6's e21c word: by its version alone it would be read with FSCAPINTS 18,
  // and its synthetic and bug features (SC_NO_BRANCH_HARDEN at 19*32+15, ...) would be out of that table.
  const img = Image.parse(readFileSync(corpus.xenSyms417Bookworm), corpus.xenSyms417Bookworm);
  const t = detectTarget(img);
  assert.match(t.version ?? '', /^4\.17\.5\+/);
  assert.equal(t.profile?.id, 'xen-4.17');
  assert.match(t.note ?? '', /numbered from the file/);
  const sites = sitesOf(readSites(img, t.profile!).sites, '.altinstructions');
  const ft = featureTable(t.profile!.features);
  for (const s of sites)
    assert.match(
      featureName(ft, s.feature!),
      /^X86_(FEATURE|BUG|SPEC)_[A-Z0-9_]+$/,
      `feature ${s.feature} has no name`,
    );
  assert.ok(sites.filter((s) => featureName(ft, s.feature!) === 'X86_FEATURE_SC_NO_BRANCH_HARDEN').length > 2000);
  // The 4.17.7 build needs no such step.
  assert.equal(detectTarget(Image.parse(readFileSync(corpus.xenSyms), corpus.xenSyms)).note, undefined);
});

/** Totals measured on 6.1.0-57 (6.1.192-3) in this session; 6.1.0-47 had 4,022 modules and other totals. */
const REFERENCE_61 = {
  '.altinstructions': 1657,
  '.parainstructions': 3007,
  '.static_call_sites': 15906,
  __jump_table: 39928,
  '.retpoline_sites': 75545,
  '.return_sites': 216674,
  '.smp_locks': 34247,
  __mcount_loc: 192583,
};

test('every Linux 6.1 module: no file fails, every site on a boundary, every feature named, no warning', (tc) => {
  const files = expandPaths([corpus.modules61]);
  assert.ok(files.length > 4000, `${files.length} modules`);
  const totals: Record<string, number> = {};
  const problems: string[] = [];
  for (const f of files) {
    const img = Image.parse(readFileSync(f), f);
    const t = detectTarget(img);
    assert.equal(t.profile?.id, 'linux-6.1', f);
    assert.deepEqual(t.warnings, [], f);
    const r = readSites(img, t.profile!);
    assert.deepEqual(r.errors, [], f);
    const ft = featureTable(t.profile!.features);
    for (const s of r.sites)
      if (s.table === '.altinstructions') assert.ok(ft.byNumber.has(s.feature!), `${f}: feature ${s.feature} unnamed`);
    for (const [k, v] of Object.entries(r.counts)) totals[k] = (totals[k] ?? 0) + v!;
    for (const s of r.sites)
      if (s.problems) problems.push(`${f}: ${s.table} ${img.where(s.addr)}: ${s.problems.join('; ')}`);
  }
  assert.deepEqual(problems, []);
  assert.ok(totals['.altinstructions']! > 1000 && totals['.parainstructions']! > 1000);
  if (pinned('linux-6.1', '6.1.192-3', tc.diagnostic.bind(tc))) {
    assert.equal(files.length, 4023);
    assert.deepEqual(totals, REFERENCE_61);
  }
});

for (const [id, dirOf, profileId] of [
  ['linux-6.12', () => corpus.modules612, 'linux-6.8'],
  ['linux-6.12-trixie', () => corpus.modules612Trixie, 'linux-6.8'],
  ['linux-7', () => corpus.modules7, 'linux-7'],
  ['linux-7-cloud', () => corpus.modules7Cloud, 'linux-7'],
  ['linux-7-rt', () => corpus.modules7Rt, 'linux-7'],
] as const) {
  test(`${id} modules as .ko.xz: detected without flags; counts match readelf's section size / entry size; features named; sites on instruction boundaries`, async () => {
    const files = expandPaths([dirOf()]);
    assert.ok(files.length > 900, `${files.length} modules`);
    assert.ok(files.every((f) => f.endsWith('.ko.xz')));
    // Every 25th module against readelf's section sizes on the decompressed file. Every table a module has is
    // expected: a table the profile does not read (e.g. .smp_locks under linux-7) would fail the comparison.
    const dir = tempDir();
    const sample = files.filter((_, i) => i % 25 === 0);
    const sizes = {
      '.altinstructions': 14,
      '.parainstructions': 16,
      '.static_call_sites': 8,
      __jump_table: 16,
      '.retpoline_sites': 4,
      '.return_sites': 4,
      '.call_sites': 4,
      '.ibt_endbr_seal': 4,
      '.smp_locks': 4,
      __mcount_loc: 8,
    } as Record<string, number>;
    let checked = 0;
    for (const f of sample) {
      const img = await imageFromBytes(readFileSync(f), f);
      const t = detectTarget(img);
      assert.equal(t.profile?.id, profileId, f);
      assert.equal(t.profile?.alt, 'linux-14');
      assert.equal(t.note, undefined, `${f}: ${t.note}`);
      assert.deepEqual(t.warnings, [], f);
      const r = readSites(img, t.profile!);
      assert.deepEqual(r.errors, [], f);
      for (const s of r.sites)
        assert.equal(s.problems, undefined, `${f}: ${s.table} ${img.where(s.addr)}: ${s.problems}`);
      const ft = featureTable(t.profile!.features);
      for (const s of r.sites)
        if (s.table === '.altinstructions')
          assert.ok(ft.byNumber.has(s.feature!), `${f}: feature ${s.feature} unnamed in ${ft.id}`);
      const plain = join(dir, 'm.ko');
      writeFileSync(plain, execFileSync('xz', ['-dc', f], { maxBuffer: 1 << 30 }));
      const readelf = execFileSync('readelf', ['-SW', plain], { encoding: 'utf8' });
      const expect: Record<string, number> = {};
      for (const line of readelf.split('\n')) {
        const m = /\]\s+(\S+)\s+\S+\s+[0-9a-f]+\s+[0-9a-f]+\s+([0-9a-f]+)/.exec(line);
        if (m && sizes[m[1]!]) {
          const size = parseInt(m[2]!, 16);
          assert.equal(size % sizes[m[1]!]!, 0, `${f}: ${m[1]} size ${size}`);
          expect[m[1]!] = size / sizes[m[1]!]!;
        }
      }
      assert.deepEqual(r.counts, expect, f);
      checked++;
    }
    assert.ok(checked >= 40);
  });
}

test('textpoke sites over the whole 6.12 module directory: no file fails, .call_sites and .ibt_endbr_seal present', () => {
  const out = execFileSync(
    process.execPath,
    [join(repoRoot, 'bin/textpoke.js'), 'sites', '--summary', '--json', corpus.modules612],
    { encoding: 'utf8', maxBuffer: 1 << 30 },
  );
  const doc = JSON.parse(out) as {
    files: { path: string; target: { profile: string }; counts: Record<string, number>; errors: string[] }[];
  };
  assert.ok(doc.files.length > 4000);
  const totals: Record<string, number> = {};
  for (const f of doc.files) {
    assert.deepEqual(f.errors, [], f.path);
    assert.equal(f.target.profile, 'linux-6.8');
    for (const [k, v] of Object.entries(f.counts)) totals[k] = (totals[k] ?? 0) + v;
  }
  assert.ok(totals['.call_sites']! > 1_000_000);
  assert.ok(totals['.ibt_endbr_seal']! > 10_000);
  assert.equal(totals['.parainstructions'], undefined);
});
