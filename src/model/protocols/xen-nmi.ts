import type { Protocol } from '../types.js';
import { byteWrites } from './common.js';

/**
 * Xen boot patching (seed 002): the patching CPU sends itself an NMI and copies the bytes inside the NMI
 * handler, so further NMIs on that CPU are latched until its iret. #MC cannot be masked. No IPIs: at boot
 * no other CPU runs.
 */
export const xenNmi: Protocol = {
  name: 'xen-nmi',
  summary: 'Xen: plain copy inside an NMI handler on the patching CPU (NMIs latched, #MC not)',
  plan(site) {
    return { inNmi: true, vars: [], ops: byteWrites(site, site.changed), int3: [], accept: [] };
  },
};
