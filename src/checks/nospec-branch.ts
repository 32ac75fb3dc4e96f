/**
 * nospec-branch: a conditional branch where one successor starts with a speculation barrier and the other
 * does not. evaluate_nospec() puts a fence at the head of BOTH successors; a fence on one arm only leaves
 * the other arm speculatively reachable with the wrong condition (seed 000: "the lfence must be at the head
 * of both basic blocks"). Register- and stack-only instructions may precede the fence; a compare chain whose
 * arms are all fenced counts as fenced. On Xen, lock-hardening fences (SC_NO_LOCK_HARDEN, after a lock is
 * taken) are not branch guards and are ignored; each finding names the hardening kind of the fence it saw.
 * Not reported: store-bypass barriers (one-sided by design, cfg/fence-classes.ts), and a barrier
 * whose unfenced side reaches no memory access or call before it returns.
 */
import { FlowControl } from '../x86/insn.js';
import { classifyFences } from '../cfg/fence-classes.js';
import { fenceInfo, hasAnyFence } from '../cfg/fences.js';
import { firstAccess } from './nospec-outlined.js';
import { fenceAhead, fenceNear } from '../cfg/flow.js';
import { destOf, trailingReloc } from '../cfg/targets.js';
import type { View } from '../cfg/view.js';
import type { Check } from './check.js';
import { Finding, finding, related } from './finding.js';

export const nospecBranch: Check = {
  id: 'nospec-branch',
  describe: 'conditional branch with a speculation barrier at the head of one successor only',
  severity: 'warning',
  byDefault: true,
  run(view: View): Finding[] {
    const fi = fenceInfo(view);
    const out: Finding[] = [];
    if (!hasAnyFence(view, fi)) return out;
    const rel = view.img.kind === 'rel' && !view.patched;
    const classOf = new Map(classifyFences(view).fences.map((f) => [f.addr, f.cls]));
    for (const sc of view.code()) {
      // static_cpu_has() slow paths run only until apply_alternatives(); replacements are checked where they land.
      if (sc.section.name === '.altinstr_aux' || sc.section.name === '.altinstr_replacement') continue;
      const base = sc.section.addr;
      for (let i = 0; i < sc.count; i++) {
        if (sc.flow[i] !== FlowControl.ConditionalBranch) continue;
        const a = base + sc.off[i]!;
        const fall = a + sc.len[i]!;
        // In a relocatable object a branch to another section holds its destination in a relocation.
        const t = rel && trailingReloc(view, sc, i) ? (destOf(view, sc, i)?.addr ?? NaN) : sc.target[i]!;
        if (!fenceNear(view, fi, fall) && (Number.isNaN(t) || !fenceNear(view, fi, t))) continue;
        const d = destOf(view, sc, i);
        if (!d || Number.isNaN(d.addr)) continue;
        const fFall = fenceAhead(view, fi, fall);
        const fTaken = fenceAhead(view, fi, d.addr);
        if (Number.isNaN(fFall) === Number.isNaN(fTaken)) continue;
        const fenced = Number.isNaN(fFall) ? fTaken : fFall;
        const bare = Number.isNaN(fFall) ? fall : d.addr;
        const side = Number.isNaN(fFall) ? 'taken' : 'not-taken';
        // A store-bypass barrier is one-sided by design; a barrier whose other side reaches no memory access
        // or call before it returns leaves nothing to harden there (docs/check.md).
        if (classOf.get(fenced) === 'store-bypass') continue;
        if (!firstAccess(view, fi, bare)) continue;
        const kind = fenceKind(view, fi, fenced);
        // Linux guards only the path that goes on to use the checked value (access_ok() + barrier_nospec()),
        // by design: listed for review, not a warning.
        const linux = view.target.profile !== null && view.target.os === 'linux';
        out.push(
          finding(
            view,
            'nospec-branch',
            linux ? 'info' : 'warning',
            a,
            `conditional branch has a speculation barrier on the ${side} path only${kind}; the other path (${view.img.where(bare)}) is unfenced${linux ? ' (Linux fences one path by design after access_ok(); review)' : ''}`,
            [
              related(view, fenced, 'speculation barrier on one successor'),
              related(view, bare, 'successor without a barrier'),
            ],
          ),
        );
      }
    }
    return out;
  },
};

function fenceKind(view: View, fi: ReturnType<typeof fenceInfo>, _addr: number): string {
  if (fi.mode === 'any') return '';
  if (view.target.os === 'xen') return ' (branch hardening, SC_NO_BRANCH_HARDEN)';
  return view.patched ? ' (barrier_nospec)' : ' (barrier_nospec: alternative that becomes lfence)';
}
