/**
 * Speculation barriers of a view and what each one is for.
 *
 * - Xen: every branch-hardening fence (evaluate_nospec(), block_speculation()) is an `lfence` with an
 *   alternative that NOPs it out under SC_NO_BRANCH_HARDEN; lock hardening uses SC_NO_LOCK_HARDEN (the fence
 *   after a lock is taken: not a branch guard). Other fences (rdtsc ordering, entry paths) guard no branch.
 * - Linux: barrier_nospec() is an alternative whose replacement is exactly `lfence` (NOPs as built, the fence
 *   once apply_alternatives ran). A plain `lfence` in the bytes is rmb() or rdtsc ordering, not a branch guard.
 * - Any other x86-64 object: any `lfence` (or serialising instruction) is a fence.
 *
 * On a patched view a guard counts only if the bytes there now are a fence (a CPU whose features NOP it out
 * has no barrier at that place).
 */
import { featureNumber } from '../target/features/index.js';
import type { SectionCode } from '../x86/code.js';
import { isFenceCode } from './insn.js';
import type { View } from './view.js';

export type FencePurpose = 'branch' | 'lock' | 'other';

export interface FenceInfo {
  /** 'table': only the guards listed in `purpose` as 'branch' guard branches; 'any': every fence does. */
  readonly mode: 'table' | 'any';
  /** Purpose by relative address of the fence (or of the alternative site that becomes one). */
  readonly purpose: Map<number, FencePurpose>;
  /** Linux: alternative sites whose replacement is exactly `lfence` (barrier_nospec()), address -> site length. */
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
  const os = view.target.profile ? view.target.os : 'unknown';
  const branchHarden = ft && os === 'xen' ? featureNumber(ft, 'SC_NO_BRANCH_HARDEN') : undefined;
  const lockHarden = ft && os === 'xen' ? featureNumber(ft, 'SC_NO_LOCK_HARDEN') : undefined;
  for (const s of view.sites) {
    if (s.table !== '.altinstructions' || s.feature === undefined) continue;
    if (os === 'xen') {
      if (branchHarden !== undefined && s.feature === branchHarden) purpose.set(s.addr, 'branch');
      else if (lockHarden !== undefined && s.feature === lockHarden) purpose.set(s.addr, 'lock');
    } else if (os === 'linux' && s.repl && s.repl.length === 3) {
      const r = view.built.at(s.repl.addr);
      const i = r ? r.indexAt(s.repl.addr - r.section.addr) : -1;
      if (r && i >= 0 && isFenceCode(r.code[i]!) && r.len[i] === 3) {
        purpose.set(s.addr, 'branch');
        altFence.set(s.addr, s.length);
      }
    }
  }
  fi = { mode: os === 'xen' || os === 'linux' ? 'table' : 'any', purpose, altFence, branchHarden, lockHarden };
  cache.set(view, fi);
  return fi;
}

/** Is instruction `i` a speculation barrier that guards branches? */
export function isBranchFence(view: View, fi: FenceInfo, sc: SectionCode, i: number): boolean {
  const code = sc.code[i]!;
  if (fi.mode === 'any') return isFenceCode(code);
  const a = sc.section.addr + sc.off[i]!;
  if (fi.purpose.get(a) !== 'branch') return false;
  // As built, a Linux barrier_nospec() site is NOPs that become the fence; on a patched view the bytes decide.
  return isFenceCode(code) || (!view.patched && fi.altFence.has(a));
}

/** Is instruction `i` any speculation barrier or a site that becomes one (for quick filtering)? */
export function isAnyFence(view: View, fi: FenceInfo, sc: SectionCode, i: number): boolean {
  return isFenceCode(sc.code[i]!) || (!view.patched && fi.altFence.has(sc.section.addr + sc.off[i]!));
}

const anyCache = new WeakMap<View, boolean>();

/** Does the view hold any fence (or site that becomes one) at all? Most objects do not: checks skip them. */
export function hasAnyFence(view: View, fi: FenceInfo): boolean {
  let v = anyCache.get(view);
  if (v !== undefined) return v;
  v = fi.altFence.size > 0 && !view.patched;
  if (!v) {
    outer: for (const sc of view.code()) {
      const code = sc.code;
      for (let i = 0; i < sc.count; i++)
        if (isFenceCode(code[i]!)) {
          v = true;
          break outer;
        }
    }
  }
  anyCache.set(view, v);
  return v;
}
