/**
 * `--cpu-from FILE` for Xen: the CPU a booted hypervisor describes about itself, as a `--cpu` spec.
 *
 * FILE is Xen's boot log (`xl dmesg`, or the serial console), optionally followed by `xen-cpuid` output from
 * dom0. What each part gives (Xen 4.17 and 4.20, read from arch/x86/spec_ctrl.c, setup.c, cpu/*.c):
 *  - `CPU Vendor: Intel, Family 6 (0x6), Model 94 (0x5e), ...`: the vendor and family/model, which pick the NOP
 *    table (arch_init_ideal_nops: K8 NOPs on AMD family <= 0xf and Intel family 6 models 0x0f-0x1b, 0x1d-0x25,
 *    0x28-0x2f) and the vendor-specific synthetic bits below;
 *  - `Xen settings: BTI-Thunk: RETPOLINE|LFENCE|JMP, BHB-Seq: TSX|SHORT|LONG, ..., Other: ... DIV BRANCH_HARDEN
 *    LOCK_HARDEN`: IND_THUNK_LFENCE / IND_THUNK_JMP; X86_SPEC_BHB_TSX / X86_SPEC_BHB_LOOPS (+ _LONG); SC_DIV;
 *    SC_NO_BRANCH_HARDEN and SC_NO_LOCK_HARDEN when those words are absent;
 *  - `Support for HVM VMs:` / `Support for PV VMs:` `MSR_SPEC_CTRL RSB IBPB-entry BHB-entry`: SC_MSR_HVM/PV,
 *    SC_RSB_HVM/PV, IBPB_ENTRY_HVM/PV; and from them, as init_speculation_mitigations() does,
 *    X86_SPEC_NO_LFENCE_ENTRY_PV/INTR/VMX;
 *  - `Hardware features:` / `Hardware hints:`: the spec-ctrl CPUID/ARCH_CAPS bits they name;
 *  - `Enabling Supervisor Shadow Stacks` / `Enabling Indirect Branch Tracking`: XEN_SHSTK / XEN_IBT;
 *  - `Mitigating GDS by disabling AVX`: AVX (and the features depending on it) cleared;
 *  - `xen-cpuid` output's `Host` featureset line (else its `Raw` line): every CPUID word Xen keeps in
 *    boot_cpu_data (featureset words 0 .. FSCAPINTS-1, in xen-cpuid's order).
 * Derived from the CPUID words, with Xen's default command line: XEN_SMEP / XEN_SMAP (SMEP / SMAP present),
 * XEN_SELFSNOOP (Intel with SS, not one of the excluded models), MFENCE_RDTSC (AMD/Hygon without
 * LFENCE_DISPATCH in CPUID: Xen also sets LFENCE_DISPATCH itself when it can make LFENCE dispatch-serialising
 * through MSR DE_CFG, which no log line states; on AMD hardware that usually succeeds, so pass
 * `-MFENCE_RDTSC` there), X86_BUG_CLFLUSH_MFENCE (AMD without CLFLUSHOPT), X86_BUG_IBPB_NO_RET (AMD with IBPB
 * but not IBPB_RET), X86_BUG_FPU_PTRS (AMD without RSTR_FP_ERR_PTRS), X86_BUG_NULL_SEG (AMD without NSCB: Xen
 * also detects a Zen 2's NULL-selector behaviour when not virtualised), and on AMD the leaf 0x80000001 EDX copies
 * of leaf 1 EDX bits and SEP are dropped as init_amd does.
 * Not derivable from the log: the SMT-dependent idle actions SC_MSR_IDLE, SC_RSB_IDLE, SC_VERW_IDLE (taken as
 * off), XEN_LBR (`ler` on the command line), X86_BUG_MONITOR / CLFLUSH_MONITOR (old Intel models).
 * Without a featureset line only the log's own bits are known: the result then says so in `notes`.
 */
import { CpuSpecError } from './cpu.js';
import type { XenCpuId } from './xen-altcall-targets.js';
import { FeatureTable, featureName, featureNumber } from '../target/features/index.js';

export interface XenBootLog {
  vendor?: 'intel' | 'amd' | 'hygon' | 'other';
  family?: number;
  model?: number;
  commandLine?: string;
  /** Featureset words from xen-cpuid (Host preferred, else Raw), and which line they came from. */
  featureset?: number[];
  featuresetFrom?: string;
  settings?: string;
  hvm?: string[];
  pv?: string[];
  hints: string[];
  hardware: string[];
  shstk: boolean;
  ibt: boolean;
  gdsNoAvx: boolean;
}

