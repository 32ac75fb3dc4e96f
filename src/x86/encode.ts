/**
 * Named encoders for the instructions the kernels' patchers write, built on iced-x86's Encoder: each
 * returns the exact bytes the kernel writes (the shortest form is never chosen behind the caller's back:
 * a rel8 jump is rel8 or an error, a rel32 jump is always e9 rel32). Branch encoders take the address the
 * instruction will sit at and its target, both absolute, as bigints.
 *
 * ```ts
 * import { callRel32, jmpIndirect } from '../x86/encode.js';
 * import { Register } from '../x86/insn.js';
 * callRel32(0xffffffff81000000n, 0xffffffff81001000n); // e8 fb 0f 00 00
 * jmpIndirect(Register.R11);                           // 41 ff e3  (jmp *%r11)
 * ```
 */
import iced from './iced.cjs';
import type { ConditionCode, Instruction, Register } from './insn.js';

type Encoder = InstanceType<typeof iced.Encoder>;
let encoder: Encoder | undefined;

/** Thrown when a branch target is out of reach of the requested form (a rel8 beyond ±128 bytes, a rel32 beyond ±2 GiB). */
export class EncodeError extends RangeError {}

/** Encodes `ins` (which is freed) as if at `ip`. */
function encodeAt(ins: Instruction, ip: bigint, what: string): Uint8Array {
  encoder ??= new iced.Encoder(64);
  try {
    encoder.encode(ins, BigInt.asUintN(64, ip));
    return encoder.takeBuffer();
  } catch (e) {
    encoder.takeBuffer();
    throw new EncodeError(`cannot encode ${what}: ${e instanceof Error ? e.message : String(e)}`);
  } finally {
    ins.free();
  }
}

function branch(code: number, ip: bigint, target: bigint, what: string): Uint8Array {
  return encodeAt(
    iced.Instruction.createBranch(code, BigInt.asUintN(64, target)),
    ip,
    `${what} at 0x${BigInt.asUintN(64, ip).toString(16)} to 0x${BigInt.asUintN(64, target).toString(16)}`,
  );
}

/** `call target`: e8 rel32. */
export function callRel32(ip: bigint, target: bigint): Uint8Array {
  return branch(iced.Code.Call_rel32_64, ip, target, 'call rel32');
}

/** `jmp target`: e9 rel32. */
export function jmpRel32(ip: bigint, target: bigint): Uint8Array {
  return branch(iced.Code.Jmp_rel32_64, ip, target, 'jmp rel32');
}

/** `jmp target`: eb rel8. */
export function jmpRel8(ip: bigint, target: bigint): Uint8Array {
  return branch(iced.Code.Jmp_rel8_64, ip, target, 'jmp rel8');
}

/** Condition names in iced's ConditionCode order (after None), which is also their encoding order. */
const CONDITIONS = ['o', 'no', 'b', 'ae', 'e', 'ne', 'be', 'a', 's', 'ns', 'p', 'np', 'l', 'ge', 'le', 'g'] as const;
const codeOf = (name: string): number => {
  const c = (iced.Code as unknown as Record<string, number>)[name];
  if (c === undefined) throw new Error(`iced has no ${name}`);
  return c;
};
const JCC8 = CONDITIONS.map((c) => codeOf(`J${c}_rel8_64`));
const JCC32 = CONDITIONS.map((c) => codeOf(`J${c}_rel32_64`));

function jccCode(table: readonly number[], cc: ConditionCode): number {
  const c = table[cc - 1];
  if (c === undefined) throw new EncodeError(`no conditional jump for condition ${cc}`);
  return c;
}

/** `jCC target`: 70+cc rel8. */
export function jccRel8(cc: ConditionCode, ip: bigint, target: bigint): Uint8Array {
  return branch(jccCode(JCC8, cc), ip, target, `j${CONDITIONS[cc - 1] ?? '?'} rel8`);
}

/** `jCC target`: 0f 80+cc rel32. */
export function jccRel32(cc: ConditionCode, ip: bigint, target: bigint): Uint8Array {
  return branch(jccCode(JCC32, cc), ip, target, `j${CONDITIONS[cc - 1] ?? '?'} rel32`);
}

/** `call *%reg` (a 64-bit general register): ff /2, with REX.B for r8..r15. */
export function callIndirect(reg: Register): Uint8Array {
  return encodeAt(iced.Instruction.createReg(iced.Code.Call_rm64, reg), 0n, 'call *%reg');
}

/** `jmp *%reg` (a 64-bit general register): ff /4, with REX.B for r8..r15. */
export function jmpIndirect(reg: Register): Uint8Array {
  return encodeAt(iced.Instruction.createReg(iced.Code.Jmp_rm64, reg), 0n, 'jmp *%reg');
}

/** `ret`: c3. */
export function ret(): Uint8Array {
  return encodeAt(iced.Instruction.create(iced.Code.Retnq), 0n, 'ret');
}

/** `int3`: cc. */
export function int3(): Uint8Array {
  return encodeAt(iced.Instruction.create(iced.Code.Int3), 0n, 'int3');
}

/** `lfence`: 0f ae e8. */
export function lfence(): Uint8Array {
  return encodeAt(iced.Instruction.create(iced.Code.Lfence), 0n, 'lfence');
}

/** `endbr64`: f3 0f 1e fa. */
export function endbr64(): Uint8Array {
  return encodeAt(iced.Instruction.create(iced.Code.Endbr64), 0n, 'endbr64');
}

/** `ud2`: 0f 0b. */
export function ud2(): Uint8Array {
  return encodeAt(iced.Instruction.create(iced.Code.Ud2), 0n, 'ud2');
}
