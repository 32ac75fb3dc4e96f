/**
 * Escaped decisions (docs/check.md, "Escaped decisions", implemented as written there).
 *
 * A hardening pair (fences at the head of both successors of one conditional branch) whose decision leaves
 * the function: from each fence every path reaches the function's return with nothing that depends on the
 * condition in between (no memory access other than the stack, no call, no store), and the two arms return
 * different values. The decision is then taken again by the caller's branch on the returned value, which
 * no fence guards (seed 000: an evaluate_nospec() predicate built out of line).
 *
 * A call site is unprotected when the returned value feeds a conditional branch and an arm of that branch
 * reaches a memory access or a call before any speculation barrier (a barrier inside a direct callee
 * on that path counts: callees are walked into). Wrappers that return the result unchanged (a call followed by register work and a return, or a
 * tail call) pass the decision on to their own callers; `.isra`/`.part`/`.constprop` clones are functions
 * of their own, `.cold` pieces part of their parent. Indirect calls on an arm are reported as unknown.
 */
import { Code, FlowControl, Mnemonic, OpKind } from '../x86/insn.js';
import type { Instruction } from '../x86/insn.js';
import { accessesMemory, classifyFences, storesMemory, writesOp0 } from '../cfg/fence-classes.js';
import { fenceInfo, type FenceInfo, hasAnyFence, isBranchFence } from '../cfg/fences.js';
import { fenceAhead, isReturnThunk } from '../cfg/flow.js';
import { Func, functionAt, functions, NORETURN } from '../cfg/functions.js';
import { gprFamily, isNopCode, Mem, memOf } from '../cfg/insn.js';
import { destOf, trailingReloc } from '../cfg/targets.js';
import type { View } from '../cfg/view.js';
import type { SectionCode } from '../x86/code.js';
import type { Check } from './check.js';
import type { Finding, Related } from './finding.js';
import { finding, related } from './finding.js';

type Loc = { sc: SectionCode; i: number };

const addrOf = (l: Loc): number => l.sc.section.addr + l.sc.off[l.i]!;
const next = (l: Loc): Loc | undefined => (l.i + 1 < l.sc.count ? { sc: l.sc, i: l.i + 1 } : undefined);

/** A function whose returned value carries an escaped decision: the predicate itself or a wrapper of it. */
export interface EscapedPredicate {
  readonly fn: Func;
  /** Branches of the escaping pairs in this function (a wrapper has none). */
  readonly branches: number[];
  /** The predicate this one wraps (itself for a predicate). */
  readonly root: number;
  /** Call chain from the root, e.g. ['p', 'wrap_p']. */
  readonly via: string[];
}

/** An unprotected call site. */
export interface EscapedUse {
  readonly root: number;
  readonly callee: Func;
  readonly caller: Func;
  readonly call: number;
  readonly branch: number;
  /** First unprotected memory access or call on an arm of the branch. */
  readonly access: number;
  readonly what: string;
  /** The access is an indirect call: whether its callee fences is unknown. */
  readonly unknown: boolean;
  /** Entry through which guest or hypercall input reaches the caller, if any. */
  readonly entry?: string;
  /** Privileged-only or init code: the reason for info severity. */
  readonly why?: string;
}

export interface EscapeAnalysis {
  readonly predicates: Map<number, EscapedPredicate>;
  readonly uses: EscapedUse[];
  /** Predicates (or wrappers) with no direct call site: reached only through pointers or altcalls. */
  readonly indirectOnly: number[];
  /** Pairs excluded and why, for tests and docs: branch -> reason. */
  readonly excluded: Map<number, string>;
  /** Predicates and wrappers whose address is stored in data: callers through that pointer are unknown. */
  readonly addressTaken: Map<number, number>;
}

/** Entries through which guest input arrives (Xen): hypercall dispatchers and exit/trap handlers. */
const GUEST_ENTRIES = new Set([
  'pv_hypercall',
  'hvm_hypercall',
  'vmx_vmexit_handler',
  'svm_vmexit_handler',
  'pv_emulate_privileged_op',
  'do_page_fault',
  'do_general_protection',
  'do_invalid_op',
  'do_trap',
  'do_int3',
  'do_debug',
  'compat_hypercall',
]);
/** Hypercalls only the control domain (or its toolstack) may make. */
const PRIVILEGED = new Set([
  'do_domctl',
  'do_sysctl',
  'do_platform_op',
  'compat_platform_op',
  'do_kexec_op',
  'compat_kexec_op',
]);

