import type { Protocol } from '../types.js';
import { ACTIVE, byteWrites, INT3, setActive, SYNC, tail, writeByte } from './common.js';

/**
 * Seed 004 (Andy): keep text_poke_bp's sequence but have the int3 handler emulate a CALL to the new
 * target (pushing the return address through a pt_regs trampoline). It only knows how to emulate calls:
 * an int3 at a site whose new instruction is not a call is not handled.
 */
export const emulateCall: Protocol = {
  name: 'emulate-call',
  summary: 'Andy: text_poke_bp sequence; the handler emulates a call to the new target (calls only)',
  plan(site) {
    const t = byteWrites(site, tail(site));
    return {
      inNmi: false,
      vars: ['active'],
      ops: [setActive(1), writeByte(0, INT3), SYNC, ...t, ...(t.length ? [SYNC] : []), writeByte(0, site.new[0]!), SYNC, setActive(0)],
      int3: [{ at: 'first', cpu: 'any', when: { v: ACTIVE, val: 1 }, program: [{ kind: 'emulate', version: 'new', onlyCalls: true }] }],
      accept: [],
    };
  },
};
