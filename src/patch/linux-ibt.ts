/**
 * Linux apply_seal_endbr() (CONFIG_X86_KERNEL_IBT): every ENDBR listed in .ibt_endbr_seal (functions never
 * called indirectly) becomes the 4-byte poison of gen_endbr_poison(): `66 0f 1f 00` (osp nopl (%rax)) up to 6.x,
 * `0f 1f 40 d6` (nopl -42(%rax)) in 7.x (LinuxRules.endbrPoison). A site that is not an ENDBR (nor already
 * poison) makes the kernel WARN and skip it. Debian's 6.1 config leaves IBT off: no table, no-op.
 */
import { type LinuxRules, RULES_61 } from '../target/profile.js';
import type { Site } from '../sites/site.js';
import type { PatchedView } from './view.js';

/** The 6.x poison (RULES_61.endbrPoison). */
export const ENDBR_POISON = Uint8Array.from(RULES_61.endbrPoison);

export function applyLinuxIbt(view: PatchedView, sites: readonly Site[], rules: LinuxRules = RULES_61): void {
  const poisonBytes = Uint8Array.from(rules.endbrPoison);
  for (const s of sites) {
    if (s.table !== '.ibt_endbr_seal' || Number.isNaN(s.addr)) continue;
    const b = view.read(s.addr, 4);
    if (!b) continue;
    const poison = poisonBytes.every((x, k) => b[k] === x);
    const endbr = b[0] === 0xf3 && b[1] === 0x0f && b[2] === 0x1e && (b[3] === 0xfa || b[3] === 0xfb);
    if (!poison && !endbr) {
      view.finding('ibt', s.addr, 'sealed site is not an ENDBR: the kernel WARNs and skips it', 'warn', s);
      continue;
    }
    view.write('ibt', s.addr, poisonBytes, s, 'seal ENDBR');
  }
}
