/**
 * Model-checker results for the report: every built-in live-patching protocol against every built-in
 * scenario (src/model) and against one real write of each reported file (the bytes a boot-time patcher
 * wrote there, as if rewritten while CPUs run: two executing CPUs on Linux; on Xen, as at boot, only the
 * patching CPU, which may take an NMI and a machine check whose handlers run the site). Each unsafe cell
 * carries its shortest counterexample drawn as a sequence diagram by the model's own SVG renderer.
 * Bounded by a state limit so a report stays quick; a cell that reaches it is "incomplete", never "safe".
 */
import {
  compile,
  DEFAULT_FETCH_UNIT,
  explore,
  PROTOCOLS,
  renderResult,
  SCENARIOS,
  traceSvg,
} from '../../model/index.js';
import type { Scenario } from '../../model/index.js';
import type { ModelSite, ModelTrace } from './data.js';

function siteScenario(s: ModelSite): Scenario {
  const xen = s.os === 'xen';
  return {
    name: s.label,
    description: `the bytes the boot-time patcher writes at ${s.label}`,
    base: BigInt(s.base),
    old: s.old,
    new: s.new,
    cpus: xen
      ? []
      : [
          { passes: 1, nmi: 1, mce: 0 },
          { passes: 1, nmi: 1, mce: 0 },
        ],
    patcher: xen ? { nmi: 1, mce: 1 } : { nmi: 0, mce: 0 },
    handlersRunSite: true,
    // The default (architectural) fetch contract; each cell's text names it.
    fetchUnit: DEFAULT_FETCH_UNIT,
  };
}

export function modelTraces(maxStates = 20000, sites: readonly ModelSite[] = []): ModelTrace[] {
  const out: ModelTrace[] = [];
  const scenarios = [...SCENARIOS, ...sites.map(siteScenario)];
  for (const p of PROTOCOLS) {
    for (const s of scenarios) {
      try {
        const model = compile(p, s);
        const r = explore(model, { maxStates });
        out.push({
          protocol: p.name,
          scenario: s.name,
          verdict: r.verdict,
          ...(r.property ? { property: r.property } : {}),
          states: r.states,
          ...(r.verdict === 'unsafe' ? { svg: traceSvg(model, r) } : {}),
          text: renderResult(model, r),
        });
      } catch (e) {
        out.push({
          protocol: p.name,
          scenario: s.name,
          verdict: 'not applicable',
          states: 0,
          text: e instanceof Error ? e.message : String(e),
        });
      }
    }
  }
  return out;
}
