/**
 * Xen altcall destinations the binary decides. An altcall (`alternative_call(ops.fn, ...)`) is patched into a
 * direct call to whatever the function pointer holds when _apply_alternatives runs; many of those pointers are
 * NULL in xen-syms and filled in while Xen boots, mostly by copying a whole ops structure chosen by the CPU's
 * vendor or features, or by assigning a function from a constant. This module reproduces those assignments
 * (Xen 4.17 and 4.20, read from their sources) with the values taken from the image itself:
 *
 *  before the first pass (early_cpu_init, identify_cpu/mcheck_init, early_microcode_init, the APIC probe):
 *   - `actual_cpu = {intel,amd,hygon}_cpu_dev` by vendor (cpu/common.c early_cpu_init);
 *   - `mce_callbacks = intel_callbacks` (Intel) or `k8_callbacks` / `k10_callbacks` (AMD family 0xf / later),
 *     when the CPU has MCE and MCA (mce_handler_init);
 *   - `ucode_ops = intel_ucode_ops` / `amd_ucode_ops` (AMD family >= 0x10 only, which the K8 NOP table rules out)
 *     (4.17 early_microcode_init; 4.20 builds the copy inline in
 *     ucode_probe_{intel,amd}, with no source symbol: left unknown);
 *   - `genapic = apic_default` without x2APIC (generic_apic_probe on a machine with at most 8 CPUs; with x2APIC
 *     the mode depends on interrupt remapping: left unknown);
 *   - `ctxt_switch_masking = amd_ctxt_switch_masking` on AMD (amd_init_levelling: every AMD family Xen runs on
 *     has the CPUID masking MSRs); `intel_ctxt_switch_masking` on the Intel family 6 models with masking MSRs and
 *     no CPUID faulting, when the model is known (XenCpuId: from boot_cpu_data or the boot log), else unknown;
 *  by the pre-SMP initcalls, between the passes:
 *   - `hvm_funcs = *start_svm()` (svm_function_table; start_svm changes no function pointer) with SVM;
 *     `hvm_funcs = *start_vmx()` with VMX: vmx_function_table's non-NULL pointers (start_vmx fills some NULL ones
 *     from VMX capability MSRs, which a CPU description does not have: those stay unknown);
 *   - `cpufreq_driver = acpi_cpufreq_driver` (Intel) / `powernow_cpufreq_driver` (AMD/Hygon with HW_PSTATE)
 *     (cpufreq_driver_init, default cpufreq=xen);
 *   - `cpuidle_get_tick/ticks_elapsed/tick_to_ns` = the stime functions with NONSTOP_TSC, else the ACPI PM
 *     timer ones (cpuidle_init_cpu for CPU 0);
 *   - `core_parking_policy.next = core_parking_power` (core_parking_init, default policy "power").
 *
 * Machine- rather than CPU-dependent pointers (the platform timer `plt_src`, IOMMU ops, ...) are not resolved.
 * A slot not listed here keeps the image's value (see XenOptions.altcallNull for NULL ones).
 */
import { featureNumber } from '../target/features/index.js';
import { decoder, Mnemonic, OpKind, Register } from '../x86/insn.js';
import type { Cpu } from './cpu.js';
import type { PatchedView } from './view.js';

export type XenVendor = 'intel' | 'amd' | 'hygon';

/** CPUID bits only AMD (and Hygon) CPUs report: leaf 0x80000001 ECX/EDX and AMD-only leaves (every AMD64 CPU has MMXEXT). */
const AMD_ONLY = [
  'SVM',
  'SSE4A',
  'MMXEXT',
  'CR8_LEGACY',
  'EXTAPIC',
  'MISALIGNSSE',
  'TOPOEXT',
  'FFXSR',
  'CLZERO',
  'AMD_SSBD',
  'AMD_STIBP',
  'IBPB_RET',
  'NO_LMSL',
];
/** CPUID bits only Intel CPUs report, and SEP, which Xen clears on AMD (SYSENTER is unusable in long mode there). */
const INTEL_ONLY = ['VMX', 'EIST', 'TM2', 'DTES64', 'PDCM', 'SMX', 'DCA', 'IBRSB', 'ARCH_CAPS', 'L1D_FLUSH', 'SEP'];

/**
 * The vendor a feature set implies: any AMD-only bit makes it AMD (so a set with both kinds, like the `all`
 * preset, is AMD), else any Intel-only bit Intel; undefined when neither kind is present (`none`).
 */
