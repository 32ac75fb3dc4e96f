/**
 * Xen --cpu-from (src/patch/xen-bootlog.ts) and the altcall destinations the boot decides
 * (src/patch/xen-altcall-targets.ts), on boot-log text of the shape Xen 4.17/4.20 print and on Debian's xen-syms.
 * The QEMU ground truth (test/groundtruth/xen.test.ts) checks both against booted hypervisors.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { main } from '../../src/cli/main.js';
import type { Io } from '../../src/cli/context.js';
import { imageFromBytes } from '../../src/elf/load.js';
import { applyPatches, CpuSpecError, parseCpu, PatchedView } from '../../src/patch/index.js';
import { pointerStores, vendorOf, xenAltcallTargets } from '../../src/patch/xen-altcall-targets.js';
import { cpuFromXenBootLog, parseXenBootLog } from '../../src/patch/xen-bootlog.js';
import { detectTarget } from '../../src/target/detect.js';
import { featureTable } from '../../src/target/features/index.js';
import { corpus } from '../support/corpus.js';
import { tempDir } from '../support/build.js';

const table = featureTable('xen-4.17.7');

/** The spec-ctrl block as Xen 4.17.7 prints it; `settings`, `hvm`, `pv` vary per test. */
function bootLog(vendor: string, settings: string, hvm: string, pv: string, extra = ''): string {
  return [
    '(XEN) Xen version 4.17.7 (Debian 4.17.7+13-g2445b30a44-0+deb12u1) debug=n',
    '(XEN) Command line: console=com1 noreboot',
    `(XEN) CPU Vendor: ${vendor}`,
    extra,
    '(XEN) Speculative mitigation facilities:',
    '(XEN)   Hardware hints:',
    '(XEN)   Hardware features:',
    '(XEN)   Compiled-in support: INDIRECT_THUNK RETURN_THUNK HARDEN_ARRAY HARDEN_BRANCH HARDEN_GUEST_ACCESS HARDEN_LOCK',
    `(XEN)   Xen settings: ${settings}`,
    `(XEN)   Support for HVM VMs:${hvm}`,
    `(XEN)   Support for PV VMs:${pv}`,
    '(XEN)   XPTI (64-bit PV only): Dom0 enabled, DomU enabled (without PCID)',
  ].join('\n');
}
const names = (spec: string): string[] =>
  spec
    .split(',')
    .slice(1)
    .filter((x) => x.startsWith('+'))
    .map((x) => x.slice(1));

