/**
 * What the rest of textpoke knows about x86 instructions, in one place: iced-x86's enums and classes under
 * their own names (so no file outside src/x86 imports iced), one decoder factory, the legacy prefixes, NOP
 * recognition, branch kinds and conditions, little-endian 32-bit fields and hex text. Encoders are in
 * encode.ts, formatting with symbols in format.ts, per-section decoding in code.ts.
 *
 * ```ts
 * import { decoder, newInstruction, isNop, hex } from '../x86/insn.js';
 * const dec = decoder(bytes, { ip: 0xffffffff81000000n });
 * const ins = newInstruction();
 * dec.decodeOut(ins);          // ins.length, ins.mnemonic, ins.nearBranchTarget, ...
 * isNop(ins);                  // true for 90, 66 90, 0f 1f /0 (any length), not for f3 90 (pause)
 * ins.free(); dec.free();      // iced objects live in WebAssembly memory
 * hex(bytes.subarray(0, ins.length)); // '0f 1f 44 00 00'
 * ```
 */
import iced from './iced.cjs';

export const {
  Code,
  ConditionCode,
  DecoderError,
  FlowControl,
  FormatterSyntax,
  Mnemonic,
  OpKind,
  Register,
  RegisterExt,
} = iced;
export type Code = (typeof iced.Code)[keyof typeof iced.Code];
export type ConditionCode = (typeof iced.ConditionCode)[keyof typeof iced.ConditionCode];
export type FlowControl = (typeof iced.FlowControl)[keyof typeof iced.FlowControl];
export type FormatterSyntax = (typeof iced.FormatterSyntax)[keyof typeof iced.FormatterSyntax];
export type Mnemonic = (typeof iced.Mnemonic)[keyof typeof iced.Mnemonic];
export type OpKind = (typeof iced.OpKind)[keyof typeof iced.OpKind];
export type Register = (typeof iced.Register)[keyof typeof iced.Register];
export type Instruction = InstanceType<typeof iced.Instruction>;
export type Decoder = InstanceType<typeof iced.Decoder>;
export type Formatter = InstanceType<typeof iced.Formatter>;
export type InstructionInfoFactory = InstanceType<typeof iced.InstructionInfoFactory>;

/** Code size of a decoder: 64 for kernels, 32 and 16 for the byte tables of older patch code. */
export type Bits = 16 | 32 | 64;

export interface DecoderSetup {
  /** Code size (default 64). */
  readonly bits?: Bits;
  /** Address of `bytes[0]` (default 0), which branch targets and RIP-relative operands are computed from. */
  readonly ip?: bigint;
}

/** The one way to make an iced decoder over `bytes` (no decoder options; the caller frees it). */
export function decoder(bytes: Uint8Array, o: DecoderSetup = {}): Decoder {
  const dec = new iced.Decoder(o.bits ?? 64, bytes, iced.DecoderOptions.None);
  if (o.ip !== undefined) dec.ip = BigInt.asUintN(64, o.ip);
  return dec;
}

/** A reusable instruction to decode into (`decoder.decodeOut(ins)`; the caller frees it). */
export function newInstruction(): Instruction {
  return new iced.Instruction();
}

/** Operand and register use of instructions (`factory.info(ins)`; the caller frees it). */
export function newInstructionInfoFactory(): InstructionInfoFactory {
  return new iced.InstructionInfoFactory();
}

/** An iced formatter in one syntax (the caller sets its options and frees it). */
export function newFormatter(syntax: FormatterSyntax): Formatter {
  return new iced.Formatter(syntax);
}

/** Legacy prefix bytes: segment overrides, operand and address size, lock, repne and rep. */
export const LEGACY_PREFIXES: ReadonlySet<number> = new Set([
  0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65, 0x66, 0x67, 0xf0, 0xf2, 0xf3,
]);
export const CS_PREFIX = 0x2e;
export const LOCK_PREFIX = 0xf0;

export function isLegacyPrefix(b: number): boolean {
  return LEGACY_PREFIXES.has(b);
}

/** A REX prefix (0x40..0x4f) in 64-bit code. */
export function isRexPrefix(b: number): boolean {
  return (b & 0xf0) === 0x40;
}

/** The legacy prefix bytes an instruction starts with. */
export function legacyPrefixes(bytes: ArrayLike<number>): number[] {
  const out: number[] = [];
  for (let k = 0; k < bytes.length && LEGACY_PREFIXES.has(bytes[k]!); k++) out.push(bytes[k]!);
  return out;
}

/** Index of the opcode byte of an instruction of `length` bytes: after its legacy and REX prefixes (the kernel's insn.opcode). */
export function opcodeIndex(bytes: ArrayLike<number>, length: number): number {
  let k = 0;
  while (k < length - 1 && (LEGACY_PREFIXES.has(bytes[k]!) || isRexPrefix(bytes[k]!))) k++;
  return k;
}

const NOP_CODES: ReadonlySet<number> = new Set([
  iced.Code.Nopw,
  iced.Code.Nopd,
  iced.Code.Nopq,
  iced.Code.Nop_rm16,
  iced.Code.Nop_rm32,
  iced.Code.Nop_rm64,
]);

