/** `__jump_table`: s32 code (rel), s32 target (rel), s64 key (rel); key bit 0 = branch default, bit 1 = NOPed at build. */
import type { JumpLabelSite } from './site.js';
import type { TableData } from './table.js';

export function readJumpLabels(t: TableData): JumpLabelSite[] {
  const out: JumpLabelSite[] = [];
  for (let i = 0; i < t.count; i++) {
    const code = t.rel(i, 0);
    const target = t.rel(i, 4);
    const k = t.flaggedKey(i, 8, true);
    const bits = k?.bits ?? 0;
    const site: JumpLabelSite = {
      table: '__jump_table',
      index: i,
      addr: code ? code.addr : NaN,
      length: 0,
      target: target ? { addr: target.addr, name: target.name } : undefined,
      key: k?.key ?? { addr: NaN },
      branchDefault: (bits & 1) !== 0,
      initNop: (bits & 2) !== 0,
    };
    if (!code) site.problems = ['code field has no relocation'];
    out.push(site);
  }
  return out;
}
