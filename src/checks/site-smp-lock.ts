/**
 * site-smp-lock: each .smp_locks entry must point at a `lock` prefix (f0): on a uniprocessor boot the
 * kernel rewrites that byte to a `ds` prefix (3e) and back, whatever byte is there.
 */
import type { View } from '../cfg/view.js';
import type { Check } from './check.js';
import { Finding, finding } from './finding.js';
import { hex, sitesOf } from './site-common.js';

export const siteSmpLock: Check = {
  id: 'site-smp-lock',
  describe: '.smp_locks entry not at a lock prefix',
  severity: 'error',
  byDefault: true,
  run(view: View): Finding[] {
    const out: Finding[] = [];
    for (const s of sitesOf(view, '.smp_locks')) {
      const b = view.img.read(s.addr, 1);
      if (!b || b[0] === 0xf0) continue;
      out.push(finding(view, 'site-smp-lock', 'error', s.addr, `.smp_locks entry ${s.index}: byte is ${hex(b)}, not a lock prefix (f0)`));
    }
    return out;
  },
};