/** True for the NOP forms: 90 with any operand size (not f3 90, which is pause) and 0f 1f /0 of any length. */
export function isNopCode(code: number): boolean {
  return NOP_CODES.has(code);
}

export function isNop(ins: Instruction): boolean {
  return !ins.isInvalid && NOP_CODES.has(ins.code);
}

/** How an instruction leaves straight-line flow. */
export type BranchKind = 'call' | 'jmp' | 'jcc' | 'ret' | 'indirect-call' | 'indirect-jmp' | 'other';

/** The branch kind of a decoded instruction (near and far forms alike; interrupts and syscalls are 'other'). */
export function branchKind(ins: Instruction): BranchKind {
  switch (ins.flowControl) {
    case iced.FlowControl.Call:
      return 'call';
    case iced.FlowControl.UnconditionalBranch:
      return 'jmp';
    case iced.FlowControl.ConditionalBranch:
      return 'jcc';
    case iced.FlowControl.Return:
      return 'ret';
    case iced.FlowControl.IndirectCall:
      return 'indirect-call';
    case iced.FlowControl.IndirectBranch:
      return 'indirect-jmp';
    default:
      return 'other';
  }
}

/** Near branch (call, jmp, jcc, loop, jrcxz) to a target in the instruction itself. */
export function isNearBranch(ins: Instruction): boolean {
  return ins.isCallNear || ins.isJmpShortOrNear || ins.isJccShortOrNear || ins.isJcxShort || ins.isLoop || ins.isLoopcc;
}

/** The condition with the opposite outcome (e ↔ ne, b ↔ ae, ...); `none` stays `none`. */
export function negateCondition(cc: ConditionCode): ConditionCode {
  if (cc === iced.ConditionCode.None) return cc;
  // iced orders the 16 conditions in their encoding order (o, no, b, ae, ...) after None: flipping the
  // low bit of the encoding flips the condition.
  return (((cc - 1) ^ 1) + 1) as ConditionCode;
}

/** Names of the 64-bit general registers in encoding order (as the kernels name their per-register thunks). */
// biome-ignore format: one line reads as the encoding table it is
export const GPR64_NAMES: readonly string[] = ['rax', 'rcx', 'rdx', 'rbx', 'rsp', 'rbp', 'rsi', 'rdi', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15'];

/** The 64-bit general register with encoding number `n` (0 rax, 1 rcx, 2 rdx, 3 rbx, 4 rsp, ... 8 r8, ... 15 r15). */
export function gpr64(n: number): Register {
  if (!(Number.isInteger(n) && n >= 0 && n < 16)) throw new RangeError(`no 64-bit general register number ${n}`);
  // iced lists RAX..R15 consecutively in encoding order.
  return (iced.Register.RAX + n) as Register;
}

/** Signed little-endian 32-bit field at `o` (a rel32 or disp32). */
export function readS32(b: ArrayLike<number>, o: number): number {
  return b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24) | 0;
}

/** Writes the low 32 bits of `v` little-endian at `o`. */
export function writeS32(b: Uint8Array, o: number, v: number): void {
  b[o] = v & 0xff;
  b[o + 1] = (v >>> 8) & 0xff;
  b[o + 2] = (v >>> 16) & 0xff;
  b[o + 3] = (v >>> 24) & 0xff;
}

const HEX = Array.from({ length: 256 }, (_, i) => (i < 16 ? '0' : '') + i.toString(16));

/** Bytes as two-digit lower-case hex separated by spaces ('' for none). */
export function hex(bytes: ArrayLike<number>): string {
  if (bytes.length === 0) return '';
  let s = HEX[bytes[0]! & 0xff]!;
  for (let i = 1; i < bytes.length; i++) s += ' ' + HEX[bytes[i]! & 0xff]!;
  return s;
}

/**
 * `mov %REG, (%rsp)` (the store a retpoline thunk makes over its return address): the register's number in
 * encoding order (see {@link GPR64_NAMES}), else undefined.
 */
export function storedToStackTop(ins: Instruction): number | undefined {
  if (ins.isInvalid || ins.mnemonic !== iced.Mnemonic.Mov || ins.opCount !== 2) return undefined;
  if (ins.op0Kind !== iced.OpKind.Memory || ins.op1Kind !== iced.OpKind.Register) return undefined;
  if (ins.memoryBase !== iced.Register.RSP || ins.memoryIndex !== iced.Register.None || ins.memoryDisplacement !== 0n)
    return undefined;
  const r = ins.op1Register - iced.Register.RAX;
  return r >= 0 && r < 16 ? r : undefined;
}

/** `jmp *%REG` / `call *%REG`: the register's number in encoding order, else undefined. */
export function branchRegister(ins: Instruction): number | undefined {
  if (ins.isInvalid || (!ins.isJmpNearIndirect && !ins.isCallNearIndirect)) return undefined;
  if (ins.op0Kind !== iced.OpKind.Register) return undefined;
  const r = ins.op0Register - iced.Register.RAX;
  return r >= 0 && r < 16 ? r : undefined;
}
