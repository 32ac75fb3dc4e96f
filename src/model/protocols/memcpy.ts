import type { Protocol } from '../types.js';
import { byteWrites, SYNC } from './common.js';

/** A plain copy: byte stores in ascending order, then one IPI so every CPU sees the result. No int3 handler. */
export const memcpy: Protocol = {
  name: 'memcpy',
  summary: 'plain byte-by-byte copy, then sync',
  plan(site) {
    return { inNmi: false, vars: [], ops: [...byteWrites(site, site.changed), SYNC], int3: [], accept: [] };
  },
};
