/**
 * Model-checker results for the report: every built-in live-patching protocol against every built-in
 * scenario (src/model), each unsafe cell with its shortest counterexample drawn as a sequence diagram by
 * the model's own SVG renderer. Bounded by a state limit so a report stays quick; a cell that reaches it
 * is reported as incomplete, never as safe.
 */
import { compile, explore, PROTOCOLS, renderResult, SCENARIOS, traceSvg } from '../../model/index.js';
import type { ModelTrace } from './data.js';

export function modelTraces(maxStates = 20000): ModelTrace[] {
  const out: ModelTrace[] = [];
  for (const p of PROTOCOLS) {
    for (const s of SCENARIOS) {
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
    }
  }
  return out;
}
