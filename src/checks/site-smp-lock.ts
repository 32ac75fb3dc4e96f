/**
 * site-smp-lock: each .smp_locks entry must point at a `lock` prefix (f0): on a uniprocessor boot the
 * kernel rewrites that byte to a `ds` prefix (3e) and back when it is f0, and skips the entry otherwise.
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
      // A lock prefix a few bytes on (a warning: harmless on SMP, the lock is only never dropped on UP), inside the same instruction's prefixes (e.g. `66 f0 0f b1`: the assembler
      // put the operand-size prefix first): the kernel tests the byte and silently leaves this lock in place.
      const ahead = view.img.read(s.addr, 4);
      const k = ahead ? ahead.indexOf(0xf0) : -1;
      const later =
        k > 0 &&
        [...ahead!.subarray(0, k)].every(
          (x) =>
            x === 0x66 ||
            x === 0x2e ||
            x === 0x3e ||
            x === 0x26 ||
            x === 0x64 ||
            x === 0x65 ||
            x === 0x36 ||
            x === 0xf2 ||
            x === 0xf3,
        )
          ? `; the lock prefix is ${k} byte${k > 1 ? 's' : ''} later, after ${hex(ahead!.subarray(0, k))}: the UP patcher (alternatives_smp_unlock) checks for f0 and skips this entry`
          : '';
      out.push(
        finding(
          view,
          'site-smp-lock',
          later ? 'warning' : 'error',
          s.addr,
          `.smp_locks entry ${s.index}: byte is ${hex(b)}, not a lock prefix (f0)${later}`,
        ),
      );
    }
    return out;
  },
};
