/**
 * The report's wire format: how a function list entry, a disassembly line, the basic blocks and the edges
 * of one function travel from the writer (data.ts, in Node or the playground's worker) to the viewer
 * (viewer.ts, in the page). The packed shapes keep a whole hypervisor's report to a few megabytes; this
 * module is the only place that knows them: the writer packs with the `pack*` functions and the viewer reads
 * with the decoders, so neither indexes a tuple or walks a stride by hand.
 *
 * @example
 * ```ts
 * const entry = packFnEntry({ name: 'f', addr: '0x1000', size: 16, sites: 1, findings: 0, detail: 3 });
 * fnEntry(entry).detail; // 3
 * parseLines(encodeLines([{ off: 0, bytes: 'c3', text: 'ret', flags: '' }]))[0].text; // 'ret'
 * ```
 */

/** One function in the list, packed: [name, start address hex, size, sites, findings, detail index or -1]. */
export type FnEntry = [string, string, number, number, number, number];

/** A function list entry, decoded. */
export interface FnSummary {
  readonly name: string;
  /** Start address (hex). */
  readonly addr: string;
  readonly size: number;
  readonly sites: number;
  readonly findings: number;
  /** Index of its detail page in the file's `details`, or -1 when it has none. */
  readonly detail: number;
}

export function packFnEntry(f: FnSummary): FnEntry {
  return [f.name, f.addr, f.size, f.sites, f.findings, f.detail];
}

export function fnEntry(e: FnEntry): FnSummary {
  return { name: e[0], addr: e[1], size: e[2], sites: e[3], findings: e[4], detail: e[5] };
}

/** One instruction of a function's disassembly (offset from the function's start). */
export interface Line {
  off: number;
  bytes: string;
  text: string;
  /** Letters of {@link FLAG}. */
  flags: string;
}

/** Instruction flags in a {@link Line}. */
export const FLAG = { fence: 'F', site: 'S', finding: 'X', patched: 'P', related: 'R' } as const;

/** A line packed as `off<TAB>bytes<TAB>text<TAB>flags` (off in hex). */
export function encodeLine(l: Line): string {
  return `${l.off.toString(16)}\t${l.bytes}\t${l.text}\t${l.flags}`;
}

export function encodeLines(ls: readonly Line[]): string {
  return ls.map(encodeLine).join('\n');
}

export function parseLines(t: string | undefined): Line[] {
  if (!t) return [];
  return t.split('\n').map((l) => {
    const [o, b, x, f] = l.split('\t');
    return { off: parseInt(o!, 16), bytes: b ?? '', text: x ?? '', flags: f ?? '' };
  });
}

/** A patched range: the instructions of `before` starting in [from, to) are replaced by `lines` (packed). */
export type Change = [from: number, to: number, lines: string];

/** The instructions after patching: `before` with each change's range replaced by its lines ([] when unchanged). */
export function applyChanges(before: Line[], changes: readonly Change[] | undefined): Line[] {
  if (!changes?.length) return [];
  const out = before.filter((l) => !changes.some(([a, b]) => l.off >= a && l.off < b));
  for (const c of changes) out.push(...parseLines(c[2]));
  return out.sort((x, y) => x.off - y.off);
}

/** A basic block: [start, end) offsets from the function's start. */
export interface Block {
  readonly start: number;
  readonly end: number;
}

/** Blocks packed flat: [start0, end0, start1, end1, ...]. */
export function packBlocks(bs: readonly Block[]): number[] {
  const out: number[] = [];
  for (const b of bs) out.push(b.start, b.end);
  return out;
}

export function blocksOf(packed: readonly number[]): Block[] {
  const out: Block[] = [];
  for (let k = 0; k + 1 < packed.length; k += 2) out.push({ start: packed[k]!, end: packed[k + 1]! });
  return out;
}

/** An edge out of block `from`: to an offset in the function, or to `symbol+0xoff` outside it ('?' unknown). */
export interface Edge {
  readonly from: number;
  readonly to: number | string;
  readonly kind: string;
}

/** Edges packed flat: [from0, to0, kind0, from1, ...]. */
export function packEdges(es: readonly Edge[]): Array<number | string> {
  const out: Array<number | string> = [];
  for (const e of es) out.push(e.from, e.to, e.kind);
  return out;
}

export function edgesOf(packed: readonly (number | string)[]): Edge[] {
  const out: Edge[] = [];
  for (let k = 0; k + 2 < packed.length; k += 3)
    out.push({ from: packed[k] as number, to: packed[k + 1]!, kind: String(packed[k + 2]) });
  return out;
}
