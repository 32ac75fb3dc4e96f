import type { PatcherOp, Protocol } from '../types.js';
import { ACTIVE, byteWrites, INT3, setActive, SYNC, writeByte } from './common.js';

/**
 * Seed 002 (Jan): "if the code doing the patching knew instruction boundaries, it could put breakpoints
 * onto all of them". int3 on every old instruction boundary, sync, the bytes that are not boundaries, sync,
 * the interior boundaries, sync, the first byte, sync. The handler emulates the new instruction for the
 * int3 at the start, and the OLD instruction for an int3 at an interior boundary: a CPU that stopped there
 * has already run the old instructions before it, so it must finish the old sequence.
 */
export const int3AllBoundaries: Protocol = {
  name: 'int3-all-boundaries',
  summary: 'Jan: int3 on every old boundary, sync, rest, sync, interior boundaries, sync, first byte, sync',
  plan(site) {
    const interior = site.oldBounds.filter((b) => b !== 0);
    const rest = site.changed.filter((o) => o !== 0 && !interior.includes(o));
    const group = (ops: PatcherOp[]): PatcherOp[] => (ops.length ? [...ops, SYNC] : []);
    return {
      inNmi: false,
      vars: ['active'],
      ops: [
        setActive(1),
        ...group(site.oldBounds.map((b) => writeByte(b, INT3))),
        ...group(byteWrites(site, rest)),
        ...group(interior.map((b) => writeByte(b, site.new[b]!))),
        writeByte(0, site.new[0]!),
        SYNC,
        setActive(0),
      ],
      int3: [
        { at: 'first', cpu: 'any', when: { v: ACTIVE, val: 1 }, program: [{ kind: 'emulate', version: 'new' }] },
        { at: 'interior', cpu: 'any', when: { v: ACTIVE, val: 1 }, program: [{ kind: 'emulate', version: 'old' }] },
      ],
      accept: [],
    };
  },
};
