/**
 * Profiles: what a kernel version's patch tables look like, as data. Adding a kernel version is
 * adding a profile here, not editing the readers in sites/.
 */

export type Os = 'linux' | 'xen' | 'unknown';

/** Ids of the tables textpoke reads (section names; Xen's alternatives are reported as `.altinstructions`). */
export type TableId =
  | '.altinstructions'
  | '.parainstructions'
  | '.static_call_sites'
  | '__jump_table'
  | '.retpoline_sites'
  | '.return_sites'
  | '.call_sites'
  | '.ibt_endbr_seal'
  | '.smp_locks'
  | '__mcount_loc'
  /** Xen 4.21+: altcall sites (`call *disp32(%rip)`), 4-byte relative entries. */
  | '.alt_call_sites';

export const TABLE_IDS: readonly TableId[] = [
  '.altinstructions',
  '.parainstructions',
  '.static_call_sites',
  '__jump_table',
  '.retpoline_sites',
  '.return_sites',
  '.call_sites',
  '.ibt_endbr_seal',
  '.smp_locks',
  '__mcount_loc',
  '.alt_call_sites',
];

/** struct alt_instr layouts. */
export type AltLayout =
  /** Linux <= 6.2: s32 instr, s32 repl, u16 cpuid (bit 15 = NOT), u8 instrlen, u8 replacementlen. */
  | 'linux-12'
  /** Linux >= 6.3: s32 instr, s32 repl, u32 ft_flags (low 16 feature, high 16 flags), u8 instrlen, u8 replacementlen. */
  | 'linux-14'
  /** Xen: s32 orig, s32 repl, u16 cpuid, u8 orig_len, u8 repl_len, u8 pad_len, u8 priv. */
  | 'xen-14';

export interface TableSpec {
  readonly id: TableId;
  /** Entry size in bytes. */
  readonly entry: number;
  /** Linked images: start/stop symbols that bracket the table. */
  readonly start: readonly string[];
  readonly stop: readonly string[];
}

/**
 * How a Linux version's boot-time patchers behave: data the patchers in patch/ read, so that no version
 * string is threaded through them.
 */
export interface LinuxRules {
  readonly os: 'linux';
  /**
   * apply_alternatives:
   *  - 'entry-6.1': per entry in table order; only a lone 5-byte call / jmp in the replacement is fixed up;
   *  - 'entry': per entry in table order, nested entries padded to the largest instrlen, __apply_relocation
   *    moves every relative reference, ALT_FLAG_DIRECT_CALL (6.5 to 6.19);
   *  - 'site': 7.0 (a4233c21e773) patches each site once: all entries for one site are considered together,
   *    the largest instrlen is used, the last eligible entry wins and the site is written once.
   */
  readonly alternatives: 'entry-6.1' | 'entry' | 'site';
  /** pv_ops layout: 'pv_ops' slot tables by array name (one array up to 6.19; 7.0 adds pv_ops_lock). */
  readonly pvOps: '6.1' | '6.12' | '7.0';
  /** Call depth tracking (CALL_DEPTH, 6.2+) exists, and retpolines use the 6.2+ NOP optimisation. */
  readonly callDepth: boolean;
  /** Static call RET sites jump to the CPU's selected return thunk (6.2+), not always __x86_return_thunk. */
  readonly cpuReturnThunk: boolean;
  /** `__bug_table` entry: 12 bytes up to 6.18; 6.19 adds a format field (not read by textpoke yet). */
  readonly bugTable: '12' | '6.19-format';
  /**
   * ASM_NOP_MAX of x86_nops[] (arch/x86/include/asm/nops.h): 8, or 11 where x86-64 has NOP9..NOP11 (`cs`,
   * `osp cs`, `osp osp cs` before NOP8). add_nop() writes one NOP up to this length, a JMP over int3 beyond.
   */
  readonly nopMax: 8 | 11;
  /** The 4 bytes apply_seal_endbr() writes over a sealed ENDBR (gen_endbr_poison()). */
  readonly endbrPoison: readonly number[];
  /**
   * Functions __static_call_transform() does not call but replaces by one 5-byte instruction at a call site
   * (beside __static_call_return0's `xor %eax,%eax`): [function, bytes].
   */
  readonly staticCallInline: readonly (readonly [string, readonly number[]])[];
  /**
   * vmlinux static call keys whose function never changes after their definition (DEFINE_STATIC_CALL(name, func)
   * with no static_call_update()): [key name without __SCK__, function]. A module's sites of these keys are
   * resolved although the key lives in vmlinux.
   */
  readonly staticCallConstKeys: readonly (readonly [string, string])[];
  /**
   * How patch_retpoline() fills a site around `call/jmp *%reg`: 'nop' (the instruction, an INT3 after a jmp, NOPs,
   * optimize_nops) or 'cs-int3' (6.18+ emit_indirect(op, reg, bytes, len): up to 3 CS prefixes before a call, INT3s
   * after a jmp, for the bytes the site has beyond the instruction).
   */
  readonly retpolinePad: 'nop' | 'cs-int3';
  /** The PREEMPT_DYNAMIC mode Debian's build boots with when the command line has no preempt=. */
  readonly preemptDefault: 'none' | 'voluntary' | 'full' | 'lazy';
  /** The PREEMPT_DYNAMIC modes the version has (sched_dynamic_mode(): lazy from 6.13; 7.x has no none/voluntary). */
  readonly preemptModes: readonly ('none' | 'voluntary' | 'full' | 'lazy')[];
}

