/**
 * Each Linux build's own vmlinux, taken out of the corpus's vmlinuz (bzImage) by a test helper (the zstd or xz
 * payload at setup_sects/payload_offset; reading bzImages directly is separate work): stripped, so detection
 * reads the banner in .rodata and the numbering evidence in .BTF (cpuinfo_x86.x86_capability = NCAPINTS +
 * NBUGINTS words, struct alt_instr). The tables that are output sections are read (those inside
 * .rodata/.init.data need symbols: not here). Oracles: readelf's section sizes; verifyView under every preset.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { decompress } from 'fzstd';
import { Image } from '../../src/elf/image.js';
import { applyPatches, parseCpu, PRESET_IDS, verifyView } from '../../src/patch/index.js';
import { readSites } from '../../src/sites/read.js';
import { crossCheckSites } from '../../src/sites/crosscheck.js';
import { detectTarget } from '../../src/target/detect.js';
import { featureTable } from '../../src/target/features/index.js';
import { corpus, corpusVersion } from '../support/corpus.js';
import { tempDir } from '../support/build.js';

/** The vmlinux inside a bzImage whose payload is zstd (Debian 6.12, 7.x) or xz (Debian 6.1). */
function extractVmlinux(bz: Uint8Array): Uint8Array {
  const dv = new DataView(bz.buffer, bz.byteOffset, bz.byteLength);
  assert.equal(String.fromCharCode(...bz.subarray(0x202, 0x206)), 'HdrS', 'not a bzImage');
  const setupSects = bz[0x1f1] || 4;
  const off = (setupSects + 1) * 512 + dv.getUint32(0x248, true);
  const len = dv.getUint32(0x24c, true);
  const payload = bz.subarray(off, off + len);
  // The payload ends with the 4-byte decompressed size (for the boot decompressor): not part of the stream.
  if (payload[0] === 0xfd && payload[1] === 0x37)
    return execFileSync('xz', ['-dc', '--single-stream'], { input: payload, maxBuffer: 1 << 30 });
  assert.deepEqual([...payload.subarray(0, 4)], [0x28, 0xb5, 0x2f, 0xfd], 'payload is neither xz nor zstd');
  return decompress(payload.subarray(0, len - 4));
}

const BUILDS = [
  [
    'linux-6.1',
    () => corpus.vmlinuz61,
    'linux-6.1',
    ['.altinstructions', '.parainstructions', '.retpoline_sites', '.return_sites', '.smp_locks'],
  ],
  [
    'linux-6.12',
    () => corpus.vmlinuz612,
    'linux-6.8',
    ['.altinstructions', '.retpoline_sites', '.return_sites', '.ibt_endbr_seal', '.smp_locks', '.call_sites'],
  ],
  [
    'linux-6.12-trixie',
    () => corpus.vmlinuz612Trixie,
    'linux-6.8',
    ['.altinstructions', '.retpoline_sites', '.return_sites', '.ibt_endbr_seal', '.smp_locks', '.call_sites'],
  ],
  [
    'linux-7',
    () => corpus.vmlinuz7,
    'linux-7',
    ['.altinstructions', '.retpoline_sites', '.return_sites', '.ibt_endbr_seal', '.call_sites'],
  ],
  [
    'linux-7-cloud',
    () => corpus.vmlinuz7Cloud,
    'linux-7',
    ['.altinstructions', '.retpoline_sites', '.return_sites', '.ibt_endbr_seal', '.call_sites'],
  ],
  [
    'linux-7-rt',
    () => corpus.vmlinuz7Rt,
    'linux-7',
    ['.altinstructions', '.retpoline_sites', '.return_sites', '.ibt_endbr_seal', '.call_sites'],
  ],
] as const;

