/**
 * Types shared by the live-patching model checker.
 *
 * A {@link Scenario} describes a patch site (old and new bytes at an address), the CPUs that run it and
 * the interrupts they may take. A {@link Protocol} describes how one patching CPU rewrites the site (its
 * steps) and what an int3 handler does while it does so. {@link compile} turns the pair into a
 * {@link Model}: plain data that both the explorer and the Promela emitter interpret in the same way.
 */

/** A condition a waiting step (patcher or handler) spins on. */
export type Cond =
  | { kind: 'memNe'; off: number; val: number }
  | { kind: 'varEq'; v: number; val: number }
  | { kind: 'patcherDone' };

/** One step of the patching CPU. Each step is atomic; the explorer interleaves other CPUs between steps. */
export type PatcherOp = PatcherStep & {
  /** The step after this one (default: the next in the list; the list's length ends the protocol). */
  next?: number;
};

type PatcherStep =
  /** Store bytes (one byte, or several at once for an aligned atomic write). */
  | { kind: 'write'; bytes: Array<[off: number, val: number]>; note?: string }
  /** IPI every other CPU and wait until each took it: serializes them all (a CPU in a handler runs with IF=0 and blocks it). */
  | { kind: 'sync'; note?: string }
  /** Set a protocol variable (e.g. "a poke is active" that int3 handlers look at), and optionally more at once. */
  | { kind: 'set'; v: number; val: number; also?: Array<[v: number, val: number]>; note?: string }
  /** Spin until a condition holds. */
  | { kind: 'wait'; cond: Cond }
  /** Continue at any one of several steps (the order in which patching callers take a lock). */
  | { kind: 'choose'; to: number[]; notes: string[] }
  /** The protocol breaks a property here, whatever the other CPUs do (e.g. it overflows its own array). */
  | { kind: 'fail'; property: Property; message: string };

/** One step of an int3 handler program. The last step of a program returns from the handler (iret). */
export type HandlerOp =
  | { kind: 'write'; bytes: Array<[off: number, val: number]>; note?: string }
  | { kind: 'wait'; cond: Cond }
  /** Execute a serializing instruction (cpuid) on this CPU. */
  | { kind: 'serialize' }
  /** Emulate the new (or old) instruction at the trapping address, then return after it. */
  | { kind: 'emulate'; version: 'new' | 'old'; onlyCalls?: boolean }
  /** Return to the int3 and execute it again (after the handler did its work). */
  | { kind: 'retry' }
  /** Return to the trapping address + delta (prefix-int3: the byte after the prefix). */
  | { kind: 'resume'; delta: number }
  /**
   * smp_text_poke_int3_handler(): look the trapping address up in the vector of pending sites (variables
   * `vec`, the first `nr` of them, each a site's offset) by the kernel's binary search (a single entry is
   * compared directly); found: emulate the new instruction there and return after it; missed: the handler
   * returns 0 and the int3 is unhandled ("Oops: int3").
   */
  | { kind: 'bsearch'; nr: number; vec: number[] };

/** Which int3 handler program runs for an int3 at a given offset on a given CPU. First match wins. */
export interface Int3Rule {
  /** 'first': offset 0; 'interior': an old instruction boundary other than 0; 'any': anywhere. */
  at: 'first' | 'interior' | 'any' | number;
  cpu: 'patcher' | 'other' | 'any';
  /** Only while protocol variable v has value val (e.g. the poke is active). */
  when?: { v: number; val: number };
  program: HandlerOp[];
}

/** An extra instruction the protocol makes legitimate: e.g. prefix-int3 returns to the call after its prefix. */
export interface AcceptRule {
  off: number;
  bytes: number[];
  version: 'old' | 'new';
}

export interface CpuConfig {
  /** Times the CPU runs through the region in its own (base) context. 0: it never does (parked). */
  passes: number;
  /** NMIs it may take (each once), and machine checks. */
  nmi: number;
  mce: number;
}

/** A patch site and the machine around it. */
export interface Scenario {
  name: string;
  description: string;
  /** Address of the first byte of the region. */
  base: bigint;
  old: number[];
  new: number[];
  /** Executing CPUs (the patching CPU is extra). */
  cpus: CpuConfig[];
  /** Interrupts on the patching CPU (its base context runs the protocol, never the region). */
  patcher: { nmi: number; mce: number };
  /** NMI and #MC handlers run through the region themselves (the site is on their path). */
  handlersRunSite: boolean;
  /** Aligned size in bytes that instruction fetch reads atomically; bytes in different units may be read at different moments. */
  fetchUnit: number;
  /** Optional custom protocol (from a scenario file). */
  protocol?: ProtocolDef;
  /** Several patch sites in the region (default: one, the whole region). */
  sites?: SiteDef[];
  /** Patching callers and the text-poke API calls each makes, in order (batch protocols). */
  callers?: Caller[];
  /** Bound on the vector of pending sites (the kernel's TEXT_POKE_ARRAY_MAX, scaled down). */
  batchMax?: number;
}

/** A named patch site: region offsets [off, off + len). */
export interface SiteDef {
  name: string;
  off: number;
  len: number;
}

/** The text-poke API, by its Linux 6.16+ names (the historical ones are accepted in scenario files). */
export type ApiFn = 'smp_text_poke_batch_add' | 'smp_text_poke_batch_finish' | 'smp_text_poke_single';

