/**
 * Speculation barriers classified by purpose, read from the code around each one (the binary has no
 * other record of intent: Xen 4.18+'s `#nospec-true`/`#nospec-false` are assembler comments, and 4.17.7
 * already has them in its source), and the feature that gates each (what a `spec-ctrl=` switch removes).
 *
 * - pair: at the head of both successors of one conditional branch (evaluate_nospec(); a compare chain
 *   whose arms are all fenced counts, as fenceAhead() reads it);
 * - lock: gated by Xen's SC_NO_LOCK_HARDEN (after a lock is taken, arch_lock_evaluate_nospec());
 * - value: not a pair, and the path after it reaches the return reading memory and doing nothing else (no
 *   store, call or conditional branch), through addresses that do not use a register the guarding branch
 *   compared: the fence keeps the returned value from being read under speculation (block_speculation()
 *   before a bound is loaded, Xen's nr_grant_entries());
 * - store-bypass: not a pair, the function stores to non-stack memory before it, and after it only
 *   register work leads to a return of a non-constant value or to an indirect call/jump (a fence between
 *   writing stub bytes and running them);
 * - one-sided: every other branch-hardening barrier (block_speculation() on one path of a check);
 * The order decides: pair, lock, store-bypass, value, one-sided.
 * - other: fences no hardening feature gates (rdtsc ordering, entry paths); in an object that is no
 *   known kernel every fence is classified by shape as above and none is 'other'.
 */
import { Code, FlowControl, Mnemonic, OpKind } from '../x86/insn.js';
import type { Instruction } from '../x86/insn.js';
import type { SectionCode } from '../x86/code.js';
import { featureName } from '../target/features/index.js';
import { fenceAhead, isReturnThunk } from './flow.js';
import { fenceInfo, type FenceInfo, isAnyFence } from './fences.js';
import { Func, functionAt, functions } from './functions.js';
import { gprFamily, isFenceCode, isNopCode, Mem, memOf } from './insn.js';
import { destOf } from './targets.js';
import type { View } from './view.js';

export type FenceClass = 'pair' | 'one-sided' | 'value' | 'store-bypass' | 'lock' | 'other';
export const FENCE_CLASSES: readonly FenceClass[] = ['pair', 'one-sided', 'value', 'store-bypass', 'lock', 'other'];

export interface FenceRecord {
  /** Relative address of the fence (or of the alternative site that is one). */
  readonly addr: number;
  readonly cls: FenceClass;
  /** Feature whose alternative removes it ('X86_FEATURE_SC_NO_BRANCH_HARDEN', ...), or 'ungated'. */
  readonly gate: string;
  /** pair / one-sided: the conditional branch it guards (NaN when none). */
  readonly branch: number;
}

/** A conditional branch with a fence at the head of both successors. */
export interface FencePair {
  readonly branch: number;
  readonly fall: number;
  readonly taken: number;
}

export interface FenceClasses {
  readonly fences: FenceRecord[];
  readonly pairs: FencePair[];
}

/** Xen's `spec-ctrl=` switch that removes fences gated by `gate` (4.17-4.20), if any. */
export function switchFor(view: View, gate: string): string | undefined {
  if (view.target.os !== 'xen') return undefined;
  if (gate.endsWith('SC_NO_BRANCH_HARDEN')) return 'spec-ctrl=no-branch-harden';
  // opt_lock_harden defaults to false: these fences are NOPs unless `spec-ctrl=lock-harden`.
  if (gate.endsWith('SC_NO_LOCK_HARDEN'))
    return 'spec-ctrl=no-lock-harden (the default; spec-ctrl=lock-harden keeps them)';
  return undefined;
}

const cache = new WeakMap<View, FenceClasses>();

