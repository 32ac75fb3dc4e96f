/**
 * The patched file: a copy of the (decompressed) ELF with every changed section's bytes written at its file
 * offset, same layout. For relocatable objects the allocated sections' sh_addr are set to the addresses the
 * relocations were computed for, so `objdump -d` shows the branch targets the patched bytes really have.
 */
import type { PatchedView } from './view.js';

export function patchedElf(view: PatchedView): Uint8Array {
  const img = view.img;
  const out = new Uint8Array(img.bytes.length);
  out.set(img.bytes);
  for (const s of view.changedSections()) out.set(view.bytesOf(s), s.offset);
  if (img.kind === 'rel') {
    const dv = new DataView(out.buffer);
    const shoff = Number(dv.getBigUint64(40, true));
    for (const s of img.sections) {
      if (!s.alloc || Number.isNaN(s.addr)) continue;
      dv.setBigUint64(shoff + s.index * 64 + 16, BigInt.asUintN(64, view.abs(s.addr)), true);
    }
  }
  return out;
}

/** Per-patcher totals: writes, sites and bytes that differ. */
export interface PatchSummary {
  patcher: string;
  writes: number;
  sites: number;
  bytesChanged: number;
}

export function summarize(view: PatchedView): PatchSummary[] {
  const m = new Map<string, { writes: number; sites: Set<unknown>; bytes: number }>();
  for (const p of view.patches) {
    let e = m.get(p.patcher);
    if (!e) m.set(p.patcher, (e = { writes: 0, sites: new Set(), bytes: 0 }));
    e.writes++;
    e.sites.add(p.site ?? p.addr);
    for (let i = 0; i < p.after.length; i++) if (p.after[i] !== p.before[i]) e.bytes++;
  }
  return [...m].map(([patcher, e]) => ({ patcher, writes: e.writes, sites: e.sites.size, bytesChanged: e.bytes }));
}