const cache = new WeakMap<View, EscapeAnalysis>();

export function analyseEscapes(view: View): EscapeAnalysis {
  let r = cache.get(view);
  if (r) return r;
  const fi = fenceInfo(view);
  const excluded = new Map<number, string>();
  const predicates = new Map<number, EscapedPredicate>();
  const pairs = hasAnyFence(view, fi) ? classifyFences(view).pairs : [];
  for (const p of pairs) {
    const piece = functionAt(view, p.branch);
    if (!piece) continue;
    const fn = ownerOf(view, piece); // a pair in foo.cold belongs to foo, which the callers call
    const a = armToReturn(view, p.fall);
    const b = armToReturn(view, p.taken);
    if (!a.ok || !b.ok) {
      excluded.set(p.branch, `an arm does work after its fence (${a.ok ? b.why : a.why})`);
      continue;
    }
    if (
      a.values.size === 1 &&
      b.values.size === 1 &&
      [...a.values][0] === [...b.values][0] &&
      [...a.values][0] !== '?'
    ) {
      excluded.set(p.branch, 'both arms end in the same value');
      continue;
    }
    const e = predicates.get(fn.addr);
    if (e) e.branches.push(p.branch);
    else predicates.set(fn.addr, { fn, branches: [p.branch], root: fn.addr, via: [fn.name] });
  }
  const uses: EscapedUse[] = [];
  const indirectOnly: number[] = [];
  const addressTaken = new Map<number, number>();
  if (predicates.size === 0) {
    r = { predicates, uses, indirectOnly, excluded, addressTaken };
    cache.set(view, r);
    return r;
  }
  const g = callGraph(view);
  const work = [...predicates.values()];
  while (work.length) {
    const p = work.shift()!;
    const sites = g.sitesOf.get(p.fn.addr) ?? [];
    if (sites.length === 0) indirectOnly.push(p.fn.addr);
    for (const s of sites) {
      let use: ResultUse;
      if (s.tail) use = { kind: 'return' };
      else use = resultUse(view, s.loc);
      if (use.kind === 'return') {
        if (!predicates.has(s.caller.addr)) {
          const w: EscapedPredicate = { fn: s.caller, branches: [], root: p.root, via: [...p.via, s.caller.name] };
          predicates.set(s.caller.addr, w);
          work.push(w);
        }
        continue;
      }
      if (use.kind !== 'branch') continue;
      const j = use.jcc;
      const ja = addrOf(j);
      const d = destOf(view, j.sc, j.i);
      if (!d || Number.isNaN(d.addr)) continue;
      for (const start of [ja + j.sc.len[j.i]!, d.addr]) {
        if (!Number.isNaN(fenceAhead(view, fi, start))) continue;
        const acc = firstAccess(view, fi, start);
        if (!acc) continue;
        const reach = reachFromGuest(view, g, s.caller);
        uses.push({
          root: p.root,
          callee: p.fn,
          caller: s.caller,
          call: addrOf(s.loc),
          branch: ja,
          access: acc.addr,
          what: acc.what,
          unknown: acc.unknown,
          entry: reach.entry,
          why: reach.why,
        });
        break; // the first arm that proceeds unprotected
      }
    }
  }
  for (const [fnAddr, at] of pointersTo(view, [...predicates.keys()])) addressTaken.set(fnAddr, at);
  r = { predicates, uses, indirectOnly, excluded, addressTaken };
  cache.set(view, r);
  return r;
}

/**
 * Where the address of each of `fns` is stored in data (a function pointer: an ops table, an altcall
 * target): the first such place by function. A relocatable object's data relocations name it; a linked
 * image holds it as an aligned 8-byte word in an allocated, non-executable section.
 */
