/**
 * site-cacheline: a 5-byte call/jmp site (static call, 5-byte jump label) whose rel32 crosses a 64-byte
 * cache line cannot be rewritten with one atomic store; live patching it needs the int3 dance
 * (text_poke_bp) rather than a plain write (seed 004: "only do it when the thing doesn't cross a cache
 * line"). Information only. In a relocatable object the final placement is known only when the section is
 * aligned to at least 64 bytes; other sections are skipped.
 */
import type { View } from '../cfg/view.js';
import type { Site } from '../sites/site.js';
import type { Check } from './check.js';
import { Finding, finding } from './finding.js';
import { sitesOf } from './site-common.js';

export const siteCacheline: Check = {
  id: 'site-cacheline',
  describe: '5-byte call/jmp site whose displacement crosses a cache line (info)',
  severity: 'info',
  byDefault: true,
  run(view: View): Finding[] {
    const out: Finding[] = [];
    const img = view.img;
    const sites: Site[] = [...sitesOf(view, '.static_call_sites'), ...sitesOf(view, '__jump_table')];
    for (const s of sites) {
      if (s.length !== 5) continue;
      const b = img.read(s.addr, 1);
      if (!b || (b[0] !== 0xe8 && b[0] !== 0xe9 && !(s.table === '__jump_table' && b[0] === 0x0f))) continue;
      const sec = img.sectionAt(s.addr);
      if (!sec) continue;
      let abs: bigint;
      if (img.kind === 'rel') {
        if (sec.addralign < 64) continue;
        abs = BigInt(s.addr - sec.addr);
      } else abs = img.base + BigInt(s.addr);
      const first = (abs + 1n) >> 6n;
      const last = (abs + 4n) >> 6n;
      if (first === last) continue;
      out.push(
        finding(
          view,
          'site-cacheline',
          'info',
          s.addr,
          `${s.table} entry ${s.index}: rel32 of this 5-byte ${b[0] === 0xe8 ? 'call' : 'jmp/NOP'} crosses a cache line; it cannot be rewritten atomically without int3 (text_poke_bp)`,
        ),
      );
    }
    return out;
  },
};
