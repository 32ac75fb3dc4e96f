/**
 * patch/: what a given CPU runs after the kernels' boot-time patchers. Public API:
 *
 * ```ts
 * import { applyToImage, parseCpu } from './patch/index.js';
 * const target = detectTarget(img);
 * const cpu = parseCpu('intel-server,-LA57', featureTable(target.profile!.features));
 * const view = applyToImage(img, target, cpu);          // img is never written
 * const dis = new Disassembly(img, view.bytesOf);        // decode the patched text
 * view.patches;   // every write: patcher, addr, before, after, site
 * view.findings;  // what the kernel would BUG/WARN on, and limits of the model
 * ```
 */
export { applyPatches, applyToImage } from './apply.js';
export type { ApplyOptions, ApplyResult } from './apply.js';
export { parseCpu, presetsFor, cpuFeatureNames, CpuSpecError, PRESET_IDS } from './cpu.js';
export type { Cpu, ReturnThunk } from './cpu.js';
export { PatchedView } from './view.js';
export type { AppliedPatch, PatchFinding, PatcherId } from './view.js';
export { LINUX_PRESETS, XEN_PRESETS } from './presets.js';
export type { Preset } from './presets.js';
export { relocate } from './relocate.js';
export { LINUX_NOPS, XEN_K8_NOPS, XEN_P6_NOPS, addNops } from './nops.js';
export { optimizeNops } from './linux-alternatives.js';
export { parseLoadMap, parseSymbolMap } from './maps.js';
export { patchedElf, summarize } from './output.js';
export type { PatchSummary } from './output.js';
export { verifyView } from './verify.js';
export type { SiteCheck } from './verify.js';
