import type { TableId } from '../target/profile.js';

/** A referenced address with the symbol the relocation or the image names for it. */
export interface Ref {
  /** Relative address (see Image); NaN when it lies in no section of this file (an undefined symbol). */
  readonly addr: number;
  /** Symbol name when known (relocation symbol, or the symbol at the address). */
  readonly name?: string;
}

/** One runtime patch site: a place some patcher may rewrite. */
export interface Site {
  readonly table: TableId;
  /** Entry index inside its table. */
  readonly index: number;
  /** Relative address of the first byte a patcher may rewrite. */
  readonly addr: number;
  /** Bytes a patcher may rewrite (0 until decoding fills it in for tables that only locate an instruction). */
  length: number;
  /** Alternatives: feature number, with the table's flag bits decoded. */
  readonly feature?: number;
  readonly inverted?: boolean;
  /** Linux >= 6.3 alt flags (high 16 bits of ft_flags). */
  readonly altFlags?: number;
  /** Alternatives: replacement bytes' location. */
  readonly repl?: { readonly addr: number; readonly length: number };
  /** Xen alternatives: orig_len (without padding) and pad_len. Linux: instrlen is `length`. */
  readonly origLen?: number;
  readonly padLen?: number;
  /** Paravirt: pv_ops slot (type) and clobbers. */
  readonly paraType?: number;
  readonly clobbers?: number;
  /** Static calls and jump labels: the key. */
  readonly key?: Ref;
  /** Static call flags: TAIL (jmp/Jcc site) and INIT. */
  readonly tail?: boolean;
  readonly init?: boolean;
  /** Jump labels: branch target, and key bits (bit 0: branch default; bit 1: site NOPed at build time). */
  readonly target?: Ref;
  readonly branchDefault?: boolean;
  readonly initNop?: boolean;
  /** Problems found while reading or checking the site (not on an instruction boundary, ...). */
  problems?: string[];
}

export function addProblem(s: Site, p: string): void {
  (s.problems ??= []).push(p);
}
