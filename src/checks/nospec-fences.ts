/**
 * nospec-fences: the inventory of speculation barriers by purpose (cfg/fence-classes.ts) and by the feature
 * that gates each, so a user sees what each `spec-ctrl=` switch removes. Information, one finding per
 * (class, gate) at the first such fence. Reported for Xen (its fences carry the gate); the report data
 * (report/html/data.ts) holds the inventory of every file.
 */
import { classifyFences, inventory } from '../cfg/fence-classes.js';
import type { View } from '../cfg/view.js';
import { featureName } from '../target/features/index.js';
import type { Check } from './check.js';
import { Finding, finding } from './finding.js';

const WHAT: Record<string, string> = {
  pair: 'branch-hardening pair (both arms of a conditional branch)',
  'one-sided': 'one-sided barrier (block_speculation() on one path)',
  value: 'value barrier (before a load whose value is returned)',
  'store-bypass': 'store-bypass barrier (after stores, before a return or indirect call that runs them)',
  lock: 'lock hardening',
  other: 'fence no hardening feature gates',
};

export const nospecFences: Check = {
  id: 'nospec-fences',
  describe: 'inventory: speculation barriers per purpose and per gating feature (what each spec-ctrl= switch removes)',
  severity: 'info',
  byDefault: true,
  run(view: View): Finding[] {
    if (view.target.profile === null || view.target.os !== 'xen') return [];
    return inventoryFindings(view);
  },
};

/** The switch that brings back the fences a hardening feature removed. */
const RESTORE: Record<string, string> = {
  SC_NO_BRANCH_HARDEN: 'spec-ctrl=branch-harden (the default)',
  SC_NO_LOCK_HARDEN: 'spec-ctrl=lock-harden',
};

/**
 * The inventory as findings: the fences this view runs, per class and gate; then, on a patched view, the
 * hardening fences this CPU's alternatives removed (a default Xen boot sets SC_NO_LOCK_HARDEN, so its lock
 * fences are NOPs), with the switch that brings them back.
 */
export function inventoryFindings(view: View): Finding[] {
  const { fences } = classifyFences(view);
  const total = fences.length;
  const out = inventory(view).map((r) => {
    const first = fences.find((f) => f.cls === r.cls && f.gate === r.gate)!;
    const gate =
      r.gate === 'ungated'
        ? 'not gated (always present)'
        : `gated by ${r.gate}${r.switch ? `: removed by ${r.switch}` : ''}`;
    return finding(view, 'nospec-fences', 'info', first.addr, `${r.count} of ${total} fences: ${WHAT[r.cls]}, ${gate}`);
  });
  if (!view.patched || !view.has || !view.features) return out;
  const removed = new Map<string, { count: number; addr: number }>();
  for (const s of view.sites) {
    if (s.table !== '.altinstructions' || s.feature === undefined || s.inverted || !view.has(s.feature)) continue;
    const name = featureName(view.features, s.feature);
    const key = Object.keys(RESTORE).find((k) => name.endsWith(k));
    if (!key) continue;
    const r = removed.get(name);
    if (r) r.count++;
    else removed.set(name, { count: 1, addr: s.addr });
  }
  for (const [name, r] of removed) {
    const key = Object.keys(RESTORE).find((k) => name.endsWith(k))!;
    out.push(
      finding(
        view,
        'nospec-fences',
        'info',
        r.addr,
        `${r.count} fences gated by ${name} removed for this CPU (${name} set): ${RESTORE[key]} keeps them`,
      ),
    );
  }
  return out;
}
