/**
 * Instruction decoding for the model, through iced-x86 (never a hand-written decoder).
 *
 * The explorer asks the same questions many times (what does this byte string at this offset decode
 * to?), so answers are memoised by (offset, bytes): iced runs once per distinct byte mix, not per state.
 */
import { decoder, DecoderError, FlowControl, FormatterSyntax, hex, newFormatter, newInstruction } from '../x86/insn.js';
import type { Insn } from './types.js';

export interface Decoded {
  /** false: more bytes are needed to finish the instruction. */
  complete: boolean;
  len: number;
  valid: boolean;
  text: string;
  isCall: boolean;
  isJmpOrRet: boolean;
  /** Near branch target (absolute), when the instruction has one. */
  target: bigint | undefined;
}

/** A memoising decoder bound to one region address. */
export class RegionDecoder {
  private readonly memo = new Map<string, Decoded>();
  private readonly ins = newInstruction();
  private readonly fmt = newFormatter(FormatterSyntax.Gas);
  decodes = 0;

  constructor(readonly base: bigint) {
    this.fmt.firstOperandCharIndex = 0;
  }

  /** Decodes the instruction at region offset `off` from `bytes` (which start at `off`). */
  decode(off: number, bytes: ArrayLike<number>): Decoded {
    let key = String(off);
    for (let i = 0; i < bytes.length; i++) key += String.fromCharCode(bytes[i]!);
    const hit = this.memo.get(key);
    if (hit) return hit;
    this.decodes++;
    const data = Uint8Array.from(bytes as ArrayLike<number>);
    const dec = decoder(data, { ip: this.base + BigInt(off) });
    dec.decodeOut(this.ins);
    const err = dec.lastError;
    dec.free();
    let d: Decoded;
    if (err === DecoderError.NoMoreBytes) {
      d = { complete: false, len: 0, valid: false, text: '', isCall: false, isJmpOrRet: false, target: undefined };
    } else if (err !== DecoderError.None) {
      d = { complete: true, len: 1, valid: false, text: '(bad)', isCall: false, isJmpOrRet: false, target: undefined };
    } else {
      const fc = this.ins.flowControl;
      const text = this.fmt.format(this.ins).replace(/\s+/g, ' ').trim();
      const isCall = fc === FlowControl.Call || fc === FlowControl.IndirectCall;
      const isJmpOrRet =
        fc === FlowControl.UnconditionalBranch || fc === FlowControl.IndirectBranch || fc === FlowControl.Return;
      const target =
        fc === FlowControl.Call || fc === FlowControl.UnconditionalBranch || fc === FlowControl.ConditionalBranch
          ? this.ins.nearBranchTarget
          : undefined;
      d = { complete: true, len: this.ins.length, valid: true, text, isCall, isJmpOrRet, target };
    }
    this.memo.set(key, d);
    return d;
  }

  /** Splits a byte string into instructions (used for the old and new code of a site). */
  split(bytes: number[], filler: number): Insn[] {
    const out: Insn[] = [];
    let off = 0;
    const padded = [...bytes, ...new Array<number>(15).fill(filler)];
    while (off < bytes.length) {
      const d = this.decode(off, padded.slice(off, off + 15));
      if (!d.complete || !d.valid) throw new Error(`cannot decode ${hex(bytes.slice(off))} at +${off}`);
      if (off + d.len > bytes.length)
        throw new Error(`instruction at +${off} runs past the end of the site (${hex(bytes)})`);
      const end = off + d.len;
      out.push({
        off,
        len: d.len,
        bytes: bytes.slice(off, end),
        text: d.text,
        isCall: d.isCall,
        leaves:
          d.isJmpOrRet &&
          !(d.target !== undefined && d.target >= this.base && d.target < this.base + BigInt(bytes.length)),
      });
      off = end;
    }
    return out;
  }

  free(): void {
    this.ins.free();
    this.fmt.free();
  }
}

/** Parses "e8 00 01 02 03" / "e800010203" / [0xe8, ...] into bytes. */
export function parseBytes(v: unknown, what: string): number[] {
  if (Array.isArray(v)) {
    return v.map((x) => {
      const n = typeof x === 'string' ? parseInt(x, 16) : Number(x);
      if (!Number.isInteger(n) || n < 0 || n > 255) throw new Error(`${what}: ${String(x)} is not a byte`);
      return n;
    });
  }
  if (typeof v !== 'string') throw new Error(`${what}: expected a hex string`);
  const s = v.replace(/0x/gi, '').replace(/[\s,]+/g, '');
  if (!/^([0-9a-f]{2})+$/i.test(s)) throw new Error(`${what}: "${v}" is not a hex byte string`);
  const out: number[] = [];
  for (let i = 0; i < s.length; i += 2) out.push(parseInt(s.slice(i, i + 2), 16));
  return out;
}
