/** Every check: one file each, one line each here. */
import type { Check } from './check.js';
import { nospecBranch } from './nospec-branch.js';
import { nospecOutlined } from './nospec-outlined.js';
import { nospecFences } from './nospec-fences.js';
import { retpoline } from './retpoline.js';
import { rethunk } from './rethunk.js';
import { siteBoundary } from './site-boundary.js';
import { siteCacheline } from './site-cacheline.js';
import { siteJumpLabel } from './site-jump-label.js';
import { siteLength } from './site-length.js';
import { siteMcount } from './site-mcount.js';
import { siteReloc } from './site-reloc.js';
import { siteSmpLock } from './site-smp-lock.js';
import { siteStaticCall } from './site-static-call.js';
import { sls } from './sls.js';

export type { Check } from './check.js';
export type { Finding, Severity, Related } from './finding.js';

export const CHECKS: readonly Check[] = [
  nospecBranch,
  nospecOutlined,
  nospecFences,
  retpoline,
  rethunk,
  sls,
  siteBoundary,
  siteLength,
  siteReloc,
  siteJumpLabel,
  siteStaticCall,
  siteSmpLock,
  siteMcount,
  siteCacheline,
];

export function checkById(id: string): Check | undefined {
  return CHECKS.find((c) => c.id === id);
}
