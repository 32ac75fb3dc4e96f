/**
 * Linux 6.1 apply_paravirt() with native pv_ops (arch/x86/kernel/paravirt.c paravirt_patch()): each
 * `.parainstructions` site becomes `call <pv_ops[type]>` (5 bytes) padded with NOPs; a slot holding
 * _paravirt_nop becomes all NOPs; a NULL slot calls paravirt_BUG. BUG_ON(used > len) is reported.
 * The later alternatives pass (ALT_NOT(X86_FEATURE_XENPV)) then overwrites most of these with inline code.
 *
 * Which native function sits in which slot is per-kernel data (struct paravirt_patch_template, slot =
 * byte offset / 8): a linked vmlinux has pv_ops' initial values in its data; a module only has
 * `pv_ops+OFF` relocations, so the Debian 6.1 layout (CONFIG_PARAVIRT_XXL, X86_IOPL_IOPERM,
 * PGTABLE_LEVELS=5, PARAVIRT_SPINLOCKS, SMP) and its native initialisers are listed here.
 */
import type { Site } from '../sites/site.js';
import type { LinuxRules } from '../target/profile.js';
import { addNops, LINUX_NOPS } from './nops.js';
import type { PatchedView } from './view.js';

const NOP = '_paravirt_nop';
const IDENT = '_paravirt_ident_64';

/** Debian 6.1 pv_ops slots: [field, native initialiser]. */
export const PV_OPS_61: readonly (readonly [string, string])[] = [
  ['cpu.io_delay', 'native_io_delay'],
  ['cpu.get_debugreg', 'pv_native_get_debugreg'],
  ['cpu.set_debugreg', 'pv_native_set_debugreg'],
  ['cpu.read_cr0', 'native_read_cr0'],
  ['cpu.write_cr0', 'native_write_cr0'],
  ['cpu.write_cr4', 'native_write_cr4'],
  ['cpu.load_tr_desc', 'native_load_tr_desc'],
  ['cpu.load_gdt', 'native_load_gdt'],
  ['cpu.load_idt', 'native_load_idt'],
  ['cpu.set_ldt', 'native_set_ldt'],
  ['cpu.store_tr', 'native_store_tr'],
  ['cpu.load_tls', 'native_load_tls'],
  ['cpu.load_gs_index', 'native_load_gs_index'],
  ['cpu.write_ldt_entry', 'native_write_ldt_entry'],
  ['cpu.write_gdt_entry', 'native_write_gdt_entry'],
  ['cpu.write_idt_entry', 'native_write_idt_entry'],
  ['cpu.alloc_ldt', NOP],
  ['cpu.free_ldt', NOP],
  ['cpu.load_sp0', 'native_load_sp0'],
  ['cpu.invalidate_io_bitmap', 'native_tss_invalidate_io_bitmap'],
  ['cpu.update_io_bitmap', 'native_tss_update_io_bitmap'],
  ['cpu.wbinvd', 'native_wbinvd'],
  ['cpu.cpuid', 'native_cpuid'],
  ['cpu.read_msr', 'native_read_msr'],
  ['cpu.write_msr', 'native_write_msr'],
  ['cpu.read_msr_safe', 'native_read_msr_safe'],
  ['cpu.write_msr_safe', 'native_write_msr_safe'],
  ['cpu.read_pmc', 'native_read_pmc'],
  ['cpu.start_context_switch', NOP],
  ['cpu.end_context_switch', NOP],
  ['irq.save_fl', 'native_save_fl'],
  ['irq.irq_disable', 'pv_native_irq_disable'],
  ['irq.irq_enable', 'pv_native_irq_enable'],
  ['irq.safe_halt', 'native_safe_halt'],
  ['irq.halt', 'native_halt'],
  ['mmu.flush_tlb_user', 'native_flush_tlb_local'],
  ['mmu.flush_tlb_kernel', 'native_flush_tlb_global'],
  ['mmu.flush_tlb_one_user', 'native_flush_tlb_one_user'],
  ['mmu.flush_tlb_multi', 'native_flush_tlb_multi'],
  ['mmu.tlb_remove_table', 'tlb_remove_page'],
  ['mmu.exit_mmap', NOP],
  ['mmu.notify_page_enc_status_changed', NOP],
  ['mmu.read_cr2', 'pv_native_read_cr2'],
  ['mmu.write_cr2', 'pv_native_write_cr2'],
  ['mmu.read_cr3', '__native_read_cr3'],
  ['mmu.write_cr3', 'native_write_cr3'],
  ['mmu.activate_mm', NOP],
  ['mmu.dup_mmap', NOP],
  ['mmu.pgd_alloc', '__paravirt_pgd_alloc'],
  ['mmu.pgd_free', NOP],
  ['mmu.alloc_pte', NOP],
  ['mmu.alloc_pmd', NOP],
  ['mmu.alloc_pud', NOP],
  ['mmu.alloc_p4d', NOP],
  ['mmu.release_pte', NOP],
  ['mmu.release_pmd', NOP],
  ['mmu.release_pud', NOP],
  ['mmu.release_p4d', NOP],
  ['mmu.set_pte', 'native_set_pte'],
  ['mmu.set_pmd', 'native_set_pmd'],
  ['mmu.ptep_modify_prot_start', '__ptep_modify_prot_start'],
  ['mmu.ptep_modify_prot_commit', '__ptep_modify_prot_commit'],
  ['mmu.pte_val', IDENT],
  ['mmu.make_pte', IDENT],
  ['mmu.pgd_val', IDENT],
  ['mmu.make_pgd', IDENT],
  ['mmu.set_pud', 'native_set_pud'],
  ['mmu.pmd_val', IDENT],
  ['mmu.make_pmd', IDENT],
  ['mmu.pud_val', IDENT],
  ['mmu.make_pud', IDENT],
  ['mmu.set_p4d', 'native_set_p4d'],
  ['mmu.p4d_val', IDENT],
  ['mmu.make_p4d', IDENT],
  ['mmu.set_pgd', 'native_set_pgd'],
  ['mmu.lazy_mode.enter', NOP],
  ['mmu.lazy_mode.leave', NOP],
  ['mmu.lazy_mode.flush', NOP],
  ['mmu.set_fixmap', 'native_set_fixmap'],
  ['lock.queued_spin_lock_slowpath', 'native_queued_spin_lock_slowpath'],
  ['lock.queued_spin_unlock', '__raw_callee_save___native_queued_spin_unlock'],
  ['lock.wait', NOP],
  ['lock.kick', NOP],
  ['lock.vcpu_is_preempted', '__raw_callee_save___native_vcpu_is_preempted'],
];

