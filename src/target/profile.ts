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
  | '__mcount_loc';

export const TABLE_IDS: readonly TableId[] = [
  '.altinstructions', '.parainstructions', '.static_call_sites', '__jump_table', '.retpoline_sites',
  '.return_sites', '.call_sites', '.ibt_endbr_seal', '.smp_locks', '__mcount_loc',
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

export interface Profile {
  readonly id: string;
  readonly os: Os;
  /** The feature table id (see target/features). */
  readonly features: string;
  readonly alt: AltLayout;
  readonly tables: readonly TableSpec[];
  /** Free-text description for --help and reports. */
  readonly describe: string;
}

const s4 = (id: TableId, start: string, stop: string): TableSpec => ({ id, entry: 4, start: [start], stop: [stop] });

const LINUX_COMMON_4B: TableSpec[] = [
  s4('.retpoline_sites', '__retpoline_sites', '__retpoline_sites_end'),
  s4('.return_sites', '__return_sites', '__return_sites_end'),
  s4('.ibt_endbr_seal', '__ibt_endbr_seal', '__ibt_endbr_seal_end'),
  s4('.smp_locks', '__smp_locks', '__smp_locks_end'),
];

const JUMP: TableSpec = { id: '__jump_table', entry: 16, start: ['__start___jump_table'], stop: ['__stop___jump_table'] };
const SCALL: TableSpec = { id: '.static_call_sites', entry: 8, start: ['__start_static_call_sites'], stop: ['__stop_static_call_sites'] };
const MCOUNT: TableSpec = { id: '__mcount_loc', entry: 8, start: ['__start_mcount_loc'], stop: ['__stop_mcount_loc'] };
const PARA: TableSpec = { id: '.parainstructions', entry: 16, start: ['__parainstructions'], stop: ['__parainstructions_end'] };

function linuxAlt(entry: number): TableSpec {
  return { id: '.altinstructions', entry, start: ['__alt_instructions'], stop: ['__alt_instructions_end'] };
}

function linux61(id: string, features: string, describe: string): Profile {
  return {
    id, os: 'linux', features, alt: 'linux-12', describe,
    tables: [linuxAlt(12), PARA, SCALL, JUMP, ...LINUX_COMMON_4B, MCOUNT],
  };
}

function linuxModern(id: string, features: string, describe: string, para: boolean): Profile {
  return {
    id, os: 'linux', features, alt: 'linux-14', describe,
    tables: [
      linuxAlt(14), ...(para ? [PARA] : []), SCALL, JUMP, ...LINUX_COMMON_4B,
      s4('.call_sites', '__call_sites', '__call_sites_end'), MCOUNT,
    ],
  };
}

function xen417(id: string, features: string, describe: string): Profile {
  return {
    id, os: 'xen', features, alt: 'xen-14', describe,
    tables: [{ id: '.altinstructions', entry: 14, start: ['__alt_instructions'], stop: ['__alt_instructions_end'] }],
  };
}

/** Every built-in profile. */
export const PROFILES: readonly Profile[] = [
  linux61('linux-6.1', 'linux-6.1.85', 'Linux 6.1.85 and later 6.1.y (12-byte alt_instr, NCAPINTS 22)'),
  linux61('linux-6.1.38', 'linux-6.1.38', 'Linux 6.1.38 to 6.1.84 (12-byte alt_instr, NCAPINTS 21)'),
  linux61('linux-6.1.0', 'linux-6.1.0', 'Linux 6.1.0 to 6.1.37 (12-byte alt_instr, NCAPINTS 20)'),
  linuxModern('linux-6.3', 'linux-6.3', 'Linux 6.3 to 6.7 (14-byte alt_instr, .parainstructions, .call_sites)', true),
  linuxModern('linux-6.8', 'linux-6.12', 'Linux 6.8 to 6.12 LTS (14-byte alt_instr, paravirt on alternatives, .call_sites)', false),
  xen417('xen-4.17', 'xen-4.17.7', 'Xen 4.17.6 and 4.17.7 (FSCAPINTS 19)'),
  xen417('xen-4.17.2', 'xen-4.17.2', 'Xen 4.17.2 to 4.17.5 (FSCAPINTS 18)'),
  xen417('xen-4.17.1', 'xen-4.17.1', 'Xen 4.17.1 (FSCAPINTS 16)'),
  xen417('xen-4.17.0', 'xen-4.17.0', 'Xen 4.17.0 (FSCAPINTS 14)'),
];

export function profileById(id: string): Profile | undefined {
  return PROFILES.find((p) => p.id === id);
}