function pointersTo(view: View, fns: number[]): Map<number, number> {
  const out = new Map<number, number>();
  const img = view.img;
  const want = new Set(fns);
  if (img.kind === 'rel') {
    for (const sec of img.sections) {
      if (!sec.alloc || sec.exec || sec.name.startsWith('.eh_frame')) continue;
      for (const rl of img.relocs(sec).all()) {
        if (rl.type !== 1 /* R_X86_64_64: a stored pointer */) continue;
        const t = img.relocTarget(rl);
        if (want.has(t) && !out.has(t)) out.set(t, sec.addr + rl.offset);
      }
    }
    return out;
  }
  const key = new Map<string, number>();
  for (const f of fns) {
    const abs = img.base + BigInt(f);
    key.set(`${Number(abs >> 32n)}:${Number(abs & 0xffffffffn)}`, f);
  }
  for (const sec of img.sections) {
    if (!sec.alloc || sec.exec || sec.type === 8 /* NOBITS */ || sec.name.startsWith('.eh_frame')) continue;
    const b = img.sectionBytes(sec);
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const start = (8 - (sec.addr % 8)) % 8;
    for (let o = start; o + 8 <= b.length; o += 8) {
      const hi = dv.getUint32(o + 4, true);
      if (hi === 0) continue;
      const f = key.get(`${hi}:${dv.getUint32(o, true)}`);
      if (f !== undefined && !out.has(f)) out.set(f, sec.addr + o);
    }
  }
  return out;
}

/** A direct jump from `from` to the start of another function (not its own .cold piece): a tail call. */
function isTailCall(view: View, from: Func | undefined, to: number): boolean {
  const g = functionAt(view, to);
  if (!g || g.addr !== to || !from || g.addr === from.addr) return false;
  if (g.piece === 'cold' && g.parent === (from.parent ?? from.name)) return false;
  if (from.piece === 'cold' && from.parent === g.name) return false;
  return true;
}

/**
 * Every path from the fence at `fence` to the function's return: only register work, stack accesses,
 * conditional branches and direct jumps within the function. The value %rax holds at each return, from
 * a symbolic state of the general registers: a constant ('c:N'), a register's value at the fence ('rK',
 * followed through register copies), or computed ('?').
 */
function armToReturn(view: View, fence: number): { ok: boolean; values: Set<string>; why: string } {
  const values = new Set<string>();
  const l0 = view.insnAt(fence);
  if (!l0) return { ok: false, values, why: 'undecodable' };
  const init = Array.from({ length: 16 }, (_, k) => `r${k}`);
  const work: Array<{ loc: Loc | undefined; regs: string[] }> = [{ loc: next(l0), regs: init }];
  const seen = new Set<string>();
  let budget = 96;
  while (work.length) {
    const item = work.pop()!;
    let loc = item.loc;
    const regs = item.regs;
    while (loc) {
      if (--budget < 0) return { ok: false, values, why: 'too long' };
      const a = addrOf(loc);
      const key = `${a}:${regs.join(',')}`;
      if (seen.has(key)) break;
      seen.add(key);
      const { sc, i } = loc;
      const fc = sc.flow[i]!;
      if (fc === FlowControl.Return) {
        values.add(regs[0]!);
        break;
      }
      if (fc === FlowControl.UnconditionalBranch || fc === FlowControl.ConditionalBranch) {
        const d = destOf(view, sc, i);
        if (!d) return { ok: false, values, why: 'indirect jump' };
        if (fc === FlowControl.UnconditionalBranch && isReturnThunk(d.name)) {
          values.add(regs[0]!);
          break;
        }
        if (Number.isNaN(d.addr)) return { ok: false, values, why: `jump to ${d.name}` };
        if (isTailCall(view, functionAt(view, a), d.addr)) return { ok: false, values, why: `tail call to ${d.name}` };
        if (fc === FlowControl.UnconditionalBranch) {
          loc = view.insnAt(d.addr);
          continue;
        }
        work.push({ loc: view.insnAt(d.addr), regs: [...regs] });
        loc = next(loc);
        continue;
      }
      if (fc !== FlowControl.Next) {
        if (sc.code[i] === Code.Ud2 || sc.code[i] === Code.Int3) break;
        return {
          ok: false,
          values,
          why: `${fc === FlowControl.Call ? 'call' : 'control transfer'} at ${view.img.where(a)}`,
        };
      }
      const code = sc.code[i]!;
      if (!isNopCode(code)) {
        const insn = view.reader.at(sc, i);
        if (accessesMemory(insn)) return { ok: false, values, why: `memory access at ${view.img.where(a)}` };
        if (insn.opCount > 0 && insn.opKind(0) === OpKind.Register && writesOp0(insn.mnemonic)) {
          const r = gprFamily(insn.op0Register);
          if (r >= 0) regs[r] = valueAfter(insn, regs);
        }
      }
      loc = next(loc);
    }
  }
  return { ok: values.size > 0, values, why: values.size ? '' : 'no return' };
}

