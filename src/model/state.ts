/**
 * The byte layout of one explorer state, and named accessors over it.
 *
 * A state is a `Uint8Array`: every field is one byte, so a state is small, hashes fast and is compared
 * with a byte loop (see store.ts). The layout for a model with V protocol variables, N CPUs
 * (CPU 0 the patcher) and frame stacks at most D deep (`Model.maxDepth`):
 *
 * | offset                 | width       | field                                                              |
 * |------------------------|-------------|--------------------------------------------------------------------|
 * | 0                      | 1           | patcher pc: index of the patcher's next step in `Model.ops`; `>= ops.length` once the protocol has ended |
 * | 1                      | V           | protocol variables, one byte each (`Model.vars` names them)        |
 * | cpuBase(c)             | W = 6 + 3·D | CPU c (c = 0 .. N-1), the fields below at their offset in the block |
 * | cpuBase(N) = history   | 1           | history length H (1 .. 255)                                        |
 * | history + 1            | H           | memory version ids (index into `Machine.memVecs`), oldest first; the last is the site's current bytes |
 *
 * where `cpuBase(c) = 1 + V + c·W`. A CPU block:
 *
 * | offset in block | field                                                                                      |
 * |-----------------|--------------------------------------------------------------------------------------------|
 * | 0 `since`       | history index of the oldest version the CPU may still fetch (the current one when it last serialized); unused for CPU 0, which always sees its own writes |
 * | 1 `nmi`         | NMIs still to arrive                                                                       |
 * | 2 `mce`         | machine checks still to arrive                                                             |
 * | 3 `flags`       | {@link F_NMI_BLOCKED} (until the next IRET), {@link F_IN_MC} (inside the #MC handler)       |
 * | 4 `passes`      | passes through the site its base context still has to run                                  |
 * | 5 `depth`       | frames on its stack (1 .. D)                                                               |
 * | 6 + 3·i         | frame i (0 = bottom): kind ({@link K_BASE} ...), then two bytes whose meaning depends on the kind |
 *
 * Frames: a region frame ({@link K_BASE}, {@link K_NMI}, {@link K_MC}) holds the offset in the site of the
 * next instruction (the site's length: not running it, or done) and 0; an int3 frame ({@link K_INT3}) holds
 * the index of the `Model.int3` rule whose handler runs and the step of its program; the patcher's
 * protocol frame ({@link K_PROTO}) holds 0, 0 (its position is the patcher pc). Unused frames are all 0.
 *
 * Limits: each field holds 0..255. {@link StateLayout}'s constructor checks every bound the model fixes
 * (site length, steps, variable values, interrupt budgets, handler rules) and throws when one would not fit;
 * the history length and the frame depth, which grow with the run, are checked where they grow
 * ({@link StateLayout.appendVersion}, {@link StateLayout.push}); memory version ids by fetch.ts.
 */
import type { Model } from './types.js';

/** The largest value a one-byte field holds. */
export const FIELD_MAX = 255;

/** CPU flag: NMIs are blocked (in an NMI handler, or a patcher in NMI context) until the next IRET. */
export const F_NMI_BLOCKED = 1;
/** CPU flag: inside the #MC handler (a second #MC is blocked). */
export const F_IN_MC = 2;

/** Frame kinds (0: no frame). */
export const K_BASE = 1;
export const K_NMI = 2;
export const K_MC = 3;
export const K_INT3 = 4;
export const K_PROTO = 5;

/** The fields of a CPU block, by their offset in the block (the table above says what each holds). */
export const CPU = {
  since: 0,
  nmi: 1,
  mce: 2,
  flags: 3,
  passes: 4,
  depth: 5,
} as const;
export type CpuField = (typeof CPU)[keyof typeof CPU];
/** Offset of the first frame in a CPU block. */
const C_FRAMES = 6;
/** Bytes per frame: kind, pc (or int3 rule), step. */
const FRAME = 3;

