/**
 * What the HTML report and the playground show, computed from the library's outputs for one image:
 * sites per table and feature (sites/), findings per check (checks/), the bytes a CPU runs after the
 * boot-time patchers (patch/), and per function the disassembly before and after patching, its basic
 * blocks and edges (cfg/) with fences, patch sites and findings marked. Pure and browser-safe: the
 * playground runs it in a Web Worker, `textpoke report` in Node.
 *
 * Only functions that hold a patch site, a finding, a patcher's write or a finding's related location get
 * a detail page (disassembly and graph); every function is listed for search. This keeps the data for a
 * whole hypervisor (xen-syms, ~9,000 functions) to a few megabytes.
 *
 * @example
 * ```ts
 * const img = await imageFromBytes(bytes, 'xfs.ko');
 * const file = analyse(img, { cpu: 'intel-server' });
 * file.findings.length; file.functions.filter((f) => f.detail >= 0).length;
 * ```
 */
import type { Image } from '../../elf/image.js';
import { buildCfg } from '../../cfg/blocks.js';
import { functions, Func } from '../../cfg/functions.js';
import { isFenceCode } from '../../cfg/insn.js';
import type { View } from '../../cfg/view.js';
import { CHECKS } from '../../checks/index.js';
import { inventory as fenceInventory } from '../../cfg/fence-classes.js';
import type { Finding } from '../../checks/finding.js';
import { prepare, runChecks } from '../../checks/run.js';
import type { PrepareOptions } from '../../checks/run.js';
import { applyPatches, parseCpu } from '../../patch/index.js';
import type { PatchedView } from '../../patch/index.js';
import { RelocIndex } from '../../sites/listing.js';
import type { Ref, Site } from '../../sites/site.js';
import { featureName, featureTable } from '../../target/features/index.js';
import { disassemble, hexBytes } from '../../x86/format.js';
import { alignRows } from './viewer.js';
import { encodeLine, FLAG, packBlocks, packEdges, packFnEntry, parseLines } from './wire.js';
import type { Block, Change, Edge, FnEntry } from './wire.js';

export { FLAG };
export type { FnEntry };

export interface FindingData {
  readonly check: string;
  readonly severity: string;
  readonly address: string;
  readonly symbol: string;
  readonly offset: number;
  readonly message: string;
  readonly related: { symbol: string; address: string; message: string }[];
  /** Index into `functions` of the function holding the finding, or -1. */
  readonly fn: number;
}

export interface FnDetail {
  readonly name: string;
  /** Real start address (hex). Offsets below are from it. */
  readonly addr: string;
  readonly size: number;
  readonly section: string;
  /** Bytes as built: one packed line per instruction (wire.ts: `encodeLines`, `parseLines`). */
  readonly before: string;
  /**
   * Bytes after the patchers, as changes to `before`: [fromOff, toOff, lines] replaces the instructions of
   * `before` starting in [fromOff, toOff) (same line shape). Absent when no patcher wrote inside the function.
   */
  readonly changes?: Change[];
  /** Basic blocks of the checked view, packed (wire.ts: `packBlocks`, `blocksOf`). */
  readonly blocks: number[];
  /** Edges out of the blocks, packed (wire.ts: `packEdges`, `edgesOf`). */
  readonly edges: Array<number | string>;
  /** Sites in the function: [off, length, table, one-line description]. */
  readonly sites: Array<[number, number, string, string]>;
  /** Indexes of findings in the file's `findings` that lie in this function. */
  readonly findings: number[];
  /** Which bytes the graph and flags describe ('bytes as built' or 'patched ...'). */
  readonly graphOf: string;
}

export interface ModelTrace {
  readonly protocol: string;
  readonly scenario: string;
  readonly verdict: string;
  readonly property?: string;
  readonly states: number;
  /** SVG sequence diagram (from the model's renderer); shown as an image, never as markup. */
  readonly svg?: string;
  readonly text?: string;
}

export interface FileData {
  readonly path: string;
  readonly target: { os: string; version: string | null; profile: string | null; note?: string };
  /** What the checks ran on. */
  readonly checked: string;
  /** CPU the "after" disassembly is patched for, or why there is none. */
  readonly patchedFor: string;
  readonly counts: Record<string, number>;
  /** Alternatives per feature: [feature name, sites], most first. */
  readonly features: Array<[string, number]>;
  /** Writes per patcher. */
  readonly patchers: Array<[string, number, number]>;
  readonly checks: Array<{ id: string; describe: string; severity: string; count: number }>;
  readonly findings: FindingData[];
  readonly errors: string[];
  readonly functions: FnEntry[];
  readonly details: FnDetail[];
  /** One of this file's patcher writes, for the model checker to try the live-patching protocols on. */
  readonly modelSite?: ModelSite;
  /** Speculation barriers per class and gating feature, with the `spec-ctrl=` switch that removes them (cfg/fence-classes.ts). */
  readonly fences?: Array<{ cls: string; gate: string; switch?: string; count: number }>;
}