/** How a Xen version's _apply_alternatives and altcall patching behave. */
export interface XenRules {
  readonly os: 'xen';
  /** Bit 15 of cpuid is ALT_FLAG_NOT (patch when the feature is absent): 4.17.6+, 4.20+, and backports. */
  readonly altFlagNot: boolean;
  /**
   * Altcalls: 'alternatives' (up to 4.20: an ALWAYS entry whose replacement is `call .+0`-style rel32 -5 over
   * `call *disp32(%rip)`), or 'alt-call-sites' (4.21+: the `.alt_call_sites` table, `ff 15 disp32` becomes
   * `2e e8 rel32`, or `0f 0b` x3 for a NULL pointer).
   */
  readonly altcall: 'alternatives' | 'alt-call-sites';
  /** 4.21+ (CONFIG_RETURN_THUNK): a replacement ending in `jmp __x86_return_thunk` gets that rel32 fixed up too. */
  readonly returnThunkTail: boolean;
}

export type Rules = LinuxRules | XenRules;

export interface Profile {
  readonly id: string;
  readonly os: Os;
  /** The feature table id (see target/features). Detection may swap in a table numbered from the file's evidence. */
  readonly features: string;
  readonly alt: AltLayout;
  readonly tables: readonly TableSpec[];
  /** The boot-time patchers' rules for this version. */
  readonly rules: Rules;
  /** Versions this profile was made from, as [first, last] 'major.minor' strings (detection picks by these). */
  readonly versions: readonly [string, string];
  /** Free-text description for --help and reports. */
  readonly describe: string;
}

/** `osp nopl (%rax)`: gen_endbr_poison() up to 6.x. */
const ENDBR_POISON_OSP_NOP3 = [0x66, 0x0f, 0x1f, 0x00];
/** `nopl -42(%rax)`: gen_endbr_poison() in 7.x (seen in Debian's 7.3.4 booted under QEMU). */
const ENDBR_POISON_NOPL_D6 = [0x0f, 0x1f, 0x40, 0xd6];

export const RULES_61: LinuxRules = {
  os: 'linux',
  alternatives: 'entry-6.1',
  pvOps: '6.1',
  callDepth: false,
  cpuReturnThunk: false,
  bugTable: '12',
  nopMax: 8,
  endbrPoison: ENDBR_POISON_OSP_NOP3,
  staticCallInline: [],
  staticCallConstKeys: [],
  retpolinePad: 'nop',
  preemptDefault: 'voluntary',
  preemptModes: ['none', 'voluntary', 'full'],
};
/** 6.3 and 6.4: as 6.1 but for the alternatives' format (ft_flags), pv ops as alternatives and call depth tracking. */
export const RULES_63: LinuxRules = {
  ...RULES_61,
  alternatives: 'entry',
  pvOps: '6.12',
  callDepth: true,
  cpuReturnThunk: true,
};
/**
 * 6.5 to 6.7: x86-64 NOP9..NOP11, ASM_NOP_MAX 11 ("x86/alternatives: Add longer 64-bit NOPs", merged for 6.5;
 * Debian's 6.12.117 booted under QEMU writes the 9-byte NOP where 6.1 writes a jmp over int3 filler).
 */
