/**
 * Running checks on one image: detect the target (any x86-64 ELF works; a file that is no known kernel
 * gets the checks that need no patch tables), read its patch sites, build the view (by default the text a
 * CPU runs after the kernel's boot-time patchers: patch/), run the selected checks, and keep one finding per (check, location).
 */
import type { Image, Section } from '../elf/image.js';
import type { Site } from '../sites/site.js';
import { applyPatches, parseCpu } from '../patch/index.js';
import type { PatchedView } from '../patch/index.js';
import { View } from '../cfg/view.js';
import { PatchedCode } from '../cfg/patched-code.js';
import { Disassembly } from '../x86/code.js';
import { detectTarget, Target } from '../target/detect.js';
import { featureTable } from '../target/features/index.js';
import { readSites } from '../sites/read.js';
import type { Check } from './check.js';
import type { Finding } from './finding.js';
import { CHECKS } from './index.js';

export interface PrepareOptions {
  /** Profile id overriding detection. */
  readonly profile?: string;
  /**
   * CPU the patched view is built for (`--cpu` syntax: preset[,+FEATURE|-FEATURE|key=value...]), or
   * 'as-built' (the default here; the CLI passes DEFAULT_CPU) to check the bytes as built. Files that are no
   * known kernel are always checked as built.
   */
  readonly cpu?: string;
  /** A caller-made patched view instead of `cpu`. */
  readonly patch?: (
    img: Image,
    target: Target,
    sites: readonly Site[],
  ) => { bytesOf: (s: Section) => Uint8Array; describe: string; has?: (f: number) => boolean } | undefined;
}

/**
 * Default CPU: for Xen, the intel-server preset (branch and lock hardening on: SC_NO_*_HARDEN absent); for
 * Linux, the intel-server preset: what Debian's 6.1 kernel picks on a recent Intel server (spectre_v2=eibrs,
 * so retpoline sites become plain indirect calls; no return thunk).
 */
export const DEFAULT_CPU = 'intel-server';

export interface Prepared {
  readonly view: View;
  /** Problems reading the patch tables (reported as errors by the caller). */
  readonly tableErrors: string[];
  /** What the patchers would BUG()/WARN on (kind 'bug' | 'warn'), one line each. */
  readonly patchNotes: string[];
  /** The patched image the view was built from, and the CPU it was patched for (absent as built). */
  readonly patched?: { readonly view: PatchedView; readonly spec: string };
}

export function prepare(img: Image, o: PrepareOptions = {}): Prepared {
  const target = detectTarget(img, o.profile);
  if (!target.profile) return { view: new View(img, { target }), tableErrors: [], patchNotes: [] };
  const features = featureTable(target.profile.features);
  const dis = new Disassembly(img);
  const built = new View(img, { target, features, disassembly: dis });
  const set = readSites(img, target.profile, { disassembly: dis });
  const sites = set.sites;
  const asBuilt = (): Prepared => ({
    view: new View(img, { target, features, sites, disassembly: built.dis }),
    tableErrors: set.errors,
    patchNotes: [],
  });
  if (o.patch) {
    const p = o.patch(img, target, sites);
    if (!p) return asBuilt();
    built.reader.free();
    return {
      view: new View(img, {
        target,
        features,
        sites,
        bytesOf: p.bytesOf,
        built: built.dis,
        describe: p.describe,
        has: p.has,
      }),
      tableErrors: set.errors,
      patchNotes: [],
    };
  }
  if (o.cpu === undefined || o.cpu === 'as-built') return asBuilt();
  const spec = o.cpu;
  const cpu = parseCpu(spec, features);
  const res = applyPatches(img, target.profile, cpu, { sites });
  const pv = res.view;
  const externs = new Map<number, string>();
  for (const [name, abs] of pv.externAbs) externs.set(pv.rel(abs), name);
  built.reader.free();
  // Decode only what the patchers (and a module loader's relocations) changed; the rest is shared with `built`.
  const code = new PatchedCode(
    img,
    dis,
    pv.bytesOf,
    pv.patches.map((p) => ({ addr: p.addr, length: p.after.length })),
    img.kind === 'rel',
  );
  const view = new View(img, {
    target,
    features,
    sites,
    bytesOf: pv.bytesOf,
    built: built.dis,
    disassembly: code,
    describe: `patched for --cpu ${spec} (${cpu.preset}${img.kind === 'rel' ? ', module relocated with synthetic addresses for undefined symbols' : ''})`,
    has: cpu.has,
    externName: (a) => externs.get(a),
  });
  const patchNotes = pv.findings
    .filter((f) => f.kind !== 'model')
    .map((f) => `${img.where(f.addr)}: ${f.patcher}: ${f.message}`);
  return { view, tableErrors: set.errors, patchNotes, patched: { view: pv, spec: cpu.spec } };
}

/** Runs checks over a view; one finding per (check, address, message head), sorted by address. */
export function runChecks(view: View, checks: readonly Check[] = CHECKS.filter((c) => c.byDefault)): Finding[] {
  const out: Finding[] = [];
  const seen = new Set<string>();
  for (const c of checks) {
    for (const f of c.run(view)) {
      const k = `${f.check}@${f.address}`;
      if (seen.has(k)) continue;
      seen.add(k);
      out.push(f);
    }
  }
  return out.sort((a, b) =>
    BigInt(a.address) < BigInt(b.address) ? -1 : BigInt(a.address) > BigInt(b.address) ? 1 : a.check < b.check ? -1 : 1,
  );
}
