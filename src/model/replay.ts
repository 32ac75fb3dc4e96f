/**
 * Trace reconstruction: once the explorer has found a violation, replays the breadth-first path to it
 * with labels on, so the counterexample reads as steps (who did what, what each fetch read).
 *
 * The exploration itself runs without labels and stores canonical states (symmetry-reduced: identically
 * configured CPUs sorted). The replay follows actual states from the initial one, at each step picking the
 * successor whose canonical form is the next stored state, so CPU numbers stay consistent along the trace.
 */
import { hex } from '../x86/insn.js';
import type { Machine, TraceStep, Violation } from './explore.js';
import type { StateStore } from './store.js';

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Replays the path to state `at` (and the violating transition `ordinal` from it) with labels. */
export function rebuild(
  mc: Machine,
  store: StateStore,
  at: number,
  ordinal: number,
): { steps: TraceStep[]; violation: Violation | null } {
  const path: number[] = [];
  for (let i = at; i >= 0; i = store.parent(i)) path.push(i);
  path.reverse();
  const steps: TraceStep[] = [];
  // Follow actual (not canonical) states so CPU numbers stay consistent through symmetry reduction.
  let actual: Uint8Array = store.get(0).slice();
  const annotate = (st: TraceStep, after: Uint8Array | null) => {
    const id = after ? mc.cur(after) : mc.cur(actual);
    st.version = id;
    st.memory = hex(mc.memVecs[id]!);
  };
  type Hit = { next: Uint8Array | null; label: TraceStep; violation: Violation | null };
  // Whether the search reduced by CPU symmetry: its stored states are canonical that way.
  const explored = mc.symmetry;
  const raw = (s: Uint8Array, want: (n: Uint8Array | null, i: number, v: Violation | null) => boolean): Hit => {
    let i = 0;
    let hit: Hit | null = null;
    mc.symmetry = false;
    mc.successors(
      s,
      (n, l, v) => {
        if (!hit && want(n, i, v)) hit = { next: n, label: l!, violation: v };
        i++;
      },
      true,
    );
    mc.symmetry = explored;
    if (!hit) throw new Error('internal: trace replay lost the path');
    return hit as Hit;
  };
  // A successor made canonical as the search made its states (successors() above runs without reduction).
  const canon = (s: Uint8Array) => {
    const was = mc.symmetry;
    mc.symmetry = explored;
    const c = mc.finish(s.slice());
    mc.symmetry = was;
    return c;
  };
  for (let p = 1; p < path.length; p++) {
    const target = store.get(path[p]!);
    const { next, label } = raw(actual, (n) => n !== null && sameBytes(canon(n), target));
    annotate(label, next);
    steps.push(label);
    actual = next!.slice();
  }
  if (ordinal >= 0) {
    // The violating transition: find the first violating successor (successor order is the same with or without symmetry).
    const { label, violation } = raw(actual, (_n, _i, v) => v !== null);
    annotate(label, null);
    steps.push(label);
    return { steps, violation };
  }
  return { steps, violation: null };
}
