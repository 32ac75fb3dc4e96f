/**
 * Linux apply_ibt_endbr() (CONFIG_X86_KERNEL_IBT): every ENDBR listed in .ibt_endbr_seal (functions never
 * called indirectly) becomes the 4-byte poison `66 0f 1f 00` (osp nopl (%rax)). A site that is not an ENDBR
 * (nor already poison) makes the kernel WARN and skip it. Debian's 6.1 config leaves IBT off: no table, no-op.
 */
import type { Site } from '../sites/site.js';
import type { PatchedView } from './view.js';

export const ENDBR_POISON = Uint8Array.of(0x66, 0x0f, 0x1f, 0x00);

export function applyLinuxIbt(view: PatchedView, sites: readonly Site[]): void {
  for (const s of sites) {
    if (s.table !== '.ibt_endbr_seal' || Number.isNaN(s.addr)) continue;
    const b = view.read(s.addr, 4);
    if (!b) continue;
    const poison = b[0] === 0x66 && b[1] === 0x0f && b[2] === 0x1f && b[3] === 0x00;
    const endbr = b[0] === 0xf3 && b[1] === 0x0f && b[2] === 0x1e && (b[3] === 0xfa || b[3] === 0xfb);
    if (!poison && !endbr) {
      view.finding('ibt', s.addr, 'sealed site is not an ENDBR: the kernel WARNs and skips it', 'warn', s);
      continue;
    }
    view.write('ibt', s.addr, ENDBR_POISON, s, 'seal ENDBR');
  }
}
