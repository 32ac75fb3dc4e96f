/**
 * nospec-outlined: a function whose speculation barrier protects nothing after it (only register moves,
 * NOPs, pops and a return or return-thunk jump follow, the value returned being a 0/1 constant) is a predicate that was meant to be inlined into a
 * branch (evaluate_nospec() in a static inline the compiler kept out of line; seed 000). Its fences end in
 * the callee, and the caller's `call; test %al; jcc` on the result is unprotected. Reported: the predicate
 * itself, and each caller branch on its result that lacks a fence on both arms (the predicate is the root
 * cause in `related`). Xen lock-hardening fences (SC_NO_LOCK_HARDEN) are not predicates' fences.
 */
import iced from '../x86/iced.cjs';
const { FlowControl, Mnemonic, OpKind } = iced;
import { fenceInfo, hasAnyFence, isBranchFence } from '../cfg/fences.js';
import { AfterFence, afterFence, fenceAhead, Leaf, leafReturn } from '../cfg/flow.js';
import { Func, functionAt } from '../cfg/functions.js';
import { gprFamily } from '../cfg/insn.js';
import { destOf, trailingReloc } from '../cfg/targets.js';
import type { View } from '../cfg/view.js';
import type { SectionCode } from '../x86/code.js';
import type { Check } from './check.js';
import { Finding, finding, related } from './finding.js';

interface Predicate {
  readonly fn: Func;
  /** Fences that protect nothing. */
  readonly fences: number[];
  callers: number;
}

/**
 * Outlined predicates of a view, by function address: functions with a branch-hardening fence followed
 * only by `return 0/1`, all of whose branch-hardening fences lead to a return without any call (the arms of
 * an evaluate_nospec() computing the returned value, not an early error exit of a larger function).
 */
export function outlinedPredicates(view: View): Map<number, Predicate> {
  const fi = fenceInfo(view);
  if (!hasAnyFence(view, fi)) return new Map();
  const byFn = new Map<number, { fn: Func; fences: number[]; bool: number[] }>();
  for (const sc of view.code()) {
    for (let i = 0; i < sc.count; i++) {
      if (!isBranchFence(view, fi, sc, i)) continue;
      const a = sc.section.addr + sc.off[i]!;
      const fn = functionAt(view, a);
      if (!fn) continue;
      let e = byFn.get(fn.addr);
      if (!e) byFn.set(fn.addr, (e = { fn, fences: [], bool: [] }));
      e.fences.push(a);
      if (afterFence(view, sc, i) === AfterFence.NothingBool) e.bool.push(a);
    }
  }
  const preds = new Map<number, Predicate>();
  for (const e of byFn.values()) {
    if (e.bool.length === 0) continue;
    if (!e.fences.every((f) => leafReturn(view, f) === Leaf.Yes)) continue;
    preds.set(e.fn.addr, { fn: e.fn, fences: e.bool, callers: 0 });
  }
  return preds;
}

export const nospecOutlined: Check = {
  id: 'nospec-outlined',
  describe: 'speculation barrier inside an out-of-line predicate: the callers\' branches on its result are unprotected',
  severity: 'warning',
  byDefault: true,
  run(view: View): Finding[] {
    const preds = outlinedPredicates(view);
    if (preds.size === 0) return [];
    const fi = fenceInfo(view);
    const callerFindings: Finding[] = [];
    const rel = view.img.kind === 'rel';
    for (const sc of view.code()) {
      const base = sc.section.addr;
      for (let i = 0; i < sc.count; i++) {
        if (sc.flow[i] !== FlowControl.Call) continue;
        let t = sc.target[i]!;
        if (rel && trailingReloc(view, sc, i)) t = destOf(view, sc, i)?.addr ?? NaN;
        const p = preds.get(t);
        if (!p) continue;
        const jcc = branchOnResult(view, sc, i);
        if (!jcc) continue;
        const d = destOf(view, jcc.sc, jcc.i);
        if (!d || Number.isNaN(d.addr)) continue;
        const ja = jcc.sc.section.addr + jcc.sc.off[jcc.i]!;
        const fFall = fenceAhead(view, fi, ja + jcc.sc.len[jcc.i]!);
        const fTaken = fenceAhead(view, fi, d.addr);
        if (!Number.isNaN(fFall) && !Number.isNaN(fTaken)) continue;
        p.callers++;
        const arms = Number.isNaN(fFall) && Number.isNaN(fTaken) ? 'neither successor has' : `only the ${Number.isNaN(fFall) ? 'taken' : 'not-taken'} successor has`;
        callerFindings.push(finding(view, 'nospec-outlined', 'warning', ja,
          `branch on the result of out-of-line predicate ${p.fn.name}() (called at ${view.img.where(base + sc.off[i]!)}): ${arms} a speculation barrier`,
          [related(view, p.fn.addr, `${p.fn.name}: fence protects nothing after it (predicate not inlined)`), ...p.fences.map((f) => related(view, f, 'fence followed only by register moves and a return'))]));
      }
    }
    const out: Finding[] = [];
    for (const p of preds.values()) {
      // A fence before `return 0/1` in a function no caller branches on is an early exit, not a predicate.
      if (p.callers === 0) continue;
      out.push(finding(view, 'nospec-outlined', 'warning', p.fences[0]!,
        `speculation barrier in ${p.fn.name}() protects nothing after it: a predicate built out of line (make it always_inline); ${p.callers} caller branch${p.callers === 1 ? '' : 'es'} on its result unprotected`,
        p.fences.slice(1).map((f) => related(view, f, 'another fence that protects nothing'))));
    }
    return [...out, ...callerFindings];
  },
};