export function vendorOf(cpu: Cpu): XenVendor | undefined {
  const any = (names: string[]): boolean =>
    names.some((n) => {
      const k = featureNumber(cpu.table, n);
      return k !== undefined && cpu.has(k);
    });
  if (any(AMD_ONLY)) return 'amd';
  return any(INTEL_ONLY) ? 'intel' : undefined;
}

/** What Xen's boot_cpu_data says about the CPU beyond its features (the boot log's `CPU Vendor:` line). */
export interface XenCpuId {
  vendor: XenVendor;
  family: number;
  model: number;
}

/** Intel family 6 models whose CPUID masking MSRs probe_masking_msrs() knows (Penryn/Dunnington, Nehalem/Westmere, SandyBridge). */
const INTEL_MASKING_MODELS = [0x17, 0x1d, 0x1a, 0x1e, 0x1f, 0x25, 0x2c, 0x2e, 0x2f, 0x2a, 0x2d];

export interface AltcallTargets {
  /** Pointer value at a pass (absolute address; 0n = NULL), or undefined when this module does not decide it. */
  value(slot: bigint, secondPass: boolean): bigint | undefined;
  /** Slots decided, with the assignment that decided them (for reports). */
  readonly decided: ReadonlyMap<bigint, { value: bigint; early: boolean; rule: string }>;
}

/**
 * The pointer assignments the boot makes for this CPU, over the image's own structures. `id` (vendor, family,
 * model) refines what the features alone say (vendorOf, the K8 NOP table for AMD family <= 0xf).
 */
export function xenAltcallTargets(view: PatchedView, cpu: Cpu, id?: XenCpuId): AltcallTargets {
  const vendor = id?.vendor ?? vendorOf(cpu);
  // AMD family <= 0xf: known from the id, else from the K8 NOP table (which Xen picks exactly for those).
  const amdK8 = id ? id.family <= 0xf : cpu.nops === 'k8';
  const img = view.img;
  const decided = new Map<bigint, { value: bigint; early: boolean; rule: string }>();
  const has = (name: string): boolean => {
    const k = featureNumber(cpu.table, name);
    return k !== undefined && cpu.has(k);
  };
  const sym = (name: string): { abs: bigint; size: number } | undefined => {
    const s = img.symbol(name);
    if (!s || s.shndx === 0 || Number.isNaN(s.addr)) return undefined;
    return { abs: view.abs(s.addr), size: s.size };
  };
  const word = (abs: bigint): bigint | undefined => {
    const r = view.rel(abs);
    if (Number.isNaN(r)) return undefined;
    const b = view.read(r, 8);
    return b ? new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true) : undefined;
  };
  /** `dst = *src` for a structure: every pointer-sized word; `keepNull` leaves NULL source words undecided. */
  const copy = (dst: string, src: string, early: boolean, keepNull = false): void => {
    const d = sym(dst);
    const s = sym(src);
    if (!d || !s) return;
    const size = Math.min(d.size, s.size);
    for (let o = 0; o + 8 <= size; o += 8) {
      const v = word(s.abs + BigInt(o));
      if (v === undefined || (keepNull && v === 0n)) continue;
      decided.set(d.abs + BigInt(o), { value: v, early, rule: `${dst} = ${src}` });
    }
  };
  const assign = (dst: string, off: number, fn: string, early: boolean): void => {
    const d = sym(dst);
    const f = sym(fn);
    if (d && f)
      decided.set(d.abs + BigInt(off), { value: f.abs, early, rule: `${dst}${off ? `+${off}` : ''} = ${fn}` });
  };

  if (vendor) {
    copy('actual_cpu', `${vendor}_cpu_dev`, true);
    if (has('MCE') && has('MCA')) {
      copy('mce_callbacks', vendor === 'intel' ? 'intel_callbacks' : amdK8 ? 'k8_callbacks' : 'k10_callbacks', true);
    }
    // early_microcode_init: Intel family >= 6 (every 64-bit one), AMD family >= 0x10 (K8 NOPs mean family <= 0xf).
    // 4.17 copies a named structure; 4.20's ucode_probe_{intel,amd}(ops) store each pointer through `ops`.
    const probe = vendor === 'intel' ? 'ucode_probe_intel' : 'ucode_probe_amd';
    if (vendor === 'intel' || !amdK8) {
      if (sym(`${vendor === 'intel' ? 'intel' : 'amd'}_ucode_ops`))
        copy('ucode_ops', `${vendor === 'intel' ? 'intel' : 'amd'}_ucode_ops`, true);
      else
        for (const [off, v] of pointerStores(view, probe)) {
          const d = sym('ucode_ops');
          if (d && off + 8 <= d.size)
            decided.set(d.abs + BigInt(off), {
              value: v,
              early: true,
              rule: `ucode_ops+${off} = ${view.nameOf(v)} (${probe})`,
            });
        }
    }
    if (vendor !== 'intel') assign('ctxt_switch_masking', 0, 'amd_ctxt_switch_masking', true);
    // intel_init_levelling: without CPUID faulting, the masking MSRs of the models probe_masking_msrs() knows
    // (assumed to respond, as on those CPUs); needs the model number, so only with an id.
    else if (id && id.family === 6 && INTEL_MASKING_MODELS.includes(id.model) && !has('CPUID_FAULTING')) {
      assign('ctxt_switch_masking', 0, 'intel_ctxt_switch_masking', true);
    }
    if (vendor === 'intel') copy('cpufreq_driver', 'acpi_cpufreq_driver', false);
    else if (has('HW_PSTATE')) copy('cpufreq_driver', 'powernow_cpufreq_driver', false);
  }
  if (!has('X2APIC')) copy('genapic', 'apic_default', true);
  if (has('VMX')) copy('hvm_funcs', 'vmx_function_table', false, true);
  else if (has('SVM')) copy('hvm_funcs', 'svm_function_table', false);
  const stime = has('NONSTOP_TSC');
  assign('cpuidle_get_tick', 0, stime ? 'get_stime_tick' : 'get_acpi_pm_tick', false);
  assign('ticks_elapsed', 0, stime ? 'stime_ticks_elapsed' : 'acpi_pm_ticks_elapsed', false);
  assign('tick_to_ns', 0, stime ? 'stime_tick_to_ns' : 'acpi_pm_tick_to_ns', false);
  // struct cp_policy { char name[30]; unsigned int (*next)(unsigned int event); }: next at 32.
  assign('core_parking_policy', 32, 'core_parking_power', false);

  return {
    decided,
    value(slot: bigint, secondPass: boolean): bigint | undefined {
      const d = decided.get(slot);
      if (!d) return undefined;
      return d.early || secondPass ? d.value : undefined;
    },
  };
}

