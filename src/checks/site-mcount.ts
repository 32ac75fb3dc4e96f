/**
 * site-mcount: each __mcount_loc entry must be a `call __fentry__` (e8, in a relocatable object with its
 * relocation naming __fentry__) or the 5-byte NOP ftrace leaves there: ftrace_make_nop() refuses anything else.
 */
import type { View } from '../cfg/view.js';
import { relocsOf } from '../cfg/targets.js';
import type { Check } from './check.js';
import { Finding, finding } from './finding.js';
import { hex, isNop5, sitesOf } from './site-common.js';

const FENTRY = new Set(['__fentry__', 'mcount', '__mcount', '_mcount']);

export const siteMcount: Check = {
  id: 'site-mcount',
  describe: '__mcount_loc entry not at call __fentry__ or a 5-byte NOP',
  severity: 'error',
  byDefault: true,
  run(view: View): Finding[] {
    const out: Finding[] = [];
    const img = view.img;
    for (const s of sitesOf(view, '__mcount_loc')) {
      const b = img.read(s.addr, 5);
      if (!b) continue;
      if (isNop5(b)) continue;
      let callee: string | undefined;
      if (b[0] === 0xe8) {
        if (img.kind === 'rel') {
          const sec = img.sectionAt(s.addr)!;
          const r = relocsOf(view, sec).get(s.addr - sec.addr + 1);
          callee = r ? img.relocSymbolName(r) : undefined;
        } else {
          const t = s.addr + 5 + new DataView(b.buffer, b.byteOffset, 5).getInt32(1, true);
          const sym = img.symbolize(t);
          callee = sym.offset === 0 ? sym.name : img.where(t);
        }
        if (callee && FENTRY.has(callee)) continue;
      }
      out.push(
        finding(
          view,
          'site-mcount',
          'error',
          s.addr,
          `__mcount_loc entry ${s.index}: ${callee ? `call to ${callee}` : hex(b)}, not call __fentry__ or a 5-byte NOP`,
        ),
      );
    }
    return out;
  },
};