export interface ApiCall {
  fn: ApiFn;
  /** The site patched (not for smp_text_poke_batch_finish). */
  site?: string;
}

/** A patching caller (e.g. jump labels' batched path): its API calls, each made under text_mutex. */
export interface Caller {
  name: string;
  calls: ApiCall[];
}

/** What a protocol file produces for a scenario. */
export interface ProtocolPlan {
  /** The patcher runs in NMI context (NMIs latched until its final iret). */
  inNmi: boolean;
  vars: string[];
  ops: PatcherOp[];
  int3: Int3Rule[];
  accept: AcceptRule[];
  /** The protocol rewrote the region (prefix-int3 adds a prefix byte); otherwise the scenario's. */
  region?: { base: bigint; old: number[]; new: number[] };
  /** Why the protocol cannot be applied to this scenario, if it cannot. */
  notApplicable?: string;
}

/** Static facts about a site that protocols plan with. */
export interface SiteInfo {
  base: bigint;
  old: number[];
  new: number[];
  len: number;
  oldBounds: number[];
  newBounds: number[];
  /** Offsets whose old and new byte differ. */
  changed: number[];
  fetchUnit: number;
  /** The new instruction at offset 0 is a (direct or indirect) call. */
  newFirstIsCall: boolean;
  /** [start, end) region offsets of each aligned 8-byte word the region touches. */
  words: Array<[number, number]>;
  /** The patch sites (one covering the region unless the scenario names several). */
  sites: SiteDef[];
  /** The scenario's patching callers, if it names any. */
  callers?: Caller[];
  batchMax?: number;
}

export interface Protocol {
  name: string;
  summary: string;
  /** The protocol patches several sites (a scenario's `sites`); the others patch one. */
  multiSite?: boolean;
  plan(site: SiteInfo): ProtocolPlan;
}

/** A protocol written as data in a scenario file. */
export interface ProtocolDef {
  name?: string;
  inNmi?: boolean;
  vars?: string[];
  ops: PatcherOp[];
  int3?: Int3Rule[];
  accept?: AcceptRule[];
}

/** Decoded instruction facts the model needs. */
export interface Insn {
  off: number;
  len: number;
  bytes: number[];
  text: string;
  isCall: boolean;
  /** Leaves the region (jmp/ret out of it). */
  leaves: boolean;
}

/** Everything the explorer and the Promela emitter need, as plain data. */
export interface Model {
  protocol: string;
  scenario: string;
  base: bigint;
  len: number;
  old: number[];
  new: number[];
  oldInsns: Map<number, Insn>;
  newInsns: Map<number, Insn>;
  fetchUnit: number;
  /** The fetch contract the verdict rests on (see {@link contractName}). */
  contract: string;
  /** Region offsets [start, end) of each fetch unit the region touches. */
  chunks: Array<[number, number]>;
  chunkOf: number[];
  /** cpus[0] is the patching CPU. */
  cpus: CpuConfig[];
  handlersRunSite: boolean;
  inNmi: boolean;
  vars: string[];
  ops: PatcherOp[];
  int3: Int3Rule[];
  accept: AcceptRule[];
  /** Deepest frame stack a CPU can build (base, NMI, #MC, int3 handlers). */
  maxDepth: number;
  filler: number;
}

/**
 * Fetch contracts: what instruction fetch is assumed to read in one piece. The architectural one is what
 * the x86 manuals promise for cross-modifying code: nothing. A CPU that has not serialized since a store
 * may fetch any byte of the site from any version since then, so no multi-byte store is seen atomically;
 * only the int3-then-sync discipline makes a multi-byte change safe. `aligned-8` is the relaxation seed 004
 * rests on ("doesn't cross a cache line"): the bytes of one aligned 8-byte word are fetched together.
 */
export const FETCH_CONTRACTS = { architectural: 1, 'aligned-8': 8 } as const;
export type FetchContract = keyof typeof FETCH_CONTRACTS;
/** The default: verdicts rest on the architectural contract unless the user relaxes it. */
export const DEFAULT_FETCH_UNIT = FETCH_CONTRACTS.architectural;

/** The name of the contract a fetch unit stands for: `architectural` (1 byte) or `aligned-N`. */
export function contractName(fetchUnit: number): string {
  return fetchUnit === 1 ? 'architectural' : `aligned-${fetchUnit}`;
}

/** One line saying what a contract assumes. */
export function contractText(fetchUnit: number): string {
  return fetchUnit === 1
    ? 'architectural: no multi-byte fetch is atomic, any byte may come from any version since the CPU last serialized'
    : `aligned-${fetchUnit}: the bytes of one aligned ${fetchUnit}-byte unit are fetched together (a relaxation of the architectural contract)`;
}

export type Property = 'torn-instruction' | 'unhandled-int3' | 'deadlock' | 'old-code-after-end' | 'vector-overflow';

export const PROPERTY_TEXT: Record<Property, string> = {
  'torn-instruction':
    'an executed instruction is neither an old instruction at an old boundary nor a new one at a new boundary',
  'unhandled-int3': "a CPU executed an int3 that the protocol's handler does not deal with",
  deadlock: 'a CPU spins in a handler for a patch that waits on it',
  'old-code-after-end': 'old code ran after the protocol ended',
  'vector-overflow': 'a patching caller appended to the vector of pending sites when it was full',
};
