/**
 * Speculation barriers of a view and what each one is for. A barrier is an `lfence` (any encoding) or a
 * serialising instruction in the bytes; on the bytes as built, an alternative site whose replacement
 * starts with `lfence` also counts (Linux's barrier_nospec() is NOPs until apply_alternatives writes the
 * fence). On Xen the alternative that can remove a fence tells its purpose: SC_NO_BRANCH_HARDEN marks
 * evaluate_nospec()/block_speculation() branch hardening, SC_NO_LOCK_HARDEN the fence after a lock is
 * taken (not a branch guard). On Xen only the SC_NO_BRANCH_HARDEN fences guard branches; elsewhere any
 * fence does (a plain lfence is a fence).
 */
import { featureNumber } from '../target/features/index.js';
import type { SectionCode } from '../x86/code.js';
import { isFenceCode } from './insn.js';
import type { View } from './view.js';

export type FencePurpose = 'branch' | 'lock' | 'other';

export interface FenceInfo {
  /** Purpose by relative address of the fence (or of the site that becomes one). */
  readonly purpose: Map<number, FencePurpose>;
  /** Alternative sites (as built) that become a fence when patched: site address -> site length. */
  readonly altFence: Map<number, number>;
  /** Feature numbers of Xen's SC_NO_BRANCH_HARDEN / SC_NO_LOCK_HARDEN, when the table knows them. */
  readonly branchHarden?: number;
  readonly lockHarden?: number;
}

const cache = new WeakMap<View, FenceInfo>();

export function fenceInfo(view: View): FenceInfo {
  let fi = cache.get(view);
  if (fi) return fi;
  const purpose = new Map<number, FencePurpose>();
  const altFence = new Map<number, number>();
  const ft = view.features;
  const branchHarden = ft && view.target.os === 'xen' ? featureNumber(ft, 'SC_NO_BRANCH_HARDEN') : undefined;
  const lockHarden = ft && view.target.os === 'xen' ? featureNumber(ft, 'SC_NO_LOCK_HARDEN') : undefined;
  for (const s of view.sites) {
    if (s.table !== '.altinstructions' || s.feature === undefined) continue;
    if (branchHarden !== undefined && s.feature === branchHarden) purpose.set(s.addr, 'branch');
    else if (lockHarden !== undefined && s.feature === lockHarden) purpose.set(s.addr, 'lock');
    else if (!view.patched && s.repl && s.repl.length >= 3) {
      const r = view.insnAt(s.repl.addr);
      const here = view.insnAt(s.addr);
      if (r && isFenceCode(r.sc.code[r.i]!) && !(here && isFenceCode(here.sc.code[here.i]!))) altFence.set(s.addr, s.length);
    }
  }
  fi = { purpose, altFence, branchHarden, lockHarden };
  cache.set(view, fi);
  return fi;
}

/** Is instruction `i` a speculation barrier that guards branches (not a lock-hardening fence)? */
export function isBranchFence(view: View, fi: FenceInfo, sc: SectionCode, i: number): boolean {
  const a = sc.section.addr + sc.off[i]!;
  // Xen marks every branch-hardening fence with an SC_NO_BRANCH_HARDEN alternative; other fences (rdtsc
  // ordering, entry paths, lock hardening) are not branch guards.
  if (fi.branchHarden !== undefined) return fi.purpose.get(a) === 'branch' && (isFenceCode(sc.code[i]!) || view.patched);
  if (isFenceCode(sc.code[i]!)) return fi.purpose.get(a) !== 'lock';
  return fi.altFence.has(a);
}

/** Is instruction `i` any speculation barrier (including lock hardening)? */
export function isAnyFence(view: View, fi: FenceInfo, sc: SectionCode, i: number): boolean {
  return isFenceCode(sc.code[i]!) || fi.altFence.has(sc.section.addr + sc.off[i]!);
}
