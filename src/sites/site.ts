import type { TableId } from '../target/profile.js';

/** A referenced address with the symbol the relocation or the image names for it. */
export interface Ref {
  /** Relative address (see Image); NaN when it lies in no section of this file (an undefined symbol). */
  readonly addr: number;
  /** Symbol name when known (relocation symbol, or the symbol at the address). */
  readonly name?: string;
}

/** What every site has, whatever its table. */
interface SiteBase {
  readonly table: TableId;
  /** Entry index inside its table. */
  readonly index: number;
  /** Relative address of the first byte a patcher may rewrite. */
  readonly addr: number;
  /** Bytes a patcher may rewrite (0 until decoding fills it in for tables that only locate an instruction). */
  length: number;
  /** Problems found while reading or checking the site (not on an instruction boundary, ...). */
  problems?: string[];
}

/** `.altinstructions` (Linux struct alt_instr; Xen's alternatives are reported under this id too). */
export interface AltSite extends SiteBase {
  readonly table: '.altinstructions';
  /** Feature number, with the table's flag bits decoded. */
  readonly feature: number;
  readonly inverted: boolean;
  /** Linux >= 6.3 alt flags (high 16 bits of ft_flags); absent for older Linux and Xen. */
  readonly altFlags?: number;
  /** The replacement bytes' location. */
  readonly repl: { readonly addr: number; readonly length: number };
  /** Xen only: orig_len (without padding) and pad_len. Linux: instrlen is `length`. */
  readonly origLen?: number;
  readonly padLen?: number;
}

/** `.parainstructions`: a paravirt call site. */
export interface ParavirtSite extends SiteBase {
  readonly table: '.parainstructions';
  /** The pv_ops slot (type). */
  readonly paraType: number;
  readonly clobbers: number;
}

/** `.static_call_sites`. */
export interface StaticCallSite extends SiteBase {
  readonly table: '.static_call_sites';
  /** The static call key (address NaN when the entry's key field has no relocation). */
  readonly key: Ref;
  /** Flags in the key's low bits: TAIL (a jmp/Jcc site) and INIT. */
  readonly tail: boolean;
  readonly init: boolean;
}

/** `__jump_table`: a jump label site. */
export interface JumpLabelSite extends SiteBase {
  readonly table: '__jump_table';
  /** The branch target (absent when the entry's target field has no relocation). */
  readonly target?: Ref;
  /** The static key (address NaN when the entry's key field has no relocation). */
  readonly key: Ref;
  /** Key bits: bit 0 the branch default, bit 1 the site was NOPed at build time. */
  readonly branchDefault: boolean;
  readonly initNop: boolean;
}

/** The tables whose entries only locate an instruction (instruction-lists.ts). */
export type InstructionListId = Exclude<
  TableId,
  '.altinstructions' | '.parainstructions' | '.static_call_sites' | '__jump_table'
>;

/** A site of a table that only locates an instruction: nothing beyond the common fields. */
export interface InstructionSite<T extends InstructionListId = InstructionListId> extends SiteBase {
  readonly table: T;
}

/** One runtime patch site: a place some patcher may rewrite. Discriminated by `table`. */
export type Site = AltSite | ParavirtSite | StaticCallSite | JumpLabelSite | InstructionSite;

/** The site type of one table. */
export type SiteOf<T extends TableId> = T extends InstructionListId
  ? InstructionSite<T>
  : Extract<Site, { readonly table: T }>;

/** True when s comes from table t (narrows s to that table's site type). */
export function isTable<T extends TableId>(s: Site, t: T): s is SiteOf<T> {
  return s.table === t;
}

export const isAlternative = (s: Site): s is AltSite => s.table === '.altinstructions';
export const isParavirt = (s: Site): s is ParavirtSite => s.table === '.parainstructions';
export const isStaticCall = (s: Site): s is StaticCallSite => s.table === '.static_call_sites';
export const isJumpLabel = (s: Site): s is JumpLabelSite => s.table === '__jump_table';

/** The sites of one table, typed as that table's sites. */
export function sitesOf<T extends TableId>(sites: readonly Site[], t: T): SiteOf<T>[] {
  return sites.filter((s): s is SiteOf<T> => s.table === t);
}

export function addProblem(s: Site, p: string): void {
  (s.problems ??= []).push(p);
}
