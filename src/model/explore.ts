/**
 * Breadth-first explicit-state exploration of a {@link Model}, with state hashing, so the first
 * violation found comes with a shortest interleaving.
 *
 * This file holds the semantics (the {@link Machine}: successors of a state, canonical states) and the
 * search loop ({@link explore}). The bytes of a state are laid out and read through state.ts (which also
 * sorts CPU blocks for symmetry reduction); memory versions and fetch outcomes are memoised in fetch.ts;
 * visited states are kept in store.ts; a counterexample is rebuilt by replay.ts.
 *
 * Semantics (the README section on textpoke model describes them for users):
 * - Memory is the site's bytes. Every change creates a new memory version; the versions since the oldest
 *   CPU's last serialization are kept (the history).
 * - An executing CPU fetches one instruction in one step. The bytes come one fetch unit (aligned,
 *   default 8 bytes) at a time, and each unit may come from ANY version since that CPU last serialized:
 *   units read at different moments (tearing) and stale units (no serialization since the write) are
 *   both covered. The patching CPU always sees its own writes (x86 snoops self-modifying code).
 * - sync (IPI) waits until no other CPU is in a handler (handlers run with IF=0), then serializes all.
 *   IRET (every handler return) serializes its CPU and unblocks NMIs, as on x86.
 * - NMI and #MC arrive between any two steps of any CPU, the patching CPU included, within the
 *   scenario's budgets; NMIs are blocked in an NMI handler (and on a patcher running in NMI context)
 *   until the next IRET; #MC is blocked only inside the #MC handler.
 */
import type { RegionDecoder } from './decode.js';
import { hex } from '../x86/insn.js';
import type { Cond, Model, Property } from './types.js';
import { cpuName } from './names.js';
import { Fetcher, MemoryVersions } from './fetch.js';
import type { Outcome } from './fetch.js';
import { CPU, F_IN_MC, F_NMI_BLOCKED, K_BASE, K_INT3, K_MC, K_NMI, K_PROTO, StateLayout } from './state.js';
import { StateStore } from './store.js';
import { rebuild } from './replay.js';

export { K_BASE, K_INT3, K_MC, K_NMI, K_PROTO } from './state.js';
export type { Outcome } from './fetch.js';

export interface FetchRead {
  from: number;
  to: number;
  version: number;
  stale: boolean;
  bytes: string;
}

export interface TraceStep {
  cpu: number;
  ctx: 'protocol' | 'base' | 'nmi' | 'mce' | 'int3';
  kind: 'write' | 'sync' | 'set' | 'wait' | 'nmi' | 'mce' | 'exec' | 'handler';
  text: string;
  offset?: number;
  reads?: FetchRead[];
  bytes?: string;
  asm?: string;
  as?: 'old' | 'new' | 'int3' | 'torn';
  /** The site's bytes after the step. */
  memory: string;
  /** Memory version after the step. */
  version: number;
}

export interface Violation {
  property: Property;
  message: string;
}

export interface Result {
  verdict: 'safe' | 'unsafe' | 'incomplete';
  property?: Property;
  message?: string;
  states: number;
  transitions: number;
  seconds: number;
  trace: TraceStep[];
  /** Memory versions by number (as hex), for reading traces. */
  versions: string[];
}

export interface ExploreOptions {
  /** Stop after this many states (verdict "incomplete"). */
  maxStates?: number;
  /** Merge states that differ only by a permutation of identically configured CPUs. Default true. */
  symmetry?: boolean;
}

type Emit = (next: Uint8Array | null, label: TraceStep | null, violation: Violation | null) => void;

const CTX = ['', 'base', 'nmi', 'mce', 'int3', 'protocol'] as const;

/** The model's transition system. */
export class Machine {
  readonly ncpu: number;
  /** Where each field of a state lives. */
  readonly st: StateLayout;
  /** The site's memory versions by id (states hold ids). */
  readonly memory = new MemoryVersions();
  /** What a CPU can fetch, memoised. */
  readonly fetcher: Fetcher;
  /** Groups of executing CPUs with identical configuration (for symmetry reduction). */
  private readonly symGroups: number[][] = [];
  symmetry = true;

  constructor(readonly m: Model) {
    this.fetcher = new Fetcher(m, this.memory);
    this.ncpu = m.cpus.length;
    this.st = new StateLayout(m);
    const seen = new Map<string, number[]>();
    for (let c = 1; c < this.ncpu; c++) {
      const k = JSON.stringify(m.cpus[c]);
      const g = seen.get(k);
      if (g) g.push(c);
      else seen.set(k, [c]);
    }
    for (const g of seen.values()) if (g.length > 1) this.symGroups.push(g);
  }

