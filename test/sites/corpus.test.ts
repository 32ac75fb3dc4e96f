/**
 * `textpoke sites` on the real Debian binaries named in the reference: Xen 4.17's xen-syms, all 4,022
 * modules of linux-image-6.1.0-47-amd64, and the newest linux-image-6.12 modules as shipped (.ko.xz).
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
import { expandPaths } from '../../src/cli/files.js';
import { corpus, repoRoot } from '../support/corpus.js';
import { tempDir } from '../support/build.js';

test('xen-syms-4.17: 4,525 alternatives, each named, in .text/.init.text, on instruction boundaries', () => {
  const img = Image.parse(readFileSync(corpus.xenSyms), corpus.xenSyms);
  const t = detectTarget(img);
  assert.equal(t.os, 'xen');
  assert.match(t.version ?? '', /^4\.17\.7/);
  assert.equal(t.profile?.id, 'xen-4.17');
  const { sites, counts, errors } = readSites(img, t.profile!);
  assert.deepEqual(errors, []);
  assert.deepEqual(counts, { '.altinstructions': 4525 });
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
  assert.equal(perFeature.get('X86_FEATURE_SC_NO_BRANCH_HARDEN'), 2755);
  assert.equal(perFeature.get('X86_FEATURE_SC_NO_LOCK_HARDEN'), 1078);
  assert.equal(perFeature.get('X86_FEATURE_ALWAYS'), 252);
});

test('xen-syms of bookworm\'s 4.17.5+72: the backported 19th featureset word is detected, every feature named', () => {
  // Debian's 4.17.5+72 carries 4.17.6's e21c word: by its version alone it would be read with FSCAPINTS 18,
  // and its synthetic and bug features (SC_NO_BRANCH_HARDEN at 19*32+15, ...) would be out of that table.
  const img = Image.parse(readFileSync(corpus.xenSyms417Bookworm), corpus.xenSyms417Bookworm);
  const t = detectTarget(img);
  assert.match(t.version ?? '', /^4\.17\.5\+/);
  assert.equal(t.profile?.id, 'xen-4.17');
  assert.match(t.note ?? '', /beyond xen-4\.17\.2's table/);
  const { sites } = readSites(img, t.profile!);
  const ft = featureTable(t.profile!.features);
  for (const s of sites) assert.match(featureName(ft, s.feature!), /^X86_(FEATURE|BUG|SPEC)_[A-Z0-9_]+$/, `feature ${s.feature} has no name`);
  assert.ok(sites.filter((s) => featureName(ft, s.feature!) === 'X86_FEATURE_SC_NO_BRANCH_HARDEN').length > 2000);
  // The 4.17.7 build needs no such step.
  assert.equal(detectTarget(Image.parse(readFileSync(corpus.xenSyms), corpus.xenSyms)).note, undefined);
});

const REFERENCE_61 = {
  '.altinstructions': 1654, '.parainstructions': 3007, '.static_call_sites': 15870, '__jump_table': 40014,
  '.retpoline_sites': 75427, '.return_sites': 216473, '.smp_locks': 33990, '__mcount_loc': 192343,
};

test('all 4,022 Linux 6.1 modules: totals equal the reference, no file fails, every site on a boundary', () => {
  const files = expandPaths([corpus.modules61]);
  assert.equal(files.length, 4022);
  const totals: Record<string, number> = {};
  const problems: string[] = [];
  for (const f of files) {
    const img = Image.parse(readFileSync(f), f);
    const t = detectTarget(img);
    assert.equal(t.profile?.id, 'linux-6.1', f);
    const r = readSites(img, t.profile!);
    assert.deepEqual(r.errors, [], f);
    for (const [k, v] of Object.entries(r.counts)) totals[k] = (totals[k] ?? 0) + v!;
    for (const s of r.sites) if (s.problems) problems.push(`${f}: ${s.table} ${img.where(s.addr)}: ${s.problems.join('; ')}`);
  }
  assert.deepEqual(totals, REFERENCE_61);
  assert.deepEqual(problems, []);
});

test('linux-image-6.12 modules as .ko.xz: 14-byte layout and newer tables detected without flags; counts match readelf', async () => {
  const files = expandPaths([corpus.modules612]);
  assert.ok(files.length > 4000, `${files.length} modules`);
  assert.ok(files.every((f) => f.endsWith('.ko.xz')));
  // Every 25th module (about 170) against readelf's section sizes on the decompressed file.
  const dir = tempDir();
  const sample = files.filter((_, i) => i % 25 === 0);
  const sizes = { '.altinstructions': 14, '.static_call_sites': 8, '__jump_table': 16, '.retpoline_sites': 4, '.return_sites': 4, '.call_sites': 4, '.ibt_endbr_seal': 4, '.smp_locks': 4, '__mcount_loc': 8 } as Record<string, number>;
  let checked = 0;
  for (const f of sample) {
    const img = await imageFromBytes(readFileSync(f), f);
    const t = detectTarget(img);
    assert.equal(t.profile?.id, 'linux-6.8', f);
    assert.equal(t.profile?.alt, 'linux-14');
    const r = readSites(img, t.profile!, { decode: false });
    assert.deepEqual(r.errors, [], f);
    const plain = join(dir, 'm.ko');
    writeFileSync(plain, execFileSync('xz', ['-dc', f], { maxBuffer: 1 << 30 }));
    const readelf = execFileSync('readelf', ['-SW', plain], { encoding: 'utf8' });
    const expect: Record<string, number> = {};
    for (const line of readelf.split('\n')) {
      const m = /\]\s+(\S+)\s+\S+\s+[0-9a-f]+\s+[0-9a-f]+\s+([0-9a-f]+)/.exec(line);
      if (m && sizes[m[1]!]) expect[m[1]!] = parseInt(m[2]!, 16) / sizes[m[1]!]!;
    }
    assert.deepEqual(r.counts, expect, f);
    checked++;
  }
  assert.ok(checked > 150);
});

test('textpoke sites over the whole 6.12 module directory: no file fails, .call_sites and .ibt_endbr_seal present', () => {
  const out = execFileSync(process.execPath, [join(repoRoot, 'bin/textpoke.js'), 'sites', '--summary', '--json', corpus.modules612], { encoding: 'utf8', maxBuffer: 1 << 30 });
  const doc = JSON.parse(out) as { files: { path: string; target: { profile: string }; counts: Record<string, number>; errors: string[] }[] };
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
