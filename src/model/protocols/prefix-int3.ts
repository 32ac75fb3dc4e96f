import type { Protocol } from '../types.js';
import { ACTIVE, INT3, setActive, SYNC, wordWrites } from './common.js';

/** A one-byte prefix that does nothing (cs segment override), as Linus proposes in seed 004. */
export const CS_PREFIX = 0x2e;

/**
 * Seed 004 (Linus): emit the site with a do-nothing prefix byte and replace *that* with int3. The handler
 * leaves the int3 in place and returns to the next byte: the bare instruction. The instruction is updated
 * in place (aligned atomic stores, one per 8-byte word) while the int3 stays until after the IPI.
 * The region gains the prefix byte just before the site (the site itself does not move).
 */
export const prefixInt3: Protocol = {
  name: 'prefix-int3',
  summary: 'Linus: int3 replaces a do-nothing prefix; the handler returns past it; in-place update, sync, prefix back',
  plan(site) {
    const old = [CS_PREFIX, ...site.old];
    const nu = [CS_PREFIX, ...site.new];
    const base = site.base - 1n;
    // Offsets in the rewritten region are the site's offsets + 1.
    const shifted = {
      ...site,
      base,
      old,
      new: nu,
      len: old.length,
      changed: site.changed.map((o) => o + 1),
      words: wordsOf(base, old.length),
    };
    const firstOld = site.oldBounds[1] ?? site.len;
    const firstNew = site.newBounds[1] ?? site.len;
    return {
      inNmi: false,
      vars: ['active'],
      ops: [
        setActive(1),
        { kind: 'write', bytes: [[0, INT3]] },
        SYNC,
        ...wordWrites(shifted, shifted.changed, 'in-place update'),
        SYNC,
        { kind: 'write', bytes: [[0, CS_PREFIX]] },
        SYNC,
        setActive(0),
      ],
      int3: [{ at: 'first', cpu: 'any', when: { v: ACTIVE, val: 1 }, program: [{ kind: 'resume', delta: 1 }] }],
      accept: [
        { off: 1, bytes: site.old.slice(0, firstOld), version: 'old' },
        { off: 1, bytes: site.new.slice(0, firstNew), version: 'new' },
      ],
      region: { base, old, new: nu },
    };
  },
};

function wordsOf(base: bigint, len: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  const first = Number(base % 8n);
  for (let s = 0; s < len; ) {
    const e = Math.min(len, s + (8 - ((first + s) % 8)));
    out.push([s, e]);
    s = e;
  }
  return out;
}
