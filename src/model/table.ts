/** Every built-in protocol against every built-in scenario. */
import { compile } from './compile.js';
import { explore } from './explore.js';
import type { Result } from './explore.js';
import { PROTOCOLS } from './protocols/index.js';
import { SCENARIOS } from './scenarios.js';
import { FETCH_CONTRACTS } from './types.js';
import type { FetchContract, Property } from './types.js';

export interface TableCell {
  protocol: string;
  scenario: string;
  /** The fetch contract the verdict was computed under. */
  contract: FetchContract;
  verdict: Result['verdict'];
  property?: Property;
  states: number;
}

/** Every built-in pair under each contract asked for (default: both, the architectural one first). */
export function verdictTable(opts: { maxStates?: number; contracts?: FetchContract[] } = {}): TableCell[] {
  const cells: TableCell[] = [];
  const contracts = opts.contracts ?? (Object.keys(FETCH_CONTRACTS) as FetchContract[]);
  for (const p of PROTOCOLS) {
    for (const contract of contracts) {
      for (const s of SCENARIOS) {
        const r = explore(compile(p, { ...s, fetchUnit: FETCH_CONTRACTS[contract] }), { maxStates: opts.maxStates });
        cells.push({
          protocol: p.name,
          scenario: s.name,
          contract,
          verdict: r.verdict,
          ...(r.property ? { property: r.property } : {}),
          states: r.states,
        });
      }
    }
  }
  return cells;
}

export function cellText(c: TableCell): string {
  return c.verdict === 'unsafe' ? `UNSAFE: ${c.property}` : c.verdict;
}

/** A Markdown table: one row per protocol and fetch contract, scenarios across. */
export function renderTable(cells: TableCell[]): string {
  const scen = [...new Set(cells.map((c) => c.scenario))];
  const prot = [...new Set(cells.map((c) => c.protocol))];
  const contracts = [...new Set(cells.map((c) => c.contract))];
  const lines = [`| protocol | fetch contract | ${scen.join(' | ')} |`, `|---|---|${scen.map(() => '---').join('|')}|`];
  for (const p of prot) {
    for (const k of contracts) {
      const row = cells.filter((c) => c.protocol === p && c.contract === k);
      if (!row.length) continue;
      lines.push(`| ${p} | ${k} | ${scen.map((s) => cellText(row.find((c) => c.scenario === s)!)).join(' | ')} |`);
    }
  }
  return lines.join('\n') + '\n';
}
