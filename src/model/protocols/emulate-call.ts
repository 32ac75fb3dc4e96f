import type { Protocol } from '../types.js';
import { textPokeBp } from './text-poke-bp.js';

/**
 * Seed 004 (Andy): keep text_poke_bp's sequence but have the int3 handler emulate a CALL to the new
 * target (pushing the return address through a pt_regs trampoline). It only knows how to emulate calls:
 * an int3 at a site whose new instruction is not a call is not handled.
 */
export const emulateCall: Protocol = {
  name: 'emulate-call',
  summary: 'Andy: text_poke_bp sequence; the handler emulates a call to the new target (calls only)',
  plan(site) {
    const p = textPokeBp.plan(site);
    return {
      ...p,
      int3: p.int3.map((h) => ({
        ...h,
        program: h.program.map((s) => (s.kind === 'emulate' ? { ...s, onlyCalls: true } : s)),
      })),
    };
  },
};
