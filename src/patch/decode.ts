/** Instruction length decoding for the patchers (the kernels' insn_decode_kernel), through iced-x86. */
import { decoder, isLegacyPrefix, newInstruction, opcodeIndex } from '../x86/insn.js';
import type { Instruction } from '../x86/insn.js';

let insn: Instruction | undefined;

export interface Decoded {
  /** 0 when the bytes do not decode to a whole valid instruction. */
  readonly length: number;
  /** Near branch target relative to `ip` (ip + length + displacement) for rel8/rel32 branches and calls, else undefined. */
  readonly branchTarget?: bigint;
  readonly isCall: boolean;
  readonly isJmp: boolean;
  readonly isJcc: boolean;
}

/** Decodes one instruction at the start of `bytes` (at most 15 bytes are looked at), as if at address `ip`. */
export function decodeOne(bytes: Uint8Array, ip = 0n): Decoded {
  if (bytes.length === 0) return { length: 0, isCall: false, isJmp: false, isJcc: false };
  const b = bytes.length > 15 ? bytes.subarray(0, 15) : bytes;
  const dec = decoder(b, { ip });
  const i = (insn ??= newInstruction());
  try {
    dec.decodeOut(i);
    if (i.isInvalid || i.length === 0) return { length: 0, isCall: false, isJmp: false, isJcc: false };
    const isCall = i.isCallNear;
    const isJmp = i.isJmpShortOrNear;
    const isJcc = i.isJccShortOrNear;
    return {
      length: i.length,
      isCall,
      isJmp,
      isJcc,
      branchTarget: isCall || isJmp || isJcc ? i.nearBranchTarget : undefined,
    };
  } finally {
    dec.free();
  }
}

let insn2: Instruction | undefined;

export interface DecodedFull {
  /** 0 when invalid. */
  readonly length: number;
  /** Index of the opcode byte (after legacy and REX prefixes). */
  readonly op: number;
  /** First legacy prefix byte, or -1. */
  readonly firstPrefix: number;
  /** Branch displacement / immediate location (iced reports rel8/rel32 branch displacements here). */
  readonly immOff: number;
  readonly immSize: number;
  /** RIP-relative memory displacement (dispSize 0 when there is none). */
  readonly dispOff: number;
  readonly dispSize: number;
  readonly ripRel: boolean;
}

/** Decodes one instruction with the field offsets the kernel's insn decoder exposes. */
export function decodeFull(bytes: Uint8Array): DecodedFull {
  const none: DecodedFull = {
    length: 0,
    op: 0,
    firstPrefix: -1,
    immOff: 0,
    immSize: 0,
    dispOff: 0,
    dispSize: 0,
    ripRel: false,
  };
  if (bytes.length === 0) return none;
  const b = bytes.length > 15 ? bytes.subarray(0, 15) : bytes;
  const dec = decoder(b);
  const i = (insn2 ??= newInstruction());
  try {
    dec.decodeOut(i);
    if (i.isInvalid || i.length === 0) return none;
    const c = dec.getConstantOffsets(i);
    const r: DecodedFull = {
      length: i.length,
      op: opcodeIndex(b, i.length),
      firstPrefix: isLegacyPrefix(b[0]!) ? b[0]! : -1,
      immOff: c.immediateOffset,
      immSize: c.immediateSize,
      dispOff: c.displacementOffset,
      dispSize: c.displacementSize,
      ripRel: i.isIpRelMemoryOperand,
    };
    c.free();
    return r;
  } finally {
    dec.free();
  }
}
