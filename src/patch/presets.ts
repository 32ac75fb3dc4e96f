/**
 * CPU presets as data: which feature bits each preset has, per kernel family, and the mitigation choices
 * the kernel makes at boot on such a CPU with its default command line. Names are looked up in the file's
 * feature table; a name the table lacks (an older point release) is skipped and noted.
 * Reasoning for each choice: the README (textpoke apply).
 */

export interface Preset {
  readonly id: string;
  readonly describe: string;
  /** Feature names without the X86_FEATURE_ prefix (bugs and Xen X86_SPEC_ names in full). '*' = every feature. */
  readonly features: readonly string[];
  /** Linux: x86_return_thunk chosen at boot (symbol name), when RETHUNK is on. */
  readonly returnThunk?: string;
  /** Xen: which NOP table arch_init_ideal_nops picks (vendor/family/model). */
  readonly nops?: 'p6' | 'k8';
}

/** Bits every x86_64 CPU of this century has (CPUID leaf 1 EDX basics and long mode). */
// biome-ignore format: feature lists packed by hand, many names a line
const BASE_CPUID = [
  'FPU', 'VME', 'DE', 'PSE', 'TSC', 'MSR', 'PAE', 'MCE', 'CX8', 'APIC', 'SEP', 'MTRR', 'PGE', 'MCA', 'CMOV', 'PAT',
  'PSE36', 'CLFLUSH', 'MMX', 'FXSR', 'SYSCALL', 'NX', 'LM',
];

// biome-ignore format: feature lists packed by hand, many names a line
const LINUX_BASE = [
  ...BASE_CPUID, 'XMM', 'XMM2', 'ALWAYS', 'CPUID', 'NOPL', 'CONSTANT_TSC', 'NONSTOP_TSC', 'XTOPOLOGY', 'ARCH_PERFMON',
  'REP_GOOD',
];

/** Modern common: SSE4.2-era to AVX-512-era bits shared by Sapphire Rapids and Zen 4. */
// biome-ignore format: feature lists packed by hand, many names a line
const LINUX_MODERN = [
  ...LINUX_BASE, 'XMM3', 'PCLMULQDQ', 'SSSE3', 'FMA', 'CX16', 'PCID', 'XMM4_1', 'XMM4_2', 'X2APIC', 'MOVBE', 'POPCNT',
  'TSC_DEADLINE_TIMER', 'AES', 'XSAVE', 'OSXSAVE', 'AVX', 'F16C', 'RDRAND', 'LAHF_LM', 'ABM', '3DNOWPREFETCH',
  'RDTSCP', 'GBPAGES', 'FSGSBASE', 'BMI1', 'AVX2', 'SMEP', 'BMI2', 'ERMS', 'INVPCID', 'RDSEED', 'ADX', 'SMAP',
  'CLFLUSHOPT', 'CLWB', 'SHA_NI', 'AVX512F', 'AVX512DQ', 'AVX512IFMA', 'AVX512CD', 'AVX512BW', 'AVX512VL',
  'AVX512VBMI', 'AVX512_VBMI2', 'AVX512_VNNI', 'AVX512_BITALG', 'AVX512_VPOPCNTDQ', 'AVX512_BF16', 'GFNI', 'VAES',
  'VPCLMULQDQ', 'XSAVEOPT', 'XSAVEC', 'XGETBV1', 'XSAVES', 'UMIP', 'PKU', 'OSPKE', 'LA57', 'RDPID', 'FSRM',
  'WBNOINVD', 'APERFMPERF', 'TSC_KNOWN_FREQ', 'TSC_RELIABLE', 'ARAT', 'MSR_SPEC_CTRL', 'SPEC_CTRL_SSBD', 'IBPB',
  'STIBP', 'IBRS', 'SSBD', 'IBRS_ENHANCED', 'USE_IBPB', 'LFENCE_RDTSC', 'RSB_CTXSW',
];

