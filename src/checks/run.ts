/**
 * Running checks on one image: detect the target (any x86-64 ELF works; a file that is no known kernel
 * gets the checks that need no patch tables), read its patch sites, build the view, run the selected
 * checks, and keep one finding per (check, location).
 */
import type { Image, Section } from '../elf/image.js';
import { View } from '../cfg/view.js';
import { detectTarget, Target } from '../target/detect.js';
import { featureTable } from '../target/features/index.js';
import { readSites } from '../sites/read.js';
import type { Site } from '../sites/site.js';
import type { Check } from './check.js';
import type { Finding } from './finding.js';
import { CHECKS } from './index.js';

export interface PrepareOptions {
  /** Profile id overriding detection. */
  readonly profile?: string;
  /** A patched view's bytes and description, when one is available. */
  readonly patch?: (img: Image, target: Target, sites: readonly Site[]) => { bytesOf: (s: Section) => Uint8Array; describe: string; has?: (f: number) => boolean } | undefined;
}

export interface Prepared {
  readonly view: View;
  /** Problems reading the patch tables (reported as errors by the caller). */
  readonly tableErrors: string[];
}

export function prepare(img: Image, o: PrepareOptions = {}): Prepared {
  const target = detectTarget(img, o.profile);
  let sites: Site[] = [];
  let tableErrors: string[] = [];
  const features = target.profile ? featureTable(target.profile.features) : undefined;
  if (target.profile) {
    const base = new View(img, { target, features });
    const set = readSites(img, target.profile, { disassembly: base.dis });
    sites = set.sites;
    tableErrors = set.errors;
    const patched = o.patch?.(img, target, sites);
    if (!patched) return { view: new View(img, { target, features, sites, disassembly: base.dis }), tableErrors };
    base.dispose();
    return { view: new View(img, { target, features, sites, bytesOf: patched.bytesOf, describe: patched.describe, has: patched.has }), tableErrors };
  }
  return { view: new View(img, { target }), tableErrors };
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
  return out.sort((a, b) => (BigInt(a.address) < BigInt(b.address) ? -1 : BigInt(a.address) > BigInt(b.address) ? 1 : a.check < b.check ? -1 : 1));
}