export interface ModelSite {
  readonly label: string;
  readonly os: string;
  /** Real address (hex). */
  readonly base: string;
  readonly old: number[];
  readonly new: number[];
}

export interface ReportData {
  readonly generator: string;
  readonly files: FileData[];
  /** Model-checker verdicts and counterexample traces (protocols against scenarios). */
  readonly model?: ModelTrace[];
  /** Pieces of the pipeline this build could not show, one sentence each. */
  readonly missing: string[];
}

export interface AnalyseOptions {
  /** CPU the checks' patched view is built for (`--cpu` syntax, or 'as-built'); default intel-server, as `textpoke check`. */
  readonly cpu?: string;
  /** Profile id overriding detection. */
  readonly profile?: string;
  /** CPU when `cpu` is not given (the playground's CPU field). */
  readonly defaultCpu?: string;
  /** Give every function a detail page (large inputs get big). */
  readonly allFunctions?: boolean;
  /** Check ids (default: those that run by default). */
  readonly checks?: readonly string[];
}

/** Reads sites, patches, runs the checks and collects what the report shows for one image. */
export function analyse(img: Image, o: AnalyseOptions = {}): FileData {
  const errors: string[] = [];
  let pv: PatchedView | undefined;
  let patchedFor = 'not patched: no profile for this file';
  // The checks run exactly as `textpoke check --cpu SPEC` runs them (same view, same findings).
  const spec = o.cpu ?? o.defaultCpu ?? 'intel-server';
  const prepOpts: PrepareOptions & { cpu?: string } = { profile: o.profile, cpu: spec };
  let prep: ReturnType<typeof prepare>;
  try {
    prep = prepare(img, prepOpts);
  } catch (e) {
    // A CPU the file's feature table does not know: check the bytes as built and say why.
    errors.push(`--cpu ${spec}: ${e instanceof Error ? e.message : String(e)}; checked the bytes as built`);
    prep = prepare(img, { profile: o.profile, cpu: 'as-built' } as PrepareOptions);
  }
  // The "after" column: the same CPU (or intel-server when the checks ran on the bytes as built).
  const target = prep.view.target;
  if (target.profile) {
    const afterSpec =
      spec === 'as-built' ? (o.defaultCpu && o.defaultCpu !== 'as-built' ? o.defaultCpu : 'intel-server') : spec;
    try {
      if (prep.patched) {
        // The checks' view was patched for this CPU already: show the same patched image.
        pv = prep.patched.view;
        patchedFor = `--cpu ${prep.patched.spec}`;
      } else {
        const cpu = parseCpu(afterSpec, featureTable(target.profile.features));
        pv = applyPatches(img, target.profile, cpu, { sites: prep.view.sites }).view;
        patchedFor = `--cpu ${cpu.spec}`;
      }
    } catch (e) {
      patchedFor = `not patched: ${e instanceof Error ? e.message : String(e)}`;
    }
  }
  const view = prep.view;
  errors.push(...prep.tableErrors);
  try {
    const checks = o.checks ? CHECKS.filter((c) => o.checks!.includes(c.id)) : CHECKS.filter((c) => c.byDefault);
    let findings: Finding[] = [];
    try {
      findings = runChecks(view, checks);
    } catch (e) {
      errors.push(`checks failed: ${e instanceof Error ? e.message : String(e)}`);
    }
    return collect(
      img,
      view,
      pv,
      findings,
      checks.map((c) => ({ id: c.id, describe: c.describe, severity: c.severity })),
      patchedFor,
      errors,
      o,
    );
  } finally {
    view.dispose();
  }
}

