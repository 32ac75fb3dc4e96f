/**
 * site-jump-label: a __jump_table site must be what arch_jump_label_transform can rewrite: a 2-byte
 * `jmp disp8` / `66 90`, or a 5-byte `jmp rel32` / `0f 1f 44 00 00` (bytes as built). A jump that does not
 * go to the entry's target is reported too: the kernel would BUG() on the mismatch when it next patches.
 */
import type { View } from '../cfg/view.js';
import type { Check } from './check.js';
import { Finding, finding } from './finding.js';
import { hex, isNop5, sitesOf } from './site-common.js';

export const siteJumpLabel: Check = {
  id: 'site-jump-label',
  describe: 'jump-label site that is not a 2/5-byte jmp or NOP (or jumps elsewhere than its entry says)',
  severity: 'error',
  byDefault: true,
  run(view: View): Finding[] {
    const out: Finding[] = [];
    const img = view.img;
    for (const s of sitesOf(view, '__jump_table')) {
      const b5 = img.read(s.addr, 5);
      const b = b5 ?? img.read(s.addr, 2);
      if (!b) continue;
      const jmp2 = b[0] === 0xeb;
      const nop2 = b[0] === 0x66 && b[1] === 0x90;
      const jmp5 = b[0] === 0xe9 && b.length >= 5;
      const nop5 = isNop5(b);
      if (!jmp2 && !nop2 && !jmp5 && !nop5) {
        out.push(
          finding(
            view,
            'site-jump-label',
            'error',
            s.addr,
            `__jump_table entry ${s.index}: site is neither a 2/5-byte jmp nor a 2/5-byte NOP (${hex(b5 ?? b)})`,
          ),
        );
        continue;
      }
      if ((jmp2 || jmp5) && s.target && !Number.isNaN(s.target.addr) && img.kind !== 'rel') {
        const len = jmp2 ? 2 : 5;
        const dv = new DataView(b.buffer, b.byteOffset, b.length);
        const to = s.addr + len + (jmp2 ? dv.getInt8(1) : dv.getInt32(1, true));
        if (to !== s.target.addr)
          out.push(
            finding(
              view,
              'site-jump-label',
              'error',
              s.addr,
              `__jump_table entry ${s.index}: site jumps to ${img.where(to)}, the entry's target is ${img.where(s.target.addr)}`,
            ),
          );
      }
    }
    return out;
  },
};