export interface XenCpuFromLog {
  spec: string;
  /** Vendor, family and model from the `CPU Vendor:` line (undefined for other vendors). */
  id?: XenCpuId;
  log: XenBootLog;
  /** What the spec had to assume. */
  notes: string[];
}

const strip = (l: string): string => l.replace(/^\s*(\(XEN\)\s*)?(\[[^\]]*\]\s*)?/, '');

export function parseXenBootLog(text: string): XenBootLog {
  const out: XenBootLog = { hints: [], hardware: [], shstk: false, ibt: false, gdsNoAvx: false };
  let raw: number[] | undefined;
  for (const line0 of text.split(/\r?\n/)) {
    const line = strip(line0);
    let m: RegExpExecArray | null;
    if ((m = /^CPU Vendor: (\w+), Family (\d+) \([^)]*\), Model (\d+)/.exec(line))) {
      const v = m[1]!.toLowerCase();
      out.vendor = v === 'intel' || v === 'amd' || v === 'hygon' ? v : 'other';
      out.family = Number(m[2]);
      out.model = Number(m[3]);
    } else if ((m = /^Command line: ?(.*)$/.exec(line))) out.commandLine = m[1]!;
    else if ((m = /^Xen settings: (.*)$/.exec(line))) out.settings = m[1]!;
    else if ((m = /^Support for HVM VMs:(.*)$/.exec(line))) out.hvm = m[1]!.trim().split(/\s+/).filter(Boolean);
    else if ((m = /^Support for PV VMs:(.*)$/.exec(line))) out.pv = m[1]!.trim().split(/\s+/).filter(Boolean);
    else if ((m = /^Hardware hints:(.*)$/.exec(line))) out.hints = m[1]!.trim().split(/\s+/).filter(Boolean);
    else if ((m = /^Hardware features:(.*)$/.exec(line))) out.hardware = m[1]!.trim().split(/\s+/).filter(Boolean);
    else if (/^Enabling Supervisor Shadow Stacks/.test(line)) out.shstk = true;
    else if (/^Enabling Indirect Branch Tracking/.test(line)) out.ibt = true;
    else if (/^Mitigating GDS by disabling AVX/.test(line)) out.gdsNoAvx = true;
    else if ((m = /^(Host|Raw)\s+([0-9a-f]{8}(?::[0-9a-f]{8})+)\s*$/i.exec(line))) {
      const words = m[2]!.split(':').map((w) => parseInt(w, 16) >>> 0);
      if (m[1]!.toLowerCase() === 'host') {
        out.featureset = words;
        out.featuresetFrom = 'Host';
      } else raw = words;
    }
  }
  if (!out.featureset && raw) {
    out.featureset = raw;
    out.featuresetFrom = 'Raw';
  }
  return out;
}

/** Features Xen clears with AVX (the deep dependencies of AVX in Xen's gen-cpuid.py that Xen names). */
const AVX_DEPENDENTS = [
  'AVX',
  'AVX2',
  'FMA',
  'F16C',
  'FMA4',
  'XOP',
  'AVX512F',
  'AVX512DQ',
  'AVX512_IFMA',
  'AVX512CD',
  'AVX512BW',
  'AVX512VL',
  'AVX512_VBMI',
  'AVX512_VBMI2',
  'AVX512_VNNI',
  'AVX512_BITALG',
  'AVX512_VPOPCNTDQ',
  'AVX512_BF16',
  'AVX512_FP16',
  'AVX_VNNI',
  'VAES',
  'VPCLMULQDQ',
  'AVX512_4VNNIW',
  'AVX512_4FMAPS',
  'AVX512_VP2INTERSECT',
  'AVX_VNNI_INT8',
  'AVX_IFMA',
  'AVX_NE_CONVERT',
];

/**
 * `Hardware features:` words whose feature differs by vendor (print_details prints one word for Intel's
 * leaf 7 bit and AMD's leaf 0x80000008 bit); other words are Xen's feature names.
 */
