/**
 * The boot-time patchers in the kernels' own order, over a PatchedView.
 *
 * Linux (alternative_instructions() for vmlinux, module_finalize() for modules, same order):
 *   [module loader: relocations] -> apply_paravirt (native) -> apply_retpolines -> apply_returns
 *   -> apply_alternatives -> apply_ibt_endbr, then static calls at their keys' initial functions
 *   (__static_call_init; keys defined in the file only). Jump labels stay as built: objtool already wrote each
 *   one's initial NOP/JMP and x86 has no arch_jump_label_transform_static.
 * Xen: _apply_alternatives, first pass (force = false) then second pass (force = true), which ends by
 *   poisoning the ENDBR64 of cf_clobber functions when CET-IBT is in use.
 */
import type { Image } from '../elf/image.js';
import { readSites } from '../sites/read.js';
import type { Site } from '../sites/site.js';
import type { Target } from '../target/detect.js';
import { linuxNopMax } from '../target/evidence.js';
import { linuxRules, Profile, xenRules } from '../target/profile.js';
import type { Cpu } from './cpu.js';
import { featureNumber } from '../target/features/index.js';
import { applyLinuxAlternatives } from './linux-alternatives.js';
import { applyLinuxIbt } from './linux-ibt.js';
import { applyLinuxFtrace } from './linux-ftrace.js';
import type { PreemptMode } from './linux-static-calls.js';
import { applyLinuxParavirt } from './linux-paravirt.js';
import { applyLinuxRetpolines } from './linux-retpolines.js';
import { applyLinuxReturns } from './linux-returns.js';
import { applyLinuxStaticCalls } from './linux-static-calls.js';
import { relocate, RelocateResult } from './relocate.js';
import { PatchedView } from './view.js';
import { applyXenAlternatives, applyXenAltCalls, XenOptions } from './xen-alternatives.js';
import { xenAltcallTargets, XenCpuId } from './xen-altcall-targets.js';
import { applyXenCfClobber } from './xen-cf-clobber.js';

export interface ApplyOptions {
  /** ET_REL: load addresses of sections (absolute), as /sys/module/NAME/sections/ lists them. */
  load?: ReadonlyMap<string, bigint>;
  /** ET_REL: addresses of undefined symbols (System.map). Others get synthetic addresses. */
  symbols?: ReadonlyMap<string, bigint>;
  /** Sites already read (readSites with this profile); read here otherwise. */
  sites?: readonly Site[];
  xen?: XenOptions;
  /** Xen: vendor, family and model (boot_cpu_data, the boot log), for the altcall pointers that depend on them. */
  xenCpu?: XenCpuId;
  /**
   * Linux ftrace: 'nop' (default) turns every mcount call into a NOP as ftrace does at boot and module load
   * with no tracer active; 'call' keeps the calls (a tracer attached to every function).
   */
  ftrace?: 'nop' | 'call';
  /**
   * Linux PREEMPT_DYNAMIC: the boot-time preemption mode that sets the preempt_schedule/cond_resched static
   * call keys (default: the profile's LinuxRules.preemptDefault, Debian's boot default: voluntary up to 6.x,
   * lazy in 7.x); 'unknown' leaves their sites alone.
   */
  preempt?: PreemptMode | 'unknown';
}

export interface ApplyResult {
  view: PatchedView;
  sites: readonly Site[];
  relocation?: RelocateResult;
  /** Table problems readSites reported. */
  errors: string[];
}

export function applyPatches(img: Image, profile: Profile, cpu: Cpu, opts: ApplyOptions = {}): ApplyResult {
  if (cpu.table.family !== (profile.os === 'xen' ? 'xen' : 'linux')) {
    throw new Error(`CPU description is for ${cpu.table.family}, the file is ${profile.os}`);
  }
  const view = new PatchedView(img, opts.load);
  let errors: string[] = [];
  let sites = opts.sites;
  if (!sites) {
    const set = readSites(img, profile, { decode: false });
    sites = set.sites;
    errors = set.errors;
  }
  let relocation: RelocateResult | undefined;
  if (img.kind === 'rel') relocation = relocate(view, { symbols: opts.symbols });
  if (profile.os === 'xen') {
    const rules = xenRules(profile);
    // Altcall pointers the boot sets from the binary's own ops structures (unless the caller gives values).
    const targets = opts.xen?.pointerValue ? undefined : xenAltcallTargets(view, cpu, opts.xenCpu);
    const xen: XenOptions = targets ? { ...opts.xen, pointerValue: (a, p) => targets.value(a, p) } : { ...opts.xen };
    applyXenAlternatives(view, sites, cpu, { ...xen, rules });
    if (rules.altcall === 'alt-call-sites') applyXenAltCalls(view, sites, xen);
    applyXenCfClobber(view, cpu);
  } else {
    let rules = linuxRules(profile);
    // The build's own x86nops[] decides ASM_NOP_MAX where the file has it (a vmlinux): a profile spans versions.
    const nopMax = linuxNopMax(img);
    if (nopMax !== undefined && nopMax !== rules.nopMax) {
      view.notes.push(
        `${img.path}: x86nops[] holds NOPs up to ${nopMax} bytes; profile ${profile.id} assumes ${rules.nopMax}: the file's is used`,
      );
      rules = { ...rules, nopMax };
    }
    applyLinuxParavirt(view, sites);
    applyLinuxRetpolines(view, sites, cpu, rules);
    applyLinuxReturns(view, sites, cpu);
    applyLinuxAlternatives(view, sites, cpu, rules);
    applyLinuxIbt(view, sites, rules);
    applyLinuxStaticCalls(
      view,
      sites,
      cpu,
      rules,
      opts.preempt === 'unknown' ? null : (opts.preempt ?? rules.preemptDefault),
    );
    if (opts.ftrace !== 'call') applyLinuxFtrace(view, sites);
    const cd = featureNumber(cpu.table, 'CALL_DEPTH');
    if (rules.callDepth && cd !== undefined && cpu.has(cd) && sites.some((s) => s.table === '.call_sites')) {
      view.finding(
        'alternatives',
        NaN,
        'call depth tracking (CALL_DEPTH): callthunks_patch_module_calls/builtin_calls retarget .call_sites, and static calls to padded functions (callthunks_translate_call_dest), to accounting thunks; not reproduced',
        'model',
      );
    }
  }
  return { view, sites, relocation, errors };
}

/** The PatchedView a CPU ends up running for this image (see applyPatches for details and options). */
export function applyToImage(img: Image, target: Target, cpu: Cpu, opts: ApplyOptions = {}): PatchedView {
  if (!target.profile) throw new Error(`no profile for ${img.path}: ${target.note ?? 'unknown kernel'}`);
  return applyPatches(img, target.profile, cpu, opts).view;
}
