/**
 * A machine's CPU as the running Linux kernel saw it, turned into a `--cpu` spec: the feature and bug flags
 * of /proc/cpuinfo, the mitigations the kernel chose (/sys/devices/system/cpu/vulnerabilities/*, which also
 * reveal the synthetic features cpuinfo hides: RETPOLINE, RETHUNK, UNRET, CLEAR_CPU_BUF, ...) and the
 * command line's mitigation options (/proc/cmdline; used where no vulnerabilities file says otherwise).
 * Pure text in, spec out: the files are read by the CLI (src/cli/host-cpu.ts) or handed in by a browser.
 *
 * @example
 * ```ts
 * const { spec } = hostCpuSpec({ cpuinfo, vulnerabilities: { spectre_v2: 'Mitigation: Retpolines; ...' } });
 * parseCpu(spec, featureTable('linux-6.1.85'));
 * ```
 */

export interface HostFiles {
  /** /proc/cpuinfo (the first processor's block is used). */
  cpuinfo?: string;
  /** File name under /sys/devices/system/cpu/vulnerabilities -> its one line. */
  vulnerabilities?: Record<string, string>;
  /** /proc/cmdline. */
  cmdline?: string;
}

export interface HostCpu {
  /** A `--cpu` spec: `none,?FLAG,...,spectre_v2=...,rethunk=...`. */
  spec: string;
  /** What was read and what was assumed, one line each. */
  notes: string[];
  vendor?: string;
  family?: number;
  model?: number;
}

/** cpuinfo names that differ from the X86_FEATURE_ name (arch/x86/include/asm/cpufeatures.h, quoted names). */
const CPUINFO_ALIAS: Record<string, string> = {
  sse: 'XMM',
  sse2: 'XMM2',
  pni: 'XMM3',
  sse4_1: 'XMM4_1',
  sse4_2: 'XMM4_2',
  pdpe1gb: 'GBPAGES',
  monitor: 'MWAIT',
  dts: 'DS',
  tm: 'ACC',
  ds_cpl: 'DSCPL',
  ss: 'SELFSNOOP',
  ht: 'HT',
  cqm: 'CQM_LLC',
  avx512ifma: 'AVX512IFMA',
  avx512vbmi: 'AVX512VBMI',
  xsaveopt: 'XSAVEOPT',
  sha_ni: 'SHA_NI',
  nrip_save: 'NRIPS',
  svm_lock: 'SVML',
  tsc_scale: 'TSCRATEMSR',
  flush_l1d: 'FLUSH_L1D',
  arch_capabilities: 'ARCH_CAPABILITIES',
  ibrs_enhanced: 'IBRS_ENHANCED',
  amd_ssbd: 'AMD_SSBD',
  virt_ssbd: 'VIRT_SSBD',
  hw_pstate: 'HW_PSTATE',
  user_shstk: 'USER_SHSTK',
};

function firstBlock(cpuinfo: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of cpuinfo.split('\n')) {
    if (!line.trim()) {
      if (m.size) break;
      continue;
    }
    const i = line.indexOf(':');
    if (i < 0) continue;
    const k = line.slice(0, i).trim();
    if (!m.has(k)) m.set(k, line.slice(i + 1).trim());
  }
  return m;
}

function has(v: string | undefined, re: RegExp): boolean {
  return v !== undefined && re.test(v);
}

/** Builds the spec; throws Error with one line when cpuinfo has no flags. */
/** X86_FEATURE_ZEN1..ZEN5 as bsp_init_amd() picks it from family and model (arch/x86/kernel/cpu/amd.c). */
// biome-ignore format: one line per generation reads as the kernel's switch does
const ZEN_MODELS: ReadonlyArray<readonly [family: number, generation: string, models: ReadonlyArray<readonly [number, number]>]> = [
  [0x17, 'ZEN1', [[0x00, 0x2f], [0x50, 0x5f]]],
  [0x17, 'ZEN2', [[0x30, 0x4f], [0x60, 0x7f], [0x90, 0x91], [0xa0, 0xaf]]],
  [0x19, 'ZEN3', [[0x00, 0x0f], [0x20, 0x5f]]],
  [0x19, 'ZEN4', [[0x10, 0x1f], [0x60, 0xaf]]],
  [0x1a, 'ZEN5', [[0x00, 0x2f], [0x40, 0x4f], [0x60, 0x7f], [0xd0, 0xd7]]],
  // 7.3.4's bsp_init_amd(); a feature table without ZEN6 leaves these models without a generation
  [0x1a, 'ZEN6', [[0x50, 0x5f], [0x80, 0xaf], [0xc0, 0xcf], [0xd8, 0xef]]],
];

function zenGeneration(family: number | undefined, model: number): string | undefined {
  return ZEN_MODELS.find(([f, , models]) => f === family && models.some(([a, b]) => model >= a && model <= b))?.[1];
}

