/** `.parainstructions`: 16-byte entries: u64 absolute site address, u8 type (pv_ops slot), u8 len, u16 clobbers. */
import type { ParavirtSite } from './site.js';
import type { TableData } from './table.js';

export function readParavirt(t: TableData): ParavirtSite[] {
  const out: ParavirtSite[] = [];
  for (let i = 0; i < t.count; i++) {
    const at = t.abs64(i, 0);
    const site: ParavirtSite = {
      table: '.parainstructions',
      index: i,
      addr: at ? at.addr : NaN,
      length: t.u8(i, 9),
      paraType: t.u8(i, 8),
      clobbers: t.u16(i, 10),
    };
    if (!at) site.problems = ['site address has no relocation'];
    out.push(site);
  }
  return out;
}