for (const [id, vmlinuz, profileId, tables] of BUILDS)
  test(`${id} vmlinux (from the vmlinuz): banner and BTF evidence, profile ${profileId} without a note, every alternative named, tables = readelf sizes, every preset verifies`, () => {
    const raw = extractVmlinux(readFileSync(vmlinuz()));
    const path = join(tempDir(), 'vmlinux');
    writeFileSync(path, raw);
    const img = Image.parse(raw, path);
    const t = detectTarget(img);
    assert.equal(t.profile!.id, profileId);
    assert.equal(t.os, 'linux');
    assert.ok(t.version, 'banner found');
    void corpusVersion(id);
    assert.equal(t.note, undefined, t.note);
    assert.deepEqual(t.warnings, []);
    const ft = featureTable(t.profile!.features);
    const cap = t.evidence!.find((e) => e.startsWith('BTF: cpuinfo_x86.x86_capability has'));
    assert.ok(cap, t.evidence!.join('; '));
    assert.equal(cap, `BTF: cpuinfo_x86.x86_capability has ${ft.limit / 32} words (NCAPINTS + NBUGINTS)`);
    assert.ok(t.evidence!.includes(`BTF: struct alt_instr is ${t.profile!.alt === 'linux-12' ? 12 : 14} bytes`));
    const set = readSites(img, t.profile!);
    assert.deepEqual(set.errors, []);
    const readelf = execFileSync('readelf', ['-SW', path], { encoding: 'utf8' });
    const sizes: Record<string, number> = {
      '.altinstructions': t.profile!.alt === 'linux-12' ? 12 : 14,
      '.parainstructions': 16,
      '.retpoline_sites': 4,
      '.return_sites': 4,
      '.call_sites': 4,
      '.ibt_endbr_seal': 4,
      '.smp_locks': 4,
    };
    const expect: Record<string, number> = {};
    for (const line of readelf.split('\n')) {
      const m = /\]\s+(\S+)\s+\S+\s+[0-9a-f]+\s+([0-9a-f]+)\s+([0-9a-f]+)/.exec(line);
      if (!m || !sizes[m[1]!]) continue;
      const [off, size] = [parseInt(m[2]!, 16), parseInt(m[3]!, 16)];
      assert.equal(size % sizes[m[1]!]!, 0, `${m[1]} size ${size}`);
      // 4-byte lists of a linked image: zero words are section padding (the kernel skips them too).
      if (sizes[m[1]!] === 4) {
        const dv = new DataView(raw.buffer, raw.byteOffset + off, size);
        let n = 0;
        for (let k = 0; k < size; k += 4) if (dv.getUint32(k, true) !== 0) n++;
        expect[m[1]!] = n;
      } else expect[m[1]!] = size / sizes[m[1]!]!;
    }
    assert.deepEqual(set.counts, expect);
    assert.deepEqual(Object.keys(set.counts).sort(), [...tables].sort());
    for (const s of set.sites) {
      if (s.table === '.altinstructions') assert.ok(ft.byNumber.has(s.feature!), `feature ${s.feature} unnamed`);
      assert.equal(s.problems, undefined, `${s.table} ${img.where(s.addr)}: ${s.problems}`);
    }
    assert.deepEqual(crossCheckSites(t, set.sites), []);
    if (profileId === 'linux-7') {
      // With 6.12's names the stable 7.3 numbering is not nameable: the cross-check says so.
      const old = detectTarget(img, 'linux-6.8');
      assert.ok(
        crossCheckSites(old, readSites(img, old.profile!, { decode: false }).sites).some((w) =>
          /cannot name.*linux-7 would name them all/.test(w),
        ),
      );
    }
    for (const p of PRESET_IDS) {
      const r = applyPatches(img, t.profile!, parseCpu(p, ft), { sites: set.sites });
      assert.deepEqual(
        verifyView(r.view)
          .slice(0, 5)
          .map((c) => `${img.where(c.addr)}: ${c.problem}`),
        [],
        p,
      );
      assert.deepEqual(
        r.view.findings
          .filter((f) => f.kind === 'bug')
          .map((f) => f.message)
          .slice(0, 5),
        [],
        p,
      );
    }
  });