  free(): void {
    this.fetcher.free();
  }

  /** The region's decoder. */
  get decoder(): RegionDecoder {
    return this.fetcher.decoder;
  }

  /** Memory versions (the site's bytes) by id. */
  get memVecs(): Uint8Array[] {
    return this.memory.vecs;
  }

  /** Classifies what a CPU at pc executes when the site holds `bytes` (from pc to the end of the site). */
  classifyWindow(pc: number, bytes: number[]): Outcome {
    return this.fetcher.classifyWindow(pc, bytes);
  }

  /** A copy of w with the store `bytes` applied (w itself when the store changes nothing). */
  private write(w: Uint8Array, bytes: Array<[number, number]>): Uint8Array {
    const curId = this.cur(w);
    const id = this.memory.write(curId, bytes);
    if (id === curId) return w;
    return this.st.appendVersion(w, id);
  }

  initial(): Uint8Array {
    const m = this.m;
    const st = this.st;
    const s = new Uint8Array(st.size(1));
    st.setPatcherPc(s, 0);
    for (let c = 0; c < this.ncpu; c++) {
      const cfg = m.cpus[c]!;
      st.setCpu(s, c, CPU.nmi, cfg.nmi);
      st.setCpu(s, c, CPU.mce, cfg.mce);
      st.setCpu(s, c, CPU.flags, c === 0 && m.inNmi ? F_NMI_BLOCKED : 0);
      st.setCpu(s, c, CPU.passes, cfg.passes);
      st.setCpu(s, c, CPU.depth, 1);
      st.setFrame(s, st.frame(c, 0), c === 0 ? K_PROTO : K_BASE, c === 0 ? 0 : cfg.passes > 0 ? 0 : m.len, 0);
    }
    st.initHistory(s, this.memory.id(Uint8Array.from(m.old)));
    if (m.ops.length === 0) this.protocolEnd(s);
    return this.finish(s);
  }

  /** The site's current memory version in s. */
  cur(s: Uint8Array): number {
    return this.st.current(s);
  }
  patcherDone(s: Uint8Array): boolean {
    return this.st.patcherPc(s) >= this.m.ops.length;
  }

  private protocolEnd(s: Uint8Array): void {
    // The patcher's iret when it patched in NMI context.
    if (this.m.inNmi) this.st.setCpu(s, 0, CPU.flags, this.st.cpu(s, 0, CPU.flags) & ~F_NMI_BLOCKED);
  }

  /** A CPU other than the patcher that may still fetch from the site (so its `since` matters). */
  private mayFetch(w: Uint8Array, c: number): boolean {
    const st = this.st;
    return (
      st.depth(w, c) > 1 ||
      st.cpu(w, c, CPU.passes) > 0 ||
      (this.m.handlersRunSite && (st.cpu(w, c, CPU.nmi) > 0 || st.cpu(w, c, CPU.mce) > 0))
    );
  }

  /** Normalises a working state in place: trims the history, canonical `since` for idle CPUs, CPU symmetry. */
  finish(w: Uint8Array): Uint8Array {
    const st = this.st;
    let hl = st.histLen(w);
    let min = hl - 1;
    for (let c = 1; c < this.ncpu; c++) {
      if (this.mayFetch(w, c)) {
        if (st.cpu(w, c, CPU.since) < min) min = st.cpu(w, c, CPU.since);
      } else {
        st.setCpu(w, c, CPU.since, hl - 1);
      }
    }
    if (min > 0) {
      st.dropOldest(w, min);
      hl -= min;
      for (let c = 1; c < this.ncpu; c++) st.setCpu(w, c, CPU.since, st.cpu(w, c, CPU.since) - min);
    }
    const size = st.size(hl);
    const out = w.length === size ? w : w.subarray(0, size);
    if (this.symmetry) for (const g of this.symGroups) st.sortCpus(out, g);
    return out;
  }

  /** Terminal: the protocol is done and every CPU finished its passes and handlers. */
  terminal(s: Uint8Array): boolean {
    if (!this.patcherDone(s)) return false;
    for (let c = 0; c < this.ncpu; c++) {
      if (this.st.depth(s, c) !== 1) return false;
      if (c > 0 && this.st.cpu(s, c, CPU.passes) !== 0) return false;
    }
    return true;
  }

