/**
 * `.altinstructions` (Linux 12- and 14-byte struct alt_instr) and Xen's alternatives
 * (`__alt_instructions`..`__alt_instructions_end`, 14 bytes with orig_len/repl_len/pad_len).
 */
import type { AltLayout } from '../target/profile.js';
import type { AltSite } from './site.js';
import type { TableData } from './table.js';

export function readAlternatives(t: TableData, layout: AltLayout): AltSite[] {
  const out: AltSite[] = [];
  for (let i = 0; i < t.count; i++) {
    const instr = t.rel(i, 0);
    const repl = t.rel(i, 4);
    let feature: number;
    let inverted: boolean;
    let altFlags: number | undefined;
    let length: number;
    let replLen: number;
    let origLen: number | undefined;
    let padLen: number | undefined;
    if (layout === 'linux-12') {
      const cpuid = t.u16(i, 8);
      feature = cpuid & 0x7fff;
      inverted = (cpuid & 0x8000) !== 0;
      length = t.u8(i, 10);
      replLen = t.u8(i, 11);
    } else if (layout === 'linux-14') {
      feature = t.u16(i, 8);
      altFlags = t.u16(i, 10);
      inverted = (altFlags & 1) !== 0;
      length = t.u8(i, 12);
      replLen = t.u8(i, 13);
    } else {
      const cpuid = t.u16(i, 8);
      feature = cpuid & 0x7fff;
      inverted = (cpuid & 0x8000) !== 0;
      origLen = t.u8(i, 10);
      replLen = t.u8(i, 11);
      padLen = t.u8(i, 12);
      length = origLen + padLen;
    }
    const site: AltSite = {
      table: '.altinstructions',
      index: i,
      addr: instr ? instr.addr : NaN,
      length,
      feature,
      inverted,
      altFlags,
      repl: { addr: repl ? repl.addr : NaN, length: replLen },
      origLen,
      padLen,
    };
    if (!instr) (site.problems ??= []).push('instruction field has no relocation');
    if (!repl && replLen > 0) (site.problems ??= []).push('replacement field has no relocation');
    out.push(site);
  }
  return out;
}