/**
 * Debian 6.12 pv_ops slots: as 6.1 but mmu.activate_mm/dup_mmap became one enter_mmap slot, paravirt_nop is
 * nop_func, and some natives were renamed (pv_native_wbinvd, pv_native_save_fl, pv_native_safe_halt,
 * native_tlb_remove_table).
 */
export const PV_OPS_612: readonly (readonly [string, string])[] = PV_OPS_61.flatMap(
  ([f, n]): (readonly [string, string])[] => {
    if (f === 'mmu.activate_mm') return [['mmu.enter_mmap', 'nop_func']];
    if (f === 'mmu.dup_mmap') return [];
    const rename: Record<string, string> = {
      _paravirt_nop: 'nop_func',
      native_wbinvd: 'pv_native_wbinvd',
      native_save_fl: 'pv_native_save_fl',
      native_safe_halt: 'pv_native_safe_halt',
      tlb_remove_page: 'native_tlb_remove_table',
    };
    return [[f, rename[n] ?? n]];
  },
);

/**
 * Debian 7.3 (7.0 on) pv_ops slots, from linux-headers-7.3.4+deb13-common's paravirt_types.h: cpu.io_delay and
 * cpu.wbinvd are gone, irq.save_fl/irq_disable/irq_enable/safe_halt/halt stay, mmu.lazy_mode is one flush slot,
 * and the lock ops moved to their own array pv_ops_lock (f88dc319fcb6) with wait, kick, vcpu_is_preempted
 * (queued_spin_lock_slowpath and queued_spin_unlock became static calls). Native initialisers as in 6.12 for
 * the fields that stayed.
 */
export const PV_OPS_70: readonly (readonly [string, string])[] = PV_OPS_612.flatMap(
  ([f, n]): (readonly [string, string])[] => {
    if (f === 'cpu.io_delay' || f === 'cpu.wbinvd' || f.startsWith('lock.')) return [];
    if (f === 'mmu.lazy_mode.enter' || f === 'mmu.lazy_mode.leave') return [];
    if (f === 'mmu.lazy_mode.flush') return [['mmu.lazy_mode_flush', n]];
    return [[f, n]];
  },
);

export const PV_OPS_LOCK_70: readonly (readonly [string, string])[] = [
  ['wait', 'nop_func'],
  ['kick', 'nop_func'],
  ['vcpu_is_preempted', '__raw_callee_save___native_vcpu_is_preempted'],
];

/** Slot tables per pv_ops layout and array name. */
export const PV_OPS_ARRAYS: Record<LinuxRules['pvOps'], Record<string, readonly (readonly [string, string])[]>> = {
  '6.1': { pv_ops: PV_OPS_61 },
  '6.12': { pv_ops: PV_OPS_612 },
  '7.0': { pv_ops: PV_OPS_70, pv_ops_lock: PV_OPS_LOCK_70 },
};

