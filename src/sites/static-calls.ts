/** `.static_call_sites`: s32 site (rel), s32 key (rel); key low bits: 1 = TAIL, 2 = INIT. */
import type { Image } from '../elf/image.js';
import type { Site } from './site.js';
import type { TableData } from './table.js';

export function readStaticCalls(t: TableData, img: Image): Site[] {
  const out: Site[] = [];
  for (let i = 0; i < t.count; i++) {
    const at = t.rel(i, 0);
    const key = t.rel(i, 4);
    // Flag bits ride in the low bits of the key (the addend in a relocatable object).
    const raw = key ? (key.addend !== undefined ? key.addend : key.addr) : 0;
    const bits = raw & 3;
    const keyAddr = key ? key.addr - bits : NaN;
    const site: Site = {
      table: '.static_call_sites',
      index: i,
      addr: at ? at.addr : NaN,
      length: 0,
      key: { addr: keyAddr, name: key?.name ?? (Number.isNaN(keyAddr) ? undefined : img.symbolize(keyAddr).name) },
      tail: (bits & 1) !== 0,
      init: (bits & 2) !== 0,
    };
    if (!at) site.problems = ['site field has no relocation'];
    out.push(site);
  }
  return out;
}