export const RULES_65: LinuxRules = { ...RULES_63, nopMax: 11 };
/** 6.8 to 6.12: the 6.5 rules (the pv ops alternatives differ in the profile's tables, not here). */
export const RULES_612: LinuxRules = RULES_65;
export const RULES_70: LinuxRules = {
  os: 'linux',
  alternatives: 'site',
  pvOps: '7.0',
  callDepth: true,
  cpuReturnThunk: true,
  bugTable: '6.19-format',
  nopMax: 11,
  endbrPoison: ENDBR_POISON_NOPL_D6,
  // warninsn (`ud1 (%edx),%rdi`, what __WARN_trap() itself executes, decode_bug() reads the bug entry from it)
  // and, with PARAVIRT_SPINLOCKS, native unlock as `ds ds movb $0,(%rdi)` (arch/x86/kernel/static_call.c).
  staticCallInline: [
    ['__WARN_trap', [0x67, 0x48, 0x0f, 0xb9, 0x3a]],
    ['__raw_callee_save___native_queued_spin_unlock', [0x3e, 0x3e, 0xc6, 0x07, 0x00]],
  ],
  // DEFINE_STATIC_CALL(WARN_trap, __WARN_trap) (arch/x86/kernel/traps.c), exported as a trampoline for modules.
  staticCallConstKeys: [['WARN_trap', '__WARN_trap']],
  retpolinePad: 'cs-int3',
  // 7.x drops none/voluntary where the architecture has PREEMPT_LAZY; Debian's 7.3.4 boots "Dynamic Preempt: lazy".
  preemptDefault: 'lazy',
  preemptModes: ['full', 'lazy'],
};
const XEN_OLD: XenRules = { os: 'xen', altFlagNot: false, altcall: 'alternatives', returnThunkTail: false };
const XEN_NOT: XenRules = { os: 'xen', altFlagNot: true, altcall: 'alternatives', returnThunkTail: false };
const XEN_421: XenRules = { os: 'xen', altFlagNot: true, altcall: 'alt-call-sites', returnThunkTail: true };

export function linuxRules(p: Profile): LinuxRules {
  if (p.rules.os !== 'linux') throw new Error(`profile ${p.id} is not a Linux profile`);
  return p.rules;
}
export function xenRules(p: Profile): XenRules {
  if (p.rules.os !== 'xen') throw new Error(`profile ${p.id} is not a Xen profile`);
  return p.rules;
}

const s4 = (id: TableId, start: string, stop: string): TableSpec => ({ id, entry: 4, start: [start], stop: [stop] });

const LINUX_COMMON_4B_NO_LOCKS: TableSpec[] = [
  s4('.retpoline_sites', '__retpoline_sites', '__retpoline_sites_end'),
  s4('.return_sites', '__return_sites', '__return_sites_end'),
  s4('.ibt_endbr_seal', '__ibt_endbr_seal', '__ibt_endbr_seal_end'),
];
const LINUX_COMMON_4B: TableSpec[] = [...LINUX_COMMON_4B_NO_LOCKS, s4('.smp_locks', '__smp_locks', '__smp_locks_end')];

const JUMP: TableSpec = {
  id: '__jump_table',
  entry: 16,
  start: ['__start___jump_table'],
  stop: ['__stop___jump_table'],
};
const SCALL: TableSpec = {
  id: '.static_call_sites',
  entry: 8,
  start: ['__start_static_call_sites'],
  stop: ['__stop_static_call_sites'],
};
const MCOUNT: TableSpec = { id: '__mcount_loc', entry: 8, start: ['__start_mcount_loc'], stop: ['__stop_mcount_loc'] };
const PARA: TableSpec = {
  id: '.parainstructions',
  entry: 16,
  start: ['__parainstructions'],
  stop: ['__parainstructions_end'],
};

function linuxAlt(entry: number): TableSpec {
  return { id: '.altinstructions', entry, start: ['__alt_instructions'], stop: ['__alt_instructions_end'] };
}

function linux61(id: string, features: string, describe: string): Profile {
  return {
    id,
    os: 'linux',
    features,
    alt: 'linux-12',
    describe,
    rules: RULES_61,
    versions: ['6.1', '6.2'],
    tables: [linuxAlt(12), PARA, SCALL, JUMP, ...LINUX_COMMON_4B, MCOUNT],
  };
}

function linuxModern(
  id: string,
  features: string,
  describe: string,
  para: boolean,
  versions: readonly [string, string],
  rules: LinuxRules,
): Profile {
  return {
    id,
    os: 'linux',
    features,
    alt: 'linux-14',
    describe,
    rules,
    versions,
    tables: [
      linuxAlt(14),
      ...(para ? [PARA] : []),
      SCALL,
      JUMP,
      ...LINUX_COMMON_4B,
      s4('.call_sites', '__call_sites', '__call_sites_end'),
      MCOUNT,
    ],
  };
}

/** Linux 7.0 to 7.3: no .parainstructions, no .smp_locks (Debian's 7.3.4 has none), patch-once alternatives. */
function linux7(id: string, features: string, describe: string): Profile {
  return {
    id,
    os: 'linux',
    features,
    alt: 'linux-14',
    describe,
    rules: RULES_70,
    versions: ['7.0', '7.3'],
    tables: [
      linuxAlt(14),
      SCALL,
      JUMP,
      ...LINUX_COMMON_4B_NO_LOCKS,
      s4('.call_sites', '__call_sites', '__call_sites_end'),
      MCOUNT,
    ],
  };
}