function collect(
  img: Image,
  view: View,
  pv: PatchedView | undefined,
  findings: Finding[],
  checks: Array<{ id: string; describe: string; severity: string }>,
  patchedFor: string,
  errors: string[],
  o: AnalyseOptions,
): FileData {
  const t = view.target;
  const target: FileData['target'] = { os: t.os, version: t.version, profile: t.profile?.id ?? null };
  if (t.note) target.note = t.note;
  const sites = view.sites;
  const counts: Record<string, number> = {};
  const feat = new Map<string, number>();
  const ft = t.profile ? featureTable(t.profile.features) : undefined;
  for (const s of sites) {
    counts[s.table] = (counts[s.table] ?? 0) + 1;
    if (s.table === '.altinstructions') {
      const n = `${s.inverted ? '!' : ''}${ft ? featureName(ft, s.feature) : `feature ${s.feature}`}`;
      feat.set(n, (feat.get(n) ?? 0) + 1);
    }
  }
  const patches = pv ? pv.patches.filter((p) => p.patcher !== 'relocate') : [];
  const byPatcher = new Map<string, [number, number]>();
  for (const p of patches) {
    const e = byPatcher.get(p.patcher) ?? [0, 0];
    e[0]++;
    for (let i = 0; i < p.after.length; i++) if (p.after[i] !== p.before[i]) e[1]++;
    byPatcher.set(p.patcher, e);
  }

  // Functions and what falls in each.
  const fns = functions(view);
  const fnIndex = (addr: number): number => {
    let lo = 0;
    let hi = fns.length - 1;
    let k = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (fns[mid]!.addr <= addr) {
        k = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return k >= 0 && addr < fns[k]!.addr + fns[k]!.size ? k : -1;
  };
  const siteCount = new Uint32Array(fns.length);
  const findCount = new Uint32Array(fns.length);
  const want = new Uint8Array(fns.length);
  const sitesOf = new Map<number, Site[]>();
  for (const s of sites) {
    if (Number.isNaN(s.addr)) continue;
    const k = fnIndex(s.addr);
    if (k < 0) continue;
    siteCount[k]!++;
    want[k] = 1;
    let l = sitesOf.get(k);
    if (!l) sitesOf.set(k, (l = []));
    l.push(s);
  }
  const relatedAddrs = new Map<number, Set<number>>();
  const fdata: FindingData[] = findings.map((f) => {
    const rel = img.rel(BigInt(f.address));
    const k = Number.isNaN(rel) ? -1 : fnIndex(rel);
    if (k >= 0) {
      findCount[k]!++;
      want[k] = 1;
    }
    for (const r of f.related) {
      const ra = img.rel(BigInt(r.address));
      const rk = Number.isNaN(ra) ? -1 : fnIndex(ra);
      if (rk >= 0) {
        want[rk] = 1;
        let st = relatedAddrs.get(rk);
        if (!st) relatedAddrs.set(rk, (st = new Set()));
        st.add(ra);
      }
    }
    return {
      check: f.check,
      severity: f.severity,
      address: f.address,
      symbol: f.symbol,
      offset: f.offset,
      message: f.message,
      related: f.related.map((r) => ({ ...r })),
      fn: k,
    };
  });
  const patchedFns = new Set<number>();
  for (const p of patches) {
    const k = fnIndex(p.addr);
    if (k >= 0) {
      want[k] = 1;
      patchedFns.add(k);
    }
  }
  if (o.allFunctions) want.fill(1);

  const findingsOf = new Map<number, number[]>();
  fdata.forEach((f, i) => {
    if (f.fn < 0) return;
    let l = findingsOf.get(f.fn);
    if (!l) findingsOf.set(f.fn, (l = []));
    l.push(i);
  });

  const relocs = new RelocIndex(img);
  const details: FnDetail[] = [];
  const list: FnEntry[] = [];
  for (let k = 0; k < fns.length; k++) {
    const fn = fns[k]!;
    let d = -1;
    if (want[k]) {
      try {
        const det = detail(
          img,
          view,
          pv,
          fn,
          sitesOf.get(k) ?? [],
          findingsOf.get(k) ?? [],
          fdata,
          relatedAddrs.get(k),
          patchedFns.has(k),
          relocs,
          ft,
        );
        if (det) {
          d = details.length;
          details.push(det);
        }
      } catch (e) {
        errors.push(`${fn.name}: cannot show (${e instanceof Error ? e.message : String(e)})`);
      }
    }
    list.push(
      packFnEntry({
        name: fn.name,
        addr: img.hex(fn.addr),
        size: fn.size,
        sites: siteCount[k]!,
        findings: findCount[k]!,
        detail: d,
      }),
    );
  }

  // A write worth model checking: an alternative (several bytes, more than a NOP change) before anything else.
  const rank = (p: (typeof patches)[number]): number =>
    (/alternatives/.test(p.patcher) ? 0 : 1) + (p.after.length >= 3 && p.after.length <= 15 ? 0 : 2);
  const pick = patches
    .filter((p) => p.after.length >= 2 && p.after.length <= 15 && p.after.some((b, k) => b !== p.before[k]))
    .sort((a, b) => rank(a) - rank(b))[0];
  const modelSite: ModelSite | undefined =
    pick && pv
      ? {
          label: `${img.path.split('/').pop()}: ${img.where(pick.addr)} (${pick.patcher})`,
          os: t.os,
          base: '0x' + pv.abs(pick.addr).toString(16),
          old: [...pick.before],
          new: [...pick.after],
        }
      : undefined;

  const perCheck = new Map<string, number>();
  for (const f of findings) perCheck.set(f.check, (perCheck.get(f.check) ?? 0) + 1);
  return {
    path: img.path,
    target,
    checked: view.describe,
    patchedFor: patchedFor || 'not patched',
    counts,
    features: [...feat].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)),
    patchers: [...byPatcher].map(([p, [n, b]]) => [p, n, b]),
    checks: checks.map((c) => ({ ...c, count: perCheck.get(c.id) ?? 0 })),
    findings: fdata,
    errors,
    functions: list,
    details,
    ...(modelSite ? { modelSite } : {}),
    fences: fenceInventory(view),
  };
}

