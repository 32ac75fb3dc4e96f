import type { ApiCall, Caller, PatcherOp, Protocol, SiteDef, SiteInfo } from '../types.js';
import { INT3 } from './common.js';

/**
 * Linux 6.16+'s batched text-poke API (arch/x86/kernel/alternative.c), as the kernel implements it:
 *
 * - `smp_text_poke_batch_add(addr)` (historically `text_poke_queue`): if `text_poke_array` is full
 *   (TEXT_POKE_ARRAY_MAX entries) or `addr` is below its last entry (`text_poke_addr_ordered()` fails), first
 *   `smp_text_poke_batch_finish()`; then `__smp_text_poke_batch_add()` appends the site to `text_poke_array.vec`.
 * - `smp_text_poke_batch_finish()` (historically `text_poke_finish`, the work of `text_poke_bp_batch`):
 *   nothing if the vector is empty; else `text_poke_array_refs` = 1, int3 on the first byte of every entry,
 *   `smp_text_poke_sync_each_cpu()`, the other bytes of every entry, sync (if an entry has more than one
 *   byte), the first byte of every entry, sync, refs back to 0 and `nr_entries = 0`.
 * - `smp_text_poke_single(addr)` (historically `text_poke_bp`): `smp_text_poke_batch_add()` then
 *   `smp_text_poke_batch_finish()` since Masami Hiramatsu's fix ("x86/alternatives: Fix int3 handling failure
 *   from broken text_poke array", June 2025). Between commit c8976ade0c1b ("x86/alternatives: Simplify
 *   smp_text_poke_single() by using tp_vec and existing APIs") and that fix it called
 *   `__smp_text_poke_batch_add()` directly: no flush, so it could append out of address order, or past a
 *   full vector, while another caller's batch was being built.
 * - `smp_text_poke_int3_handler()` (historically `poke_int3_handler`): while refs is non-zero, look the
 *   trapping address up in the vector (`__inline_bsearch()`, or a direct comparison for one entry) and
 *   emulate the new instruction; on a miss return 0, and do_int3() oopses.
 *
 * Each caller's API calls are made under text_mutex, so calls never overlap, but the calls of different
 * callers interleave in any order: the patching CPU first picks one such order (one `choose` step), then runs
 * it. What a call does depends only on the vector, which only the calls change, so each order compiles to
 * a fixed list of steps; the vector (nr_entries, vec[]) and refs are protocol variables the int3 handler
 * reads. Without `callers` in the scenario, every site is patched by its own `smp_text_poke_single()`.
 */
export type SingleVariant = 'fixed' | 'c8976ade0c1b';

/** Default bound on text_poke_array (the kernel's is PAGE_SIZE / sizeof(struct smp_text_poke_loc) = 256). */
export const BATCH_MAX = 4;
const REFS = 0;
const NR = 1;
const VEC = 2;

export function batchProtocol(variant: SingleVariant): Protocol {
  const fixed = variant === 'fixed';
  return {
    name: fixed ? 'smp-text-poke-batch' : 'smp-text-poke-batch-c8976ade0c1b',
    summary: fixed
      ? 'Linux 6.16+: smp_text_poke_batch_add/_finish/_single (text_poke_queue/_finish/text_poke_bp), bsearch in the int3 handler; single() flushes first'
      : 'the same in linux-next June 2025 (c8976ade0c1b): smp_text_poke_single() appends with __smp_text_poke_batch_add(), no flush',
    multiSite: true,
    plan(site) {
      const max = site.batchMax ?? BATCH_MAX;
      const callers =
        site.callers ??
        site.sites.map((d) => ({
          name: `caller of ${d.name}`,
          calls: [{ fn: 'smp_text_poke_single' as const, site: d.name }],
        }));
      checkCallers(site, callers);
      const vars = ['text_poke_array_refs', 'nr_entries', ...Array.from({ length: max }, (_, i) => `vec[${i}]`)];
      const orders = interleavings(callers);
      const bodies = orders.map((order) => schedule(site, order, max, fixed));
      const ops: PatcherOp[] = [];
      if (orders.length > 1)
        ops.push({
          kind: 'choose',
          to: [],
          notes: orders.map(
            (o) => `text_mutex order: ${o.map(([c, k]) => `${c.name}: ${callText(c.calls[k]!)}`).join('; ')}`,
          ),
        });
      const starts: number[] = [];
      for (const body of bodies) {
        starts.push(ops.length);
        ops.push(...body);
      }
      const end = ops.length;
      // Each order's last step ends the protocol.
      starts.forEach((st, i) => {
        const last = ops[st + bodies[i]!.length - 1];
        if (last && i < bodies.length - 1) last.next = end;
      });
      if (orders.length > 1) (ops[0] as { to: number[] }).to = starts;
      return {
        inNmi: false,
        vars,
        ops,
        int3: [
          {
            at: 'any',
            cpu: 'any',
            when: { v: REFS, val: 1 },
            program: [{ kind: 'bsearch', nr: NR, vec: vars.slice(VEC).map((_, i) => VEC + i) }],
          },
        ],
        accept: [],
      };
    },
  };
}

function callText(c: ApiCall): string {
  return `${c.fn}(${c.site ?? ''})`;
}

