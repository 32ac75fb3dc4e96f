/**
 * The tables that only locate an instruction: `.retpoline_sites`, `.return_sites`, `.call_sites`,
 * `.ibt_endbr_seal`, `.smp_locks` (s32 rel each) and `__mcount_loc` (u64 absolute). A zero `.smp_locks`
 * entry in a linked image is padding, and so is a zero `__mcount_loc` entry (linker padding between objects, or a
 * weak function's entry zeroed at build time: ftrace_process_locs() skips NULL entries). The site's length is the located instruction's, filled in by decoding
 * (`.smp_locks`: the one `lock` prefix byte).
 */
import type { InstructionListId, InstructionSite } from './site.js';
import type { TableData } from './table.js';

export function readInstructionList(t: TableData, id: InstructionListId): InstructionSite[] {
  const out: InstructionSite[] = [];
  const absolute = id === '__mcount_loc';
  for (let i = 0; i < t.count; i++) {
    if (!absolute && t.img.kind !== 'rel' && t.u32(i, 0) === 0) continue; // padding
    if (absolute && t.zero64(i, 0)) continue; // NULL: skipped, as the kernel does
    const at = absolute ? t.abs64(i, 0) : t.rel(i, 0);
    if (!at && t.img.kind === 'rel' && id === '.smp_locks') continue;
    const site: InstructionSite = {
      table: id,
      index: i,
      addr: at ? at.addr : NaN,
      length: id === '.smp_locks' ? 1 : 0,
    };
    if (!at) site.problems = ['entry has no relocation'];
    out.push(site);
  }
  return out;
}
