/**
 * `hypercalls cost`: compares and conditional branches on the hypercall number executed before the
 * handler is called, per caller and hypercall, for each dispatch style, predicted from the table.
 *
 * The model is what GCC makes of each style at -O2 (checked against Xen 4.17's compiled pv_hypercall):
 * - a one-entry priority group: `cmp; je` = 1 compare, 1 branch;
 * - a group test (`mask & bits`): the range check `num > 63` once (shared by every group, as GCC keeps
 *   the mask in a register) = 1/1, then a bit test per group = 1/1;
 * - a two-entry group: one more `cmp; je` = 1/1 for either member;
 * - a switch: without jump tables (Xen builds with -fno-jump-tables, part of its retpoline hardening) a
 *   binary decision tree as GCC's switch lowering builds it with equal case probabilities: the pivot
 *   splits the sorted cases at floor(n/2), lists of two or fewer are tested in order. A node costs one
 *   compare and one branch to find its case (`je`) or two to pass it (`je` + `ja`/`jb`), one when only one
 *   side remains; a leaf is `cmp; jne default`. With jump tables: `cmp; ja default` + an indirect jump;
 * - the bounds-checked table: the bounds check and the NULL-entry check = 2/2, plus the indirect call.
 * The compiled code may differ: GCC merges tests, turns two-value groups into bit tests, re-orders
 * trees by profile; `cost --binary` shows what a real build does.
 *
 * @example
 * ```ts
 * const rows = modelCosts(defs, XEN_417_NUMBERS);
 * rows.find((r) => r.caller === 'pv64' && r.name === 'mmu_update')!.cost.chain; // { compares: 3, branches: 3, indirect: 0 }
 * ```
 */
import type { Defs } from './defs.js';
import { prioGroups } from './defs.js';
import { numberOf } from './gen.js';

export interface Cost {
  compares: number;
  branches: number;
  indirect: number;
}

export interface CostRow {
  caller: string;
  name: string;
  number: number;
  handler: string;
  prio: number;
  cost: { chain: Cost; switch: Cost; table: Cost };
}

export interface ModelOptions {
  /** Switches become jump tables (GCC's default; Xen 4.17 builds with -fno-jump-tables). */
  jumpTables?: boolean;
}

const add = (a: Cost, b: Cost): Cost => ({
  compares: a.compares + b.compares,
  branches: a.branches + b.branches,
  indirect: a.indirect + b.indirect,
});
const C = (compares: number, branches: number, indirect = 0): Cost => ({ compares, branches, indirect });

/** Cost of finding `v` in a GCC-style binary decision tree over the sorted case values. */
export function treeCost(values: readonly number[], v: number): Cost | undefined {
  const vals = [...values].sort((a, b) => a - b);
  return tree(vals, v);
}

function tree(vals: number[], v: number): Cost | undefined {
  if (vals.length === 0) return undefined;
  if (vals.length <= 2) {
    // A list tested in order: cmp; je per node (the last a `cmp; jne default`).
    const i = vals.indexOf(v);
    return i < 0 ? undefined : C(i + 1, i + 1);
  }
  const k = Math.floor(vals.length / 2);
  const p = vals[k];
  if (v === p) return C(1, 1);
  const left = vals.slice(0, k);
  const right = vals.slice(k + 1);
  const sub = v < p ? left : right;
  const other = v < p ? right : left;
  const rest = tree(sub, v);
  if (!rest) return undefined;
  return add(C(1, other.length ? 2 : 1), rest);
}

function switchCost(values: readonly number[], v: number, jumpTables: boolean): Cost | undefined {
  if (!values.includes(v)) return undefined;
  // GCC uses a jump table from 5 cases up (x86 case_values_threshold) when allowed.
  if (jumpTables && values.length >= 5) return C(1, 1, 1);
  return treeCost(values, v);
}

export function modelCosts(defs: Defs, numbers: Readonly<Record<string, number>>, opts: ModelOptions = {}): CostRow[] {
  const jt = opts.jumpTables ?? false;
  const rows: CostRow[] = [];
  for (const caller of defs.callers) {
    const groups = prioGroups(defs, caller);
    const all = defs.calls.filter((c) => c.caller === caller);
    const allNums = all.map((c) => numberOf(numbers, c.name));
    for (const call of all) {
      const v = numberOf(numbers, call.name);
      // chain
      let chain = C(0, 0);
      let masked = 0;
      for (const [gi, g] of groups.entries()) {
        const last = gi === groups.length - 1;
        const nums = g.calls.map((c) => numberOf(numbers, c.name));
        const inGroup = g.calls.includes(call);
        if (g.calls.length === 1) {
          chain = add(chain, C(1, 1));
          if (inGroup) break;
          continue;
        }
        if (!last) {
          chain = add(chain, masked === 0 ? C(2, 2) : C(1, 1));
          masked++;
        }
        if (!inGroup) continue;
        if (g.calls.length === 2) chain = add(chain, C(1, 1));
        else chain = add(chain, switchCost(nums, v, jt)!);
        break;
      }
      rows.push({
        caller,
        name: call.name,
        number: v,
        handler: `${call.prefix}_${call.name}`,
        prio: call.prio,
        cost: { chain, switch: switchCost(allNums, v, jt)!, table: C(2, 2, 1) },
      });
    }
  }
  return rows;
}

/** Parses a frequency file: `name count` or `caller name count` per line ('#' comments). */
export function parseFreq(text: string): { caller?: string; name: string; weight: number }[] {
  const out: { caller?: string; name: string; weight: number }[] = [];
  for (const [i, line] of text.split('\n').entries()) {
    const t = line.replace(/#.*/, '').trim();
    if (!t) continue;
    const f = t.split(/[\s,]+/);
    const w = Number(f[f.length - 1]);
    if (!(f.length === 2 || f.length === 3) || !Number.isFinite(w) || w < 0)
      throw new Error(`line ${i + 1}: expected '[caller] name count': ${t}`);
    out.push(f.length === 3 ? { caller: f[0], name: f[1], weight: w } : { name: f[0], weight: w });
  }
  return out;
}

/** Frequency-weighted mean of a cost per caller (only hypercalls with a weight count). */
export function weighted(
  rows: readonly CostRow[],
  freq: readonly { caller?: string; name: string; weight: number }[],
  pick: (r: CostRow) => Cost | undefined,
): Map<string, { compares: number; branches: number; total: number }> {
  const out = new Map<string, { compares: number; branches: number; total: number }>();
  for (const r of rows) {
    const f =
      freq.find((x) => x.name === r.name && x.caller === r.caller) ??
      freq.find((x) => x.name === r.name && x.caller === undefined);
    const c = pick(r);
    if (!f || !c || f.weight === 0) continue;
    const acc = out.get(r.caller) ?? { compares: 0, branches: 0, total: 0 };
    acc.compares += c.compares * f.weight;
    acc.branches += c.branches * f.weight;
    acc.total += f.weight;
    out.set(r.caller, acc);
  }
  for (const v of out.values()) {
    v.compares /= v.total || 1;
    v.branches /= v.total || 1;
  }
  return out;
}
