/**
 * site-boundary: a patch site that does not start (or, for sites with a length, end) on an instruction
 * boundary of the bytes as built: the patcher would rewrite half an instruction.
 */
import type { View } from '../cfg/view.js';
import type { Check } from './check.js';
import { Finding, finding } from './finding.js';

export const siteBoundary: Check = {
  id: 'site-boundary',
  describe: 'patch site not on an instruction boundary',
  severity: 'error',
  byDefault: true,
  run(view: View): Finding[] {
    const out: Finding[] = [];
    for (const s of view.sites) {
      for (const p of s.problems ?? []) {
        if (!p.includes('instruction boundary')) continue;
        out.push(finding(view, 'site-boundary', 'error', s.addr, `${s.table} entry ${s.index}: ${p}`));
      }
    }
    return out;
  },
};
