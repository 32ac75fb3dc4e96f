/** Which patch sites cover an address: per table, site starts sorted with their lengths, binary-searched. */
import type { Site } from '../sites/site.js';
import type { TableId } from '../target/profile.js';
import type { View } from './view.js';

export class SiteIndex {
  private readonly byTable = new Map<TableId, { starts: Float64Array; ends: Float64Array; sites: Site[] }>();

  constructor(sites: readonly Site[]) {
    const groups = new Map<TableId, Site[]>();
    for (const s of sites) {
      if (Number.isNaN(s.addr)) continue;
      let g = groups.get(s.table);
      if (!g) groups.set(s.table, (g = []));
      g.push(s);
    }
    for (const [t, g] of groups) {
      g.sort((a, b) => a.addr - b.addr);
      const starts = new Float64Array(g.length);
      const ends = new Float64Array(g.length);
      // ends[k] = max end of sites 0..k, so overlapping sites are still found.
      let maxEnd = -Infinity;
      g.forEach((s, k) => {
        starts[k] = s.addr;
        maxEnd = Math.max(maxEnd, s.addr + Math.max(1, s.length));
        ends[k] = maxEnd;
      });
      this.byTable.set(t, { starts, ends, sites: g });
    }
  }

  /** A site of `table` whose bytes include `addr`, or undefined. */
  covering(table: TableId, addr: number): Site | undefined {
    const e = this.byTable.get(table);
    if (!e) return undefined;
    let lo = 0;
    let hi = e.starts.length - 1;
    let k = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (e.starts[mid]! <= addr) {
        k = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    for (; k >= 0 && e.ends[k]! > addr; k--) {
      const s = e.sites[k]!;
      if (addr < s.addr + Math.max(1, s.length)) return s;
    }
    return undefined;
  }

  /** Sites of one table (sorted by address). */
  of(table: TableId): readonly Site[] {
    return this.byTable.get(table)?.sites ?? [];
  }

  has(table: TableId): boolean {
    return this.byTable.has(table);
  }
}

const cache = new WeakMap<View, SiteIndex>();
export function siteIndex(view: View): SiteIndex {
  let s = cache.get(view);
  if (!s) cache.set(view, (s = new SiteIndex(view.sites)));
  return s;
}
