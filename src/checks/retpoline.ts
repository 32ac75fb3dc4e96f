/**
 * retpoline: in a build that uses retpolines, every indirect call and jump must go through a thunk or be a
 * site the kernel rewrites on purpose. Reported: a bare `call *`/`jmp *` on the view that no patch table
 * covers (.retpoline_sites: the kernel itself turns thunk calls into `call *%reg` on eIBRS CPUs; paravirt,
 * alternative and static-call sites become direct calls or are chosen per CPU), except in `.init.text` of a
 * linked image (runs before user space; objtool allows it too, but not in modules, which load late). Also
 * compared: the thunk calls found by scanning the bytes as built and the `.retpoline_sites` table, each
 * difference a finding (a site apply_retpolines would miss, or an entry that is no thunk call).
 */
import { FlowControl } from '../x86/insn.js';
import { buildFacts } from '../cfg/build.js';
import { siteIndex } from '../cfg/site-index.js';
import { notOrdinaryCode } from '../cfg/functions.js';
import type { View } from '../cfg/view.js';
import type { Check } from './check.js';
import { Finding, finding } from './finding.js';

export const retpoline: Check = {
  id: 'retpoline',
  describe: 'bare indirect call/jmp in a retpoline build; thunk calls and .retpoline_sites disagree',
  severity: 'warning',
  byDefault: true,
  run(view: View): Finding[] {
    const facts = buildFacts(view);
    if (!facts.retpolines) return [];
    const out: Finding[] = [];
    const idx = siteIndex(view);
    const module = view.img.kind === 'rel';
    for (const sc of view.code()) {
      const name = sc.section.name;
      if (!module && name.startsWith('.init.text')) continue;
      if (name === '.altinstr_replacement' || name.startsWith('.discard')) continue;
      const base = sc.section.addr;
      for (let i = 0; i < sc.count; i++) {
        const fc = sc.flow[i]!;
        if (fc !== FlowControl.IndirectCall && fc !== FlowControl.IndirectBranch) continue;
        const a = base + sc.off[i]!;
        if (
          idx.covering('.retpoline_sites', a) ||
          idx.covering('.parainstructions', a) ||
          idx.covering('.altinstructions', a) ||
          idx.covering('.static_call_sites', a)
        )
          continue;
        if (notOrdinaryCode(view, a)) continue;
        const insn = view.reader.at(sc, i);
        // Far indirect jumps/calls (ljmp *mem: mode switches) are not predicted by the BTB as near ones are.
        if (insn.isJmpFarIndirect || insn.isCallFarIndirect) continue;
        const kind = fc === FlowControl.IndirectCall ? 'call' : 'jump';
        out.push(
          finding(
            view,
            'retpoline',
            'warning',
            a,
            `indirect ${kind} found in retpoline build${view.patched ? ' (patched view)' : ''}`,
          ),
        );
      }
    }
    if (idx.has('.retpoline_sites') || view.target.os === 'linux') {
      const listed = new Set(idx.of('.retpoline_sites').map((s) => s.addr));
      for (const a of facts.thunkCalls) {
        if (!listed.has(a))
          out.push(
            finding(
              view,
              'retpoline',
              'warning',
              a,
              'call/jmp to a retpoline thunk missing from .retpoline_sites (apply_retpolines will not see it)',
            ),
          );
      }
      for (const s of idx.of('.retpoline_sites')) {
        if (!facts.thunkCalls.has(s.addr))
          out.push(
            finding(
              view,
              'retpoline',
              'warning',
              s.addr,
              `.retpoline_sites entry ${s.index} is not a call/jmp to a retpoline thunk`,
            ),
          );
      }
    }
    return out;
  },
};
