/**
 * site-reloc: a replacement instruction with a relative reference (call/jmp/jcc rel, RIP-relative memory)
 * to a place outside the replacement that the patcher will not fix up once the bytes are copied to the site.
 * Rules per profile: Linux 6.1 (and up to 6.4) fixes only a replacement that is a single 5-byte `call`
 * (e8) or starts with a `jmp` (e9/eb, recompute_jump); Xen 4.17 fixes the first instruction when it is an
 * e8/e9 and the replacement is at least 5 bytes; Linux 6.5 and later (profile linux-6.8) relocate every
 * relative reference (apply_relocation), so nothing is reported there. A real bug class: the copied
 * instruction then reaches the wrong address.
 */
import { FlowControl } from '../x86/insn.js';
import type { View } from '../cfg/view.js';
import { relocsOf, RelocsByOffset } from '../cfg/targets.js';
import type { Check } from './check.js';
import { Finding, finding, related } from './finding.js';
import { sitesOf } from './site-common.js';

export const siteReloc: Check = {
  id: 'site-reloc',
  describe: 'replacement with a relative reference the patcher does not fix up',
  severity: 'error',
  byDefault: true,
  run(view: View): Finding[] {
    const profile = view.target.profile;
    // 6.5+ relocate every relative reference (__apply_relocation): profiles linux-6.8 and linux-7 (7.0's patch-once rule keeps it).
    if (!profile || profile.id === 'linux-6.8' || profile.id === 'linux-7') return [];
    const xen = profile.os === 'xen';
    const out: Finding[] = [];
    const img = view.img;
    for (const s of sitesOf(view, '.altinstructions')) {
      const r = s.repl;
      if (!r || r.length === 0 || Number.isNaN(r.addr)) continue;
      const sc = view.built.at(r.addr);
      if (!sc) continue;
      const base = sc.section.addr;
      const first = sc.indexAt(r.addr - base);
      if (first < 0) continue;
      const rels = img.kind === 'rel' ? relocsOf(view, sc.section) : undefined;
      for (let i = first; i < sc.count && base + sc.off[i]! < r.addr + r.length; i++) {
        const a = base + sc.off[i]!;
        const insn = view.reader.at(sc, i);
        const fc = sc.flow[i]!;
        const branch =
          fc === FlowControl.Call || fc === FlowControl.UnconditionalBranch || fc === FlowControl.ConditionalBranch;
        const ripMem = insn.isIpRelMemoryOperand;
        if (!branch && !ripMem) continue;
        if (branch && Number.isNaN(sc.target[i]!)) continue;
        // Where does it point? A relocation in the instruction decides in a relocatable object.
        let target: number;
        let what: string;
        let pcRel = true;
        const reloc = rels ? findReloc(rels, sc.off[i]!, sc.len[i]!) : undefined;
        if (reloc) {
          pcRel = reloc.type === 2 || reloc.type === 4; // R_X86_64_PC32 / PLT32
          const sym = img.symbols[reloc.sym];
          target = img.relocTarget(reloc) + (sc.off[i]! + sc.len[i]! - reloc.offset);
          what = sym && sym.type !== 3 && sym.name ? sym.name : img.relocSymbolName(reloc);
          if (!Number.isNaN(target)) what = img.where(target);
        } else {
          target = branch ? sc.target[i]! : img.rel(insn.ipRelMemoryAddress);
          what = img.where(target);
        }
        if (!pcRel) continue;
        if (target >= r.addr && target <= r.addr + r.length) continue; // the end of the replacement is the end of the site (padding follows)
        if (i === first && fixedByPatcher(xen, sc.bytes[sc.off[i]!]!, sc.len[i]!, r.length)) continue;
        const kind = branch ? (fc === FlowControl.Call ? 'call' : 'jump') : 'RIP-relative operand';
        out.push(
          finding(
            view,
            'site-reloc',
            'error',
            s.addr,
            `.altinstructions entry ${s.index}: replacement ${kind} at ${img.where(a)} refers to ${what} relative to the replacement; ${xen ? 'Xen 4.17' : 'Linux ' + profile.id.replace('linux-', '')} does not fix it up when copying to the site`,
            [related(view, a, `replacement instruction with a relative ${branch ? 'target' : 'operand'}`)],
          ),
        );
      }
    }
    return out;
  },
};

function findReloc(rels: RelocsByOffset, off: number, len: number) {
  for (let f = off + 1; f + 4 <= off + len; f++) {
    const r = rels.get(f);
    if (r) return r;
  }
  return undefined;
}

/** Does the profile's patcher fix this first replacement instruction? */
function fixedByPatcher(xen: boolean, op: number, len: number, replLen: number): boolean {
  if (xen) return replLen >= 5 && (op === 0xe8 || op === 0xe9);
  return (op === 0xe8 && replLen === 5 && len === 5) || op === 0xe9 || op === 0xeb;
}
