/**
 * textpoke as a library: the pipeline the commands run, one stage per group below, in the order data flows
 * (bytes -> Image -> Target -> Site[] -> PatchedView -> Finding[] -> text | JSON | SARIF). Everything here is
 * free of node-only APIs, so the same entry points run in Node and in a browser. docs/library.md has a
 * runnable example; DESIGN.md has the data flow.
 *
 * ```ts
 * import { readFileSync } from 'node:fs';
 * import { imageFromBytes, detectTarget, readSites, featureTable, parseCpu, applyToImage, prepare, runChecks, renderFile } from 'textpoke';
 * const img = await imageFromBytes(readFileSync('xfs.ko.xz'), 'xfs.ko.xz');
 * const target = detectTarget(img);
 * const { sites } = readSites(img, target.profile!);
 * const view = applyToImage(img, target, parseCpu('intel-server', featureTable(target.profile!.features)));
 * const { view: checked } = prepare(img, { cpu: 'intel-server' });
 * process.stdout.write(renderFile('xfs.ko.xz', runChecks(checked)));
 * ```
 *
 * Subpaths: `textpoke/html` (what the self-contained HTML report shows, and the page around it),
 * `textpoke/viewer` (the report's viewer alone, for a page: DOM only, no analysis code), `textpoke/model`
 * (the whole model checker, including its protocol and scenario data types) and `textpoke/x86` (decoding,
 * instruction helpers, named encoders, formatting).
 */

// Reading an image: ELF64 bytes, or a compressed module (.ko.xz, .ko.zst, .ko.gz) unpacked by its magic.
export { imageFromBytes, decompress, compressionOf } from './elf/load.js';
export type { Compression } from './elf/load.js';
export { Image, ElfError, isElfMagic } from './elf/image.js';
export type { Section, Sym, Reloc, RelocTable, Relocations, Symbolized, ParseOptions, ElfKind } from './elf/image.js';

// Target detection: which kernel and version, and the profile (table layouts, feature numbering) that reads it.
export { detectTarget, ProfileError } from './target/detect.js';
export type { Target } from './target/detect.js';
export { PROFILES, profileById, TABLE_IDS } from './target/profile.js';
export type { Profile, TableId, Os } from './target/profile.js';
export { featureTable, featureName, featureNumber, FEATURE_TABLE_IDS } from './target/features/index.js';
export type { FeatureTable, FeatureFamily } from './target/features/index.js';

// Sites: every runtime patch site, one reader per table kind; the listing `textpoke sites` prints.
export { readSites } from './sites/read.js';
export type { SiteSet, ReadOptions } from './sites/read.js';
export { isTable, isAlternative, isParavirt, isStaticCall, isJumpLabel, sitesOf } from './sites/site.js';
export type {
  Site,
  SiteOf,
  AltSite,
  ParavirtSite,
  StaticCallSite,
  JumpLabelSite,
  InstructionSite,
  InstructionListId,
  Ref,
} from './sites/site.js';
export { fileJson as sitesJson, renderText as renderSitesText } from './sites/listing.js';
export type { FileJson as SitesJson, SiteJson } from './sites/listing.js';

// A CPU: parsing a `--cpu` spec and applying the kernels' boot-time patchers to get a PatchedView.
export { parseCpu, presetsFor, cpuFeatureNames, CpuSpecError, PRESET_IDS } from './patch/cpu.js';
export type { Cpu, ReturnThunk } from './patch/cpu.js';
export type { Preset } from './patch/presets.js';
export { applyPatches, applyToImage } from './patch/apply.js';
export type { ApplyOptions, ApplyResult } from './patch/apply.js';
export { PatchedView } from './patch/view.js';
export type { AppliedPatch, PatchFinding, PatcherId } from './patch/view.js';
export { patchedElf, summarize } from './patch/output.js';
export type { PatchSummary } from './patch/output.js';
export { verifyView } from './patch/verify.js';
export type { SiteCheck } from './patch/verify.js';

// Checks: prepare the view a check reads (as built, or patched for a CPU), run the registry's checks.
export { prepare, runChecks, DEFAULT_CPU } from './checks/run.js';
export type { PrepareOptions, Prepared } from './checks/run.js';
export { CHECKS, checkById } from './checks/index.js';
export type { Check, Finding, Severity, Related } from './checks/index.js';
export type { View, ViewOptions } from './cfg/view.js';

// Reports: findings as objtool-style text, JSON and SARIF 2.1.0.
export { renderFinding, renderFile, renderCounts, severityOf } from './report/text.js';
export type { TextOptions } from './report/text.js';
export { renderJson, fileJson } from './report/json.js';
export type { FileReport } from './report/json.js';
export { renderSarif, sarifLog } from './report/sarif.js';

// The live-patching protocol model checker (the rest of it: `textpoke/model`).
export {
  compile,
  explore,
  PROTOCOLS,
  findProtocol,
  SCENARIOS,
  findScenario,
  parseScenarioFile,
  renderResult,
  toPromela,
  verdictTable,
  renderTable,
  PROPERTY_TEXT,
} from './model/index.js';
export type { Model, Protocol, Scenario, Property, Result, TraceStep, ExploreOptions } from './model/index.js';

// Xen hypercall dispatch: hypercall-defs.c parsed (with the built-in preprocessor), dispatch generated without UB.
export { preprocess, CppError } from './hypercall/cpp.js';
export { parseDefs, defineMap, DefsError, X86_DEFINES } from './hypercall/defs.js';
export type { Defs, Call, Proto, Arg } from './hypercall/defs.js';
export { generate, STYLES } from './hypercall/gen.js';
export type { Style, GenOptions } from './hypercall/gen.js';
export { parseNumbers, XEN_417_NUMBERS } from './hypercall/numbers.js';
export { abiDiff } from './hypercall/abi.js';
export type { AbiChange } from './hypercall/abi.js';

// Indirect-branch inventory and symbol ambiguity (`textpoke surface`, `textpoke symbols`).
export { indirectSurface, renderSurface } from './surface/inventory.js';
export type { Surface, FunctionSurface, Counts as SurfaceCounts } from './surface/inventory.js';
export { findAmbiguous, renderAmbiguity } from './symbols/ambiguous.js';
export type { AmbiguityReport, AmbiguityOptions, AmbiguousGroup } from './symbols/ambiguous.js';