  private cond(s: Uint8Array, k: Cond): boolean {
    switch (k.kind) {
      case 'memNe':
        return this.memVecs[this.cur(s)]![k.off] !== k.val;
      case 'varEq':
        return this.st.variable(s, k.v) === k.val;
      case 'patcherDone':
        return this.patcherDone(s);
    }
  }

  /** A CPU spins in a handler for a patch that waits on it (itself, or through a pending sync). */
  deadlocked(s: Uint8Array): string | null {
    const m = this.m;
    const st = this.st;
    const op = this.patcherDone(s) ? undefined : m.ops[st.patcherPc(s)];
    for (let c = 0; c < this.ncpu; c++) {
      const f = st.top(s, c);
      if (st.kind(s, f) !== K_INT3) continue;
      const h = m.int3[st.rule(s, f)]!.program[st.step(s, f)]!;
      if (h.kind !== 'wait' || this.cond(s, h.cond)) continue;
      if (c === 0 && !this.patcherDone(s))
        return `the patching CPU spins in its own int3 handler waiting for the patch it is in the middle of`;
      if (op?.kind === 'sync')
        return `cpu${c} spins in its int3 handler (interrupts off) waiting for the patch, while the patcher waits for cpu${c} to take its sync IPI`;
      if (op?.kind === 'wait' && !this.cond(s, op.cond))
        return `cpu${c} spins in its int3 handler while the patcher waits too`;
    }
    return null;
  }

  private label(
    w: Uint8Array,
    c: number,
    kind: TraceStep['kind'],
    text: string,
    extra?: Partial<TraceStep>,
  ): TraceStep {
    const k = this.st.kind(w, this.st.top(w, c));
    return { cpu: c, ctx: CTX[k] as TraceStep['ctx'], kind, text, ...extra, memory: '', version: 0 };
  }

  /** iret from the top frame of CPU c: serializes it (unless it is the patcher) and unblocks NMIs. */
  private iret(w: Uint8Array, c: number): void {
    const st = this.st;
    let flags = st.cpu(w, c, CPU.flags);
    if (st.kind(w, st.top(w, c)) === K_MC) flags &= ~F_IN_MC;
    st.setCpu(w, c, CPU.flags, flags & ~F_NMI_BLOCKED);
    st.pop(w, c);
    if (c > 0) st.setCpu(w, c, CPU.since, st.histLen(w) - 1);
  }

  /** The top frame (a region-running frame) continues at newPc; ends a pass / returns from NMI and #MC. */
  private advance(w: Uint8Array, c: number, newPc: number): void {
    const st = this.st;
    const f = st.top(w, c);
    if (newPc < this.m.len) {
      st.setPc(w, f, newPc);
      return;
    }
    if (st.kind(w, f) === K_BASE) {
      const p = st.cpu(w, c, CPU.passes) - 1;
      st.setCpu(w, c, CPU.passes, p);
      st.setPc(w, f, p > 0 ? 0 : this.m.len);
    } else {
      this.iret(w, c);
    }
  }

  private ruleFor(s: Uint8Array, c: number, o: number): number {
    const m = this.m;
    for (let i = 0; i < m.int3.length; i++) {
      const r = m.int3[i]!;
      if (
        r.at === 'first' ? o !== 0 : r.at === 'interior' ? o === 0 || !m.oldInsns.has(o) : r.at !== 'any' && r.at !== o
      )
        continue;
      if (r.cpu === 'patcher' ? c !== 0 : r.cpu === 'other' ? c === 0 : false) continue;
      if (r.when && this.st.variable(s, r.when.v) !== r.when.val) continue;
      return i;
    }
    return -1;
  }

  /** Generates every successor of s. */
  successors(s: Uint8Array, emit: Emit, labels: boolean): void {
    for (let c = 0; c < this.ncpu; c++) this.cpuMoves(s, c, emit, labels);
  }

