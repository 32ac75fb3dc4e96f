/**
 * Cross-checks of the sites read against the numbering and rules detection chose: every feature number of an
 * alternative must have a name in the chosen table (an unnamed one means the numbering is wrong for this build,
 * or the names are older than it), must lie below the table's limit, and an inverted entry needs a version
 * with ALT_FLAG_NOT. Each disagreement is one warning line; nothing here changes what was read.
 */
import { featureName, featureTable } from '../target/features/index.js';
import type { Target } from '../target/detect.js';
import { PROFILES } from '../target/profile.js';
import type { Site } from './site.js';

export function crossCheckSites(target: Pick<Target, 'profile'>, sites: readonly Site[]): string[] {
  const p = target.profile;
  if (!p) return [];
  let t;
  try {
    t = featureTable(p.features);
  } catch {
    return [`no feature table '${p.features}' for profile ${p.id}`];
  }
  const out: string[] = [];
  const unnamed = new Map<number, number>();
  let outside = 0;
  let inverted = 0;
  let alts = 0;
  for (const s of sites) {
    if (s.table !== '.altinstructions' || s.feature === undefined) continue;
    alts++;
    if (s.inverted) inverted++;
    if (s.feature >= t.limit) outside++;
    if (!t.byNumber.has(s.feature)) unnamed.set(s.feature, (unnamed.get(s.feature) ?? 0) + 1);
  }
  if (unnamed.size) {
    const n = [...unnamed.values()].reduce((a, b) => a + b, 0);
    const top = [...unnamed]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 5)
      .map(([f, c]) => `${featureName(t, f).replace(/^feature /, '')} (${c})`);
    // Which profiles of the same kind would name every feature number used: a hint, not a decision.
    const used = new Set<number>();
    for (const s of sites) if (s.table === '.altinstructions' && s.feature !== undefined) used.add(s.feature);
    const naming = PROFILES.filter((q) => q.os === p.os && q.id !== p.id && q.alt === p.alt)
      .filter((q) => {
        const qt = featureTable(q.features);
        return [...used].every((f) => qt.byNumber.has(f));
      })
      .map((q) => q.id);
    const hint = naming.length ? `; ${naming.join(', ')} would name them all` : '';
    out.push(
      `${n} of ${alts} alternatives have feature numbers the numbering ${t.id} cannot name: ${top.join(', ')}${unnamed.size > 5 ? ', ...' : ''}; the numbering may not be this build's (check with --profile${hint})`,
    );
  }
  if (outside)
    out.push(
      `${outside} alternatives have feature numbers at or above ${t.limit} ((NCAPINTS${p.os === 'linux' ? '+NBUGINTS' : ''})*32 of ${t.id}): the kernel would refuse them`,
    );
  if (inverted && p.rules.os === 'xen' && !p.rules.altFlagNot) {
    out.push(
      `${inverted} alternatives have bit 15 of cpuid set but profile ${p.id} has no ALT_FLAG_NOT: the build is newer than its version says, or corrupt`,
    );
  }
  return out;
}

/** Everything to warn about for a target and the sites read with it: detection's warnings, then the cross-checks. */
export function targetWarnings(target: Target, sites: readonly Site[]): string[] {
  return [...(target.warnings ?? []), ...crossCheckSites(target, sites)];
}