/**
 * The function a pv_ops slot holds natively, given the slot's real address: read from pv_ops' initial value in a
 * linked image, else from the table for the kernel generation. null = NULL slot.
 */
export function pvSlotTarget(
  view: PatchedView,
  slotAbs: bigint,
  layout: LinuxRules['pvOps'],
): { abs?: bigint; name: string } | null {
  // The pv_ops array holding the slot: 7.0 has pv_ops and pv_ops_lock; take the nearest array at or below.
  let array = 'pv_ops';
  let pvAbs = view.symbolAbs('pv_ops');
  for (const name of Object.keys(PV_OPS_ARRAYS[layout])) {
    // Only arrays the image defines or refers to (symbolAbs would invent an address for any other name).
    if (name !== 'pv_ops' && !view.img.symbol(name)) continue;
    const a = view.symbolAbs(name);
    if (a !== undefined && a <= slotAbs && (pvAbs === undefined || pvAbs > slotAbs || a > pvAbs)) {
      array = name;
      pvAbs = a;
    }
  }
  if (pvAbs === undefined || pvAbs > slotAbs) return { name: `pointer at ${view.nameOf(slotAbs)}` };
  const type = Number((slotAbs - pvAbs) / 8n);
  const pv = view.img.kind !== 'rel' ? view.img.symbol(array) : undefined;
  if (pv && !Number.isNaN(pv.addr)) {
    const b = view.read(pv.addr + type * 8, 8);
    if (b) {
      const v = new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true);
      if (v === 0n) return null;
      return { abs: v, name: view.nameOf(v) };
    }
  }
  const e = PV_OPS_ARRAYS[layout][array]?.[type];
  if (!e || (slotAbs - pvAbs) % 8n !== 0n) return { name: `${array}+0x${(slotAbs - pvAbs).toString(16)}` };
  return { name: e[1], abs: view.symbolAbs(e[1]) };
}

function slotTarget(view: PatchedView, type: number): { abs?: bigint; name: string } | null {
  const pvAbs = view.symbolAbs('pv_ops');
  if (pvAbs === undefined) {
    const e = PV_OPS_61[type];
    return e ? { name: e[1], abs: view.symbolAbs(e[1]) } : { name: `pv_ops slot ${type}` };
  }
  return pvSlotTarget(view, pvAbs + BigInt(type) * 8n, '6.1');
}

export function applyLinuxParavirt(view: PatchedView, sites: readonly Site[]): void {
  const nopAbs = view.symbolAbs(NOP);
  for (const s of sites) {
    if (s.table !== '.parainstructions') continue;
    const len = s.length;
    if (Number.isNaN(s.addr)) {
      view.finding('paravirt', s.addr, `paravirt site ${s.index}: address unknown, skipped`, 'model', s);
      continue;
    }
    if (len > 254) {
      view.finding('paravirt', s.addr, `paravirt site ${s.index}: len ${len} > 254: the kernel would BUG()`, 'bug', s);
      continue;
    }
    const cur = view.read(s.addr, len);
    if (!cur) {
      view.finding('paravirt', s.addr, `paravirt site ${s.index}: outside the image`, 'model', s);
      continue;
    }
    const t = slotTarget(view, s.paraType ?? 0);
    const buf = cur.slice();
    let used = 0;
    let note: string;
    let target: bigint | undefined;
    let name: string;
    if (t === null) {
      name = 'paravirt_BUG';
      target = view.symbolAbs('paravirt_BUG');
    } else {
      name = t.name;
      target = t.abs;
    }
    if (name === NOP || (target !== undefined && nopAbs !== undefined && target === nopAbs)) {
      used = 0;
      note = 'paravirt_nop: NOPs';
    } else {
      if (target === undefined) {
        view.finding(
          'paravirt',
          s.addr,
          `paravirt site ${s.index}: no address for ${name} (pv_ops slot ${s.paraType}); skipped`,
          'model',
          s,
        );
        continue;
      }
      if (len < 5) {
        view.finding(
          'paravirt',
          s.addr,
          `paravirt site ${s.index}: ${len} bytes cannot hold call ${name}: the kernel would BUG()`,
          'bug',
          s,
        );
        continue;
      }
      const disp = Number(BigInt.asIntN(32, target - (view.abs(s.addr) + 5n)));
      buf[0] = 0xe8;
      new DataView(buf.buffer, buf.byteOffset).setInt32(1, disp, true);
      used = 5;
      note = `call ${name}`;
    }
    addNops(LINUX_NOPS, buf, used, len - used);
    view.write('paravirt', s.addr, buf, s, note);
  }
}