  private cpuMoves(s: Uint8Array, c: number, emit: Emit, labels: boolean): void {
    const m = this.m;
    const st = this.st;
    const depth = st.depth(s, c);
    const f = st.top(s, c);
    const kind = st.kind(s, f);
    if (kind === K_PROTO) {
      this.patcherMove(s, emit, labels);
    } else if (kind === K_BASE || kind === K_NMI || kind === K_MC) {
      const pc = st.pc(s, f);
      if (pc < m.len) this.fetch(s, c, pc, emit, labels);
      else if (kind !== K_BASE) {
        // A handler that does not run the site: just return.
        const w = s.slice();
        this.iret(w, c);
        emit(
          this.finish(w),
          labels ? this.label(s, c, 'handler', `${kind === K_NMI ? 'NMI' : '#MC'} handler returns (iret)`) : null,
          null,
        );
      }
    } else if (kind === K_INT3) {
      this.handlerMove(s, c, f, emit, labels);
    }
    // Interrupts arrive between steps.
    const flags = st.cpu(s, c, CPU.flags);
    if (depth < m.maxDepth) {
      if (st.cpu(s, c, CPU.nmi) > 0 && !(flags & F_NMI_BLOCKED)) {
        const w = s.slice();
        st.setCpu(w, c, CPU.nmi, st.cpu(w, c, CPU.nmi) - 1);
        st.setCpu(w, c, CPU.flags, flags | F_NMI_BLOCKED);
        st.push(w, c, K_NMI, m.handlersRunSite ? 0 : m.len, 0);
        emit(
          this.finish(w),
          labels
            ? this.label(s, c, 'nmi', 'NMI arrives' + (m.handlersRunSite ? '; its handler runs the site' : ''))
            : null,
          null,
        );
      }
      if (st.cpu(s, c, CPU.mce) > 0 && !(flags & F_IN_MC)) {
        const w = s.slice();
        st.setCpu(w, c, CPU.mce, st.cpu(w, c, CPU.mce) - 1);
        st.setCpu(w, c, CPU.flags, flags | F_IN_MC);
        st.push(w, c, K_MC, m.handlersRunSite ? 0 : m.len, 0);
        emit(
          this.finish(w),
          labels
            ? this.label(s, c, 'mce', '#MC arrives' + (m.handlersRunSite ? '; its handler runs the site' : ''))
            : null,
          null,
        );
      }
    }
  }

  private patcherMove(s: Uint8Array, emit: Emit, labels: boolean): void {
    const m = this.m;
    const st = this.st;
    const pc = st.patcherPc(s);
    if (pc >= m.ops.length) return;
    const op = m.ops[pc]!;
    let w: Uint8Array;
    let text: string;
    let kind: TraceStep['kind'];
    switch (op.kind) {
      case 'write':
        w = this.write(s.slice(), op.bytes);
        kind = 'write';
        text = `${op.bytes.length > 1 ? 'atomic store' : 'store'} ${op.bytes.map(([o, v]) => `+${o}=${hex([v])}`).join(' ')}${op.note ? ` (${op.note})` : ''}`;
        break;
      case 'set':
        w = s.slice();
        st.setVariable(w, op.v, op.val);
        for (const [v, val] of op.also ?? []) st.setVariable(w, v, val);
        kind = 'set';
        text = op.note ?? [[op.v, op.val], ...(op.also ?? [])].map(([v, val]) => `${m.vars[v!]} = ${val}`).join(', ');
        break;
      case 'choose':
        // One successor per choice; the choice itself changes nothing but the patcher's next step.
        op.to.forEach((to, i) => {
          const c = s.slice();
          st.setPatcherPc(c, to);
          emit(this.finish(c), labels ? this.label(s, 0, 'set', op.notes[i]!) : null, null);
        });
        return;
      case 'fail':
        emit(null, labels ? this.label(s, 0, 'set', op.message) : null, {
          property: op.property,
          message: `patcher: ${op.message}`,
        });
        return;
      case 'sync': {
        for (let c = 1; c < this.ncpu; c++) if (st.depth(s, c) !== 1) return; // a CPU in a handler (IF=0)
        w = s.slice();
        const hl = st.histLen(w);
        for (let c = 1; c < this.ncpu; c++) st.setCpu(w, c, CPU.since, hl - 1);
        kind = 'sync';
        text = `${op.note ? `${op.note}: ` : ''}sync: IPI to every CPU, each serializes`;
        break;
      }
      case 'wait':
        if (!this.cond(s, op.cond)) return;
        w = s.slice();
        kind = 'wait';
        text = 'wait: condition holds';
        break;
    }
    const next = op.next ?? pc + 1;
    st.setPatcherPc(w, next);
    if (next >= m.ops.length) {
      this.protocolEnd(w);
      text += '; protocol ends';
    }
    const lab = labels ? this.label(s, 0, kind, text) : null;
    emit(this.finish(w), lab, null);
  }