test('Xen boot log -> CPU spec: thunk, BHB sequence, hardening, guest entry actions and the safety LFENCEs', () => {
  const intel = cpuFromXenBootLog(
    bootLog(
      'Intel, Family 6 (0x6), Model 94 (0x5e), Stepping 3 (raw 000506e3)',
      'BTI-Thunk: RETPOLINE, BHB-Seq: SHORT, SPEC_CTRL: No, Other: BRANCH_HARDEN',
      ' RSB EAGER_FPU BHB-entry',
      ' EAGER_FPU BHB-entry',
    ),
    table,
  );
  const n = names(intel.spec);
  assert.ok(intel.spec.endsWith(',nops=p6'));
  for (const f of [
    'X86_SPEC_BHB_LOOPS',
    'X86_FEATURE_SC_NO_LOCK_HARDEN',
    'X86_FEATURE_SC_RSB_HVM',
    'X86_FEATURE_ALWAYS',
    'X86_FEATURE_SEP',
  ])
    assert.ok(n.includes(f), f);
  assert.equal(vendorOf(parseCpu(intel.spec, table)), 'intel');
  // BRANCH_HARDEN printed: hardening on; BHB-entry for both guest kinds: the safety LFENCEs stay.
  for (const f of [
    'X86_FEATURE_SC_NO_BRANCH_HARDEN',
    'X86_FEATURE_IND_THUNK_LFENCE',
    'X86_SPEC_NO_LFENCE_ENTRY_PV',
    'X86_SPEC_NO_LFENCE_ENTRY_VMX',
    'X86_FEATURE_SC_RSB_PV',
  ])
    assert.ok(!n.includes(f), f);
  assert.ok(intel.notes.some((x) => /no xen-cpuid featureset/.test(x)));

  const lfence = names(
    cpuFromXenBootLog(
      bootLog(
        'Intel, Family 6 (0x6), Model 94 (0x5e)',
        'BTI-Thunk: LFENCE, BHB-Seq: LONG, SPEC_CTRL: No, Other: BRANCH_HARDEN LOCK_HARDEN',
        ' RSB',
        ' MSR_SPEC_CTRL RSB IBPB-entry',
      ),
      table,
    ).spec,
  );
  for (const f of [
    'X86_FEATURE_IND_THUNK_LFENCE',
    'X86_SPEC_BHB_LOOPS',
    'X86_SPEC_BHB_LOOPS_LONG',
    'X86_FEATURE_SC_MSR_PV',
    'X86_FEATURE_SC_RSB_PV',
    'X86_FEATURE_IBPB_ENTRY_PV',
    'X86_SPEC_NO_LFENCE_ENTRY_PV',
    'X86_SPEC_NO_LFENCE_ENTRY_INTR',
    'X86_SPEC_NO_LFENCE_ENTRY_VMX',
  ])
    assert.ok(lfence.includes(f), f);
  assert.ok(!lfence.includes('X86_FEATURE_SC_NO_LOCK_HARDEN'));

  // Zen 2 with spec-ctrl defaults under QEMU: no BHB, IBPB-entry or PV actions: every safety LFENCE dropped.
  const rome = cpuFromXenBootLog(
    bootLog(
      'AMD, Family 23 (0x17), Model 49 (0x31), Stepping 0 (raw 00830f10)',
      'BTI-Thunk: RETPOLINE, SPEC_CTRL: No, Other: DIV BRANCH_HARDEN',
      ' MSR_VIRT_SPEC_CTRL RSB',
      ' None',
    ),
    table,
  );
  const r = names(rome.spec);
  for (const f of [
    'X86_FEATURE_SC_DIV',
    'X86_FEATURE_MFENCE_RDTSC',
    'X86_SPEC_NO_LFENCE_ENTRY_PV',
    'X86_SPEC_NO_LFENCE_ENTRY_INTR',
    'X86_SPEC_NO_LFENCE_ENTRY_VMX',
  ])
    assert.ok(r.includes(f), f);
  assert.ok(!r.includes('X86_FEATURE_SC_MSR_HVM'), 'MSR_VIRT_SPEC_CTRL alone is not SC_MSR_HVM');
  assert.ok(rome.notes.some((x) => /MFENCE_RDTSC assumed/.test(x)));
});

test('Xen boot log -> CPU spec: xen-cpuid featureset words, NOP table by family/model, GDS, CET', () => {
  // Words 0..18 as xen-cpuid prints them; word 5 (7b0) bit 20 SMAP, bit 7 SMEP, bit 3 BMI1.
  const words = new Array(19).fill('00000000');
  words[5] = ((1 << 20) | (1 << 7) | (1 << 3)).toString(16).padStart(8, '0');
  words[1] = (1 << 28).toString(16).padStart(8, '0'); // AVX
  const k8 = cpuFromXenBootLog(
    bootLog(
      'AMD, Family 15 (0xf), Model 107 (0x6b), Stepping 1',
      'BTI-Thunk: RETPOLINE, SPEC_CTRL: No, Other: BRANCH_HARDEN',
      ' RSB',
      ' None',
      '(XEN) Mitigating GDS by disabling AVX while virtualised - protections are best-effort\n(XEN) Enabling Supervisor Shadow Stacks',
    ) + `\nRaw                       ${words.join(':')}\n`,
    table,
  );
  const n = names(k8.spec);
  assert.ok(k8.spec.endsWith(',nops=k8'), 'AMD family 0xf: K8 NOPs');
  for (const f of [
    'X86_FEATURE_SMAP',
    'X86_FEATURE_XEN_SMAP',
    'X86_FEATURE_XEN_SMEP',
    'X86_FEATURE_BMI1',
    'X86_FEATURE_LFENCE_DISPATCH',
    'X86_FEATURE_XEN_SHSTK',
    'X86_BUG_CLFLUSH_MFENCE',
  ])
    assert.ok(n.includes(f), f);
  for (const f of ['X86_FEATURE_AVX', 'X86_FEATURE_MFENCE_RDTSC', 'X86_FEATURE_XEN_IBT']) assert.ok(!n.includes(f), f);
  assert.ok(k8.notes.some((x) => /Raw line/.test(x)));
  // Hardware features name Intel's leaf 7 bits or AMD's 0x80000008 ones by vendor.
  const hw = (vendor: string): string[] =>
    names(
      cpuFromXenBootLog(
        bootLog(vendor, 'SPEC_CTRL: No, Other:', '', '').replace(
          'Hardware features:',
          'Hardware features: IBPB IBRS STIBP SSBD MD_CLEAR',
        ),
        table,
      ).spec,
    );
  const i = hw('Intel, Family 6 (0x6), Model 85 (0x55)');
  for (const f of ['X86_FEATURE_IBRSB', 'X86_FEATURE_STIBP', 'X86_FEATURE_SSBD', 'X86_FEATURE_MD_CLEAR'])
    assert.ok(i.includes(f), f);
  assert.ok(!i.includes('X86_FEATURE_AMD_STIBP') && !i.includes('X86_FEATURE_IBPB'));
  const a = hw('AMD, Family 25 (0x19), Model 1 (0x1)');
  for (const f of ['X86_FEATURE_IBPB', 'X86_FEATURE_IBRS', 'X86_FEATURE_AMD_STIBP', 'X86_FEATURE_AMD_SSBD'])
    assert.ok(a.includes(f), f);
  assert.ok(a.includes('X86_BUG_IBPB_NO_RET'), 'AMD with IBPB but not IBPB_RET');
  // A Host line wins over Raw.
  const host = parseXenBootLog(
    `Raw                       ${words.join(':')}\nHost                      ${new Array(19).fill('00000001').join(':')}\n`,
  );
  assert.equal(host.featuresetFrom, 'Host');
  assert.equal(host.featureset![0], 1);
  // Intel family 6 model 0x1a (Nehalem) takes K8 NOPs; model 0x5e does not.
  assert.ok(
    cpuFromXenBootLog(
      bootLog('Intel, Family 6 (0x6), Model 26 (0x1a)', 'SPEC_CTRL: No, Other: BRANCH_HARDEN', '', ''),
      table,
    ).spec.endsWith('nops=k8'),
  );
  assert.throws(() => cpuFromXenBootLog('Linux version 6.1.0\n', table), CpuSpecError);
  assert.throws(
    () =>
      cpuFromXenBootLog(
        bootLog('Intel, Family 6 (0x6), Model 94 (0x5e)', 'Other:', '', ''),
        featureTable('linux-6.1.85'),
      ),
    CpuSpecError,
  );
  // Every spec it writes parses.
  parseCpu(k8.spec, table);
});

