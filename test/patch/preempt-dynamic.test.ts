import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Image } from '../../src/elf/image.js';
import { detectTarget } from '../../src/target/detect.js';
import { featureTable } from '../../src/target/features/index.js';
import { applyPatches, parseCpu } from '../../src/patch/index.js';
import { corpus } from '../support/corpus.js';

const NOP5 = [0x0f, 0x1f, 0x44, 0x00, 0x00];

function run(preempt: 'none' | 'voluntary' | 'full' | 'unknown') {
  const path = corpus.module61('fs/xfs/xfs.ko');
  const img = Image.parse(readFileSync(path), path);
  const t = detectTarget(img);
  const r = applyPatches(img, t.profile!, parseCpu('intel-server', featureTable(t.profile!.features)), { preempt });
  const site = (key: string) => r.sites.filter((s) => s.table === '.static_call_sites' && s.key?.name === key);
  return { ...r, site };
}

test('PREEMPT_DYNAMIC keys of vmlinux follow the preemption mode (sched_dynamic_update)', () => {
  const vol = run('voluntary');
  const ps = vol.site('__SCT__preempt_schedule_notrace');
  assert.ok(ps.length > 100, `${ps.length} preempt_schedule_notrace sites`);
  for (const s of ps)
    assert.deepEqual([...vol.view.read(s.addr, 5)!], NOP5, 'voluntary: preempt_schedule_notrace is NULL');
  const cr = vol.site('__SCT__might_resched');
  assert.equal(cr.length, 8);
  for (const s of cr) {
    const p = vol.view.patches.find((x) => x.addr === s.addr && x.patcher === 'static-calls');
    assert.match(p?.note ?? '', /call __cond_resched/);
  }
  const full = run('full');
  for (const s of full.site('__SCT__preempt_schedule_notrace')) {
    assert.equal(full.view.read(s.addr, 1)![0], 0xe8);
    assert.match(
      full.view.patches.find((x) => x.addr === s.addr && x.patcher === 'static-calls')?.note ?? '',
      /^call preempt_schedule_notrace_thunk$/, // x86: preempt_schedule_dynamic_enabled is the asm thunk
    );
  }
  for (const s of full.site('__SCT__might_resched'))
    assert.deepEqual([...full.view.read(s.addr, 5)!], [0x2e, 0x2e, 0x2e, 0x31, 0xc0], 'full: might_resched returns 0');
  const unknown = run('unknown');
  for (const s of unknown.site('__SCT__preempt_schedule_notrace'))
    assert.ok(!unknown.view.patches.some((x) => x.addr === s.addr && x.patcher === 'static-calls'));
  assert.ok(unknown.view.notes.some((n) => /keep calling their trampolines/.test(n)));
});
