import type { Protocol } from '../types.js';
import { ACTIVE, byteWrites, INT3, setActive, SYNC, tail, writeByte } from './common.js';

/**
 * Linux text_poke_bp (formats.md; smp_text_poke_single() since Linux 6.16, whose batched form is the
 * smp-text-poke-batch protocol): int3 on the first byte, sync, the tail, sync, the first byte, sync.
 * While the poke is active the int3 handler (poke_int3_handler, now smp_text_poke_int3_handler) emulates
 * the NEW instruction at the poke address.
 */
export const textPokeBp: Protocol = {
  name: 'text-poke-bp',
  summary:
    'Linux text_poke_bp (smp_text_poke_single since 6.16): int3, sync, tail, sync, first byte, sync; the handler emulates the new instruction',
  plan(site) {
    const t = byteWrites(site, tail(site));
    return {
      inNmi: false,
      vars: ['active'],
      ops: [
        setActive(1),
        writeByte(0, INT3),
        SYNC,
        ...t,
        ...(t.length ? [SYNC] : []),
        writeByte(0, site.new[0]!),
        SYNC,
        setActive(0),
      ],
      int3: [{ at: 'first', cpu: 'any', when: { v: ACTIVE, val: 1 }, program: [{ kind: 'emulate', version: 'new' }] }],
      accept: [],
    };
  },
};