function siteLine(img: Image, s: Site, ft: ReturnType<typeof featureTable> | undefined): string {
  const parts: string[] = [`${s.table}[${s.index}]`];
  const named = (r: Ref): string => r.name ?? (Number.isNaN(r.addr) ? '?' : img.where(r.addr));
  switch (s.table) {
    case '.altinstructions':
      parts.push(`${s.inverted ? '!' : ''}${ft ? featureName(ft, s.feature) : `feature ${s.feature}`}`);
      parts.push(`-> ${s.repl.length} bytes at ${Number.isNaN(s.repl.addr) ? '?' : img.where(s.repl.addr)}`);
      break;
    case '.parainstructions':
      parts.push(`pv_ops[${s.paraType}]`);
      break;
    case '.static_call_sites':
      parts.push(`key ${named(s.key)}`);
      break;
    case '__jump_table':
      parts.push(`key ${named(s.key)}`);
      if (s.target) parts.push(`target ${named(s.target)}`);
      break;
  }
  if (s.problems) parts.push(`PROBLEM: ${s.problems.join('; ')}`);
  return parts.join(' ');
}

/**
 * Instruction lines of a function's bytes. Relocations are shown as objdump -dr shows them, except inside
 * `written` ranges (a patcher's bytes: what they encode is shown as is).
 */
function lines(
  img: Image,
  b: Uint8Array,
  fn: Func,
  relocs: RelocIndex,
  flags: (addr: number, len: number) => string,
  written: Array<[number, number]> = [],
): string {
  const out: string[] = [];
  const hit = (a: number, n: number): boolean => written.some(([w, e]) => a < e && a + n > w);
  for (const i of disassemble(b, fn.addr, { img, relocs: relocs.at(fn.addr) })) {
    const ib = b.subarray(i.addr - fn.addr, i.addr - fn.addr + i.len);
    const text = written.length && hit(i.addr, i.len) ? (disassemble(ib, i.addr, { img })[0]?.text ?? i.text) : i.text;
    out.push(encodeLine({ off: i.addr - fn.addr, bytes: hexBytes(ib), text, flags: flags(i.addr, i.len) }));
  }
  return out.join('\n');
}