// biome-ignore format: feature lists packed by hand, many names a line
export const LINUX_PRESETS: readonly Preset[] = [
  {
    id: 'intel-server',
    describe:
      'Sapphire Rapids-like Intel Xeon (eIBRS, BHI_CTRL, LA57): spectre_v2=eibrs (no retpoline), no return thunk',
    features: [
      ...LINUX_MODERN, 'EST', 'TM2', 'PDCM', 'DCA', 'XTPR', 'DTES64', 'MWAIT', 'VMX', 'SMX', 'PBE', 'SELFSNOOP', 'HT',
      'ACC', 'DS', 'ACPI', 'PEBS', 'BTS', 'ART', 'MOVDIRI', 'MOVDIR64B', 'CLDEMOTE', 'SERIALIZE', 'TSXLDTRK',
      'ARCH_LBR', 'AMX_BF16', 'AMX_TILE', 'AMX_INT8', 'AVX512_FP16', 'AVX_VNNI', 'SPEC_CTRL', 'INTEL_STIBP',
      'FLUSH_L1D', 'ARCH_CAPABILITIES', 'CORE_CAPABILITIES', 'MD_CLEAR', 'SPLIT_LOCK_DETECT', 'BUS_LOCK_DETECT',
      'WAITPKG', 'TME', 'PCONFIG', 'SGX', 'SGX1', 'SGX2', 'SGX_LC', 'ENQCMD', 'MSR_IA32_FEAT_CTL', 'TPR_SHADOW',
      'VNMI', 'FLEXPRIORITY', 'EPT', 'VPID', 'EPT_AD', 'HWP', 'HWP_NOTIFY', 'HWP_ACT_WINDOW', 'HWP_EPP',
      'HWP_PKG_REQ', 'DTHERM', 'IDA', 'PLN', 'PTS', 'INTEL_PPIN', 'BHI_CTRL', 'RRSBA_CTRL', 'IBT', 'XFD',
      'X86_BUG_SPECTRE_V1', 'X86_BUG_SPECTRE_V2', 'X86_BUG_SPEC_STORE_BYPASS', 'X86_BUG_SWAPGS',
      'X86_BUG_EIBRS_PBRSB', 'X86_BUG_BHI',
    ],
  },
  {
    id: 'amd-server',
    describe:
      'Zen 4 (Genoa, family 0x19) AMD EPYC: AutoIBRS so spectre_v2=eibrs, SRSO safe-ret: srso_alias_return_thunk',
    returnThunk: 'srso_alias_return_thunk',
    features: [
      ...LINUX_MODERN, 'MMXEXT', 'FXSR_OPT', 'SVM', 'EXTAPIC', 'CR8_LEGACY', 'SSE4A', 'MISALIGNSSE', 'OSVW', 'IBS',
      'SKINIT', 'WDT', 'TCE', 'TOPOEXT', 'PERFCTR_CORE', 'PERFCTR_NB', 'BPEXT', 'PERFCTR_LLC', 'MWAITX', 'CPB',
      'HW_PSTATE', 'PROC_FEEDBACK', 'ZEN', 'XCOMPACTED', 'CLZERO', 'IRPERF', 'XSAVEERPTR', 'RDPRU', 'AMD_IBPB',
      'AMD_IBRS', 'AMD_STIBP', 'AMD_STIBP_ALWAYS_ON', 'AMD_PPIN', 'AMD_SSBD', 'AMD_SSB_NO', 'CPPC', 'BTC_NO',
      'AMD_IBPB_RET', 'NPT', 'LBRV', 'SVML', 'NRIPS', 'TSCRATEMSR', 'VMCBCLEAN', 'FLUSHBYASID', 'DECODEASSISTS',
      'PAUSEFILTER', 'PFTHRESHOLD', 'AVIC', 'V_VMSAVE_VMLOAD', 'VGIF', 'X2AVIC', 'V_SPEC_CTRL', 'SVME_ADDR_CHK',
      'VMMCALL', 'OVERFLOW_RECOV', 'SUCCOR', 'SMCA', 'SME', 'SEV', 'SEV_ES', 'VM_PAGE_FLUSH', 'V_TSC_AUX',
      'SME_COHERENT', 'AUTOIBRS', 'SBPB', 'IBPB_BRTYPE', 'PERFMON_V2', 'AMD_LBR_V2', 'RETHUNK', 'UNRET', 'SRSO_ALIAS',
      'X86_BUG_SYSRET_SS_ATTRS', 'X86_BUG_SPECTRE_V1', 'X86_BUG_SPECTRE_V2', 'X86_BUG_SPEC_STORE_BYPASS',
      'X86_BUG_SRSO',
    ],
  },
  {
    id: 'old',
    describe:
      'Core 2 (Penryn)-like Intel CPU: SSE4.1, no POPCNT/PCID/SMEP/SMAP/IBRS: spectre_v2=retpoline, PTI, MDS VERW',
    features: [
      ...LINUX_BASE, 'XMM3', 'SSSE3', 'CX16', 'XMM4_1', 'LAHF_LM', 'XSAVE', 'DTES64', 'MWAIT', 'VMX', 'EST', 'TM2',
      'XTPR', 'PDCM', 'DS', 'ACPI', 'SELFSNOOP', 'HT', 'ACC', 'PBE', 'PEBS', 'BTS', 'LFENCE_RDTSC', 'TPR_SHADOW',
      'VNMI', 'FLEXPRIORITY', 'MSR_IA32_FEAT_CTL', 'PTI', 'RETPOLINE', 'RSB_CTXSW', 'CLEAR_CPU_BUF',
      'FENCE_SWAPGS_USER', 'FENCE_SWAPGS_KERNEL', 'X86_BUG_CPU_MELTDOWN', 'X86_BUG_SPECTRE_V1', 'X86_BUG_SPECTRE_V2',
      'X86_BUG_SPEC_STORE_BYPASS', 'X86_BUG_L1TF', 'X86_BUG_MDS', 'X86_BUG_SWAPGS', 'X86_BUG_ITLB_MULTIHIT',
    ],
  },
  { id: 'all', describe: 'every feature and bug bit set (return thunk: __x86_return_thunk)', features: ['*'] },
  { id: 'none', describe: 'only X86_FEATURE_ALWAYS', features: ['ALWAYS'] },
];