const HARDWARE_NAMES: Record<string, { intel: string; amd: string }> = {
  IBPB: { intel: 'IBRSB', amd: 'IBPB' },
  IBRS: { intel: 'IBRSB', amd: 'IBRS' },
  STIBP: { intel: 'STIBP', amd: 'AMD_STIBP' },
  SSBD: { intel: 'SSBD', amd: 'AMD_SSBD' },
  PSFD: { intel: 'INTEL_PSFD', amd: 'PSFD' },
};

/**
 * The --cpu spec for a Xen boot log (plus optional xen-cpuid output). Throws CpuSpecError when the text is not
 * a Xen boot log.
 */
export function cpuFromXenBootLog(text: string, table: FeatureTable): XenCpuFromLog {
  if (table.family !== 'xen')
    throw new CpuSpecError(`--cpu-from: a Xen boot log needs a Xen file (feature table ${table.id})`);
  const log = parseXenBootLog(text);
  if (!log.vendor || log.settings === undefined)
    throw new CpuSpecError('--cpu-from: no Xen boot log here (no "CPU Vendor:" or "Xen settings:" line)');
  const notes: string[] = [];
  const set = new Set<number>();
  const on = (name: string): void => {
    const n = featureNumber(table, name);
    if (n !== undefined) set.add(n);
  };
  const off = (name: string): void => {
    const n = featureNumber(table, name);
    if (n !== undefined) set.delete(n);
  };
  const has = (name: string): boolean => {
    const n = featureNumber(table, name);
    return n !== undefined && set.has(n);
  };
  on('ALWAYS');
  if (log.featureset) {
    const words = Math.min(log.featureset.length, table.words);
    for (let w = 0; w < words; w++) for (let b = 0; b < 32; b++) if (log.featureset[w]! & (1 << b)) set.add(w * 32 + b);
    if (log.featuresetFrom === 'Raw')
      notes.push("CPUID words from xen-cpuid's Raw line (no Host line): bits Xen clears by policy are kept");
  } else {
    notes.push(
      'no xen-cpuid featureset in the file: only the features the boot log names are set (CPUID bits such as BMI1, POPCNT, SMAP, XSAVEOPT are not)',
    );
    // The CPUID bit that tells the vendor apart (see xen-altcall-targets.ts vendorOf): every 64-bit Intel CPU
    // reports SEP (Xen keeps it there), every AMD64 one MMXEXT.
    if (log.vendor === 'intel') on('SEP');
    else if (log.vendor === 'amd' || log.vendor === 'hygon') on('MMXEXT');
  }
  const intel = log.vendor === 'intel';
  const amd = log.vendor === 'amd' || log.vendor === 'hygon';
  // Spec-ctrl hardware bits and hints the log names (also in the featureset when there is one).
  for (const h of log.hardware) on(HARDWARE_NAMES[h] ? HARDWARE_NAMES[h]![intel ? 'intel' : 'amd'] : h);
  for (const h of log.hints) on(h);
  if (log.gdsNoAvx) for (const f of AVX_DEPENDENTS) off(f);

  // Xen settings line.
  const s = log.settings;
  const thunk = /BTI-Thunk: (\w+)/.exec(s)?.[1];
  if (thunk === 'LFENCE') on('IND_THUNK_LFENCE');
  else if (thunk === 'JMP') on('IND_THUNK_JMP');
  const bhb = /BHB-Seq: (\w+)/.exec(s)?.[1];
  if (bhb === 'TSX') on('X86_SPEC_BHB_TSX');
  else if (bhb === 'SHORT') on('X86_SPEC_BHB_LOOPS');
  else if (bhb === 'LONG') {
    on('X86_SPEC_BHB_LOOPS');
    on('X86_SPEC_BHB_LOOPS_LONG');
  }
  const other = (/Other:(.*)$/.exec(s)?.[1] ?? '').trim().split(/\s+/).filter(Boolean);
  if (!other.includes('BRANCH_HARDEN')) on('SC_NO_BRANCH_HARDEN');
  if (!other.includes('LOCK_HARDEN')) on('SC_NO_LOCK_HARDEN');
  if (other.includes('DIV')) on('SC_DIV');

  // Guest support lines.
  const hvm = log.hvm ?? [];
  const pv = log.pv ?? [];
  if (hvm.includes('MSR_SPEC_CTRL')) on('SC_MSR_HVM');
  if (hvm.includes('RSB')) on('SC_RSB_HVM');
  if (hvm.includes('IBPB-entry')) on('IBPB_ENTRY_HVM');
  if (pv.includes('MSR_SPEC_CTRL')) on('SC_MSR_PV');
  if (pv.includes('RSB')) on('SC_RSB_PV');
  if (pv.includes('IBPB-entry')) on('IBPB_ENTRY_PV');
  const bhbPv = pv.includes('BHB-entry');
  const bhbHvm = hvm.includes('BHB-entry');
  if (!bhbPv && (has('SC_MSR_PV') || !has('IBPB_ENTRY_PV'))) on('X86_SPEC_NO_LFENCE_ENTRY_PV');
  if (!bhbPv && (has('SC_MSR_PV') || (!has('IBPB_ENTRY_PV') && !has('SC_RSB_PV')))) on('X86_SPEC_NO_LFENCE_ENTRY_INTR');
  if (!bhbHvm) on('X86_SPEC_NO_LFENCE_ENTRY_VMX');

  // CET.
  if (log.shstk) on('XEN_SHSTK');
  if (log.ibt) on('XEN_IBT');

  // Derived from CPUID with the default command line.
  const cmd = ` ${log.commandLine ?? ''} `;
  if (has('SMEP') && !/\ssmep=(0|no|false|off|hvm)\b/.test(cmd)) on('XEN_SMEP');
  if (has('SMAP') && !/\ssmap=(0|no|false|off|hvm)\b/.test(cmd)) on('XEN_SMAP');
  if (intel && log.family === 6 && has('SS') && ![0x1f, 0x1a, 0x2e, 0x25, 0x2c, 0x2a].includes(log.model ?? -1))
    on('XEN_SELFSNOOP');
  if (amd && log.featureset) {
    // The AMD leaf 0x80000001 EDX copies of leaf 1 EDX bits (CPUID_COMMON_1D_FEATURES) are not kept, and SYSENTER
    // is not usable in long mode on AMD (early_init_amd / init_amd).
    for (let b = 0; b < 32; b++) if (0x0183f3ff & (1 << b)) set.delete(2 * 32 + b);
    off('SEP');
    if (!has('NSCB')) on('X86_BUG_NULL_SEG');
  }
  if (amd) {
    // Families 0xf and 0x11 always dispatch-serialise LFENCE (init_amd).
    if (log.family === 0x0f || log.family === 0x11) on('LFENCE_DISPATCH');
    else if (!has('LFENCE_DISPATCH')) {
      on('MFENCE_RDTSC');
      notes.push(
        'MFENCE_RDTSC assumed: LFENCE_DISPATCH is not in CPUID and the log does not say whether Xen could set it through MSR DE_CFG',
      );
    }
    if (log.featureset && !has('CLFLUSHOPT')) on('X86_BUG_CLFLUSH_MFENCE');
    if (has('IBPB') && !has('IBPB_RET')) on('X86_BUG_IBPB_NO_RET');
    if (log.featureset && !has('RSTR_FP_ERR_PTRS')) on('X86_BUG_FPU_PTRS');
  }
  if (/\sler(=(1|yes|true|on))?\s/.test(cmd))
    notes.push("`ler` on the command line: XEN_LBR depends on the model's LER MSR; not set");
  notes.push(
    'SMT-dependent idle actions (SC_MSR_IDLE, SC_RSB_IDLE, SC_VERW_IDLE) taken as off: the log does not say whether SMT is active',
  );

  const k8 =
    (amd && (log.family ?? 0x10) <= 0xf) ||
    (intel &&
      log.family === 6 &&
      log.model !== undefined &&
      ((log.model >= 0x0f && log.model <= 0x1b) ||
        (log.model >= 0x1d && log.model <= 0x25) ||
        (log.model >= 0x28 && log.model <= 0x2f)));
  const names = [...set].sort((a, b) => a - b).map((n) => featureName(table, n).replace(/^feature /, ''));
  const id =
    log.vendor !== 'other' && log.family !== undefined && log.model !== undefined
      ? { vendor: log.vendor, family: log.family, model: log.model }
      : undefined;
  return { spec: ['none', ...names.map((n) => `+${n}`), `nops=${k8 ? 'k8' : 'p6'}`].join(','), id, log, notes };
}

/** The --cpu spec string for a Xen boot log (see cpuFromXenBootLog). */
export function cpuSpecFromXenBootLog(text: string, table: FeatureTable): string {
  return cpuFromXenBootLog(text, table).spec;
}