/**
 * `*ops = CONSTANT_STRUCT` compiled into stores: in function `fn(ops)`, each `lea sym(%rip), %reg` followed by
 * `mov %reg, off(%ops)` gives ops+off = sym, where %ops is %rdi or a register it was copied to (`mov %rdi, %rbx`).
 * The whole function is scanned in address order (the probes are straight-line stores around a vendor/family
 * check). Stores of immediates (`movq $0, off(%rdi)`, a pointer cleared on a condition the machine decides,
 * such as microcode loading being locked) are not taken.
 */
export function pointerStores(view: PatchedView, fn: string): Map<number, bigint> {
  const out = new Map<number, bigint>();
  const f = view.img.symbol(fn);
  if (!f || Number.isNaN(f.addr) || !f.size) return out;
  const bytes = view.read(f.addr, f.size);
  if (!bytes) return out;
  const dec = decoder(bytes, { ip: view.abs(f.addr) });
  const lea = new Map<number, bigint>();
  const ops = new Set<number>([Register.RDI]);
  try {
    while (dec.canDecode) {
      const ins = dec.decode();
      try {
        const r0 = ins.op0Kind === OpKind.Register ? ins.op0Register : undefined;
        if (ins.mnemonic === Mnemonic.Lea && ins.isIpRelMemoryOperand && r0 !== undefined) {
          lea.set(r0, ins.ipRelMemoryAddress);
          ops.delete(r0);
        } else if (
          ins.mnemonic === Mnemonic.Mov &&
          r0 !== undefined &&
          ins.op1Kind === OpKind.Register &&
          ops.has(ins.op1Register)
        ) {
          ops.add(r0);
          lea.delete(r0);
        } else if (
          ins.mnemonic === Mnemonic.Mov &&
          ins.op0Kind === OpKind.Memory &&
          ops.has(ins.memoryBase) &&
          ins.memoryIndex === Register.None &&
          ins.op1Kind === OpKind.Register &&
          lea.has(ins.op1Register)
        ) {
          out.set(Number(BigInt.asIntN(64, ins.memoryDisplacementU64)), lea.get(ins.op1Register)!);
        } else if (
          r0 !== undefined &&
          ins.mnemonic !== Mnemonic.Push &&
          ins.mnemonic !== Mnemonic.Cmp &&
          ins.mnemonic !== Mnemonic.Test
        ) {
          // Any other write to a register ends what it held.
          lea.delete(r0);
          ops.delete(r0);
        }
      } finally {
        ins.free();
      }
    }
  } finally {
    dec.free();
  }
  return out;
}
