/**
 * nospec-fences: the inventory of speculation barriers by purpose (cfg/fence-classes.ts) and by the feature
 * that gates each, so a user sees what each `spec-ctrl=` switch removes. Information, one finding per
 * (class, gate) at the first such fence. Reported for Xen (its fences carry the gate); the report data
 * (report/html/data.ts) holds the inventory of every file.
 */
import { classifyFences, inventory } from '../cfg/fence-classes.js';
import type { View } from '../cfg/view.js';
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

/** The inventory as findings. */
export function inventoryFindings(view: View): Finding[] {
  const { fences } = classifyFences(view);
  const total = fences.length;
  return inventory(view).map((r) => {
    const first = fences.find((f) => f.cls === r.cls && f.gate === r.gate)!;
    const gate = r.gate === 'ungated' ? 'not gated (always present)' : `gated by ${r.gate}${r.switch ? `: removed by ${r.switch}` : ''}`;
    return finding(view, 'nospec-fences', 'info', first.addr, `${r.count} of ${total} fences: ${WHAT[r.cls]}, ${gate}`);
  });
}

