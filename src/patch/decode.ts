/** Instruction length decoding for the patchers (the kernels' insn_decode_kernel), through iced-x86. */
import iced from '../x86/iced.cjs';
const { Decoder, DecoderOptions, Instruction } = iced;
type Instruction = InstanceType<typeof iced.Instruction>;

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

/** Index of the opcode byte after legacy and REX prefixes (the kernel's insn.opcode.bytes[0]). */
export function opcodeIndex(b: Uint8Array, len: number): number {
  let k = 0;
  while (k < len - 1) {
    const x = b[k]!;
    if (
      x === 0x2e ||
      x === 0x3e ||
      x === 0x26 ||
      x === 0x36 ||
      x === 0x64 ||
      x === 0x65 ||
      x === 0x66 ||
      x === 0x67 ||
      x === 0xf0 ||
      x === 0xf2 ||
      x === 0xf3 ||
      (x & 0xf0) === 0x40
    )
      k++;
    else break;
  }
  return k;
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

const LEGACY = new Set([0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65, 0x66, 0x67, 0xf0, 0xf2, 0xf3]);

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
  const dec = new Decoder(64, b, DecoderOptions.None);
  const i = (insn2 ??= new Instruction());
  try {
    dec.decodeOut(i);
    if (i.isInvalid || i.length === 0) return none;
    const c = dec.getConstantOffsets(i);
    const r: DecodedFull = {
      length: i.length,
      op: opcodeIndex(b, i.length),
      firstPrefix: LEGACY.has(b[0]!) ? b[0]! : -1,
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