/** Throws when a value the model fixes would not fit its one-byte field. */
function fits(what: string, v: number): void {
  if (!Number.isInteger(v) || v < 0 || v > FIELD_MAX)
    throw new Error(`model state: ${what} is ${v}, outside the 0..${FIELD_MAX} its state field holds`);
}

/** Where each field of a model's states lives; accessors read and write them in a state. */
export class StateLayout {
  readonly ncpu: number;
  readonly maxDepth: number;
  /** Offset of the first protocol variable. */
  readonly oVars = 1;
  /** Offset of CPU 0's block. */
  readonly oCpu: number;
  /** Bytes per CPU block. */
  readonly cpuWidth: number;
  /** Offset of the history length (the history's versions follow it). */
  readonly oHist: number;

  constructor(m: Model) {
    this.ncpu = m.cpus.length;
    this.maxDepth = m.maxDepth;
    this.cpuWidth = C_FRAMES + FRAME * m.maxDepth;
    this.oCpu = this.oVars + m.vars.length;
    this.oHist = this.oCpu + this.ncpu * this.cpuWidth;
    StateLayout.checkLimits(m);
  }

  /** Asserts that every value the model can store fits its field. */
  private static checkLimits(m: Model): void {
    fits('the site length (a CPU past the site holds it as its pc)', m.len);
    fits('the number of patcher steps (the patcher pc once the protocol ended)', m.ops.length);
    fits('the frame stack depth', m.maxDepth);
    m.cpus.forEach((c, i) => {
      fits(`cpu${i}'s passes`, c.passes);
      fits(`cpu${i}'s NMI budget`, c.nmi);
      fits(`cpu${i}'s #MC budget`, c.mce);
    });
    fits('the index of the last int3 rule', Math.max(0, m.int3.length - 1));
    m.int3.forEach((r, i) => {
      fits(`the number of steps of int3 rule ${i}`, r.program.length);
    });
    m.ops.forEach((op, i) => {
      if (op.next !== undefined) fits(`the next step of patcher step ${i}`, op.next);
      if (op.kind === 'choose') for (const to of op.to) fits(`a choice of patcher step ${i}`, to);
      if (op.kind === 'set') {
        fits(`the value patcher step ${i} sets`, op.val);
        for (const [, val] of op.also ?? []) fits(`a value patcher step ${i} sets`, val);
      }
    });
  }

  /** Bytes of a state whose history holds `hlen` versions. */
  size(hlen: number): number {
    return this.oHist + 1 + hlen;
  }

  // ----- the patcher and the protocol variables -----
  patcherPc(s: Uint8Array): number {
    return s[0]!;
  }
  setPatcherPc(s: Uint8Array, pc: number): void {
    s[0] = pc;
  }
  variable(s: Uint8Array, v: number): number {
    return s[this.oVars + v]!;
  }
  setVariable(s: Uint8Array, v: number, val: number): void {
    s[this.oVars + v] = val;
  }

  // ----- CPU blocks -----
  cpuBase(c: number): number {
    return this.oCpu + c * this.cpuWidth;
  }
  /** A field of CPU c's block ({@link CPU} names them). */
  cpu(s: Uint8Array, c: number, f: CpuField): number {
    return s[this.cpuBase(c) + f]!;
  }
  setCpu(s: Uint8Array, c: number, f: CpuField, v: number): void {
    s[this.cpuBase(c) + f] = v;
  }
  /** Frames on CPU c's stack. */
  depth(s: Uint8Array, c: number): number {
    return s[this.cpuBase(c) + CPU.depth]!;
  }

