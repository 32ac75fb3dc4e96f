/** The protocol registry: one file per protocol, one line here. */
import type { Protocol } from '../types.js';
import { memcpy } from './memcpy.js';
import { atomicWrite } from './atomic-write.js';
import { int3NoSync } from './int3-nosync.js';
import { textPokeBp } from './text-poke-bp.js';
import { xenNmi } from './xen-nmi.js';
import { xenNmiComplete } from './xen-nmi-complete.js';
import { prefixInt3 } from './prefix-int3.js';
import { emulateCall } from './emulate-call.js';
import { int3AllBoundaries } from './int3-all-boundaries.js';
import { smpTextPokeBatch, smpTextPokeBatchC8976ade } from './smp-text-poke-batch.js';

export const PROTOCOLS: readonly Protocol[] = [
  memcpy,
  atomicWrite,
  int3NoSync,
  textPokeBp,
  xenNmi,
  xenNmiComplete,
  prefixInt3,
  emulateCall,
  int3AllBoundaries,
  smpTextPokeBatch,
  smpTextPokeBatchC8976ade,
];

export function findProtocol(name: string): Protocol | undefined {
  return PROTOCOLS.find((p) => p.name === name);
}
