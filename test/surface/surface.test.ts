import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Image } from '../../src/elf/image.js';
import { detectTarget } from '../../src/target/detect.js';
import { featureTable } from '../../src/target/features/index.js';
import { applyPatches, parseCpu } from '../../src/patch/index.js';
import { indirectSurface, Surface } from '../../src/surface/inventory.js';
import { corpus } from '../support/corpus.js';
import { assemble } from '../support/build.js';

function surface(path: string, cpu: string): Surface {
  const img = Image.parse(readFileSync(path), path);
  const t = detectTarget(img);
  const c = parseCpu(cpu, featureTable(t.profile!.features));
  const { view, sites } = applyPatches(img, t.profile!, c);
  return indirectSurface(img, view, sites, cpu);
}

test('xen-syms-4.17: 252 altcalls made direct, thunked calls counted, the few bare ones are early-boot code', () => {
  const s = surface(corpus.xenSyms, 'intel-server');
  assert.equal(s.totals.altcall, 252);
  assert.equal(s.totals.thunkCall, 911);
  assert.equal(s.totals.thunkJump, 39);
  const bare = s.functions
    .filter((f) => f.counts.bareCall + f.counts.bareJump > 0)
    .map((f) => f.name)
    .sort();
  assert.deepEqual(bare, [
    '_etextentry',
    'cmdline_parse_early',
    'compatibility_mode',
    'cs32_switch',
    'reloc',
    'setspc',
    'start64',
    'wakeup_64',
  ]);
  assert.ok(s.thunkInternal > 0, "the thunks' own indirect jumps are kept apart");
});

test('xfs.ko: retpolines become bare indirect calls on eIBRS (intel-server) and stay thunked with retpoline (old)', () => {
  const xfs = corpus.module61('fs/xfs/xfs.ko');
  const intel = surface(xfs, 'intel-server');
  const old = surface(xfs, 'old');
  assert.equal(intel.totals.bareCall + intel.totals.bareJump, 719);
  assert.equal(intel.totals.thunkCall + intel.totals.thunkJump, 0);
  assert.equal(old.totals.thunkCall + old.totals.thunkJump, 719);
  assert.equal(old.totals.bareCall + old.totals.bareJump, 0);
  assert.equal(intel.totals.staticCall, 1308);
});

test('fixture: a paravirt site turns direct, the retpoline site follows the CPU', () => {
  const o = assemble('sites/tables61.S');
  const intel = surface(o, 'intel-server');
  assert.equal(intel.totals.paravirt, 1);
  assert.equal(intel.totals.staticCall, 2);
  assert.equal(intel.totals.bareCall, 1);
  const old = surface(o, 'old');
  assert.equal(old.totals.thunkCall, 1);
  assert.equal(old.totals.bareCall, 0);
});
