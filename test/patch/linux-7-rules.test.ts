/**
 * Rules of the 6.12 and 7.x boot-time patchers that the QEMU ground truth (scripts/qemu-groundtruth.mjs, Debian's
 * 6.12.117 and 7.3.4 booted) showed textpoke missing, pinned on the corpus files themselves.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { imageFromBytes } from '../../src/elf/load.js';
import { detectTarget } from '../../src/target/detect.js';
import { featureTable } from '../../src/target/features/index.js';
import { applyPatches, parseCpu } from '../../src/patch/index.js';
import { readSites } from '../../src/sites/read.js';
import { runtimeConsts } from '../../src/attest/compare.js';
import { corpus } from '../support/corpus.js';

async function module7(rel: string) {
  const path = join(corpus.modules7, rel);
  const img = await imageFromBytes(readFileSync(path), path);
  const t = detectTarget(img);
  assert.equal(t.profile?.id, 'linux-7');
  return { img, profile: t.profile!, table: featureTable(t.profile!.features) };
}

test('7.x apply_seal_endbr writes nopl -42(%rax) (0f 1f 40 d6) over a sealed ENDBR, 6.x osp nopl (%rax)', async () => {
  const { img, profile, table } = await module7('fs/xfs/xfs.ko.xz');
  const r = applyPatches(img, profile, parseCpu('intel-server', table));
  const sealed = r.sites.filter((s) => s.table === '.ibt_endbr_seal');
  assert.ok(sealed.length > 1000, `${sealed.length} sealed ENDBRs`);
  for (const s of sealed) assert.deepEqual([...r.view.read(s.addr, 4)!], [0x0f, 0x1f, 0x40, 0xd6]);
});

test('7.x static calls: WARN_trap sites become the inline ud1, the lazy preemption mode is the default', async () => {
  const { img, profile, table } = await module7('fs/xfs/xfs.ko.xz');
  const r = applyPatches(img, profile, parseCpu('intel-server', table));
  const sc = (key: string) => r.sites.filter((s) => s.table === '.static_call_sites' && s.key?.name === key);
  const warn = sc('__SCT__WARN_trap');
  assert.ok(warn.length > 0);
  // warninsn: `ud1 (%edx),%rdi`, what __WARN_trap() executes (arch/x86/kernel/static_call.c).
  for (const s of warn) assert.deepEqual([...r.view.read(s.addr, 5)!], [0x67, 0x48, 0x0f, 0xb9, 0x3a]);
  // Debian's 7.3.4 boots "Dynamic Preempt: lazy": preempt_schedule_notrace is the x86 thunk, cond_resched returns 0.
  const notrace = sc('__SCT__preempt_schedule_notrace');
  assert.ok(notrace.length > 100);
  for (const s of notrace)
    assert.match(
      r.view.patches.find((p) => p.addr === s.addr && p.patcher === 'static-calls')?.note ?? '',
      /^call preempt_schedule_notrace_thunk$/,
    );
  for (const s of sc('__SCT__cond_resched'))
    assert.deepEqual([...r.view.read(s.addr, 5)!], [0x2e, 0x2e, 0x2e, 0x31, 0xc0]);
});

test('6.12 and 7.x vmlinux: NULL __mcount_loc entries are skipped (as ftrace_process_locs does), runtime constants are found', async () => {
  for (const path of [corpus.vmlinuz612, corpus.vmlinuz7]) {
    const img = await imageFromBytes(readFileSync(path), path);
    const t = detectTarget(img);
    const { errors } = readSites(img, t.profile!, { decode: false });
    assert.deepEqual(
      errors.filter((e) => /__mcount_loc/.test(e)),
      [],
      path,
    );
    // runtime_ptr_NAME entries point at the imm64 of `movabs $0x0123456789abcdef, %reg` in the file.
    const rc = runtimeConsts(img);
    const ptrs = rc.filter((c) => c.length === 8);
    assert.ok(ptrs.length > 10, `${path}: ${rc.length} runtime constants`);
    for (const c of ptrs) assert.equal(Buffer.from(img.read(c.addr, 8)!).readBigUInt64LE(0), 0x0123456789abcdefn);
    assert.ok(rc.some((c) => c.name === 'd_hash_shift' && c.length === 1));
  }
});

test('7.x patch_retpoline without retpolines: CS prefixes before `call *%reg`, INT3 after `jmp *%reg` (emit_indirect with a length)', async () => {
  const { img, profile, table } = await module7('fs/xfs/xfs.ko.xz');
  const r = applyPatches(img, profile, parseCpu('none', table));
  let calls = 0;
  let jmps = 0;
  for (const s of r.sites) {
    if (s.table !== '.retpoline_sites') continue;
    const p = r.view.patches.find((x) => x.addr === s.addr && x.patcher === 'retpolines');
    if (!p) continue;
    const b = [...p.after];
    const ff = b.indexOf(0xff);
    const rex = b[ff - 1] === 0x41 ? 1 : 0;
    const modrm = b[ff + 1]! & 0xf8;
    if (modrm === 0xd0) {
      // call *%reg: every byte before it a CS prefix (the sites are 5 or 6 bytes: 2 or 3 prefixes).
      calls++;
      assert.deepEqual(b.slice(0, ff - rex), Array(ff - rex).fill(0x2e), p.note);
      assert.equal(ff + 2, b.length, p.note);
    } else if (modrm === 0xe0) {
      jmps++;
      assert.equal(ff - rex, 0, p.note);
      assert.deepEqual(b.slice(ff + 2), Array(b.length - ff - 2).fill(0xcc), p.note);
    }
  }
  assert.ok(calls > 1000 && jmps > 10, `${calls} calls, ${jmps} jmps`);
});

test("ASM_NOP_MAX comes from the vmlinux's own x86nops[] where it has one: 8 in 6.1, 11 in 6.12 and 7.3", async () => {
  const { linuxNopMax } = await import('../../src/target/evidence.js');
  const want: [string, number][] = [
    [corpus.vmlinuz61, 8],
    [corpus.vmlinuz612, 11],
    [corpus.vmlinuz7, 11],
  ];
  for (const [path, n] of want) {
    const img = await imageFromBytes(readFileSync(path), path);
    assert.equal(linuxNopMax(img), n, path);
  }
  const { img } = await module7('fs/xfs/xfs.ko.xz');
  assert.equal(linuxNopMax(img), undefined, 'a module has no x86nops[]');
});