/** The symbolic value an instruction leaves in its destination register. */
function valueAfter(insn: Instruction, regs: readonly string[]): string {
  const m = insn.mnemonic;
  const imm = insn.opCount === 2 && insn.opKind(1) >= OpKind.Immediate8 && insn.opKind(1) <= OpKind.Immediate32to64;
  if (
    (m === Mnemonic.Xor || m === Mnemonic.Sub) &&
    insn.opCount === 2 &&
    insn.opKind(1) === OpKind.Register &&
    insn.op1Register === insn.op0Register
  )
    return 'c:0';
  if (m === Mnemonic.Mov && imm) return `c:${BigInt.asIntN(32, insn.immediate(1))}`;
  if (m === Mnemonic.Or && imm && BigInt.asIntN(32, insn.immediate(1)) === -1n) return 'c:-1';
  if (m === Mnemonic.Mov && insn.opCount === 2 && insn.opKind(1) === OpKind.Register) {
    const src = gprFamily(insn.op1Register);
    if (src >= 0 && insn.op0Register !== insn.op1Register) return regs[src]!;
  }
  return '?';
}

interface CallSite {
  readonly loc: Loc;
  readonly caller: Func;
  readonly tail: boolean;
}

interface CallGraph {
  readonly sitesOf: Map<number, CallSite[]>;
  readonly callersOf: Map<number, Set<number>>;
  readonly byAddr: Map<number, Func>;
}

const graphCache = new WeakMap<View, CallGraph>();

/** Direct calls and tail calls of the whole view, by callee entry. */
function callGraph(view: View): CallGraph {
  let g = graphCache.get(view);
  if (g) return g;
  const sitesOf = new Map<number, CallSite[]>();
  const callersOf = new Map<number, Set<number>>();
  const byAddr = new Map<number, Func>();
  const fs = functions(view);
  for (const f of fs) byAddr.set(f.addr, f);
  const rel = view.img.kind === 'rel';
  for (const sc of view.code()) {
    if (sc.section.name === '.altinstr_replacement' || sc.section.name === '.altinstr_aux') continue;
    let k = 0;
    for (let i = 0; i < sc.count; i++) {
      const fc = sc.flow[i]!;
      if (fc !== FlowControl.Call && fc !== FlowControl.UnconditionalBranch) continue;
      let t = sc.target[i]!;
      if (rel && trailingReloc(view, sc, i)) t = destOf(view, sc, i)?.addr ?? NaN;
      if (Number.isNaN(t)) continue;
      const callee = byAddr.get(t);
      if (!callee) continue;
      const a = sc.section.addr + sc.off[i]!;
      while (k + 1 < fs.length && fs[k + 1]!.addr <= a) k++;
      let caller: Func | undefined = fs[k];
      if (!caller || a < caller.addr || a >= caller.addr + caller.size) caller = functionAt(view, a);
      if (!caller) continue;
      if (fc === FlowControl.UnconditionalBranch && !isTailCall(view, caller, t)) continue;
      let l = sitesOf.get(t);
      if (!l) sitesOf.set(t, (l = []));
      l.push({ loc: { sc, i }, caller: caller!, tail: fc === FlowControl.UnconditionalBranch });
      const owner = ownerOf(view, caller);
      let c = callersOf.get(callee.addr);
      if (!c) callersOf.set(callee.addr, (c = new Set()));
      c.add(owner.addr);
    }
  }
  g = { sitesOf, callersOf, byAddr };
  graphCache.set(view, g);
  return g;
}

const byNameCache = new WeakMap<View, Map<string, Func>>();

/** A `.cold` piece's calls belong to its parent. */
function ownerOf(view: View, f: Func): Func {
  if (f.piece !== 'cold' || !f.parent) return f;
  let m = byNameCache.get(view);
  if (!m) {
    m = new Map();
    for (const g of functions(view)) if (!m.has(g.name)) m.set(g.name, g);
    byNameCache.set(view, m);
  }
  return m.get(f.parent) ?? f;
}

