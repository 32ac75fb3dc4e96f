/**
 * The verdict table (README, textpoke model): "safe", or the property the shortest counterexample breaks.
 * table.test.ts pins the explorer to it; spin.test.ts pins SPIN to it.
 */
export const EXPECTED: Record<string, Record<string, string>> = {
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

export function expectedVerdict(protocol: string, scenario: string): 'safe' | 'unsafe' {
  return EXPECTED[protocol]![scenario] === 'safe' ? 'safe' : 'unsafe';
}
