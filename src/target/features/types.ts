/** Shapes of the generated feature-name data modules (see scripts/gen-features.mjs). */

/** One Linux cpufeatures.h, as names and numbers. */
export interface LinuxFeatureData {
  /** Where the names come from (kernel version, package). */
  readonly source: string;
  /** NCAPINTS and NBUGINTS of that header. */
  readonly ncapints: number;
  readonly nbugints: number;
  /** [word*32+bit, 'X86_FEATURE_...'] */
  readonly features: readonly (readonly [number, string])[];
  /** [x, 'X86_BUG_...'] for X86_BUG(x) = NCAPINTS*32 + x. */
  readonly bugs: readonly (readonly [number, string])[];
}

/**
 * An entry of a Xen list: [value, name] when the name exists in every release of the file, [value, name, from]
 * from release index `from` on, [value, name, from, to] in releases from..to inclusive.
 */
export type XenEntry =
  | readonly [number, string]
  | readonly [number, string, number]
  | readonly [number, string, number, number];

export interface XenRelease {
  readonly version: string;
  /** FSCAPINTS = FEATURESET_NR_ENTRIES: number of CPUID featureset words. */
  readonly fscapints: number;
  readonly nrSynth: number;
  readonly nrBug: number;
}

/** One Xen release series (e.g. 4.17.0 ... 4.17.7). */
export interface XenFeatureData {
  readonly releases: readonly XenRelease[];
  /** CPUID features, value = word*32+bit. */
  readonly cpuid: readonly XenEntry[];
  /** Synthetic features, value x of X86_SYNTH(x) = FSCAPINTS*32 + x. */
  readonly synth: readonly XenEntry[];
  /** Bugs and X86_SPEC_* flags, value x of X86_BUG(x) = (FSCAPINTS + X86_NR_SYNTH)*32 + x. */
  readonly bugs: readonly XenEntry[];
  /** [alias, target], e.g. ['X86_FEATURE_ALWAYS', 'X86_FEATURE_LM']. */
  readonly aliases: readonly (readonly [string, string])[];
}
