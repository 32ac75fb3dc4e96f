import type { FetchContract } from '../../src/model/index.js';

/**
 * The verdict table (docs/model.md), under each fetch contract: "safe", or the property the shortest
 * counterexample breaks. table.test.ts pins the explorer to it; spin.test.ts pins SPIN to it.
 *
 * The aligned-8 table is the one this project published before the architectural contract became the
 * default. Under the architectural contract four cells change, all on the in-word site
 * static-call-retarget: atomic-write, int3-nosync and prefix-int3 go from safe to torn (their safety rested
 * on an aligned 8-byte fetch being atomic), and xen-nmi-complete's shortest failure becomes a torn fetch
 * instead of stale old code after the end.
 */
const ALIGNED_8: Record<string, Record<string, string>> = {
  memcpy: {
    'static-call-retarget': 'torn-instruction',
    'static-call-retarget-crossing': 'torn-instruction',
    'multi-insn-alternative': 'torn-instruction',
    'nmi-on-patcher': 'torn-instruction',
    'mce-during-nmi-patch': 'torn-instruction',
  },
  'atomic-write': {
    'static-call-retarget': 'safe',
    'static-call-retarget-crossing': 'torn-instruction',
    'multi-insn-alternative': 'torn-instruction',
    'nmi-on-patcher': 'safe',
    'mce-during-nmi-patch': 'safe',
  },
  'int3-nosync': {
    'static-call-retarget': 'safe',
    'static-call-retarget-crossing': 'torn-instruction',
    'multi-insn-alternative': 'torn-instruction',
    'nmi-on-patcher': 'safe',
    'mce-during-nmi-patch': 'safe',
  },
  'text-poke-bp': {
    'static-call-retarget': 'safe',
    'static-call-retarget-crossing': 'safe',
    'multi-insn-alternative': 'torn-instruction',
    'nmi-on-patcher': 'safe',
    'mce-during-nmi-patch': 'safe',
  },
  'xen-nmi': {
    'static-call-retarget': 'torn-instruction',
    'static-call-retarget-crossing': 'torn-instruction',
    'multi-insn-alternative': 'torn-instruction',
    'nmi-on-patcher': 'safe',
    'mce-during-nmi-patch': 'torn-instruction',
  },
  'xen-nmi-complete': {
    'static-call-retarget': 'old-code-after-end',
    'static-call-retarget-crossing': 'torn-instruction',
    'multi-insn-alternative': 'torn-instruction',
    'nmi-on-patcher': 'safe',
    'mce-during-nmi-patch': 'safe',
  },
  'prefix-int3': {
    'static-call-retarget': 'safe',
    'static-call-retarget-crossing': 'torn-instruction',
    'multi-insn-alternative': 'torn-instruction',
    'nmi-on-patcher': 'safe',
    'mce-during-nmi-patch': 'safe',
  },
  'emulate-call': {
    'static-call-retarget': 'safe',
    'static-call-retarget-crossing': 'safe',
    'multi-insn-alternative': 'torn-instruction',
    'nmi-on-patcher': 'unhandled-int3',
    'mce-during-nmi-patch': 'unhandled-int3',
  },
  'int3-all-boundaries': {
    'static-call-retarget': 'safe',
    'static-call-retarget-crossing': 'safe',
    'multi-insn-alternative': 'torn-instruction',
    'nmi-on-patcher': 'safe',
    'mce-during-nmi-patch': 'safe',
  },
};

// The batch API with one caller per site (no `callers` in these scenarios) is text_poke_bp.
ALIGNED_8['smp-text-poke-batch'] = ALIGNED_8['text-poke-bp']!;
ALIGNED_8['smp-text-poke-batch-c8976ade0c1b'] = ALIGNED_8['text-poke-bp']!;

const ARCHITECTURAL: Record<string, Record<string, string>> = {
  ...ALIGNED_8,
  'atomic-write': { ...ALIGNED_8['atomic-write']!, 'static-call-retarget': 'torn-instruction' },
  'int3-nosync': { ...ALIGNED_8['int3-nosync']!, 'static-call-retarget': 'torn-instruction' },
  'xen-nmi-complete': { ...ALIGNED_8['xen-nmi-complete']!, 'static-call-retarget': 'torn-instruction' },
  'prefix-int3': { ...ALIGNED_8['prefix-int3']!, 'static-call-retarget': 'torn-instruction' },
};

export const EXPECTED: Record<FetchContract, Record<string, Record<string, string>>> = {
  architectural: ARCHITECTURAL,
  'aligned-8': ALIGNED_8,
};

export function expectedVerdict(contract: FetchContract, protocol: string, scenario: string): 'safe' | 'unsafe' {
  return EXPECTED[contract][protocol]![scenario] === 'safe' ? 'safe' : 'unsafe';
}