function checkCallers(site: SiteInfo, callers: Caller[]): void {
  const seen = new Set<string>();
  for (const c of callers) {
    for (const call of c.calls) {
      if (call.fn === 'smp_text_poke_batch_finish') continue;
      if (!site.sites.some((d) => d.name === call.site))
        throw new Error(`caller ${c.name}: ${call.fn} names unknown site "${String(call.site)}"`);
      if (seen.has(call.site!)) throw new Error(`site ${call.site} is patched by more than one call`);
      seen.add(call.site!);
    }
  }
  for (const d of site.sites) if (!seen.has(d.name)) throw new Error(`no caller patches site ${d.name}`);
}

/** Every merge of the callers' call sequences (each keeps its own order): [caller, call index] lists. */
function interleavings(callers: Caller[]): Array<Array<[Caller, number]>> {
  const out: Array<Array<[Caller, number]>> = [];
  const pos = callers.map(() => 0);
  const cur: Array<[Caller, number]> = [];
  const rec = (): void => {
    if (out.length > 64)
      throw new Error("too many orders of the callers' API calls (more than 64): fewer callers or calls");
    let any = false;
    callers.forEach((c, i) => {
      if (pos[i]! >= c.calls.length) return;
      any = true;
      cur.push([c, pos[i]!]);
      pos[i]!++;
      rec();
      pos[i]!--;
      cur.pop();
    });
    if (!any) out.push(cur.slice());
  };
  rec();
  return out;
}

/** The patcher's steps for one order of API calls, simulating text_poke_array as the kernel keeps it. */
function schedule(site: SiteInfo, order: Array<[Caller, number]>, max: number, fixed: boolean): PatcherOp[] {
  const ops: PatcherOp[] = [];
  const vec: SiteDef[] = [];
  const byName = (n: string) => site.sites.find((d) => d.name === n)!;
  let overflowed = false;
  const append = (who: string, d: SiteDef): void => {
    if (vec.length >= max) {
      ops.push({
        kind: 'fail',
        property: 'vector-overflow',
        message: `${who}: __smp_text_poke_batch_add(${d.name}) writes text_poke_array.vec[${vec.length}] of a ${max}-entry vector (TEXT_POKE_ARRAY_MAX): overflow`,
      });
      overflowed = true;
      return;
    }
    ops.push({
      kind: 'set',
      v: VEC + vec.length,
      val: d.off,
      also: [[NR, vec.length + 1]],
      note: `${who}: __smp_text_poke_batch_add(${d.name}): text_poke_array.vec[${vec.length}] = +${d.off}, nr_entries = ${vec.length + 1}`,
    });
    vec.push(d);
  };
  const finish = (who: string): void => {
    if (!vec.length) return;
    const f = `${who}: smp_text_poke_batch_finish`;
    ops.push({
      kind: 'set',
      v: REFS,
      val: 1,
      note: `${f}: text_poke_array_refs = 1 (${vec.length} entr${vec.length > 1 ? 'ies' : 'y'})`,
    });
    for (const d of vec)
      if (site.old[d.off] !== INT3)
        ops.push({ kind: 'write', bytes: [[d.off, INT3]], note: `${f}: int3 on ${d.name}` });
    ops.push({ kind: 'sync', note: f });
    let tails = false;
    for (const d of vec) {
      if (d.len > 1) tails = true;
      for (let o = d.off + 1; o < d.off + d.len; o++)
        if (site.changed.includes(o))
          ops.push({ kind: 'write', bytes: [[o, site.new[o]!]], note: `${f}: ${d.name} tail` });
    }
    if (tails) ops.push({ kind: 'sync', note: f });
    let firsts = false;
    for (const d of vec) {
      if (site.new[d.off] === INT3) continue;
      firsts = true;
      ops.push({ kind: 'write', bytes: [[d.off, site.new[d.off]!]], note: `${f}: ${d.name} first byte` });
    }
    if (firsts) ops.push({ kind: 'sync', note: f });
    ops.push({ kind: 'set', v: REFS, val: 0, also: [[NR, 0]], note: `${f}: text_poke_array_refs = 0, nr_entries = 0` });
    vec.length = 0;
  };
  const batchAdd = (who: string, d: SiteDef): void => {
    const last = vec.at(-1);
    if (vec.length === max || (last && last.off > d.off))
      finish(`${who}: smp_text_poke_batch_add(${d.name}) flushes first`);
    append(who, d);
  };
  for (const [c, k] of order) {
    const call = c.calls[k]!;
    if (call.fn === 'smp_text_poke_batch_finish') finish(c.name);
    else if (call.fn === 'smp_text_poke_batch_add') batchAdd(c.name, byName(call.site!));
    else {
      const who = `${c.name}: smp_text_poke_single(${call.site})`;
      if (fixed) batchAdd(who, byName(call.site!));
      else append(who, byName(call.site!));
      if (!overflowed) finish(who);
    }
    if (overflowed) return ops;
  }
  if (vec.length)
    throw new Error(
      `an order of the callers' calls leaves ${vec.map((d) => d.name).join(', ')} pending: end each batch with smp_text_poke_batch_finish`,
    );
  return ops;
}

export const smpTextPokeBatch = batchProtocol('fixed');
export const smpTextPokeBatchC8976ade = batchProtocol('c8976ade0c1b');
