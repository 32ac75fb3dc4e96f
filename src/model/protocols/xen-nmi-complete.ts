import type { HandlerOp, Protocol } from '../types.js';
import { ACTIVE, byteWrites, INT3, setActive, tail, writeByte } from './common.js';

/**
 * Seed 002's proposal (text_poke_live): in NMI context, int3 first, then the tail, then the first byte.
 * A breakpoint hit on the patching CPU (from an NMI or #MC handler that runs the site) completes the
 * patch itself (int3, tail, first byte again) and re-executes the instruction; a breakpoint hit on another
 * CPU serializes (cpuid) and retries until the patching CPU is done.
 */
export const xenNmiComplete: Protocol = {
  name: 'xen-nmi-complete',
  summary: 'Xen proposal: as xen-nmi with int3 first; the patching CPU completes the patch from its own #BP',
  plan(site) {
    const seq = [writeByte(0, INT3), ...byteWrites(site, tail(site)), writeByte(0, site.new[0]!)];
    const complete: HandlerOp[] = [...seq.map((op) => op as HandlerOp), { kind: 'retry' }];
    return {
      inNmi: true,
      vars: ['active'],
      ops: [setActive(1), ...seq, setActive(0)],
      int3: [
        { at: 'first', cpu: 'patcher', when: { v: ACTIVE, val: 1 }, program: complete },
        { at: 'first', cpu: 'other', when: { v: ACTIVE, val: 1 }, program: [{ kind: 'serialize' }, { kind: 'retry' }] },
      ],
      accept: [],
    };
  },
};