/**
 * Reverse walk over direct callers (at most 8 levels): the first guest entry found, or why none was
 * (privileged-only hypercalls and init code are not walked through).
 */
function reachFromGuest(view: View, g: CallGraph, from: Func): { entry?: string; why?: string } {
  const seen = new Set<number>([from.addr]);
  let level = [ownerOf(view, from)];
  let privileged: string | undefined;
  let init = false;
  for (let depth = 0; depth <= 8 && level.length; depth++) {
    const nextLevel: Func[] = [];
    for (const f of level) {
      const base = f.parent && f.piece !== 'cold' ? f.parent : f.name;
      if (GUEST_ENTRIES.has(f.name) || GUEST_ENTRIES.has(base)) return { entry: f.name };
      if (PRIVILEGED.has(f.name) || PRIVILEGED.has(base)) {
        privileged ??= f.name;
        continue;
      }
      const sec = view.img.sections.find((s) => f.addr >= s.addr && f.addr < s.addr + s.size);
      if (sec?.name.startsWith('.init')) {
        init = true;
        continue;
      }
      for (const c of g.callersOf.get(f.addr) ?? []) {
        if (seen.has(c)) continue;
        seen.add(c);
        const cf = g.byAddr.get(c);
        if (cf) nextLevel.push(cf);
      }
    }
    level = nextLevel;
  }
  if (privileged) return { why: `reached only through the privileged ${privileged}()` };
  if (init) return { why: 'reached only from init code' };
  return { why: 'no hypercall or guest entry reaches the caller through direct calls' };
}

type ResultUse = { kind: 'branch'; jcc: Loc } | { kind: 'return' } | { kind: 'value' };

/**
 * How the caller uses the value a call returns: a conditional branch on it (`test %al,%al; je`, copies of
 * the result followed), returned unchanged (a wrapper), or otherwise used as a value.
 */
function resultUse(view: View, call: Loc): ResultUse {
  let live = 1; // GPR families holding the result (rax)
  let flags = false;
  let raxIntact = true;
  let loc = next(call);
  const from = functionAt(view, addrOf(call));
  for (let steps = 0; loc && steps < 24 && live; steps++) {
    const { sc, i } = loc;
    const fc = sc.flow[i]!;
    if (fc === FlowControl.ConditionalBranch) return flags ? { kind: 'branch', jcc: loc } : { kind: 'value' };
    if (fc === FlowControl.Return) return raxIntact && live & 1 ? { kind: 'return' } : { kind: 'value' };
    if (fc === FlowControl.UnconditionalBranch) {
      const d = destOf(view, sc, i);
      if (!d) return { kind: 'value' };
      if (isReturnThunk(d.name)) return raxIntact && live & 1 ? { kind: 'return' } : { kind: 'value' };
      if (Number.isNaN(d.addr) || isTailCall(view, from, d.addr)) return { kind: 'value' };
      loc = view.insnAt(d.addr);
      continue;
    }
    if (fc !== FlowControl.Next) return { kind: 'value' };
    if (isNopCode(sc.code[i]!)) {
      loc = next(loc);
      continue;
    }
    const insn = view.reader.at(sc, i);
    const m = insn.mnemonic;
    const r0 = insn.opCount > 0 && insn.opKind(0) === OpKind.Register ? gprFamily(insn.op0Register) : -1;
    const r1 = insn.opCount > 1 && insn.opKind(1) === OpKind.Register ? gprFamily(insn.op1Register) : -1;
    const reads = (r: number): boolean => r >= 0 && (live & (1 << r)) !== 0;
    if (m === Mnemonic.Test || m === Mnemonic.Cmp || m === Mnemonic.Bt) {
      flags = reads(r0) || reads(r1);
    } else if (m === Mnemonic.Mov || m === Mnemonic.Movzx || m === Mnemonic.Movsx || m === Mnemonic.Movsxd) {
      if (r0 >= 0) live = reads(r1) ? live | (1 << r0) : live & ~(1 << r0);
      if (r0 === 0 && !reads(r1)) raxIntact = false;
      if (r0 === 0 && m !== Mnemonic.Mov) raxIntact = false;
      if (r0 < 0 && memOf(insn) === Mem.Other) return { kind: 'value' }; // stored somewhere
    } else if (m === Mnemonic.Push || m === Mnemonic.Pop || m === Mnemonic.Lea) {
      if (m !== Mnemonic.Push && r0 >= 0) {
        live &= ~(1 << r0);
        if (r0 === 0) raxIntact = false;
      }
    } else if ((m === Mnemonic.And || m === Mnemonic.Or) && r0 >= 0 && r0 === r1 && reads(r0)) {
      flags = true;
    } else if (
      (m === Mnemonic.Xor || m === Mnemonic.And) &&
      r0 >= 0 &&
      reads(r0) &&
      insn.opCount > 1 &&
      insn.opKind(1) !== OpKind.Register
    ) {
      flags = true;
      if (r0 === 0) raxIntact = false;
    } else if (
      memOf(insn) === Mem.Other ||
      ((m === Mnemonic.Add || m === Mnemonic.Sub) &&
        insn.opKind(0) === OpKind.Register &&
        gprFamily(insn.op0Register) === 4)
    ) {
      // stack pointer adjustments and unrelated loads keep the result where it is
      if (r0 >= 0 && writesOp0(m)) {
        live &= ~(1 << r0);
        if (r0 === 0) raxIntact = false;
      }
      flags = false;
      if (memOf(insn) === Mem.Other && (reads(r0) || reads(r1))) return { kind: 'value' };
    } else {
      flags = false;
      if (r0 >= 0 && writesOp0(m)) {
        live &= ~(1 << r0);
        if (r0 === 0) raxIntact = false;
      }
    }
    loc = next(loc);
  }
  return { kind: 'value' };
}

