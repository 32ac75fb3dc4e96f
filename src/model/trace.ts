/** Text rendering of verdicts and counterexample traces. */
import type { Result, TraceStep } from './explore.js';
import type { Model } from './types.js';
import { contractText, PROPERTY_TEXT } from './types.js';

import { cpuName } from './names.js';
export { cpuName };

export function describeStep(st: TraceStep): string {
  const who = `${cpuName(st.cpu)}${st.ctx === 'base' || st.ctx === 'protocol' ? '' : ` [${st.ctx === 'mce' ? '#MC' : st.ctx === 'nmi' ? 'NMI' : 'int3'} handler]`}`;
  let line = `${who}: ${st.text}`;
  if (st.reads?.length) {
    const rs = st.reads.map(
      (r) => `+${r.from}..+${r.to - 1} = ${r.bytes} from v${r.version}${r.stale ? ' (stale)' : ''}`,
    );
    line += `\n      fetched ${rs.join('; ')}`;
  }
  return line;
}

/** Multi-line report: verdict, states, and the numbered trace. */
export function renderResult(model: Model, r: Result): string {
  const out: string[] = [];
  out.push(`protocol ${model.protocol}, scenario ${model.scenario}`);
  out.push(`site: ${model.len} bytes at ${fmtAddr(model.base)}; ${model.cpus.length - 1} executing CPU(s)`);
  out.push(`fetch contract: ${contractText(model.fetchUnit)}`);
  out.push(`  old: ${[...model.oldInsns.values()].map((i) => `+${i.off} ${i.text}`).join('; ')}`);
  out.push(`  new: ${[...model.newInsns.values()].map((i) => `+${i.off} ${i.text}`).join('; ')}`);
  if (r.verdict === 'safe') {
    out.push(
      `verdict (${model.contract} contract): SAFE within the bounds (${r.states} states, ${r.transitions} transitions)`,
    );
    return out.join('\n') + '\n';
  }
  if (r.verdict === 'incomplete') {
    out.push(`verdict (${model.contract} contract): INCOMPLETE: state limit reached after ${r.states} states`);
    return out.join('\n') + '\n';
  }
  out.push(`verdict (${model.contract} contract): UNSAFE: ${r.property} (${PROPERTY_TEXT[r.property!]})`);
  out.push(`  ${r.message}`);
  out.push(`states explored: ${r.states}; shortest counterexample, ${r.trace.length} steps:`);
  const w = String(r.trace.length).length;
  r.trace.forEach((st, i) => {
    out.push(`  ${String(i + 1).padStart(w)}. ${describeStep(st).replace(/\n/g, '\n  ' + ' '.repeat(w))}`);
    if (st.kind === 'write' || (st.kind === 'handler' && /stores/.test(st.text)))
      out.push(`  ${' '.repeat(w)}    memory now v${st.version}: ${st.memory}`);
  });
  return out.join('\n') + '\n';
}

export function fmtAddr(a: bigint): string {
  return '0x' + a.toString(16);
}
