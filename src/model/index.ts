/**
 * textpoke model: explicit-state checking of live code-patching protocols against concurrent
 * execution, NMI and #MC.
 *
 * @example
 * ```ts
 * import { compile, explore, findProtocol, findScenario } from './model/index.js';
 * const r = explore(compile(findProtocol('text-poke-bp'), findScenario('static-call-retarget')!));
 * console.log(r.verdict); // "safe"
 * ```
 */
export * from './types.js';
export { compile, siteInfo } from './compile.js';
export { explore, Machine } from './explore.js';
export type { Result, TraceStep, ExploreOptions } from './explore.js';
export { PROTOCOLS, findProtocol } from './protocols/index.js';
export {
  SCENARIOS,
  BATCH_SCENARIOS,
  findScenario,
  parseScenarioFile,
  scenarioFromJson,
  callTo,
  jmpTo,
} from './scenarios.js';
export { bsearchFinds } from './explore.js';
export { renderResult, describeStep } from './trace.js';
export { toPromela } from './promela.js';
export { traceSvg, escapeXml } from './svg.js';
export { verdictTable, renderTable, cellText } from './table.js';
export type { TableCell } from './table.js';