test('xen-syms: the altcall pointers the boot sets are taken from the binary (ops tables per vendor, inline stores)', async () => {
  const img = await imageFromBytes(readFileSync(corpus.xenSyms), corpus.xenSyms);
  const profile = detectTarget(img).profile!;
  const view = new PatchedView(img);
  const word = (abs: bigint): bigint => {
    const b = view.read(view.rel(abs), 8)!;
    return new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true);
  };
  const amd = parseCpu('amd-server', table);
  const intel = parseCpu('intel-server', table);
  assert.equal(vendorOf(amd), 'amd');
  assert.equal(vendorOf(intel), 'intel');
  assert.equal(vendorOf(parseCpu('all', table)), 'amd');
  assert.equal(vendorOf(parseCpu('none', table)), undefined);
  // SVM: hvm_funcs is svm_function_table, word for word, after the pre-SMP initcalls (second pass only).
  const hvm = view.symbolAbs('hvm_funcs')!;
  const svm = view.symbolAbs('svm_function_table')!;
  const t = xenAltcallTargets(view, amd);
  let words = 0;
  for (let o = 0n; o < BigInt(img.symbol('hvm_funcs')!.size) - 7n; o += 8n) {
    assert.equal(t.value(hvm + o, true), word(svm + o));
    assert.equal(t.value(hvm + o, false), undefined, 'hvm_enable runs between the passes');
    if (word(svm + o)) words++;
  }
  assert.ok(words > 40, `${words} non-NULL words in svm_function_table`);
  // VMX: only vmx_function_table's non-NULL pointers (start_vmx fills others from VMX MSRs).
  const vmx = view.symbolAbs('vmx_function_table')!;
  const ti = xenAltcallTargets(view, intel);
  for (let o = 0n; o < BigInt(img.symbol('hvm_funcs')!.size) - 7n; o += 8n)
    assert.equal(ti.value(hvm + o, true), word(vmx + o) || undefined);
  // Early assignments apply at the first pass: the Intel CPU's early_init/init hooks.
  const actual = view.symbolAbs('actual_cpu')!;
  assert.equal(view.nameOf(ti.value(actual, false)!), 'early_init_intel');
  assert.equal(view.nameOf(t.value(actual + 8n, false)!), 'init_amd');
  // Intel's CPUID masking: only on the family 6 models with masking MSRs, only without CPUID faulting, and only
  // when the model is known.
  const csm = view.symbolAbs('ctxt_switch_masking')!;
  const penryn = { vendor: 'intel' as const, family: 6, model: 0x17 };
  const noFaulting = parseCpu('intel-server,-CPUID_FAULTING', table);
  assert.equal(
    view.nameOf(xenAltcallTargets(view, noFaulting, penryn).value(csm, false)!),
    'intel_ctxt_switch_masking',
  );
  assert.equal(xenAltcallTargets(view, noFaulting, { ...penryn, model: 0x5e }).value(csm, false), undefined);
  assert.equal(xenAltcallTargets(view, intel, penryn).value(csm, false), undefined, 'the preset has CPUID faulting');
  assert.equal(ti.value(csm, false), undefined, 'no model, no rule');
  assert.equal(view.nameOf(t.value(csm, false)!), 'amd_ctxt_switch_masking');
  // AMD family 0xf (known from the id or from the K8 NOP table): k8 MCE callbacks and no microcode ops.
  const ucode = view.symbolAbs('ucode_ops')!;
  const k8 = xenAltcallTargets(view, amd, { vendor: 'amd', family: 0xf, model: 0x6b });
  assert.equal(k8.value(ucode, false), undefined);
  assert.equal(xenAltcallTargets(view, parseCpu('amd-server,nops=k8', table)).value(ucode, false), undefined);
  assert.notEqual(t.value(ucode, false), undefined);
  const mce = view.symbolAbs('mce_callbacks')!;
  for (let o = 0n; o < 40n; o += 8n) assert.equal(k8.value(mce + o, false), word(view.symbolAbs('k8_callbacks')! + o));
  // In the patched image: the altcalls through hvm_funcs become direct calls into svm.c on AMD.
  const r = applyPatches(img, profile, amd);
  const svmCalls = r.view.patches.filter((p) => /^altcall -> (svm_|nsvm_)/.test(p.note ?? '')).length;
  assert.ok(svmCalls > 100, `${svmCalls} altcalls into SVM code`);
  // 4.20 builds ucode_ops inline in ucode_probe_intel(ops): five stores through %rdi.
  const img20 = await imageFromBytes(readFileSync(corpus.xenSyms420), corpus.xenSyms420);
  const v20 = new PatchedView(img20);
  const stores = pointerStores(v20, 'ucode_probe_intel');
  assert.deepEqual(
    [...stores].map(([o, a]) => `${o}=${v20.nameOf(a)}`),
    ['0=cpu_request_microcode', '8=collect_cpu_info', '16=apply_microcode', '24=intel_compare', '32=intel_cpio_path'],
  );
  assert.deepEqual(
    [...pointerStores(v20, 'ucode_probe_amd')].map(([o, a]) => `${o}=${v20.nameOf(a)}`)[3],
    '24=amd_compare',
  );
});

