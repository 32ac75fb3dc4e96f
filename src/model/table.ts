/** Every built-in protocol against every built-in scenario. */
import { compile } from './compile.js';
import { explore } from './explore.js';
import type { Result } from './explore.js';
import { PROTOCOLS } from './protocols/index.js';
import { SCENARIOS } from './scenarios.js';
import type { Property } from './types.js';

export interface TableCell {
  protocol: string;
  scenario: string;
  verdict: Result['verdict'];
  property?: Property;
  states: number;
}

export function verdictTable(opts: { maxStates?: number } = {}): TableCell[] {
  const cells: TableCell[] = [];
  for (const p of PROTOCOLS) {
    for (const s of SCENARIOS) {
      const r = explore(compile(p, s), { maxStates: opts.maxStates });
      cells.push({ protocol: p.name, scenario: s.name, verdict: r.verdict, ...(r.property ? { property: r.property } : {}), states: r.states });
    }
  }
  return cells;
}

export function cellText(c: TableCell): string {
  return c.verdict === 'unsafe' ? `UNSAFE: ${c.property}` : c.verdict;
}

/** A Markdown table: protocols down, scenarios across. */
export function renderTable(cells: TableCell[]): string {
  const scen = [...new Set(cells.map((c) => c.scenario))];
  const prot = [...new Set(cells.map((c) => c.protocol))];
  const lines = [`| protocol | ${scen.join(' | ')} |`, `|---|${scen.map(() => '---').join('|')}|`];
  for (const p of prot) {
    lines.push(`| ${p} | ${scen.map((s) => cellText(cells.find((c) => c.protocol === p && c.scenario === s)!)).join(' | ')} |`);
  }
  return lines.join('\n') + '\n';
}
