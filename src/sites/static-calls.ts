/** `.static_call_sites`: s32 site (rel), s32 key (rel); key low bits: 1 = TAIL, 2 = INIT. */
import type { StaticCallSite } from './site.js';
import type { TableData } from './table.js';

export function readStaticCalls(t: TableData): StaticCallSite[] {
  const out: StaticCallSite[] = [];
  for (let i = 0; i < t.count; i++) {
    const at = t.rel(i, 0);
    const k = t.flaggedKey(i, 4);
    const bits = k?.bits ?? 0;
    const site: StaticCallSite = {
      table: '.static_call_sites',
      index: i,
      addr: at ? at.addr : NaN,
      length: 0,
      key: k?.key ?? { addr: NaN },
      tail: (bits & 1) !== 0,
      init: (bits & 2) !== 0,
    };
    if (!at) site.problems = ['site field has no relocation'];
    out.push(site);
  }
  return out;
}
