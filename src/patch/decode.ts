/** Instruction length decoding for the patchers (the kernels' insn_decode_kernel), through iced-x86. */
import { Decoder, DecoderOptions, Instruction } from 'iced-x86';

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
  const dec = new Decoder(64, b, DecoderOptions.None);
  const i = (insn ??= new Instruction());
  try {
    dec.ip = BigInt.asUintN(64, ip);
    dec.decodeOut(i);
    if (i.isInvalid || i.length === 0) return { length: 0, isCall: false, isJmp: false, isJcc: false };
    const isCall = i.isCallNear;
    const isJmp = i.isJmpShortOrNear;
    const isJcc = i.isJccShortOrNear;
    return { length: i.length, isCall, isJmp, isJcc, branchTarget: isCall || isJmp || isJcc ? i.nearBranchTarget : undefined };
  } finally {
    dec.free();
  }
}