const XEN_ALT: TableSpec = {
  id: '.altinstructions',
  entry: 14,
  start: ['__alt_instructions'],
  stop: ['__alt_instructions_end'],
};
const XEN_ALT_CALLS: TableSpec = {
  id: '.alt_call_sites',
  entry: 4,
  start: ['__alt_call_sites_start'],
  stop: ['__alt_call_sites_end'],
};

function xen(id: string, features: string, describe: string, rules: XenRules, series: string): Profile {
  return {
    id,
    os: 'xen',
    features,
    alt: 'xen-14',
    describe,
    rules,
    versions: [series, series],
    tables: rules.altcall === 'alt-call-sites' ? [XEN_ALT, XEN_ALT_CALLS] : [XEN_ALT],
  };
}

/** Why `--preempt MODE` cannot be the mode this profile's kernels booted with, or undefined when it can. */
export function preemptModeProblem(p: Profile, mode: string | undefined): string | undefined {
  if (p.rules.os !== 'linux' || mode === undefined || mode === 'unknown') return undefined;
  const modes = p.rules.preemptModes;
  return (modes as readonly string[]).includes(mode)
    ? undefined
    : `--preempt ${mode}: Linux ${p.versions.join(' to ')} has the modes ${modes.join(', ')}`;
}

/** Every built-in profile. */
export const PROFILES: readonly Profile[] = [
  linux61('linux-6.1', 'linux-6.1.85', 'Linux 6.1.85 and later 6.1.y (12-byte alt_instr, NCAPINTS 22)'),
  linux61('linux-6.1.38', 'linux-6.1.38', 'Linux 6.1.38 to 6.1.84 (12-byte alt_instr, NCAPINTS 21)'),
  linux61('linux-6.1.0', 'linux-6.1.0', 'Linux 6.1.0 to 6.1.37 (12-byte alt_instr, NCAPINTS 20)'),
  linuxModern(
    'linux-6.3',
    'linux-6.3',
    'Linux 6.3 and 6.4 (14-byte alt_instr, .parainstructions, .call_sites, NOPs up to 8 bytes)',
    true,
    ['6.3', '6.4'],
    RULES_63,
  ),
  linuxModern(
    'linux-6.5',
    'linux-6.3',
    'Linux 6.5 to 6.7 (as 6.3, with NOPs up to 11 bytes)',
    true,
    ['6.5', '6.7'],
    RULES_65,
  ),
  linuxModern(
    'linux-6.8',
    'linux-6.12',
    'Linux 6.8 to 6.12 LTS (14-byte alt_instr, paravirt on alternatives, .call_sites; names of 6.12.118)',
    false,
    ['6.8', '6.12'],
    RULES_612,
  ),
  linux7(
    'linux-7',
    'linux-7.3',
    'Linux 7.0 to 7.3 (patch each site once, pv_ops and pv_ops_lock, no .smp_locks; names of Debian 7.3.4)',
  ),
  xen('xen-4.17', 'xen-4.17.7', 'Xen 4.17.6 and 4.17.7 (FSCAPINTS 19, ALT_FLAG_NOT)', XEN_NOT, '4.17'),
  xen('xen-4.17.2', 'xen-4.17.2', 'Xen 4.17.2 to 4.17.5 (FSCAPINTS 18)', XEN_OLD, '4.17'),
  xen('xen-4.17.1', 'xen-4.17.1', 'Xen 4.17.1 (FSCAPINTS 16)', XEN_OLD, '4.17'),
  xen('xen-4.17.0', 'xen-4.17.0', 'Xen 4.17.0 (FSCAPINTS 14)', XEN_OLD, '4.17'),
  xen('xen-4.18', 'xen-4.18.6', 'Xen 4.18.x (names of 4.18.6; numbering from the build)', XEN_NOT, '4.18'),
  xen('xen-4.19', 'xen-4.19.6', 'Xen 4.19.x (names of 4.19.6; numbering from the build)', XEN_NOT, '4.19'),
  xen(
    'xen-4.20',
    'xen-4.20.4',
    'Xen 4.20.x (names of 4.20.4; ALT_FLAG_NOT; numbering from the build)',
    XEN_NOT,
    '4.20',
  ),
  xen(
    'xen-4.21',
    'xen-4.21.2',
    'Xen 4.21.x (.alt_call_sites, ALT_FLAG_NOT, shared replacements; numbering from the build)',
    XEN_421,
    '4.21',
  ),
  xen('xen-4.22', 'xen-4.22.0', 'Xen 4.22 (two synthetic words, .alt_call_sites)', XEN_421, '4.22'),
];

export function profileById(id: string): Profile | undefined {
  return PROFILES.find((p) => p.id === id);
}