/** Every fence of the view with its class, and every fenced pair. */
export function classifyFences(view: View): FenceClasses {
  let r = cache.get(view);
  if (r) return r;
  const fi = fenceInfo(view);
  const gateOf = new Map<number, string>();
  for (const s of view.sites) {
    if (s.table === '.altinstructions' && s.feature !== undefined && view.features)
      gateOf.set(s.addr, featureName(view.features, s.feature));
  }
  // Candidate fences: the table's hardening sites, and every fence instruction.
  // On a patched view a site whose alternative removed the fence is no fence for this CPU.
  const cands = new Map<number, 'branch' | 'lock' | 'other'>();
  for (const [a, p] of fi.purpose) {
    const l = view.insnAt(a);
    if (l && isAnyFence(view, fi, l.sc, l.i)) cands.set(a, p);
  }
  for (const sc of view.code()) {
    if (sc.section.name === '.altinstr_replacement' || sc.section.name === '.altinstr_aux') continue;
    for (let i = 0; i < sc.count; i++) {
      if (!isFenceCode(sc.code[i]!)) continue;
      const a = sc.section.addr + sc.off[i]!;
      if (!cands.has(a)) cands.set(a, fi.mode === 'any' ? 'branch' : 'other');
    }
  }
  const heads = new Map<number, { branch: number; both: boolean }>();
  const pairs: FencePair[] = [];
  const scanned = new Set<number>();
  const byName = new Map<string, Func>();
  for (const f of functions(view)) if (!byName.has(f.name)) byName.set(f.name, f);
  const scan = (fn: Func | undefined): void => {
    if (!fn || scanned.has(fn.addr)) return;
    scanned.add(fn.addr);
    forEachInsn(view, fn, (sc, i, a) => {
      if (sc.flow[i] !== FlowControl.ConditionalBranch) return;
      const d = destOf(view, sc, i);
      if (!d || Number.isNaN(d.addr)) return;
      const f1 = fenceAhead(view, fi, a + sc.len[i]!);
      const f2 = fenceAhead(view, fi, d.addr);
      const one = Number.isNaN(f1) ? f2 : f1;
      if (Number.isNaN(one)) return;
      const both = !Number.isNaN(f1) && !Number.isNaN(f2);
      if (both) pairs.push({ branch: a, fall: f1, taken: f2 });
      for (const f of both ? [f1, f2] : [one]) {
        const h = heads.get(f);
        if (!h || (both && !h.both)) heads.set(f, { branch: a, both });
      }
    });
  };
  for (const [a, p] of cands) {
    if (p !== 'branch') continue;
    const fn = functionAt(view, a);
    scan(fn);
    if (fn?.parent) scan(byName.get(fn.parent));
  }
  const fences: FenceRecord[] = [];
  for (const [a, p] of [...cands].sort((x, y) => x[0] - y[0])) {
    const gate = gateOf.get(a) ?? 'ungated';
    if (p === 'lock') {
      fences.push({ addr: a, cls: 'lock', gate, branch: NaN });
      continue;
    }
    if (p === 'other') {
      fences.push({ addr: a, cls: 'other', gate, branch: NaN });
      continue;
    }
    const h = heads.get(a);
    if (h?.both) {
      fences.push({ addr: a, cls: 'pair', gate, branch: h.branch });
      continue;
    }
    // store-bypass first (io_emul_stub_setup's fence follows a BUG_ON branch); then a fence before loads
    // whose addresses do not use what the guarding branch compared (a bound read behind the fence) is a
    // value barrier; a fence before an access indexed by the checked value is a one-sided barrier.
    const after = valueAfter(view, fi, a, h ? comparedRegs(view, h.branch) : 0);
    let cls: FenceClass = 'one-sided';
    if (after === 'plain' && storesBefore(view, a)) cls = 'store-bypass';
    else if (after === 'value') cls = 'value';
    fences.push({ addr: a, cls, gate, branch: h ? h.branch : NaN });
  }
  r = { fences, pairs };
  cache.set(view, r);
  return r;
}

/** One inventory row: how many fences of a class one feature gates. */
export interface InventoryRow {
  readonly cls: FenceClass;
  readonly gate: string;
  readonly switch?: string;
  readonly count: number;
}

export function inventory(view: View): InventoryRow[] {
  const m = new Map<string, { cls: FenceClass; gate: string; count: number }>();
  for (const f of classifyFences(view).fences) {
    const k = `${f.cls}\0${f.gate}`;
    const e = m.get(k);
    if (e) e.count++;
    else m.set(k, { cls: f.cls, gate: f.gate, count: 1 });
  }
  return [...m.values()]
    .sort((a, b) => FENCE_CLASSES.indexOf(a.cls) - FENCE_CLASSES.indexOf(b.cls) || a.gate.localeCompare(b.gate))
    .map((e) => ({ ...e, switch: switchFor(view, e.gate) }));
}

/** Calls `f` for every instruction of `fn` in address order. */
export function forEachInsn(view: View, fn: Func, f: (sc: SectionCode, i: number, addr: number) => void): void {
  const loc = view.insnAt(fn.addr);
  if (!loc) return;
  const { sc } = loc;
  const end = fn.addr + fn.size;
  for (let i = loc.i; i < sc.count; i++) {
    const a = sc.section.addr + sc.off[i]!;
    if (a >= end) break;
    f(sc, i, a);
  }
}

/** Does the decoded instruction read or write non-stack memory (`lea` and NOPs only compute an address)? */
export function accessesMemory(insn: Instruction): boolean {
  return memOf(insn) === Mem.Other && insn.mnemonic !== Mnemonic.Lea && !isNopCode(insn.code);
}

/** Does instruction `i` write non-stack memory? */
export function storesMemory(view: View, sc: SectionCode, i: number): boolean {
  const insn = view.reader.at(sc, i);
  if (memOf(insn) !== Mem.Other) return false;
  const m = insn.mnemonic;
  if (
    m === Mnemonic.Cmp ||
    m === Mnemonic.Test ||
    m === Mnemonic.Bt ||
    m === Mnemonic.Push ||
    m === Mnemonic.Lea ||
    m === Mnemonic.Prefetchnta ||
    m === Mnemonic.Prefetcht0 ||
    m === Mnemonic.Prefetcht1 ||
    m === Mnemonic.Prefetcht2 ||
    m === Mnemonic.Prefetchw
  )
    return false;
  if (insn.opCount > 0 && insn.opKind(0) === OpKind.Memory) return true;
  const k = insn.opCount > 0 ? insn.opKind(0) : -1;
  return (
    k === OpKind.MemoryESDI ||
    k === OpKind.MemoryESEDI ||
    k === OpKind.MemoryESRDI ||
    k === OpKind.MemorySegDI ||
    k === OpKind.MemorySegEDI ||
    k === OpKind.MemorySegRDI
  );
}

