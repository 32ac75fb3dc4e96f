/**
 * Xen 4.17 hypercall numbers (`__HYPERVISOR_*` in xen/include/public/xen.h and the x86 arch header of
 * RELEASE-4.17.0), as data. `mca` and `paging_domctl_cont` are x86's arch_0 and arch_1.
 * A tab-separated file in the same shape (name, number) can replace it (`--numbers`).
 */
export const XEN_417_NUMBERS: Readonly<Record<string, number>> = {
  set_trap_table: 0,
  mmu_update: 1,
  set_gdt: 2,
  stack_switch: 3,
  set_callbacks: 4,
  fpu_taskswitch: 5,
  sched_op_compat: 6,
  platform_op: 7,
  set_debugreg: 8,
  get_debugreg: 9,
  update_descriptor: 10,
  memory_op: 12,
  multicall: 13,
  update_va_mapping: 14,
  set_timer_op: 15,
  event_channel_op_compat: 16,
  xen_version: 17,
  console_io: 18,
  physdev_op_compat: 19,
  grant_table_op: 20,
  vm_assist: 21,
  update_va_mapping_otherdomain: 22,
  iret: 23,
  vcpu_op: 24,
  set_segment_base: 25,
  mmuext_op: 26,
  xsm_op: 27,
  nmi_op: 28,
  sched_op: 29,
  callback_op: 30,
  xenoprof_op: 31,
  event_channel_op: 32,
  physdev_op: 33,
  hvm_op: 34,
  sysctl: 35,
  domctl: 36,
  kexec_op: 37,
  tmem_op: 38,
  argo_op: 39,
  xenpmu_op: 40,
  dm_op: 41,
  hypfs_op: 42,
  arch_0: 48,
  arch_1: 49,
  arch_2: 50,
  arch_3: 51,
  arch_4: 52,
  arch_5: 53,
  arch_6: 54,
  arch_7: 55,
  mca: 48,
  paging_domctl_cont: 49,
};

/** Parses name<TAB>number lines ('#' comments allowed). */
export function parseNumbers(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [i, line] of text.split('\n').entries()) {
    const t = line.trim();
    if (!t || t.startsWith('#')) continue;
    const m = /^(\w+)\s+(\d+)$/.exec(t);
    if (!m) throw new Error(`line ${i + 1}: expected 'name<TAB>number': ${t}`);
    out[m[1]] = Number(m[2]);
  }
  return out;
}