type Access = { addr: number; what: string; unknown: boolean };

/**
 * From the head of an arm, the first non-stack memory access or call reached before a speculation
 * barrier, a return or a no-return call (conditional branches: both sides, at most 64 instructions). A
 * direct call is walked into (two levels): a barrier inside the callee before any access protects the
 * path, an access there is the first unprotected one, a callee that returns without either lets the walk
 * go on after the call. An indirect call is unknown.
 */
export function firstAccess(view: View, fi: FenceInfo, start: number): Access | undefined {
  return walkArm(view, fi, start, 2).access;
}

function walkArm(view: View, fi: FenceInfo, start: number, depth: number): { access?: Access; returned: boolean } {
  const seen = new Set<number>();
  const work: number[] = [start];
  let budget = 64;
  let returned = false;
  while (work.length) {
    let loc = view.insnAt(work.shift()!);
    while (loc) {
      if (budget-- <= 0) return { returned: true };
      const a = addrOf(loc);
      if (seen.has(a)) break;
      seen.add(a);
      const { sc, i } = loc;
      if (isBranchFence(view, fi, sc, i)) break;
      const fc = sc.flow[i]!;
      if (fc === FlowControl.Return) {
        returned = true;
        break;
      }
      if (fc === FlowControl.Call) {
        const d = destOf(view, sc, i);
        if (!d) return { access: { addr: a, what: 'call through a pointer', unknown: true }, returned };
        const base = d.name.replace(/\+0x[0-9a-f]+$/, '');
        if (NORETURN.has(base)) break;
        if (!Number.isNaN(d.addr) && !Number.isNaN(fenceAhead(view, fi, d.addr))) break;
        if (Number.isNaN(d.addr) || depth <= 0)
          return { access: { addr: a, what: `call ${d.name}`, unknown: false }, returned };
        const inner = walkArm(view, fi, d.addr, depth - 1);
        if (inner.access)
          return {
            access: { ...inner.access, what: `${inner.access.what} in ${d.name}() (called at ${view.img.where(a)})` },
            returned,
          };
        if (!inner.returned) break; // every path of the callee reaches a barrier
        loc = next(loc);
        continue;
      }
      if (fc === FlowControl.IndirectCall)
        return {
          access: { addr: a, what: 'indirect call (callee unknown: a barrier there is not visible)', unknown: true },
          returned,
        };
      if (fc === FlowControl.UnconditionalBranch || fc === FlowControl.ConditionalBranch) {
        const d = destOf(view, sc, i);
        if (!d) return { access: { addr: a, what: 'indirect jump (destination unknown)', unknown: true }, returned };
        if (fc === FlowControl.UnconditionalBranch) {
          if (isReturnThunk(d.name)) {
            returned = true;
            break;
          }
          if (Number.isNaN(d.addr))
            return { access: { addr: a, what: `tail call ${d.name}`, unknown: false }, returned };
          if (isTailCall(view, functionAt(view, a), d.addr)) {
            if (!Number.isNaN(fenceAhead(view, fi, d.addr))) break;
            if (depth <= 0) return { access: { addr: a, what: `tail call ${d.name}`, unknown: false }, returned };
            const inner = walkArm(view, fi, d.addr, depth - 1);
            if (inner.access)
              return {
                access: {
                  ...inner.access,
                  what: `${inner.access.what} in ${d.name}() (tail call at ${view.img.where(a)})`,
                },
                returned,
              };
            if (inner.returned) returned = true;
            break;
          }
          loc = view.insnAt(d.addr);
          continue;
        }
        if (!Number.isNaN(d.addr)) work.push(d.addr);
        loc = next(loc);
        continue;
      }
      if (fc === FlowControl.IndirectBranch)
        return { access: { addr: a, what: 'indirect jump (destination unknown)', unknown: true }, returned };
      if (fc !== FlowControl.Next) break; // ud2/int3: BUG()
      if (!isNopCode(sc.code[i]!)) {
        const insn = view.reader.at(sc, i);
        if (accessesMemory(insn))
          return { access: { addr: a, what: storesMemory(view, sc, i) ? 'store' : 'load', unknown: false }, returned };
      }
      loc = next(loc);
    }
  }
  return { returned };
}

