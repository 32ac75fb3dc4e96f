/** Every check: one file each, one line each here. */
import type { Check } from './check.js';
import { nospecBranch } from './nospec-branch.js';
import { nospecOutlined } from './nospec-outlined.js';

export type { Check } from './check.js';
export type { Finding, Severity, Related } from './finding.js';

export const CHECKS: readonly Check[] = [
  nospecBranch,
  nospecOutlined,
];

export function checkById(id: string): Check | undefined {
  return CHECKS.find((c) => c.id === id);
}