function detail(
  img: Image,
  view: View,
  pv: PatchedView | undefined,
  fn: Func,
  sites: Site[],
  findingIdx: number[],
  fdata: FindingData[],
  related: Set<number> | undefined,
  patched: boolean,
  relocs: RelocIndex,
  ft: ReturnType<typeof featureTable> | undefined,
): FnDetail | undefined {
  const sec = img.sectionAt(fn.addr);
  if (!sec || sec.type === 8) return undefined;
  const siteStarts = new Set(sites.map((s) => s.addr));
  const findAt = new Set(findingIdx.map((i) => Number(img.rel(BigInt(fdata[i]!.address)))));
  const fenceAt = new Set<number>();
  const sc = view.dis.at(fn.addr);
  if (sc) {
    const base = sc.section.addr;
    let i = sc.indexAt(fn.addr - base);
    for (; i >= 0 && i < sc.count && base + sc.off[i]! < fn.addr + fn.size; i++)
      if (isFenceCode(sc.code[i]!)) fenceAt.add(base + sc.off[i]!);
  }
  const builtFences = new Set<number>();
  const bsc = view.built.at(fn.addr);
  if (bsc) {
    const base = bsc.section.addr;
    let i = bsc.indexAt(fn.addr - base);
    for (; i >= 0 && i < bsc.count && base + bsc.off[i]! < fn.addr + fn.size; i++)
      if (isFenceCode(bsc.code[i]!)) builtFences.add(base + bsc.off[i]!);
  }
  // "After" = the file's bytes with every patcher write inside the function laid over them in order (for a
  // module, the loader's relocations are left out: the relocation annotations already name the targets).
  const off = fn.addr - sec.addr;
  const secBytes = img.sectionBytes(sec);
  const builtBytes = secBytes.subarray(off, Math.min(secBytes.length, off + fn.size));
  const written: Array<[number, number]> = [];
  let afterBytes = builtBytes;
  if (pv && patched) {
    afterBytes = Uint8Array.from(builtBytes); // a copy: slice() on a Node Buffer would share the file bytes
    for (const p of pv.patches) {
      if (p.patcher === 'relocate' || p.addr >= fn.addr + fn.size || p.addr + p.after.length <= fn.addr) continue;
      for (let k = 0; k < p.after.length; k++) {
        const o = p.addr - fn.addr + k;
        if (o >= 0 && o < afterBytes.length) afterBytes[o] = p.after[k]!;
      }
      written.push([p.addr, p.addr + p.after.length]);
    }
  }
  const differs = (a: number, n: number): boolean => {
    const o = a - fn.addr;
    for (let k = 0; k < n; k++) if (builtBytes[o + k] !== afterBytes[o + k]) return true;
    return false;
  };
  const mark =
    (fences: Set<number>) =>
    (a: number, n: number): string => {
      let f = '';
      if (fences.has(a)) f += FLAG.fence;
      if (siteStarts.has(a)) f += FLAG.site;
      if (findAt.has(a)) f += FLAG.finding;
      if (related?.has(a)) f += FLAG.related;
      if (patched && differs(a, n)) f += FLAG.patched;
      return f;
    };
  const checkedIsPatched = view.patched;
  const before = lines(img, builtBytes, fn, relocs, mark(builtFences));
  let changes: Change[] | undefined;
  if (written.length) {
    const after = lines(
      img,
      afterBytes,
      fn,
      relocs,
      mark(checkedIsPatched ? fenceAt : fencesOf(img, afterBytes, fn)),
      written,
    );
    // Only what differs is kept: a whole kernel's functions are mostly unchanged by the patchers.
    const rows = alignRows(parseLines(before), parseLines(after));
    changes = [];
    const afterLines = after.split('\n');
    const afterIndex = new Map(afterLines.map((l, k) => [parseInt(l, 16), k]));
    rows.forEach(([L, R, chg], k) => {
      if (!chg) return;
      const from = Math.min(L[0]?.off ?? Infinity, R[0]?.off ?? Infinity);
      const next = rows[k + 1];
      const to = next ? Math.min(next[0][0]?.off ?? Infinity, next[1][0]?.off ?? Infinity) : fn.size;
      changes!.push([from, to, R.map((r) => afterLines[afterIndex.get(r.off)!]!).join('\n')]);
    });
  }

  const blocks: Block[] = [];
  const edges: Edge[] = [];
  const cfg = buildCfg(view, fn);
  if (cfg) {
    cfg.blocks.forEach((b, i) => {
      blocks.push({ start: b.addr - fn.addr, end: b.end - fn.addr });
      for (const e of b.succ) {
        const inside = e.to >= fn.addr && e.to < fn.addr + fn.size;
        edges.push({ from: i, to: inside ? e.to - fn.addr : Number.isNaN(e.to) ? '?' : img.where(e.to), kind: e.kind });
      }
    });
  }
  return {
    name: fn.name,
    addr: img.hex(fn.addr),
    size: fn.size,
    section: sec.name,
    before,
    ...(changes ? { changes } : {}),
    blocks: packBlocks(blocks),
    edges: packEdges(edges),
    sites: sites.map((s) => [s.addr - fn.addr, s.length, s.table, siteLine(img, s, ft)]),
    findings: findingIdx,
    graphOf: view.describe,
  };
}

/** Fences in patched bytes when the checked view is the bytes as built (decoded on demand). */
function fencesOf(img: Image, bytes: Uint8Array, fn: Func): Set<number> {
  const out = new Set<number>();
  for (const i of disassemble(bytes, fn.addr, { img })) if (/^lfence\b/.test(i.text)) out.add(i.addr);
  return out;
}