  private handlerMove(s: Uint8Array, c: number, f: number, emit: Emit, labels: boolean): void {
    const m = this.m;
    const st = this.st;
    const rule = m.int3[st.rule(s, f)]!;
    const step = st.step(s, f);
    const op = rule.program[step]!;
    // The trapping address: the pc of the frame below (the one that executed the int3).
    const o = st.pc(s, st.frame(c, st.depth(s, c) - 2));
    let w: Uint8Array = s.slice();
    let text: string;
    switch (op.kind) {
      case 'write':
        w = this.write(w, op.bytes);
        st.setStep(w, f, step + 1);
        text = `handler stores ${op.bytes.map(([x, v]) => `+${x}=${hex([v])}`).join(' ')}`;
        break;
      case 'wait':
        if (!this.cond(s, op.cond)) return;
        st.setStep(w, f, step + 1);
        text = 'handler: wait condition holds';
        break;
      case 'serialize':
        if (c > 0) st.setCpu(w, c, CPU.since, st.histLen(w) - 1);
        st.setStep(w, f, step + 1);
        text = 'handler serializes (cpuid)';
        break;
      case 'retry':
        this.iret(w, c);
        text = `handler returns to the int3 at +${o} to execute it again`;
        break;
      case 'resume':
        this.iret(w, c);
        this.advance(w, c, o + op.delta);
        text = `handler returns to +${o + op.delta}`;
        break;
      case 'bsearch':
      case 'emulate': {
        if (op.kind === 'bsearch') {
          const vec = op.vec.slice(0, st.variable(s, op.nr)).map((v) => st.variable(s, v));
          if (!bsearchFinds(vec, o)) {
            const why = `smp_text_poke_int3_handler: ${vec.length > 1 ? 'the binary search of' : 'the only entry of'} text_poke_array.vec [${vec.map((x) => `+${x}`).join(', ')}] misses +${o}${vec.some((x, i) => i > 0 && vec[i - 1]! > x) ? ' (the vector is not in address order)' : ''}`;
            emit(null, labels ? this.label(s, c, 'handler', `${why}; the handler returns 0: Oops: int3`) : null, {
              property: 'unhandled-int3',
              message: `${cpuName(c)} hit int3 at +${o}: ${why}`,
            });
            return;
          }
        }
        const version = op.kind === 'bsearch' ? 'new' : op.version;
        const onlyCalls = op.kind === 'emulate' && op.onlyCalls;
        const insn = (version === 'new' ? m.newInsns : m.oldInsns).get(o);
        if (!insn || (onlyCalls && !insn.isCall)) {
          const why = !insn
            ? `+${o} is not a ${version} instruction boundary`
            : `the new instruction at +${o} (${insn.text}) is not a call`;
          emit(null, labels ? this.label(s, c, 'handler', `handler cannot emulate: ${why}`) : null, {
            property: 'unhandled-int3',
            message: `${cpuName(c)}: int3 handler cannot emulate at +${o}: ${why}`,
          });
          return;
        }
        if (version === 'old' && this.patcherDone(s)) {
          emit(
            null,
            labels ? this.label(s, c, 'handler', `handler emulates old ${insn.text} after the protocol ended`) : null,
            {
              property: 'old-code-after-end',
              message: `${cpuName(c)}: handler emulated the old instruction at +${o} after the protocol ended`,
            },
          );
          return;
        }
        this.iret(w, c);
        this.advance(w, c, insn.leaves ? m.len : o + insn.len);
        text = `${op.kind === 'bsearch' ? `smp_text_poke_int3_handler finds +${o} in text_poke_array.vec; ` : ''}handler emulates ${version} \`${insn.text}\` and returns to +${insn.leaves ? m.len : o + insn.len}`;
        break;
      }
    }
    emit(this.finish(w), labels ? this.label(s, c, 'handler', text) : null, null);
  }

  /** Fetch, decode and execute one instruction at pc: one successor per distinct instruction the CPU can see. */
  private fetch(s: Uint8Array, c: number, pc: number, emit: Emit, labels: boolean): void {
    const st = this.st;
    const hl = st.histLen(s);
    const curId = st.current(s);
    const first = c === 0 ? hl - 1 : st.cpu(s, c, CPU.since);
    const versions: number[] = [];
    for (let i = first; i < hl; i++) {
      const id = st.version(s, i);
      if (!versions.includes(id)) versions.push(id);
    }
    for (const o of this.fetcher.outcomes(pc, versions)) this.execute(s, c, pc, o, curId, emit, labels);
  }