  // ----- frames: a frame is addressed by its offset in the state -----
  /** Offset of frame i (0 = bottom) of CPU c. */
  frame(c: number, i: number): number {
    return this.cpuBase(c) + C_FRAMES + FRAME * i;
  }
  /** Offset of CPU c's top frame. */
  top(s: Uint8Array, c: number): number {
    return this.frame(c, this.depth(s, c) - 1);
  }
  kind(s: Uint8Array, f: number): number {
    return s[f]!;
  }
  /** A region frame's pc (offset in the site), or an int3 frame's rule index. */
  pc(s: Uint8Array, f: number): number {
    return s[f + 1]!;
  }
  setPc(s: Uint8Array, f: number, pc: number): void {
    s[f + 1] = pc;
  }
  /** An int3 frame's rule index. */
  rule(s: Uint8Array, f: number): number {
    return s[f + 1]!;
  }
  /** An int3 frame's program step. */
  step(s: Uint8Array, f: number): number {
    return s[f + 2]!;
  }
  setStep(s: Uint8Array, f: number, step: number): void {
    s[f + 2] = step;
  }
  /** Sets frame f. */
  setFrame(s: Uint8Array, f: number, kind: number, pc: number, step: number): void {
    s[f] = kind;
    s[f + 1] = pc;
    s[f + 2] = step;
  }
  /** Pushes a frame on CPU c's stack. */
  push(s: Uint8Array, c: number, kind: number, pc: number, step: number): void {
    const d = this.depth(s, c);
    if (d >= this.maxDepth)
      throw new Error(`model state: cpu${c} would nest more than ${this.maxDepth} frames, the depth its state holds`);
    this.setFrame(s, this.frame(c, d), kind, pc, step);
    this.setCpu(s, c, CPU.depth, d + 1);
  }
  /** Pops CPU c's top frame (cleared to zeros). */
  pop(s: Uint8Array, c: number): void {
    const d = this.depth(s, c) - 1;
    this.setFrame(s, this.frame(c, d), 0, 0, 0);
    this.setCpu(s, c, CPU.depth, d);
  }

  // ----- the memory history -----
  histLen(s: Uint8Array): number {
    return s[this.oHist]!;
  }
  /** The i-th memory version id of the history (0 = oldest). */
  version(s: Uint8Array, i: number): number {
    return s[this.oHist + 1 + i]!;
  }
  /** The site's current memory version id. */
  current(s: Uint8Array): number {
    return s[this.oHist + s[this.oHist]!]!;
  }
  /** Sets a fresh state's history to the one version `id`. */
  initHistory(s: Uint8Array, id: number): void {
    s[this.oHist] = 1;
    s[this.oHist + 1] = id;
  }
  /** A copy of s with version `id` appended to its history (one byte longer). */
  appendVersion(s: Uint8Array, id: number): Uint8Array {
    const hl = this.histLen(s);
    fits('the memory history length (versions since the oldest CPU last serialized)', hl + 1);
    const out = new Uint8Array(s.length + 1);
    out.set(s);
    out[this.oHist] = hl + 1;
    out[this.oHist + 1 + hl] = id;
    return out;
  }
  /** Drops the n oldest versions of the history in place (the caller rebases the CPUs' `since`). */
  dropOldest(s: Uint8Array, n: number): void {
    const oh = this.oHist;
    const hl = s[oh]!;
    s.copyWithin(oh + 1, oh + 1 + n, oh + 1 + hl);
    s[oh] = hl - n;
  }

  /**
   * Sorts the blocks of the CPUs in group g (identically configured CPUs) into ascending byte order in
   * place: states that differ only by a permutation of those CPUs become one (symmetry reduction).
   */
  sortCpus(s: Uint8Array, g: number[]): void {
    const cw = this.cpuWidth;
    if (g.length === 2) {
      const a = this.cpuBase(g[0]!);
      const b = this.cpuBase(g[1]!);
      for (let i = 0; i < cw; i++) {
        const d = s[a + i]! - s[b + i]!;
        if (d < 0) return;
        if (d > 0) break;
      }
      for (let i = 0; i < cw; i++) {
        const t = s[a + i]!;
        s[a + i] = s[b + i]!;
        s[b + i] = t;
      }
      return;
    }
    const blocks = g.map((c) => s.slice(this.cpuBase(c), this.cpuBase(c) + cw));
    blocks.sort((a, b) => {
      for (let i = 0; i < cw; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
      return 0;
    });
    g.forEach((c, i) => s.set(blocks[i]!, this.cpuBase(c)));
  }
}
