import type { Protocol } from '../types.js';
import { SYNC, wordWrites } from './common.js';

/**
 * Seed 004's "doesn't cross a cache line" idea: replace the site with one aligned 8-byte store, then sync.
 * Valid only when the site fits one aligned word; when it straddles a boundary the protocol needs one
 * store per word, and the model shows what a CPU can fetch between them.
 */
export const atomicWrite: Protocol = {
  name: 'atomic-write',
  summary: 'one aligned atomic store per 8-byte word the site touches, then sync',
  plan(site) {
    return {
      inNmi: false,
      vars: [],
      ops: [...wordWrites(site, site.changed, 'aligned atomic store'), SYNC],
      int3: [],
      accept: [],
    };
  },
};
