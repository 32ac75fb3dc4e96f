/**
 * Short forward walks over the instruction records, for checks that ask about the head of a successor
 * ("does this path start with a fence?", "does this fence protect anything?") without building a whole CFG.
 */
import { Code, FlowControl, Mnemonic, OpKind } from '../x86/insn.js';
import type { Instruction } from '../x86/insn.js';
import type { SectionCode } from '../x86/code.js';
import { FenceInfo, isAnyFence, isBranchFence } from './fences.js';
import { gprFamily, isNopCode, Mem, memOf } from './insn.js';
import { destOf } from './targets.js';
import type { View } from './view.js';

/** Names of return thunks: a jmp to one of these is a return. */
export function isReturnThunk(name: string | undefined): boolean {
  return (
    name !== undefined &&
    (name === '__x86_return_thunk' ||
      name === 'zen_untrain_ret' ||
      name === 'srso_return_thunk' ||
      name === 'srso_untrain_ret' ||
      name === '__x86_return_skl' ||
      name.startsWith('__x86_return_thunk'))
  );
}

/** Names of indirect-branch thunks (retpolines). */
export function isIndirectThunk(name: string | undefined): boolean {
  return (
    name !== undefined &&
    (name.startsWith('__x86_indirect_thunk_') ||
      name.startsWith('__x86_indirect_call_thunk_') ||
      name.startsWith('__x86_indirect_jump_thunk_') ||
      name.startsWith('__x86_indirect_alt_'))
  );
}

const MAX_STEPS = 24;

/**
 * Does the path starting at `addr` reach a branch-guard fence before any instruction that touches
 * non-stack memory or leaves straight-line code? Register- and stack-only instructions may come first;
 * direct jumps are followed; a conditional branch before the fence counts when both of its successors are
 * fenced (a switch lowered to compare chains, as evaluate_nospec() yields). Returns the fence's address or NaN.
 */
export function fenceAhead(view: View, fi: FenceInfo, addr: number, depth = 3): number {
  let loc = view.insnAt(addr);
  for (let steps = 0; loc && steps < MAX_STEPS; steps++) {
    const { sc, i } = loc;
    const a = sc.section.addr + sc.off[i]!;
    if (isBranchFence(view, fi, sc, i)) return a;
    const fc = sc.flow[i]!;
    if (fc === FlowControl.UnconditionalBranch) {
      const d = destOf(view, sc, i);
      if (!d || Number.isNaN(d.addr)) return NaN;
      loc = view.insnAt(d.addr);
      continue;
    }
    if (fc === FlowControl.ConditionalBranch) {
      if (depth <= 0) return NaN;
      const d = destOf(view, sc, i);
      if (!d || Number.isNaN(d.addr)) return NaN;
      const f1 = fenceAhead(view, fi, a + sc.len[i]!, depth - 1);
      if (Number.isNaN(f1)) return NaN;
      const f2 = fenceAhead(view, fi, d.addr, depth - 1);
      return Number.isNaN(f2) ? NaN : f1;
    }
    if (fc !== FlowControl.Next) return NaN;
    if (!isNopCode(sc.code[i]!) && view.reader.mem(sc, i) === Mem.Other) return NaN;
    loc = i + 1 < sc.count ? { sc, i: i + 1 } : undefined;
  }
  return NaN;
}

/** Quick filter: is there any fence among the first few instructions from `addr` (following direct jumps)? */
export function fenceNear(view: View, fi: FenceInfo, addr: number, depth = 2): boolean {
  let loc = view.insnAt(addr);
  for (let steps = 0; loc && steps < 10; steps++) {
    const { sc, i } = loc;
    if (isAnyFence(view, fi, sc, i)) return true;
    const fc = sc.flow[i]!;
    if (fc === FlowControl.UnconditionalBranch) {
      const t = sc.target[i]!;
      if (Number.isNaN(t)) return false;
      loc = view.insnAt(t);
      continue;
    }
    if (fc === FlowControl.ConditionalBranch) {
      // Either side may hold the fence.
      const t = sc.target[i]!;
      if (depth > 0 && !Number.isNaN(t) && fenceNear(view, fi, t, depth - 1)) return true;
    } else if (fc !== FlowControl.Next) return false;
    loc = i + 1 < sc.count ? { sc, i: i + 1 } : undefined;
  }
  return false;
}

/** What follows a fence. */
export const enum AfterFence {
  /** Something after it touches memory, branches or calls: the fence protects it. */
  Protects = 0,
  /** Only register-only instructions, pops and stack reloads up to a return; the return value is not a 0/1 constant. */
  Nothing = 1,
  /** As Nothing, and the value returned is a 0/1 constant set after the fence (`xor %eax,%eax`, `mov $1,%eax`, `setcc`): a predicate. */
  NothingBool = 2,
}

/**
 * What does the fence at instruction `i` protect? Walks forward over register-only instructions (moves,
 * arithmetic on registers, NOPs), pops and stack reloads up to a return or a jump to the return thunk,
 * following direct jumps, and notes how the return value (%rax) was last set.
 */
