/**
 * Operand-level facts about single instructions, decoded on demand through iced-x86 into one reused
 * `Instruction` per section (the compact records in x86/code.ts keep only offsets, lengths, flow and
 * code). Checks ask these questions for the few instructions near fences, branches and calls, so no
 * full second decoding pass is ever made.
 */
import { Code, decoder, newInstruction, OpKind, Register } from '../x86/insn.js';
import type { Decoder, Instruction } from '../x86/insn.js';
import type { SectionCode } from '../x86/code.js';

export { Code, Register };

/** Speculation barriers by iced code (lfence in every encoding; serialising instructions also stop speculation). */
const FENCES = new Set<number>([
  Code.Lfence,
  Code.Lfence_E9,
  Code.Lfence_EA,
  Code.Lfence_EB,
  Code.Lfence_EC,
  Code.Lfence_ED,
  Code.Lfence_EE,
  Code.Lfence_EF,
  Code.Cpuid,
  Code.Serialize,
]);

export function isFenceCode(code: number): boolean {
  return FENCES.has(code);
}

const NOPS = new Set<number>([
  Code.Nopw,
  Code.Nopd,
  Code.Nopq,
  Code.Nop_rm16,
  Code.Nop_rm32,
  Code.Nop_rm64,
  Code.Pause,
]);
export function isNopCode(code: number): boolean {
  return NOPS.has(code);
}

export const enum Mem {
  /** No memory operand. */
  None = 0,
  /** Only the stack: push/pop of registers or immediates, or an explicit operand based on %rsp without index. */
  Stack = 1,
  /** Any other memory access. */
  Other = 2,
}

/** General-purpose register family 0..15 (rax=0, rcx=1, ..., r15=15), or -1. */
export function gprFamily(r: Register): number {
  if (r >= Register.AL && r <= Register.BL) return r - Register.AL;
  if (r >= Register.AH && r <= Register.BH) return r - Register.AH;
  if (r >= Register.SPL && r <= Register.R15L) return r - Register.SPL + 4;
  if (r >= Register.AX && r <= Register.R15) return (r - Register.AX) % 16;
  return -1;
}

/** One reused decoder per section's bytes. Call `free()` when the view is done. */
export class InsnReader {
  private readonly decoders = new Map<SectionCode, Decoder>();
  readonly insn = newInstruction();

  /** Decodes instruction `i` of `sc` into the shared `insn` and returns it (valid until the next call). */
  at(sc: SectionCode, i: number): Instruction {
    let d = this.decoders.get(sc);
    if (!d) {
      d = decoder(sc.bytes);
      this.decoders.set(sc, d);
    }
    const o = sc.off[i]!;
    d.position = o;
    d.ip = BigInt(sc.section.addr + o);
    d.decodeOut(this.insn);
    return this.insn;
  }

  /** How instruction `i` touches memory. */
  mem(sc: SectionCode, i: number): Mem {
    const insn = this.at(sc, i);
    return memOf(insn);
  }

  free(): void {
    for (const d of this.decoders.values()) d.free();
    this.decoders.clear();
  }
}

export function memOf(insn: Instruction): Mem {
  const n = insn.opCount;
  let m = Mem.None;
  for (let k = 0; k < n; k++) {
    const kind = insn.opKind(k);
    if (kind === OpKind.Memory) {
      const b = insn.memoryBase;
      if ((b === Register.RSP || b === Register.ESP) && insn.memoryIndex === Register.None) m = Mem.Stack;
      else return Mem.Other;
    } else if (kind >= OpKind.MemorySegSI && kind <= OpKind.MemoryESRDI) return Mem.Other;
  }
  if (m === Mem.None && insn.stackPointerIncrement !== 0) m = Mem.Stack;
  return m;
}
