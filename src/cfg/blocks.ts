/**
 * Basic blocks and edges of one function over a view, built on demand (checks that only need a few
 * successors walk the instruction records directly; see flow.ts). Edges: fall-through, direct jumps,
 * conditional branches (taken and not taken), switch jump tables, alternatives (an edge to the
 * replacement, as objtool treats a replacement as another path through the site) and jump labels (both
 * the NOP and the jump). A call falls through unless it calls a no-return function; `ud2`, `int3`,
 * returns and indirect jumps without a table end a block with no successor.
 */
import { Code, FlowControl } from '../x86/insn.js';
import type { SectionCode } from '../x86/code.js';
import { Func, NORETURN } from './functions.js';
import { jumpTable } from './jump-tables.js';
import { destOf } from './targets.js';
import type { View } from './view.js';

export type EdgeKind = 'fall' | 'jump' | 'taken' | 'table' | 'alternative' | 'jump-label';

export interface Edge {
  /** Destination (relative address); may lie outside the function (a tail call or a .cold piece). */
  readonly to: number;
  readonly kind: EdgeKind;
}

export interface Block {
  /** First and last instruction index in the section code. */
  readonly first: number;
  readonly last: number;
  readonly addr: number;
  readonly end: number;
  readonly succ: Edge[];
}

export interface Cfg {
  readonly func: Func;
  readonly sc: SectionCode;
  readonly blocks: Block[];
  /** Block starting at a relative address. */
  readonly at: ReadonlyMap<number, Block>;
}

/** Does instruction `i` end its block without a fall-through edge? */
function isNoReturnCall(view: View, sc: SectionCode, i: number): boolean {
  const d = destOf(view, sc, i);
  return d !== undefined && NORETURN.has(d.name);
}

export function buildCfg(view: View, fn: Func): Cfg | undefined {
  const sc = view.dis.at(fn.addr);
  if (!sc) return undefined;
  const base = sc.section.addr;
  const first = sc.indexAt(fn.addr - base);
  if (first < 0) return undefined;
  let last = first;
  while (last + 1 < sc.count && base + sc.off[last + 1]! < fn.addr + fn.size) last++;
  const inFn = (a: number): boolean => a >= fn.addr && a < fn.addr + fn.size;

  // Extra edges from sites: alternatives and jump labels at a site start.
  const extra = new Map<number, Edge[]>();
  const leaders = new Set<number>([fn.addr]);
  for (const s of view.sites) {
    if (!inFn(s.addr)) continue;
    if (s.table === '.altinstructions' && s.repl && s.repl.length > 0) {
      push(extra, s.addr, { to: s.repl.addr, kind: 'alternative' });
      leaders.add(s.addr);
      if (inFn(s.addr + s.length)) leaders.add(s.addr + s.length);
    } else if (s.table === '__jump_table' && s.target && !Number.isNaN(s.target.addr)) {
      push(extra, s.addr, { to: s.target.addr, kind: 'jump-label' });
      leaders.add(s.addr);
      if (inFn(s.target.addr)) leaders.add(s.target.addr);
    }
  }

  const succOf = new Map<number, Edge[]>();
  for (let i = first; i <= last; i++) {
    const a = base + sc.off[i]!;
    const next = a + sc.len[i]!;
    const fc = sc.flow[i]!;
    const code = sc.code[i]!;
    let edges: Edge[] | undefined;
    switch (fc) {
      case FlowControl.Next:
        if (code === Code.Ud2 || code === Code.Int3) edges = [];
        break;
      case FlowControl.Interrupt:
        if (code === Code.Ud2 || code === Code.Int3) edges = [];
        break;
      case FlowControl.Exception:
        edges = [];
        break;
      case FlowControl.UnconditionalBranch: {
        const d = destOf(view, sc, i);
        edges = d && !Number.isNaN(d.addr) ? [{ to: d.addr, kind: 'jump' }] : [];
        break;
      }
      case FlowControl.ConditionalBranch: {
        const d = destOf(view, sc, i);
        edges = [{ to: next, kind: 'fall' }];
        if (d && !Number.isNaN(d.addr)) edges.push({ to: d.addr, kind: 'taken' });
        break;
      }
      case FlowControl.IndirectBranch:
        edges = jumpTable(view, sc, i, fn).map((to) => ({ to, kind: 'table' as const }));
        break;
      case FlowControl.Return:
        edges = [];
        break;
      case FlowControl.Call:
        if (isNoReturnCall(view, sc, i)) edges = [];
        break;
      default:
        break;
    }
    if (edges) {
      succOf.set(i, edges);
      if (i < last) leaders.add(next);
      for (const e of edges) if (inFn(e.to)) leaders.add(e.to);
    }
  }

  const blocks: Block[] = [];
  const at = new Map<number, Block>();
  let start = first;
  for (let i = first; i <= last; i++) {
    const a = base + sc.off[i]!;
    const nextA = a + sc.len[i]!;
    const ends = i === last || succOf.has(i) || leaders.has(nextA);
    if (!ends) continue;
    let succ = succOf.get(i) ?? (i < last || inFn(nextA) ? [{ to: nextA, kind: 'fall' as const }] : []);
    const startA = base + sc.off[start]!;
    const ex = extra.get(startA);
    if (ex) succ = [...succ, ...ex];
    const b: Block = { first: start, last: i, addr: startA, end: nextA, succ };
    blocks.push(b);
    at.set(startA, b);
    start = i + 1;
  }
  return { func: fn, sc, blocks, at };
}

function push<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  const a = m.get(k);
  if (a) a.push(v);
  else m.set(k, [v]);
}