// biome-ignore format: feature lists packed by hand, many names a line
const XEN_COMMON = [
  ...BASE_CPUID, 'SSE', 'SSE2', 'HTT', 'SSE3', 'PCLMULQDQ', 'SSSE3', 'FMA', 'CX16', 'PCID', 'SSE4_1', 'SSE4_2',
  'X2APIC', 'MOVBE', 'POPCNT', 'AESNI', 'XSAVE', 'OSXSAVE', 'AVX', 'F16C', 'RDRAND', 'RDTSCP', 'PAGE1GB', 'LAHF_LM',
  'ABM', '3DNOWPREFETCH', 'FSGSBASE', 'BMI1', 'AVX2', 'SMEP', 'BMI2', 'ERMS', 'INVPCID', 'RDSEED', 'ADX', 'SMAP',
  'CLFLUSHOPT', 'CLWB', 'SHA', 'AVX512F', 'AVX512DQ', 'AVX512_IFMA', 'AVX512CD', 'AVX512BW', 'AVX512VL',
  'AVX512_VBMI', 'AVX512_VBMI2', 'AVX512_VNNI', 'AVX512_BITALG', 'AVX512_VPOPCNTDQ', 'AVX512_BF16', 'GFNI', 'VAES',
  'VPCLMULQDQ', 'XSAVEOPT', 'XSAVEC', 'XGETBV1', 'XSAVES', 'UMIP', 'PKU', 'RDPID', 'FSRM', 'WBNOINVD', 'CET_SS',
  'CET_IBT', 'CONSTANT_TSC', 'NONSTOP_TSC', 'ARAT', 'ARCH_PERFMON', 'TSC_RELIABLE', 'XTOPOLOGY', 'CPUID_FAULTING',
  'APERFMPERF', 'XEN_SMEP', 'XEN_SMAP', 'XEN_SHSTK', 'XEN_IBT', 'SC_MSR_PV', 'SC_MSR_HVM', 'SC_RSB_PV', 'SC_RSB_HVM',
  'ALWAYS',
  // spec_ctrl.c: opt_lock_harden defaults to false, and init_speculation_mitigations() then forces
  // SC_NO_LOCK_HARDEN: a default boot NOPs the lock-hardening fences (4.17.4+ and 4.19+ alike).
  'SC_NO_LOCK_HARDEN',
];