/**
 * After a call, the first conditional branch whose flags come from the returned value (%al/%eax/%rax, or a
 * register it was copied to): `call p; test %al,%al; je`, `call p; mov %eax,%ebx; cmp $0,%ebx; jne`, ...
 */
function branchOnResult(view: View, sc0: SectionCode, i0: number): { sc: SectionCode; i: number } | undefined {
  let live = 1; // bit mask of GPR families holding the result; rax
  let flags = false;
  let loc: { sc: SectionCode; i: number } | undefined = i0 + 1 < sc0.count ? { sc: sc0, i: i0 + 1 } : undefined;
  for (let steps = 0; loc && steps < 16 && live; steps++) {
    const { sc, i } = loc;
    const fc = sc.flow[i]!;
    if (fc === FlowControl.ConditionalBranch) {
      if (flags) return loc;
      return undefined;
    }
    if (fc === FlowControl.UnconditionalBranch) {
      const d = destOf(view, sc, i);
      if (!d || Number.isNaN(d.addr)) return undefined;
      loc = view.insnAt(d.addr);
      continue;
    }
    if (fc !== FlowControl.Next) return undefined;
    const insn = view.reader.at(sc, i);
    const m = insn.mnemonic;
    const r0 = insn.opCount > 0 && insn.opKind(0) === OpKind.Register ? gprFamily(insn.op0Register) : -1;
    const r1 = insn.opCount > 1 && insn.opKind(1) === OpKind.Register ? gprFamily(insn.op1Register) : -1;
    const reads = (r: number): boolean => r >= 0 && (live & (1 << r)) !== 0;
    if (m === Mnemonic.Test || m === Mnemonic.Cmp || m === Mnemonic.Bt) {
      flags = reads(r0) || reads(r1);
    } else if (m === Mnemonic.Mov || m === Mnemonic.Movzx || m === Mnemonic.Movsx || m === Mnemonic.Movsxd) {
      if (r0 >= 0) live = reads(r1) ? live | (1 << r0) : live & ~(1 << r0);
    } else if (m === Mnemonic.Nop || m === Mnemonic.Lea || m === Mnemonic.Push || m === Mnemonic.Pop) {
      if (m !== Mnemonic.Nop && m !== Mnemonic.Push && r0 >= 0) live &= ~(1 << r0);
    } else if ((m === Mnemonic.And || m === Mnemonic.Or) && r0 >= 0 && r0 === r1 && reads(r0)) {
      flags = true;
    } else if ((m === Mnemonic.Xor || m === Mnemonic.And) && r0 >= 0 && reads(r0) && insn.opCount > 1 && insn.opKind(1) !== OpKind.Register) {
      flags = true; // xor $1,%al / and $1,%eax: still a function of the result
    } else {
      flags = false;
      if (r0 >= 0) live &= ~(1 << r0);
    }
    loc = i + 1 < sc.count ? { sc, i: i + 1 } : undefined;
  }
  return undefined;
}