export function afterFence(view: View, sc0: SectionCode, i0: number): AfterFence {
  let loc: { sc: SectionCode; i: number } | undefined = i0 + 1 < sc0.count ? { sc: sc0, i: i0 + 1 } : undefined;
  let bool = false;
  for (let steps = 0; loc && steps < MAX_STEPS; steps++) {
    const { sc, i } = loc;
    const fc = sc.flow[i]!;
    if (fc === FlowControl.Return) return bool ? AfterFence.NothingBool : AfterFence.Nothing;
    if (fc === FlowControl.UnconditionalBranch) {
      const d = destOf(view, sc, i);
      if (!d) return AfterFence.Protects;
      if (isReturnThunk(d.name)) return bool ? AfterFence.NothingBool : AfterFence.Nothing;
      if (Number.isNaN(d.addr)) return AfterFence.Protects;
      loc = view.insnAt(d.addr);
      continue;
    }
    if (fc !== FlowControl.Next) return AfterFence.Protects;
    const code = sc.code[i]!;
    if (!isNopCode(code) && code !== Code.Int3) {
      const insn = view.reader.at(sc, i);
      const mem = memOf(insn);
      if (mem === Mem.Other) return AfterFence.Protects;
      if (
        mem === Mem.Stack &&
        !(insn.stackPointerIncrement > 0 || (insn.opCount === 2 && insn.opKind(0) === OpKind.Register))
      )
        return AfterFence.Protects;
      if (insn.opCount > 0 && insn.opKind(0) === OpKind.Register && gprFamily(insn.op0Register) === 0)
        bool = isBoolConst(insn);
    }
    loc = i + 1 < sc.count ? { sc, i: i + 1 } : undefined;
  }
  return AfterFence.Protects;
}

/** Does this instruction set its destination to 0, 1 or a flag (the values a predicate returns)? */
function isBoolConst(insn: Instruction): boolean {
  const m = insn.mnemonic;
  if (
    (m === Mnemonic.Xor || m === Mnemonic.Sub) &&
    insn.opCount === 2 &&
    insn.opKind(1) === OpKind.Register &&
    insn.op1Register === insn.op0Register
  )
    return true;
  if (
    m === Mnemonic.Mov &&
    insn.opCount === 2 &&
    insn.opKind(1) >= OpKind.Immediate8 &&
    insn.opKind(1) <= OpKind.Immediate32to64
  ) {
    const v = insn.immediate(1);
    return v === 0n || v === 1n;
  }
  if (insn.code >= Code.Seto_rm8 && insn.code <= Code.Setg_rm8) return true;
  return false;
}

/**
 * Does every path from `addr` reach a return (or return-thunk jump) without a call, an indirect branch or
 * more than `budget` instructions? Memory accesses are allowed: this asks "is this a leaf computation of
 * the return value", as the arms of an evaluate_nospec() predicate are.
 */
export function returnsWithoutCall(view: View, addr: number, budget = 64): boolean {
  return leafReturn(view, addr, budget) !== Leaf.No;
}

export const enum Leaf {
  /** Some path calls, branches indirectly or runs too long. */
  No = 0,
  Yes = 1,
  /** Yes, but some path loads %eax/%rax with an immediate other than 0 or 1 (an error code, an order): not a predicate. */
  YesNonBool = 2,
}

/** As returnsWithoutCall, also telling whether a constant other than 0/1 is put into the return register. */
export function leafReturn(view: View, addr: number, budget = 64): Leaf {
  let nonBool = false;
  const seen = new Set<number>();
  const work = [addr];
  let n = 0;
  while (work.length) {
    let loc = view.insnAt(work.pop()!);
    while (loc) {
      const { sc, i } = loc;
      const a = sc.section.addr + sc.off[i]!;
      if (seen.has(a)) break;
      seen.add(a);
      if (++n > budget) return Leaf.No;
      const fc = sc.flow[i]!;
      if (fc === FlowControl.Return) break;
      if (fc === FlowControl.UnconditionalBranch || fc === FlowControl.ConditionalBranch) {
        const d = destOf(view, sc, i);
        if (!d) return Leaf.No;
        if (fc === FlowControl.UnconditionalBranch) {
          if (isReturnThunk(d.name)) break;
          if (Number.isNaN(d.addr)) return Leaf.No;
          loc = view.insnAt(d.addr);
          continue;
        }
        if (Number.isNaN(d.addr)) return Leaf.No;
        work.push(d.addr);
      } else if (fc !== FlowControl.Next) return Leaf.No;
      else if (!nonBool) {
        const insn = view.reader.at(sc, i);
        if (
          insn.mnemonic === Mnemonic.Mov &&
          insn.opCount === 2 &&
          insn.opKind(0) === OpKind.Register &&
          gprFamily(insn.op0Register) === 0 &&
          insn.opKind(1) >= OpKind.Immediate8 &&
          insn.opKind(1) <= OpKind.Immediate32to64
        ) {
          const v = insn.immediate(1);
          if (v !== 0n && v !== 1n) nonBool = true;
        }
      }
      if (sc.code[i] === Code.Ud2) break;
      loc = i + 1 < sc.count ? { sc, i: i + 1 } : undefined;
    }
    if (!loc && work.length === 0) break;
  }
  return nonBool ? Leaf.YesNonBool : Leaf.Yes;
}