function storesBefore(view: View, addr: number): boolean {
  const fn = functionAt(view, addr);
  if (!fn) return false;
  let st = false;
  forEachInsn(view, fn, (sc, i, a) => {
    if (!st && a < addr && storesMemory(view, sc, i)) st = true;
  });
  return st;
}

/**
 * What follows the fence at `addr` up to the return (one straight path, direct jumps followed):
 * 'value' when it reads non-stack memory and does nothing else; 'plain' when only register and stack work
 * leads to a return of a non-constant value, or to an indirect call or jump; 'other' otherwise.
 */
function valueAfter(view: View, _fi: FenceInfo, addr: number, compared: number): 'value' | 'plain' | 'other' {
  let loc = view.insnAt(addr);
  if (!loc) return 'other';
  loc = loc.i + 1 < loc.sc.count ? { sc: loc.sc, i: loc.i + 1 } : undefined;
  let loads = false;
  let constRet = false;
  const fn = functionAt(view, addr);
  for (let steps = 0; loc && steps < 32; steps++) {
    const { sc, i } = loc;
    const fc = sc.flow[i]!;
    const end = (): 'value' | 'plain' | 'other' => (loads ? 'value' : constRet ? 'other' : 'plain');
    if (fc === FlowControl.Return) return end();
    if (fc === FlowControl.IndirectCall || fc === FlowControl.IndirectBranch) return loads ? 'other' : 'plain';
    if (fc === FlowControl.UnconditionalBranch) {
      const d = destOf(view, sc, i);
      if (!d) return 'other';
      if (isReturnThunk(d.name)) return end();
      if (Number.isNaN(d.addr)) return 'other';
      const g = functionAt(view, d.addr);
      if (g && fn && g.addr === d.addr && g.addr !== fn.addr) return 'other'; // a tail call
      loc = view.insnAt(d.addr);
      continue;
    }
    if (fc !== FlowControl.Next) return 'other';
    const code = sc.code[i]!;
    if (isFenceCode(code)) return 'other';
    if (!isNopCode(code) && code !== Code.Int3) {
      const insn = view.reader.at(sc, i);
      if (accessesMemory(insn)) {
        if (storesMemory(view, sc, i)) return 'other';
        const uses =
          ((1 << Math.max(0, gprFamily(insn.memoryBase))) * Number(gprFamily(insn.memoryBase) >= 0)) |
          ((1 << Math.max(0, gprFamily(insn.memoryIndex))) * Number(gprFamily(insn.memoryIndex) >= 0));
        if (uses & compared) return 'other'; // an access indexed by the checked value
        loads = true;
      } else if (
        insn.mnemonic === Mnemonic.Mov &&
        insn.opCount === 2 &&
        insn.opKind(0) === OpKind.Register &&
        insn.opKind(1) === OpKind.Register
      ) {
        const r1 = gprFamily(insn.op1Register);
        const r0 = gprFamily(insn.op0Register);
        if (r0 >= 0 && r1 >= 0 && compared & (1 << r1)) compared |= 1 << r0;
      }
      if (
        insn.opCount > 0 &&
        insn.opKind(0) === OpKind.Register &&
        gprFamily(insn.op0Register) === 0 &&
        writesOp0(insn.mnemonic)
      ) {
        constRet =
          insn.opCount === 2 &&
          ((insn.opKind(1) !== OpKind.Register && insn.opKind(1) !== OpKind.Memory) ||
            (insn.opKind(1) === OpKind.Register &&
              insn.op1Register === insn.op0Register &&
              insn.mnemonic === Mnemonic.Xor));
      }
    }
    loc = i + 1 < sc.count ? { sc, i: i + 1 } : undefined;
  }
  return 'other';
}

/** GPR families (bit mask) of the register operands of the compare or test that sets the flags of `branch`. */
function comparedRegs(view: View, branch: number): number {
  const l = view.insnAt(branch);
  if (!l) return 0;
  for (let i = l.i - 1, n = 0; i >= 0 && n < 4; i--, n++) {
    const insn = view.reader.at(l.sc, i);
    const m = insn.mnemonic;
    if (m === Mnemonic.Cmp || m === Mnemonic.Test || m === Mnemonic.Bt) {
      let mask = 0;
      for (let k = 0; k < insn.opCount; k++) {
        if (insn.opKind(k) !== OpKind.Register) continue;
        const r = gprFamily(k === 0 ? insn.op0Register : insn.op1Register);
        if (r >= 0) mask |= 1 << r;
      }
      return mask;
    }
  }
  return 0;
}

/** Does this mnemonic write its first operand (as opposed to compare/test it)? */
export function writesOp0(m: number): boolean {
  return m !== Mnemonic.Cmp && m !== Mnemonic.Test && m !== Mnemonic.Bt && m !== Mnemonic.Push;
}
