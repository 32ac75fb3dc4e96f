/**
 * What the model's CPUs can see, memoised: the memory versions of the site (each distinct content once, by
 * id; a store applied to a version gives the same new version every time) and the instructions a CPU can
 * fetch at an offset when it may read any of a set of versions (tearing across fetch units included),
 * each classified as old, new, int3 or torn.
 */
import type { Decoded } from './decode.js';
import { RegionDecoder } from './decode.js';
import { FIELD_MAX } from './state.js';
import type { Model } from './types.js';
import { hex } from '../x86/insn.js';

/** One instruction a CPU can fetch, and what it is. */
export interface Outcome {
  insn: number[];
  cls: 'old' | 'new' | 'int3' | 'torn';
  next: number;
  asm: string;
  what: string;
  reads: Array<{ from: number; to: number; version: number }>;
}

/** The site's memory versions by id (states hold ids, one byte each: at most 256 versions). */
export class MemoryVersions {
  /** The site's bytes, by version id. */
  readonly vecs: Uint8Array[] = [];
  private readonly ids = new Map<string, number>();
  /** Memory version produced by applying a store to a version, per store. */
  private readonly writeMemo = new Map<object, Int16Array>();

  /** The id of a content (a new id the first time it is seen). */
  id(v: Uint8Array): number {
    const k = String.fromCharCode(...v);
    let id = this.ids.get(k);
    if (id === undefined) {
      id = this.vecs.length;
      if (id > FIELD_MAX)
        throw new Error('more than 256 memory versions: the protocol rewrites the site too often for this model');
      this.vecs.push(v);
      this.ids.set(k, id);
    }
    return id;
  }

  /** The version a store of `bytes` (offset, value pairs) makes of version `from`. */
  write(from: number, bytes: Array<[number, number]>): number {
    let memo = this.writeMemo.get(bytes);
    if (!memo) {
      memo = new Int16Array(FIELD_MAX + 1).fill(-1);
      this.writeMemo.set(bytes, memo);
    }
    let id = memo[from]!;
    if (id < 0) {
      const v = this.vecs[from]!.slice();
      for (const [o, val] of bytes) v[o] = val;
      id = this.id(v);
      memo[from] = id;
    }
    return id;
  }
}

/** Instruction fetch over the site's memory versions, memoised per (pc, versions a CPU may see). */
export class Fetcher {
  readonly decoder: RegionDecoder;
  private readonly memo = new Map<string, Outcome[]>();
  private readonly filler: number[];

  constructor(
    private readonly m: Model,
    private readonly memory: MemoryVersions,
  ) {
    this.decoder = new RegionDecoder(m.base);
    this.filler = new Array<number>(15).fill(m.filler);
  }

  free(): void {
    this.decoder.free();
  }

  /** Distinct instructions a CPU at pc can fetch when it may see the given memory versions (memoised). */
  outcomes(pc: number, versions: number[]): Outcome[] {
    const key = String.fromCharCode(pc, ...versions);
    let hit = this.memo.get(key);
    if (hit) return hit;
    const m = this.m;
    const out: Outcome[] = [];
    const seen = new Set<string>();
    const buf: number[] = [];
    const reads: Array<{ from: number; to: number; version: number }> = [];
    const rec = (off: number): void => {
      const k = m.chunkOf[off]!;
      const end = m.chunks[k]![1];
      const contents = new Set<string>();
      for (const id of versions) {
        const v = this.memory.vecs[id]!;
        let ck = '';
        for (let i = off; i < end; i++) ck += String.fromCharCode(v[i]!);
        if (contents.has(ck)) continue;
        contents.add(ck);
        for (let i = off; i < end; i++) buf.push(v[i]!);
        reads.push({ from: off, to: end, version: id });
        const atEnd = end >= m.len;
        const d = this.decoder.decode(pc, atEnd ? buf.concat(this.filler) : buf.length > 15 ? buf.slice(0, 15) : buf);
        if (!d.complete && !atEnd && buf.length < 15) rec(end);
        else {
          const len = d.complete ? d.len : 1;
          const insn = buf.concat(this.filler).slice(0, len);
          const ik = String.fromCharCode(...insn);
          if (!seen.has(ik)) {
            seen.add(ik);
            out.push(
              this.classify(
                pc,
                insn,
                d,
                reads.map((r) => ({ ...r })),
              ),
            );
          }
        }
        buf.length -= end - off;
        reads.pop();
      }
    };
    rec(pc);
    hit = out;
    this.memo.set(key, hit);
    return hit;
  }

  /** Classifies what a CPU at pc executes when the site holds `bytes` (from pc to the end of the site). */
  classifyWindow(pc: number, bytes: number[]): Outcome {
    const win = bytes.concat(this.filler);
    const d = this.decoder.decode(pc, win);
    return this.classify(pc, win.slice(0, d.complete ? d.len : 1), d, []);
  }

  private classify(pc: number, insn: number[], d: Decoded, reads: Outcome['reads']): Outcome {
    const m = this.m;
    const len = insn.length;
    let cls: Outcome['cls'] = 'torn';
    let leaves = false;
    if (d.valid && len === 1 && insn[0] === 0xcc) cls = 'int3';
    else if (d.valid && pc + len <= m.len) {
      const oi = m.oldInsns.get(pc);
      const ni = m.newInsns.get(pc);
      // New first: an instruction that is both (unchanged by the patch) is fine after the protocol ends.
      if (ni && eq(ni.bytes, insn)) {
        cls = 'new';
        leaves = ni.leaves;
      } else if (oi && eq(oi.bytes, insn)) {
        cls = 'old';
        leaves = oi.leaves;
      } else
        for (const a of m.accept)
          if (a.off === pc && eq(a.bytes, insn)) {
            cls = a.version;
            break;
          }
    }
    const asm = d.valid ? d.text : '(bad)';
    return { insn, cls, next: leaves ? m.len : pc + len, asm, what: `+${pc}: ${hex(insn)}  ${asm}`, reads };
  }
}

function eq(a: number[], b: number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
