import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Image } from '../../src/elf/image.js';
import { detectTarget } from '../../src/target/detect.js';
import { featureTable } from '../../src/target/features/index.js';
import { applyPatches, parseCpu } from '../../src/patch/index.js';
import { assemble } from '../support/build.js';
import { execFileSync } from 'node:child_process';
import { corpus, pinned } from '../support/corpus.js';

function apply(path: string, ftrace?: 'nop' | 'call') {
  const img = Image.parse(readFileSync(path), path);
  const t = detectTarget(img);
  return {
    img,
    ...applyPatches(img, t.profile!, parseCpu('intel-server', featureTable(t.profile!.features)), { ftrace }),
  };
}

test('ftrace: every mcount call becomes the 5-byte NOP, as ftrace_init_nop leaves it; --ftrace call keeps it', () => {
  const o = assemble('sites/tables61.S');
  const { sites, view } = apply(o);
  const m = sites.find((s) => s.table === '__mcount_loc')!;
  assert.deepEqual([...view.read(m.addr, 5)!], [0x0f, 0x1f, 0x44, 0x00, 0x00]);
  assert.ok(view.patches.some((p) => p.patcher === 'ftrace' && p.addr === m.addr));
  const kept = apply(o, 'call');
  assert.equal(kept.view.read(m.addr, 1)![0], 0xe8);
  assert.ok(!kept.view.patches.some((p) => p.patcher === 'ftrace'));
});

test('ftrace on xfs.ko: every mcount site NOPed (count = readelf size / 8), nothing else written by ftrace', (t) => {
  const path = corpus.module61('fs/xfs/xfs.ko');
  const { sites, view } = apply(path);
  const mcount = sites.filter((s) => s.table === '__mcount_loc');
  const sec = execFileSync('readelf', ['-SW', path], { encoding: 'utf8' })
    .split('\n')
    .find((l) => / __mcount_loc /.test(l))!;
  const size = parseInt(/__mcount_loc\s+\S+\s+[0-9a-f]+\s+[0-9a-f]+\s+([0-9a-f]+)/.exec(sec)![1]!, 16);
  assert.equal(mcount.length, size / 8);
  // 6.1.0-47 had 2,650; measured 6.1.0-57 below.
  if (pinned('linux-6.1', '6.1.192-3', t.diagnostic.bind(t))) assert.equal(mcount.length, 2647);
  const writes = view.patches.filter((p) => p.patcher === 'ftrace');
  assert.equal(writes.length, mcount.length);
  assert.deepEqual(new Set(writes.map((w) => w.addr)), new Set(mcount.map((s) => s.addr)));
  assert.equal(view.findings.filter((f) => f.patcher === 'ftrace').length, 0);
});
