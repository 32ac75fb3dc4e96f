/**
 * site-static-call: a .static_call_sites entry must be a 5-byte `call rel32` (e8), or for a TAIL site a
 * 5-byte `jmp rel32` (e9) or a 6-byte `jcc rel32` (0f 80..8f): what __static_call_validate() accepts before
 * static_call_transform() rewrites it (bytes as built).
 */
import type { View } from '../cfg/view.js';
import type { Check } from './check.js';
import { Finding, finding } from './finding.js';
import { hex, isNop5, sitesOf } from './site-common.js';

export const siteStaticCall: Check = {
  id: 'site-static-call',
  describe: 'static-call site that is not e8/e9/0f 8x of the right length',
  severity: 'error',
  byDefault: true,
  run(view: View): Finding[] {
    const out: Finding[] = [];
    for (const s of sitesOf(view, '.static_call_sites')) {
      const b = view.img.read(s.addr, 6) ?? view.img.read(s.addr, 5);
      if (!b) continue;
      const call = b[0] === 0xe8 && s.length === 5;
      const jmp = b[0] === 0xe9 && s.length === 5;
      const jcc = b[0] === 0x0f && (b[1]! & 0xf0) === 0x80 && s.length === 6;
      // A linked kernel may carry sites objtool already turned into NOPs (inline static calls to a NULL target).
      const ok = s.tail ? jmp || jcc : call || (view.img.kind !== 'rel' && isNop5(b));
      if (ok) continue;
      out.push(
        finding(
          view,
          'site-static-call',
          'error',
          s.addr,
          `.static_call_sites entry ${s.index}${s.tail ? ' (tail)' : ''}: site is ${hex(b.subarray(0, Math.max(1, Math.min(s.length || 5, b.length))))} (${s.length} bytes), not ${s.tail ? 'a 5-byte jmp (e9) or 6-byte jcc (0f 8x)' : 'a 5-byte call (e8)'}`,
        ),
      );
    }
    return out;
  },
};
