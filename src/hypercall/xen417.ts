/**
 * Where Xen 4.17's compiled dispatch lives, per caller, for `hypercalls cost --binary`.
 *
 * - pv64: `pv_hypercall(regs)` (the always-inline `_pv_hypercall(regs, false)`), number = regs->rax.
 * - hvm64 / hvm32: `hvm_hypercall(regs)`; the mode comes from `hvm_guest_x86_mode()`, an altcall through
 *   `hvm_funcs.guest_x86_mode` (slot `hvm_funcs+0x70` in Debian's 4.17 build), pinned to 8 (64-bit) or 4;
 *   `hvm_get_cpl()` (`hvm_funcs+0x78`) is pinned to 0, the only value that reaches the dispatch.
 * - pv32: `do_entry_int82(regs)` when the build has 32-bit PV (Debian's does not).
 * number = regs->rax / regs->eax at offset 0x50 of struct cpu_user_regs.
 * When a slot name does not match a build, the walk treats the call's result as unknown and explores
 * both modes: the handlers it reports then mix the two callers (visible as "also reaches").
 */
export interface BinaryCaller {
  fn: string;
  returns?: Record<string, bigint>;
  numberOffset?: number;
}

export const XEN_417_BINARY_CALLERS: Readonly<Record<string, BinaryCaller>> = {
  pv64: { fn: 'pv_hypercall', numberOffset: 0x50 },
  pv32: { fn: 'do_entry_int82', numberOffset: 0x50 },
  hvm64: { fn: 'hvm_hypercall', numberOffset: 0x50, returns: { 'hvm_funcs+0x70': 8n, 'hvm_funcs+0x78': 0n } },
  hvm32: { fn: 'hvm_hypercall', numberOffset: 0x50, returns: { 'hvm_funcs+0x70': 4n, 'hvm_funcs+0x78': 0n } },
};
