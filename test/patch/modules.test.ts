/**
 * All 4,022 Debian 6.1 modules, every CPU preset, through the library in one process: no crash, every
 * patched site decodes to whole instructions that fill it exactly, and every relative branch in a patched
 * site goes where the rules say (verifyView). Each module is read once and patched five times.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { expandPaths } from '../../src/cli/files.js';
import { imageFromBytes } from '../../src/elf/load.js';
import { applyPatches, parseCpu, PRESET_IDS, verifyView } from '../../src/patch/index.js';
import { readSites } from '../../src/sites/read.js';
import { detectTarget } from '../../src/target/detect.js';
import { featureTable } from '../../src/target/features/index.js';
import { corpus, pinned } from '../support/corpus.js';

test('6.1 modules x every preset: no crash, patched sites are whole instructions with rule-given branch targets', async (t) => {
  const files = expandPaths([corpus.modules61]);
  assert.ok(files.length > 4000, `${files.length} modules`);
  if (pinned('linux-6.1', '6.1.192-3', t.diagnostic.bind(t))) assert.equal(files.length, 4023);
  const perPreset = new Map<string, number>();
  const problems: string[] = [];
  let withPatches = 0;
  for (const f of files) {
    const img = await imageFromBytes(readFileSync(f), f);
    const profile = detectTarget(img).profile!;
    const table = featureTable(profile.features);
    const sites = readSites(img, profile, { decode: false }).sites;
    let any = false;
    for (const p of PRESET_IDS) {
      const r = applyPatches(img, profile, parseCpu(p, table), { sites });
      perPreset.set(p, (perPreset.get(p) ?? 0) + r.view.patches.length);
      if (r.view.patches.length) any = true;
      for (const c of verifyView(r.view))
        if (problems.length < 20) problems.push(`${p} ${f} ${img.where(c.addr)}: ${c.problem}`);
      for (const fd of r.view.findings) {
        // The only model limit on Debian's modules: ITS thunks (allocated at run time) with the all preset.
        if (!(p === 'all' && /^ITS: /.test(fd.message)))
          problems.push(`${p} ${f} ${img.where(fd.addr)}: ${fd.message}`);
      }
    }
    if (any) withPatches++;
  }
  assert.deepEqual(problems, []);
  assert.ok(withPatches > 3500, `only ${withPatches} modules patched`);
  // Presets patch different amounts (none/old rewrite every retpoline; amd-server keeps return thunks).
  for (const p of PRESET_IDS) assert.ok((perPreset.get(p) ?? 0) > 100000, `${p}: ${perPreset.get(p)}`);
});

for (const [id, dir, profileId] of [
  ['linux-6.12', () => corpus.modules612, 'linux-6.8'],
  ['linux-6.12-trixie', () => corpus.modules612Trixie, 'linux-6.8'],
  ['linux-7', () => corpus.modules7, 'linux-7'],
  ['linux-7-cloud', () => corpus.modules7Cloud, 'linux-7'],
  ['linux-7-rt', () => corpus.modules7Rt, 'linux-7'],
] as const)
  test(`${id} modules (every 20th) x every preset: ${profileId}'s rules give whole instructions and rule-given branch targets, every feature named, no warning`, async () => {
    const files = expandPaths([dir()]).filter((_, i) => i % 20 === 0);
    assert.ok(files.length > 40, `${files.length} modules`);
    const problems: string[] = [];
    let direct = 0;
    for (const f of files) {
      const img = await imageFromBytes(readFileSync(f), f);
      const target = detectTarget(img);
      const profile = target.profile!;
      assert.equal(profile.id, profileId, f);
      assert.equal(profile.alt, 'linux-14', f);
      assert.equal(target.note, undefined, `${f}: ${target.note}`);
      assert.deepEqual(target.warnings, [], f);
      const named = featureTable(profile.features);
      for (const s of readSites(img, profile, { decode: false }).sites) {
        if (s.table === '.altinstructions')
          assert.ok(named.byNumber.has(s.feature!), `${f}: feature ${s.feature} unnamed in ${named.id}`);
      }
      const table = featureTable(profile.features);
      const sites = readSites(img, profile, { decode: false }).sites;
      for (const p of PRESET_IDS) {
        const r = applyPatches(img, profile, parseCpu(p, table), { sites });
        for (const c of verifyView(r.view))
          if (problems.length < 20) problems.push(`${p} ${f} ${img.where(c.addr)}: ${c.problem}`);
        for (const fd of r.view.findings)
          if (fd.kind !== 'model') problems.push(`${p} ${f} ${img.where(fd.addr)}: ${fd.message}`);
        if (p === 'intel-server')
          direct += r.view.patches.filter(
            (x) => x.patcher === 'alternatives' && /^call (pv_native|native_)/.test(x.note ?? ''),
          ).length;
      }
    }
    assert.deepEqual(problems, []);
    assert.ok(direct > 0, 'no ALT_FLAG_DIRECT_CALL paravirt site was turned into a direct call');
  });
