/**
 * sls: straight-line speculation hardening (CONFIG_SLS, -mharden-sls=all) puts `int3` after every `ret`
 * and indirect `jmp`, so the CPU cannot run on into the bytes after them. Whether the build hardens SLS is
 * read from the binary itself (int3 after at least 90% of its returns and indirect jumps); when it does, a
 * return or indirect jump on the view without the trap is reported.
 */
import { Code, FlowControl } from '../x86/insn.js';
import { buildFacts } from '../cfg/build.js';
import { siteIndex } from '../cfg/site-index.js';
import { notOrdinaryCode } from '../cfg/functions.js';
import type { View } from '../cfg/view.js';
import type { Check } from './check.js';
import { Finding, finding } from './finding.js';

export const sls: Check = {
  id: 'sls',
  describe: 'ret or indirect jmp without a trailing int3 in an SLS-hardened build',
  severity: 'warning',
  byDefault: true,
  run(view: View): Finding[] {
    const facts = buildFacts(view);
    if (facts.sls !== true) return [];
    const out: Finding[] = [];
    const idx = siteIndex(view);
    for (const sc of view.code()) {
      if (sc.section.name === '.altinstr_replacement') continue;
      const base = sc.section.addr;
      for (let i = 0; i < sc.count; i++) {
        const fc = sc.flow[i]!;
        if (fc !== FlowControl.Return && fc !== FlowControl.IndirectBranch) continue;
        const end = sc.off[i]! + sc.len[i]!;
        if (end < sc.bytes.length && sc.bytes[end] === 0xcc) continue;
        const a = base + sc.off[i]!;
        // A site rewritten in place (retpoline -> jmp *%reg without room for int3) is the kernel's choice.
        if (notOrdinaryCode(view, a)) continue;
        if (
          idx.covering('.retpoline_sites', a) ||
          idx.covering('.return_sites', a) ||
          idx.covering('.altinstructions', a)
        )
          continue;
        if (sc.code[i] === Code.Retnq_imm16) continue;
        out.push(
          finding(
            view,
            'sls',
            'warning',
            a,
            `missing int3 after ${fc === FlowControl.Return ? 'ret' : 'indirect jmp'} (the build hardens straight-line speculation: ${facts.slsEvidence})`,
          ),
        );
      }
    }
    return out;
  },
};