export const nospecOutlined: Check = {
  id: 'nospec-outlined',
  describe:
    'escaped decision: a hardened (evaluate_nospec) decision returned out of its function and branched on again by callers without a barrier',
  severity: 'warning',
  byDefault: true,
  run(view: View): Finding[] {
    const an = analyseEscapes(view);
    const out: Finding[] = [];
    const byRoot = new Map<number, EscapedUse[]>();
    for (const u of an.uses) {
      let l = byRoot.get(u.root);
      if (!l) byRoot.set(u.root, (l = []));
      l.push(u);
    }
    for (const [root, uses] of byRoot) {
      const p = an.predicates.get(root)!;
      const guest = uses.filter((u) => u.entry !== undefined);
      const sev = guest.length > 0 ? 'warning' : 'info';
      const rel: Related[] = [];
      for (const u of uses) {
        const via = u.callee.addr === root ? '' : ` (through ${u.callee.name}())`;
        rel.push(related(view, u.call, `${u.caller.name} calls ${u.callee.name}()${via}`));
        rel.push(related(view, u.branch, `branch on the result, no barrier on the arm that goes on`));
        rel.push(
          related(
            view,
            u.access,
            `first unprotected ${u.what}${u.entry ? `; guest input reaches ${u.caller.name} from ${u.entry}` : `; ${u.why}`}`,
          ),
        );
      }
      for (const [a, at] of an.addressTaken) {
        const q = an.predicates.get(a);
        if (q && q.root === root)
          rel.push(
            related(view, at, `address of ${q.fn.name}() stored here: callers through this pointer are unknown`),
          );
      }
      const callers = [...new Set(uses.map((u) => u.caller.name))];
      out.push(
        finding(
          view,
          'nospec-outlined',
          sev,
          p.branches[0]!,
          `decision hardened in ${p.fn.name}() escapes: both fenced arms return different values with nothing after the fences, and ${uses.length} call site${uses.length === 1 ? '' : 's'} branch on it unfenced (${callers.slice(0, 6).join(', ')}${callers.length > 6 ? ', …' : ''})${sev === 'info' ? ': none reached from guest input (' + uses[0]!.why + ')' : `; guest input reaches ${guest.length}`}${uses.some((u) => u.unknown) ? '; some arms reach an indirect call (unknown)' : ''}`,
          rel,
        ),
      );
    }
    for (const a of an.indirectOnly) {
      const p = an.predicates.get(a)!;
      if (p.root !== a || byRoot.has(a)) continue;
      const at = an.addressTaken.get(a);
      out.push(
        finding(
          view,
          'nospec-outlined',
          'info',
          p.branches[0] ?? a,
          `decision hardened in ${p.fn.name}() escapes its fences, but no direct call site was found: callers through a function pointer or altcall are unknown`,
          at === undefined ? [] : [related(view, at, `address of ${p.fn.name}() stored here`)],
        ),
      );
    }
    return out;
  },
};