// biome-ignore format: feature lists packed by hand, many names a line
export const XEN_PRESETS: readonly Preset[] = [
  {
    id: 'intel-server',
    describe:
      "Sapphire Rapids-like Intel Xeon (family 6 model 0x8f: P6 NOPs); eIBRS so thunk=jmp; Xen's defaults: branch hardening on, lock hardening off (spec-ctrl=lock-harden, or lock-harden=on here, turns it on)",
    nops: 'p6',
    features: [
      ...XEN_COMMON, 'VMX', 'SMX', 'EIST', 'TM2', 'PDCM', 'DCA', 'XTPR', 'DTES64', 'MONITOR', 'MOVDIRI', 'MOVDIR64B',
      'CLDEMOTE', 'SERIALIZE', 'TSXLDTRK', 'AVX512_FP16', 'AVX_VNNI', 'IBRSB', 'STIBP', 'L1D_FLUSH', 'ARCH_CAPS',
      'CORE_CAPS', 'SSBD', 'MD_CLEAR', 'EIBRS', 'RDCL_NO', 'MDS_NO', 'TAA_NO', 'IF_PSCHANGE_MC_NO', 'SKIP_L1DFL',
      'PSDP_NO', 'FBSDP_NO', 'SBDR_SSDP_NO', 'BHI_CTRL', 'RRSBA_CTRL', 'IPRED_CTRL', 'GDS_NO', 'RFDS_NO', 'PBRSB_NO',
      'IND_THUNK_JMP', 'USE_VMCALL', 'X86_SPEC_BHB_TSX',
    ],
  },
  {
    id: 'amd-server',
    describe:
      "Zen 4 (family 0x19: P6 NOPs) AMD EPYC; retpoline thunk; IBPB on entry (SRSO); Xen's defaults: branch hardening on, lock hardening off",
    nops: 'p6',
    features: [
      ...XEN_COMMON, 'SVM', 'EXTAPIC', 'CR8_LEGACY', 'SSE4A', 'MISALIGNSSE', 'OSVW', 'IBS', 'SKINIT', 'WDT',
      'TOPOEXT', 'DBEXT', 'MONITORX', 'MMXEXT', 'FFXSR', 'HW_PSTATE', 'ITSC', 'CPB', 'EFRO', 'CLZERO',
      'RSTR_FP_ERR_PTRS', 'IBPB', 'IBRS', 'AMD_STIBP', 'IBRS_ALWAYS', 'STIBP_ALWAYS', 'IBRS_FAST', 'IBRS_SAME_MODE',
      'NO_LMSL', 'AMD_PPIN', 'AMD_SSBD', 'SSB_NO', 'BTC_NO', 'IBPB_RET', 'AUTO_IBRS', 'SBPB', 'IBPB_BRTYPE', 'NSCB',
      'LFENCE_DISPATCH', 'VERW_CLEAR', 'IBPB_ENTRY_PV', 'IBPB_ENTRY_HVM',
    ],
  },
  {
    id: 'old',
    describe:
      "AMD K8 (family 0xf: K8 NOPs) Opteron: SSE2/3DNow, no SMEP/SMAP/XSAVE; MFENCE_RDTSC; Xen's defaults: branch hardening on, lock hardening off",
    nops: 'k8',
    features: [
      ...BASE_CPUID, 'SSE', 'SSE2', 'HTT', 'MMXEXT', 'FFXSR', 'RDTSCP', '3DNOWEXT', '3DNOW', 'LAHF_LM', 'CMP_LEGACY',
      'SVM', 'EXTAPIC', 'CR8_LEGACY', '3DNOWPREFETCH', 'CONSTANT_TSC', 'ARCH_PERFMON', 'MFENCE_RDTSC', 'ALWAYS',
      'SC_NO_LOCK_HARDEN',
    ],
  },
  {
    id: 'all',
    describe: 'every feature, synthetic and bug bit set (P6 NOPs; includes SC_NO_BRANCH_HARDEN/SC_NO_LOCK_HARDEN)',
    nops: 'p6',
    features: ['*'],
  },
  { id: 'none', describe: 'only X86_FEATURE_ALWAYS (= LM) (P6 NOPs)', nops: 'p6', features: ['ALWAYS'] },
];
