/** Building blocks the protocol files share. */
import type { PatcherOp, SiteInfo } from '../types.js';

export const INT3 = 0xcc;
/** Index of the "a poke is in progress" variable every int3-based protocol declares first. */
export const ACTIVE = 0;

/** One single-byte store per offset, in the given order, skipping bytes that do not change. */
export function byteWrites(site: SiteInfo, offs: number[], note?: string): PatcherOp[] {
  return offs
    .filter((o) => site.changed.includes(o))
    .map((o) => ({
      kind: 'write' as const,
      bytes: [[o, site.new[o]!]] as Array<[number, number]>,
      ...(note ? { note } : {}),
    }));
}

/** One aligned atomic store per 8-byte word, holding the changed bytes among `offs` that fall in it. */
export function wordWrites(site: SiteInfo, offs: number[], note?: string): PatcherOp[] {
  const ops: PatcherOp[] = [];
  for (const [s, e] of site.words) {
    const bytes = offs
      .filter((o) => o >= s && o < e && site.changed.includes(o))
      .map((o) => [o, site.new[o]!] as [number, number]);
    if (bytes.length) ops.push({ kind: 'write', bytes, ...(note ? { note } : {}) });
  }
  return ops;
}

/** Changed offsets other than the first byte. */
export function tail(site: SiteInfo): number[] {
  return site.changed.filter((o) => o !== 0);
}

export function writeByte(off: number, val: number, note?: string): PatcherOp {
  return { kind: 'write', bytes: [[off, val]], ...(note ? { note } : {}) };
}

export const SYNC: PatcherOp = { kind: 'sync' };
export const setActive = (val: number): PatcherOp => ({ kind: 'set', v: ACTIVE, val });
