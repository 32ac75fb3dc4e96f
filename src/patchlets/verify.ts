/**
 * `patchlets verify`: every annotated byte table in a C file decodes to what its comment says.
 *
 * @example
 * ```ts
 * const r = verifyText('.irq_save_fl = { 0x9c, 0x58 }, // pushf; pop %[re]ax\n');
 * // r.entries[0].ok === true
 * ```
 */
import { findByteTables, type ByteTableEntry } from './ctable.js';
import {
  classify,
  claimMatches,
  decodeAll,
  splitClaim,
  type Bits,
  type DecodedInsn,
  type MismatchKind,
} from './asmtext.js';
import { hex } from '../x86/insn.js';

export { hex };

export interface EntryResult {
  entry: ByteTableEntry;
  decoded: DecodedInsn[];
  claims: string[];
  ok: boolean;
  /** First differing instruction (0-based) when not ok. */
  at?: number;
  kind?: MismatchKind;
  message?: string;
}

export interface VerifyResult {
  entries: EntryResult[];
  /** Byte tables with no assembly comment (not checked). */
  unannotated: ByteTableEntry[];
}

export function verifyEntry(entry: ByteTableEntry): EntryResult {
  const decoded = decodeAll(entry.bytes, entry.bits as Bits);
  const claims = splitClaim(entry.asm ?? '');
  const n = Math.max(decoded.length, claims.length);
  for (let i = 0; i < n; i++) {
    const d = decoded[i];
    const c = claims[i];
    if (!d || !c || !claimMatches(c, d)) {
      let kind: MismatchKind;
      let message: string;
      if (d && (d.invalid || d.truncated)) {
        kind = 'undecodable';
        message = `bytes ${hex(d.bytes)} at +${d.offset} ${d.truncated ? 'end inside an instruction' : 'are not a valid instruction'} in ${entry.bits}-bit mode`;
      } else if (!d || !c) {
        kind = 'count';
        message = `bytes decode to ${decoded.length} instruction${decoded.length === 1 ? '' : 's'}, comment lists ${claims.length}`;
      } else {
        kind = classify(c, d);
        const pre = d.prefixes.length ? ` with prefix bytes ${hex(d.prefixes)}` : '';
        message = `instruction ${i + 1}: bytes ${hex(d.bytes)} are '${d.att}' ('${d.intel}')${kind === 'prefixes' ? pre : ''}, comment says '${c}'${KIND_HINT[kind]}`;
      }
      return { entry, decoded, claims, ok: false, at: i, kind, message };
    }
  }
  return { entry, decoded, claims, ok: true };
}

const KIND_HINT: Record<MismatchKind, string> = {
  count: '',
  prefixes: ': prefix bytes differ',
  'swapped-operands': ': operands swapped',
  'operand-width': ': operand width differs (missing or extra REX.W / operand-size prefix?)',
  operands: ': operands differ',
  mnemonic: ': different instruction',
  undecodable: '',
};

export function verifyText(text: string, defaultBits: Bits = 64): VerifyResult {
  const all = findByteTables(text, defaultBits);
  return {
    entries: all.filter((e) => e.asm !== undefined).map(verifyEntry),
    unannotated: all.filter((e) => e.asm === undefined),
  };
}

/** Both disassemblies of an entry's bytes, one instruction per `;`. */
export function disassemblies(r: EntryResult): { att: string; intel: string } {
  return { att: r.decoded.map((d) => d.att).join('; '), intel: r.decoded.map((d) => d.intel).join('; ') };
}
