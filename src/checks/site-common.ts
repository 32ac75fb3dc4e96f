/** Shared helpers of the site-* checks: the bytes as built at a site and the instruction decoded there. */
import { hex as hexBytes } from '../x86/insn.js';
import type { Instruction } from '../x86/insn.js';
import type { View } from '../cfg/view.js';
import type { SiteOf } from '../sites/site.js';
import type { TableId } from '../target/profile.js';

/** Sites of the given tables that were placed on code (sites outside every section are reported by `sites`). */
export function sitesOf<T extends TableId>(view: View, table: T): SiteOf<T>[] {
  return view.sites.filter(
    (s): s is SiteOf<T> =>
      s.table === table && !Number.isNaN(s.addr) && !s.problems?.some((p) => p.includes('outside every section')),
  );
}

/** The instruction (as built) starting at `addr`, decoded into the shared instruction, or undefined. */
export function builtInsnAt(view: View, addr: number): Instruction | undefined {
  const sc = view.built.at(addr);
  if (!sc) return undefined;
  const i = sc.indexAt(addr - sc.section.addr);
  return i < 0 ? undefined : view.reader.at(sc, i);
}

export function hex(b: Uint8Array | undefined): string {
  return b ? hexBytes(b) : '?';
}

export const NOP5 = [0x0f, 0x1f, 0x44, 0x00, 0x00];
export function isNop5(b: Uint8Array): boolean {
  return b.length >= 5 && NOP5.every((x, k) => b[k] === x);
}