function io(): Io & { o: string; e: string } {
  const r = {
    o: '',
    e: '',
    isTTY: false,
    out(t: string) {
      r.o += t;
    },
    err(t: string) {
      r.e += t;
    },
  };
  return r;
}

test('textpoke apply --cpu-from BOOTLOG on xen-syms; --cpu and --cpu-from exclude each other', async () => {
  const dir = tempDir();
  const log = join(dir, 'xl-dmesg.txt');
  writeFileSync(
    log,
    bootLog(
      'AMD, Family 23 (0x17), Model 49 (0x31)',
      'BTI-Thunk: RETPOLINE, SPEC_CTRL: No, Other: DIV BRANCH_HARDEN',
      ' RSB',
      ' None',
    ),
  );
  const out = join(dir, 'xen-syms.out');
  const r = io();
  assert.equal(await main(['apply', corpus.xenSyms, '--cpu-from', log, '-o', out], r), 0, r.e);
  assert.match(r.o, /writes for --cpu from \S+xl-dmesg\.txt -> /);
  assert.match(r.o, /note: the CPU as --cpu none,/);
  assert.match(r.o, /note: no xen-cpuid featureset/);
  const both = io();
  assert.equal(await main(['apply', corpus.xenSyms, '--cpu', 'none', '--cpu-from', log, '-o', out], both), 2);
  assert.match(both.e, /exclude each other/);
  const neither = io();
  assert.equal(await main(['apply', corpus.xenSyms, '-o', out], neither), 2);
  assert.match(neither.e, /one of --cpu SPEC, --cpu host or --cpu-from DIR|FILE is required/);
  const notXen = io();
  writeFileSync(join(dir, 'other.txt'), 'hello\n');
  assert.equal(await main(['diff', corpus.xenSyms, '--cpu-from', join(dir, 'other.txt'), '--summary'], notXen), 2);
  assert.match(notXen.e, /no Xen boot log here/);
});
