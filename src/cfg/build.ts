/**
 * What the build did, read from the binary: retpolines (calls to __x86_indirect_thunk_*), return thunks
 * (jumps to __x86_return_thunk), SLS hardening (int3 after returns and indirect jumps).
 */
import { Code, FlowControl } from '../x86/insn.js';
import type { SectionCode } from '../x86/code.js';
import { destOf, relocsOf } from './targets.js';
import { isIndirectThunk, isReturnThunk } from './flow.js';
import type { View } from './view.js';

export interface BuildFacts {
  /** Direct calls/jumps to retpoline thunks in the bytes as built, by address. */
  readonly thunkCalls: Set<number>;
  /** Jumps to a return thunk in the bytes as built, by address. */
  readonly thunkReturns: Set<number>;
  readonly retpolines: boolean;
  readonly rethunk: boolean;
  /** SLS hardening: returns and indirect jumps followed by int3 (null: too few to tell). */
  readonly sls: boolean | null;
  readonly slsEvidence: string;
}

const cache = new WeakMap<View, BuildFacts>();

export function buildFacts(view: View): BuildFacts {
  let f = cache.get(view);
  if (f) return f;
  const thunkCalls = new Set<number>();
  const thunkReturns = new Set<number>();
  const img = view.img;
  let hard = 0;
  let soft = 0;
  const rel = img.kind === 'rel';
  for (const sc of view.builtCode()) {
    const base = sc.section.addr;
    const relocs = rel ? relocsOf(view, sc.section) : undefined;
    for (let i = 0; i < sc.count; i++) {
      const fc = sc.flow[i]!;
      if (fc === FlowControl.Call || fc === FlowControl.UnconditionalBranch || fc === FlowControl.ConditionalBranch) {
        // In a relocatable object only a relocated rel32 can name a thunk; elsewhere the target can.
        if (relocs && !relocs.has(sc.off[i]! + sc.len[i]! - 4)) continue;
        const d = destOfBuilt(view, sc, i);
        if (!d) continue;
        if (isIndirectThunk(d)) thunkCalls.add(base + sc.off[i]!);
        else if (fc === FlowControl.UnconditionalBranch && isReturnThunk(d)) thunkReturns.add(base + sc.off[i]!);
      } else if (fc === FlowControl.Return || fc === FlowControl.IndirectBranch) {
        if (sc.code[i] === Code.Retnq_imm16) continue;
        if (i + 1 < sc.count && sc.code[i + 1] === Code.Int3 && sc.off[i + 1] === sc.off[i]! + sc.len[i]!) hard++;
        else soft++;
      }
    }
  }
  const names = new Set(img.symbols.map((s) => s.name));
  const retpolines =
    thunkCalls.size > 0 ||
    img.section('.retpoline_sites') !== undefined ||
    [...names].some((n) => n.startsWith('__x86_indirect_thunk_'));
  const rethunk = thunkReturns.size > 0 || img.section('.return_sites') !== undefined;
  const n = hard + soft;
  const sls = n < 8 ? (hard > 0 && soft === 0 ? true : null) : hard >= 0.9 * n ? true : hard <= 0.1 * n ? false : null;
  f = {
    thunkCalls,
    thunkReturns,
    retpolines,
    rethunk,
    sls,
    slsEvidence: `${hard} of ${n} returns and indirect jumps are followed by int3`,
  };
  cache.set(view, f);
  return f;
}

/** Destination name of a branch in the bytes as built (relocations apply: these are the file's bytes). */
function destOfBuilt(view: View, sc: SectionCode, i: number): string | undefined {
  if (!view.patched) return destOf(view, sc, i)?.name;
  const img = view.img;
  if (img.kind === 'rel') {
    const r = relocsOf(view, sc.section).get(sc.off[i]! + sc.len[i]! - 4);
    return r ? img.relocSymbolName(r) : undefined;
  }
  const t = sc.target[i]!;
  if (Number.isNaN(t)) return undefined;
  const s = img.symbolize(t);
  return s.offset === 0 ? s.name : undefined;
}
