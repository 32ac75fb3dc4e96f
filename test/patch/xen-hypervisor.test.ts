/**
 * Every Xen build of the corpus (4.17 newest, bookworm's 4.17.5+72, trixie's 4.20): branch hardening off NOPs
 * exactly the SC_NO_BRANCH_HARDEN fences (oracle: objdump's lfence count, hardening on minus off), changes
 * nothing outside alternative sites, `objdump -d` on the written file shows no new (bad), and every preset
 * gives whole instructions. Exact figures are pinned to the builds they were measured on.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { imageFromBytes } from '../../src/elf/load.js';
import { applyPatches, parseCpu, patchedElf, PRESET_IDS, verifyView, XEN_P6_NOPS } from '../../src/patch/index.js';
import { vendorOf } from '../../src/patch/xen-altcall-targets.js';
import { detectTarget } from '../../src/target/detect.js';
import { featureNumber, featureTable } from '../../src/target/features/index.js';
import { corpus, pinned } from '../support/corpus.js';
import { tempDir } from '../support/build.js';

const BUILDS = [
  { id: 'xen-4.17', path: () => corpus.xenSyms, build: '4.17.7+13-g2445b30a44-0+deb12u1', fences: 2755, clobbers: 229 },
  {
    id: 'xen-4.17-bookworm',
    path: () => corpus.xenSyms417Bookworm,
    build: '4.17.5+72-g01140da4e8-1',
    fences: 3065,
    clobbers: 229,
  },
  {
    id: 'xen-4.20',
    path: () => corpus.xenSyms420,
    build: '4.20.4+63-g7abfd2bce2-0+deb13u1',
    fences: 2766,
    clobbers: 226,
  },
] as const;

const lfences = (p: string): number =>
  (
    execFileSync('objdump', ['-d', '--no-show-raw-insn', p], { maxBuffer: 1 << 30 })
      .toString()
      .match(/\tlfence/g) ?? []
  ).length;
const bad = (p: string): number =>
  (
    execFileSync('objdump', ['-d', '--no-show-raw-insn', p], { maxBuffer: 1 << 30 })
      .toString()
      .match(/\(bad\)/g) ?? []
  ).length;

for (const x of BUILDS) {
  test(`${x.id}: branch hardening off NOPs exactly the SC_NO_BRANCH_HARDEN fences (objdump's lfence count agrees)`, async (t) => {
    const path = x.path();
    const img = await imageFromBytes(readFileSync(path), path);
    const profile = detectTarget(img).profile!;
    const table = featureTable(profile.features);
    const nbh = featureNumber(table, 'SC_NO_BRANCH_HARDEN')!;
    const on = applyPatches(img, profile, parseCpu('intel-server', table));
    const off = applyPatches(img, profile, parseCpu('intel-server,branch-harden=off', table), { sites: on.sites });
    const fences = on.sites.filter((s) => s.table === '.altinstructions' && s.feature === nbh);
    assert.ok(fences.length > 1000, `${fences.length} fences`);
    // Every fence site: hardening on = the original lfence; off = a NOP of the same length.
    for (const s of fences) {
      const orig = img.read(s.addr, s.length)!;
      assert.deepEqual([...on.view.read(s.addr, s.length)!], [...orig]);
      assert.deepEqual([...orig.subarray(0, 3)], [0x0f, 0xae, 0xe8], `lfence at ${img.where(s.addr)}`);
      assert.deepEqual(
        [...off.view.read(s.addr, s.length)!],
        XEN_P6_NOPS.nops[s.length],
        `NOP at ${img.where(s.addr)}`,
      );
    }
    // The two views differ exactly at the fences.
    const fenceBytes = new Set<number>();
    for (const s of fences) for (let k = 0; k < s.length; k++) fenceBytes.add(s.addr + k);
    let diff = 0;
    for (const sec of off.view.changedSections()) {
      const a = on.view.bytesOf(sec);
      const b = off.view.bytesOf(sec);
      for (let k = 0; k < b.length; k++)
        if (a[k] !== b[k]) {
          diff++;
          assert.ok(fenceBytes.has(sec.addr + k), `change outside a fence at ${img.where(sec.addr + k)}`);
        }
    }
    assert.ok(diff >= fences.length * 2);
    // Nothing outside alternative sites differs from the file (without CET-IBT: no ENDBR64 clobbering).
    const altBytes = new Set<number>();
    for (const s of on.sites)
      if (s.table === '.altinstructions') for (let k = 0; k < s.length; k++) altBytes.add(s.addr + k);
    const noIbt = applyPatches(img, profile, parseCpu('intel-server,-XEN_IBT,branch-harden=off', table), {
      sites: on.sites,
    });
    let outside = 0;
    for (const sec of noIbt.view.changedSections()) {
      const file = img.sectionBytes(sec);
      const b = noIbt.view.bytesOf(sec);
      for (let k = 0; k < b.length; k++) if (file[k] !== b[k] && !altBytes.has(sec.addr + k)) outside++;
    }
    assert.equal(outside, 0, 'bytes changed outside every alternative site');
    // With CET-IBT the only writes outside alternative sites are ENDBR64 -> poison at cf_clobber functions.
    const clobbers = off.view.patches.filter((p) => p.patcher === 'xen-cf-clobber');
    assert.ok(clobbers.length > 100);
    for (const p of clobbers) {
      assert.deepEqual([...p.before], [0xf3, 0x0f, 0x1e, 0xfa]);
      assert.deepEqual([...p.after], [0x66, 0x0f, 0x1f, 0x01]);
      assert.equal(img.symbolize(p.addr).offset, 0, `poison not at a function start: ${img.where(p.addr)}`);
    }
    for (const p of off.view.patches) if (p.patcher !== 'xen-cf-clobber') assert.ok(altBytes.has(p.addr));
    // objdump: the written files differ by exactly the fences in lfence count, and show no new (bad).
    const dir = tempDir();
    const onFile = join(dir, 'xen-syms-on');
    const offFile = join(dir, 'xen-syms-bh-off');
    writeFileSync(onFile, patchedElf(on.view));
    writeFileSync(offFile, patchedElf(off.view));
    assert.equal(lfences(onFile) - lfences(offFile), fences.length, 'objdump: lfences removed by branch-harden=off');
    assert.ok(bad(offFile) <= bad(path), 'objdump -d shows new (bad) instructions');
    if (pinned(x.id, x.build, t.diagnostic.bind(t))) {
      assert.equal(fences.length, x.fences);
      assert.equal(clobbers.length, x.clobbers);
    }
  });

  test(`${x.id}, every preset: patched sites are whole instructions and branches go where the rules say`, async () => {
    const path = x.path();
    const img = await imageFromBytes(readFileSync(path), path);
    const profile = detectTarget(img).profile!;
    const table = featureTable(profile.features);
    for (const p of PRESET_IDS) {
      const r = applyPatches(img, profile, parseCpu(p, table));
      assert.deepEqual(
        verifyView(r.view).map((c) => `${img.where(c.addr)}: ${c.problem}`),
        [],
        p,
      );
      assert.equal(r.view.findings.filter((f) => f.kind !== 'model').length, 0, p);
      // do_machine_check's altcall: the image holds unexpected_machine_check; with MCE and MCA the boot copies a
      // vendor's mce_callbacks before patching, whose handler is mcheck_cmn_handler (both past their ENDBR64);
      // 'none' names no vendor, so no copy.
      const cpu = parseCpu(p, table);
      const mca =
        cpu.has(featureNumber(table, 'MCE')!) && cpu.has(featureNumber(table, 'MCA')!) && vendorOf(cpu) !== undefined;
      const dmc = img.symbol('do_machine_check')!;
      const mce = r.view.patches.find(
        (q) => q.addr >= dmc.addr && q.addr < dmc.addr + dmc.size && /^altcall/.test(q.note ?? ''),
      )!;
      assert.equal(mce.note, `altcall -> ${mca ? 'mcheck_cmn_handler' : 'unexpected_machine_check'}+0x4`, p);
    }
  });
}