export function hostCpuSpec(files: HostFiles): HostCpu {
  const notes: string[] = [];
  const items: string[] = ['none'];
  const info = files.cpuinfo ? firstBlock(files.cpuinfo) : new Map<string, string>();
  const flags = (info.get('flags') ?? '').split(/\s+/).filter(Boolean);
  const bugs = (info.get('bugs') ?? '').split(/\s+/).filter(Boolean);
  if (!flags.length) throw new Error('no "flags" line in cpuinfo');
  const vendor = info.get('vendor_id');
  const family = info.has('cpu family') ? Number(info.get('cpu family')) : undefined;
  const model = info.has('model') ? Number(info.get('model')) : undefined;
  for (const f of flags) items.push('?' + (CPUINFO_ALIAS[f] ?? f.toUpperCase()));
  for (const b of bugs) items.push('?X86_BUG_' + b.toUpperCase());
  // Bits the kernel sets without naming them in cpuinfo, from the vendor (arch/x86/kernel/cpu/intel.c, amd.c,
  // feat_ctl.c) and the flags: measured against the kernel's own boot_cpu_data in the QEMU ground truth.
  const intelLike = vendor === 'GenuineIntel' || vendor === 'CentaurHauls' || vendor === '  Shanghai  ';
  if (flags.includes('xsave')) items.push('?OSXSAVE');
  // SYSENTER32 is called SYSFAST32 in 7.x (the table has one name or the other); 7.x sets it on every 64-bit CPU
  // and fred.c clears it and SYSCALL32 when FRED is on (cpuinfo's `fred`).
  const fred = flags.includes('fred');
  if (intelLike) items.push('?MSR_IA32_FEAT_CTL', '?SYSENTER32');
  if (!fred) items.push('?SYSFAST32');
  if (vendor === 'GenuineIntel') items.push('?APIC_MSRS_FENCE');
  if (flags.includes('sse2') && (vendor === 'GenuineIntel' || vendor === 'AuthenticAMD' || vendor === 'HygonGenuine'))
    items.push('?LFENCE_RDTSC');
  if (vendor === 'AuthenticAMD' || vendor === 'HygonGenuine') {
    if (!fred) items.push('?SYSCALL32');
    if (family !== undefined && family >= 0xf) items.push('?K8');
    // init_amd_zen_common() for every AMD family from 0x17 on; Hygon's Dhyana (family 0x18) too (hygon.c).
    if ((vendor === 'AuthenticAMD' || vendor === 'HygonGenuine') && family !== undefined && family >= 0x17)
      items.push('?ZEN');
    // bsp_init_amd(): the Zen generation by family and model (kernels that have the bits; 6.1.192 and 6.12 do).
    const zen = vendor === 'AuthenticAMD' && model !== undefined ? zenGeneration(family, model) : undefined;
    if (zen) items.push(`?${zen}`);
    // Speculative store bypass through LS_CFG on families 0x15-0x17 when neither SSBD interface is there.
    if (
      vendor === 'AuthenticAMD' &&
      family !== undefined &&
      family >= 0x15 &&
      family <= 0x17 &&
      !flags.includes('amd_ssbd') &&
      !flags.includes('virt_ssbd')
    )
      items.push('?LS_CFG_SSBD');
  }
  notes.push(
    `cpuinfo: ${vendor ?? 'unknown vendor'} family ${family ?? '?'} model ${model ?? '?'}, ${flags.length} flags, ${bugs.length} bugs${bugs.length ? ` (${bugs.join(' ')})` : ''}`,
  );

  const v = files.vulnerabilities ?? {};
  const cmd = ` ${files.cmdline ?? ''} `;
  const opt = (name: string): string | undefined => new RegExp(`\\s${name}=(\\S+)`).exec(cmd)?.[1];
  const mitigationsOff = opt('mitigations') === 'off';
  if (files.cmdline !== undefined)
    notes.push(
      `cmdline: ${
        ['mitigations', 'spectre_v2', 'retbleed', 'spec_rstack_overflow', 'pti']
          .map((k) => (opt(k) ? `${k}=${opt(k)}` : ''))
          .filter(Boolean)
          .join(' ') || 'no mitigation options'
      }${/\snopti\s/.test(cmd) ? ' nopti' : ''}`,
    );
  const known = Object.keys(v).length > 0;
  if (known) notes.push(`vulnerabilities: ${Object.keys(v).length} files`);
  else notes.push('no vulnerabilities files: mitigations from the command line and defaults only');

  // spectre_v2: which indirect-branch mitigation (RETPOLINE / LFENCE / KERNEL_IBRS) and its companions.
  const s2 = v['spectre_v2'];
  let spectre: string | undefined;
  if (s2 !== undefined) {
    // The mode is the part before the first ';' ("Vulnerable: LFENCE" is the LFENCE mode, which the kernel
    // reports as vulnerable; "PBRSB-eIBRS: ..." later in the line is no mode).
    const head = s2.split(';')[0]!;
    if (/IBRS\s*\+\s*LFENCE/i.test(head)) spectre = 'eibrs-lfence';
    else if (/IBRS\s*\+\s*Retpolines/i.test(head)) spectre = 'eibrs-retpoline';
    else if (/Enhanced|Automatic|eIBRS/i.test(head)) spectre = 'eibrs';
    else if (/Retpolines/.test(head)) spectre = 'retpoline';
    else if (/LFENCE/.test(head)) spectre = 'lfence';
    else if (/IBRS/.test(head)) spectre = 'ibrs';
    else if (/Vulnerable/.test(head)) spectre = 'off';
    if (has(s2, /RSB filling/)) items.push('?RSB_CTXSW');
    // Retpoline, LFENCE and IBRS modes also fill the RSB on VM exit (the eIBRS ones only with the PBRSB sequence).
    if (has(s2, /RSB filling/) && spectre && !spectre.startsWith('eibrs')) items.push('?RSB_VMEXIT');
    if (has(s2, /PBRSB-eIBRS: SW sequence/)) items.push('?RSB_VMEXIT_LITE');
    if (has(s2, /BHI: SW loop/)) items.push('?CLEAR_BHB_LOOP');
    if (has(s2, /KVM: SW loop/)) items.push('?CLEAR_BHB_LOOP_ON_VMEXIT');
    if (has(s2, /IBPB: (conditional|always-on)/)) items.push('?USE_IBPB');
  } else if (mitigationsOff) spectre = 'off';
  else if (opt('spectre_v2'))
    spectre = opt('spectre_v2')!
      .replace(/,/g, '-')
      .replace('retpoline-lfence', 'lfence')
      .replace('retpoline-generic', 'retpoline');
  if (spectre) items.push(`spectre_v2=${spectre}`);

  // Return thunks: retbleed / SRSO / ITS mitigations pick x86_return_thunk.
  const rb = v['retbleed'];
  const srso = v['spec_rstack_overflow'];
  const its = v['indirect_target_selection'];
  let rethunk: string | undefined;
  if (has(srso, /safe RET/i)) rethunk = family === 0x19 ? 'srso-alias' : 'srso';
  else if (has(rb, /untrained return thunk/)) rethunk = 'retbleed';
  else if (has(its, /Aligned branch\/return thunks/)) rethunk = 'its';
  else if (known || mitigationsOff) rethunk = 'off';
  if (rethunk) items.push(`rethunk=${rethunk}`);
  if (has(rb, /Mitigation: IBRS/)) items.push('?KERNEL_IBRS');
  if (has(rb, /Mitigation: IBPB/) || has(srso, /Mitigation: IBPB$/)) items.push('?ENTRY_IBPB');
  if (has(srso, /IBPB on VMEXIT/)) items.push('?IBPB_ON_VMEXIT');
  if (has(rb, /Stuffing/)) items.push('?CALL_DEPTH');

  if (has(v['l1tf'], /PTE Inversion/)) items.push('?L1TF_PTEINV');
  // Buffer clearing (VERW) for MDS, TAA, RFDS. MMIO stale data alone does not set CLEAR_CPU_BUF (bugs.c: only
  // with MDS or TAA; otherwise a static key, and in 7.x CLEAR_CPU_BUF_VM_MMIO).
  if (['mds', 'tsx_async_abort', 'reg_file_data_sampling'].some((k) => has(v[k], /Clear CPU buffers/))) {
    items.push('?CLEAR_CPU_BUF');
    // Kernels that split VM-entry buffer clearing (CLEAR_CPU_BUF_VM_MMIO in the table: 7.x) set CLEAR_CPU_BUF_VM
    // beside it; earlier ones set CLEAR_CPU_BUF_VM for TSA only.
    items.push('?CLEAR_CPU_BUF_VM@CLEAR_CPU_BUF_VM_MMIO');
  } else if (has(v['mmio_stale_data'], /Clear CPU buffers/)) items.push('?CLEAR_CPU_BUF_VM_MMIO');
  // Meltdown: PTI is also a cpuinfo flag; the vulnerabilities file and the command line can only confirm or clear it.
  if (has(v['meltdown'], /Mitigation: PTI/)) items.push('?PTI');
  else if (v['meltdown'] !== undefined || mitigationsOff || /\snopti\s|\spti=off\s/.test(cmd)) items.push('-?PTI');
  // bugs.c spectre_v1_select_mitigation: the swapgs fences when FSGSBASE is on or SMAP does not stop speculation.
  const smapWorks = flags.includes('smap') && !bugs.includes('cpu_meltdown');
  if (
    has(v['spectre_v1'], /swapgs barriers/) &&
    !/no swapgs barriers/.test(v['spectre_v1']!) &&
    (flags.includes('fsgsbase') || !smapWorks)
  ) {
    items.push('?FENCE_SWAPGS_KERNEL');
    if (bugs.includes('swapgs') && !flags.includes('pti')) items.push('?FENCE_SWAPGS_USER');
  }
  return { spec: items.join(','), notes, vendor, family, model };
}