  private execute(s: Uint8Array, c: number, pc: number, o: Outcome, curId: number, emit: Emit, labels: boolean): void {
    const _m = this.m;
    const cls = o.cls;
    const what = o.what;
    const mk = (text: string): TraceStep | null =>
      labels
        ? this.label(s, c, 'exec', text, {
            offset: pc,
            reads: o.reads.map((r) => ({
              ...r,
              stale: r.version !== curId,
              bytes: hex(this.memVecs[r.version]!.subarray(r.from, r.to)),
            })),
            bytes: hex(o.insn),
            asm: o.asm,
            as: cls,
          })
        : null;
    if (cls === 'torn') {
      emit(null, mk(`executes ${what}  <- neither old nor new`), {
        property: 'torn-instruction',
        message: `${cpuName(c)} executed ${what}, which is neither an old instruction at an old boundary nor a new one at a new boundary`,
      });
      return;
    }
    if (cls === 'old' && this.patcherDone(s)) {
      emit(null, mk(`executes old ${what} after the protocol ended`), {
        property: 'old-code-after-end',
        message: `${cpuName(c)} executed the old instruction ${what} after the protocol ended`,
      });
      return;
    }
    const w = s.slice();
    if (cls === 'int3') {
      const r = this.ruleFor(s, c, pc);
      if (r < 0) {
        emit(null, mk(`executes ${what}: no handler deals with it`), {
          property: 'unhandled-int3',
          message: `${cpuName(c)} hit int3 at +${pc} and the protocol's handler does not deal with it${this.patcherDone(s) ? ' (the protocol has ended)' : ''}`,
        });
        return;
      }
      this.st.push(w, c, K_INT3, r, 0);
      emit(this.finish(w), mk(`executes ${what}: traps to the int3 handler`), null);
      return;
    }
    this.advance(w, c, o.next);
    emit(this.finish(w), mk(`executes ${cls} ${what}`), null);
  }
}

/**
 * What smp_text_poke_int3_handler() finds: with more than one entry, the kernel's __inline_bsearch()
 * (which assumes the vector is sorted by address); with one, a direct comparison.
 */
export function bsearchFinds(vec: number[], key: number): boolean {
  if (vec.length <= 1) return vec[0] === key;
  let base = 0;
  for (let num = vec.length; num > 0; num >>= 1) {
    const pivot = base + (num >> 1);
    if (key === vec[pivot]) return true;
    if (key > vec[pivot]!) {
      base = pivot + 1;
      num--;
    }
  }
  return false;
}

/** Explores the model breadth-first. */
export function explore(model: Model, opts: ExploreOptions = {}): Result {
  const t0 = performance.now();
  const mc = new Machine(model);
  mc.symmetry = opts.symmetry ?? true;
  const maxStates = opts.maxStates ?? 20_000_000;
  try {
    const store = new StateStore();
    store.add(mc.initial(), -1);
    let transitions = 0;
    let found: { at: number; ordinal: number; violation: Violation } | null = null;
    let incomplete = false;
    let head = 0;
    const emit = (next: Uint8Array | null, _l: TraceStep | null, v: Violation | null): void => {
      const o = ordinal++;
      any = true;
      if (found) return;
      transitions++;
      if (v) {
        found = { at: head, ordinal: o, violation: v };
        return;
      }
      if (store.count >= maxStates) {
        if (store.find(next!) < 0) incomplete = true;
        return;
      }
      const id = store.add(next!, head);
      if (id < 0) return;
      const dl = mc.deadlocked(next!);
      if (dl) found = { at: id, ordinal: -1, violation: { property: 'deadlock', message: dl } };
    };
    let ordinal = 0;
    let any = false;
    for (; head < store.count && !found; head++) {
      const s = store.get(head);
      ordinal = 0;
      any = false;
      mc.successors(s, emit, false);
      if (!found && !any && !mc.terminal(s)) {
        found = {
          at: head,
          ordinal: -1,
          violation: { property: 'deadlock', message: 'no CPU can make progress and the protocol has not finished' },
        };
      }
      if (incomplete) break;
    }
    const seconds = (performance.now() - t0) / 1000;
    const versions = mc.memVecs.map((v) => hex(v));
    if (!found) {
      return {
        verdict: incomplete ? 'incomplete' : 'safe',
        states: store.count,
        transitions,
        seconds,
        trace: [],
        versions,
      };
    }
    const f = found as { at: number; ordinal: number; violation: Violation };
    const { steps, violation } = rebuild(mc, store, f.at, f.ordinal);
    const v = violation ?? f.violation;
    return {
      verdict: 'unsafe',
      property: v.property,
      message: v.message,
      states: store.count,
      transitions,
      seconds,
      trace: steps,
      versions,
    };
  } finally {
    mc.free();
  }
}
