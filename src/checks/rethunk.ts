/**
 * rethunk: where return thunks are in use, a bare `ret` bypasses them. On the bytes as built every return
 * should be `jmp __x86_return_thunk`; on a patched view for a CPU without RETHUNK the kernel writes `ret` at
 * each .return_sites entry itself (not a finding), and for a CPU with it those sites keep the thunk. A `ret`
 * outside every patch table (return, static-call and alternative sites) is reported, except in the init text
 * of a linked image (it runs before any guest or user space and is freed). Also compared: the
 * return-thunk jumps found by scanning the bytes as built and the `.return_sites` table.
 */
import { Code, FlowControl, storedToStackTop } from '../x86/insn.js';
import { buildFacts } from '../cfg/build.js';
import { siteIndex } from '../cfg/site-index.js';
import { notOrdinaryCode } from '../cfg/functions.js';
import type { View } from '../cfg/view.js';
import type { Check } from './check.js';
import { Finding, finding } from './finding.js';

export const rethunk: Check = {
  id: 'rethunk',
  describe: 'bare ret in a return-thunk build; return-thunk jumps and .return_sites disagree',
  severity: 'warning',
  byDefault: true,
  run(view: View): Finding[] {
    const facts = buildFacts(view);
    if (!facts.rethunk) return [];
    const out: Finding[] = [];
    const idx = siteIndex(view);
    const module = view.img.kind === 'rel';
    for (const sc of view.code()) {
      const name = sc.section.name;
      if (name === '.altinstr_replacement' || name.startsWith('.discard')) continue;
      // Init text of a linked image runs before any guest or user space exists and is freed after boot.
      if (!module && name.startsWith('.init.text')) continue;
      const base = sc.section.addr;
      for (let i = 0; i < sc.count; i++) {
        if (sc.flow[i] !== FlowControl.Return) continue;
        const c = sc.code[i]!;
        if (c !== Code.Retnq && c !== Code.Retnq_imm16) continue;
        const a = base + sc.off[i]!;
        if (notOrdinaryCode(view, a)) continue;
        // Where no symbol names the thunks (a stripped vmlinux): a retpoline's own `ret` (after
        // `mov %REG, (%rsp)` overwrote the return address) is the indirect branch, not a return.
        if (
          view.img.fewSymbols &&
          i > 0 &&
          sc.off[i - 1]! + sc.len[i - 1]! === sc.off[i]! &&
          storedToStackTop(view.reader.at(sc, i - 1)) !== undefined
        )
          continue;
        if (
          idx.covering('.return_sites', a) ||
          idx.covering('.static_call_sites', a) ||
          idx.covering('.altinstructions', a)
        )
          continue;
        out.push(
          finding(
            view,
            'rethunk',
            'warning',
            a,
            `'naked' return found in return-thunk build${view.patched ? ' (patched view)' : ''}`,
          ),
        );
      }
    }
    if (idx.has('.return_sites') || view.target.os === 'linux') {
      const listed = new Set(idx.of('.return_sites').map((s) => s.addr));
      for (const a of facts.thunkReturns) {
        if (!listed.has(a))
          out.push(
            finding(
              view,
              'rethunk',
              'warning',
              a,
              'jmp to the return thunk missing from .return_sites (apply_returns will not see it)',
            ),
          );
      }
      for (const s of idx.of('.return_sites')) {
        if (!facts.thunkReturns.has(s.addr))
          out.push(
            finding(
              view,
              'rethunk',
              'warning',
              s.addr,
              `.return_sites entry ${s.index} is not a jmp to the return thunk`,
            ),
          );
      }
    }
    return out;
  },
};
