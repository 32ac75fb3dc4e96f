/**
 * Xen 4.17 end of the second _apply_alternatives pass: with CET-IBT in use (X86_FEATURE_XEN_IBT), every
 * pointer in .init.{ro,}data.cf_clobber (__initdata_cf_clobber_start..end, walked as an array of pointers)
 * that points into .text (_stext.._etext) at an ENDBR64 gets that ENDBR64 replaced by the poison
 * `66 0f 1f 01` (gen_endbr64_poison: nopw (%rcx)), so those functions stop being indirect-branch targets.
 */
import { featureNumber } from '../target/features/index.js';
import type { Cpu } from './cpu.js';
import type { PatchedView } from './view.js';

export const XEN_ENDBR64_POISON = Uint8Array.of(0x66, 0x0f, 0x1f, 0x01);

export function applyXenCfClobber(view: PatchedView, cpu: Cpu): number {
  const ibt = featureNumber(cpu.table, 'XEN_IBT');
  if (ibt === undefined || !cpu.has(ibt)) return 0;
  const img = view.img;
  const start = img.symbol('__initdata_cf_clobber_start');
  const end = img.symbol('__initdata_cf_clobber_end');
  const stext = img.symbol('_stext');
  const etext = img.symbol('_etext');
  if (!start || !end || !stext || !etext) return 0;
  const lo = view.abs(stext.addr);
  const hi = view.abs(etext.addr);
  let n = 0;
  for (let a = start.addr; a + 8 <= end.addr; a += 8) {
    const b = view.read(a, 8);
    if (!b) continue;
    const p = new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true);
    if (p < lo || p >= hi) continue;
    const r = view.rel(p);
    const e = view.read(r, 4);
    if (e?.[0] !== 0xf3 || e[1] !== 0x0f || e[2] !== 0x1e || e[3] !== 0xfa) continue;
    view.write('xen-cf-clobber', r, XEN_ENDBR64_POISON, undefined, 'poison ENDBR64');
    n++;
  }
  return n;
}
