import type { Protocol } from '../types.js';
import { ACTIVE, byteWrites, INT3, setActive, SYNC, tail, writeByte } from './common.js';

/**
 * text_poke_bp without the serializing IPIs in between: int3, the tail, the first byte, one final sync.
 * The handler is text_poke_bp's (emulate the new instruction), so the only difference is the missing syncs.
 */
export const int3NoSync: Protocol = {
  name: 'int3-nosync',
  summary: 'int3, tail, first byte with no sync in between (final sync only); handler emulates the new instruction',
  plan(site) {
    return {
      inNmi: false,
      vars: ['active'],
      ops: [
        setActive(1),
        writeByte(0, INT3),
        ...byteWrites(site, tail(site)),
        writeByte(0, site.new[0]!),
        SYNC,
        setActive(0),
      ],
      int3: [{ at: 'first', cpu: 'any', when: { v: ACTIVE, val: 1 }, program: [{ kind: 'emulate', version: 'new' }] }],
      accept: [],
    };
  },
};
