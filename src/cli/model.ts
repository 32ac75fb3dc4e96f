import { readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { EXIT_FINDINGS, ExitStatus, Io, UsageError } from './context.js';
import {
  compile,
  explore,
  findProtocol,
  findScenario,
  parseScenarioFile,
  PROTOCOLS,
  renderResult,
  renderTable,
  SCENARIOS,
  toPromela,
  traceSvg,
  verdictTable,
  FETCH_CONTRACTS,
  BATCH_SCENARIOS,
} from '../model/index.js';
import type { FetchContract, Model, Protocol, Result, Scenario } from '../model/index.js';

interface Opts {
  protocol?: string;
  scenario?: string;
  json?: boolean;
  promela?: string;
  svg?: string;
  table?: boolean;
  list?: boolean;
  fetchUnit?: number;
  contract?: string;
  maxStates?: number;
}

/** Writes atomically: temp file beside the target, then rename. */
function writeAtomic(path: string, text: string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, text);
    renameSync(tmp, path);
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {
      /* nothing to clean */
    }
    throw new UsageError(`cannot write ${path}: ${(e as Error).message}`);
  }
}

function loadScenario(arg: string): Scenario {
  const builtin = findScenario(arg);
  if (builtin) return builtin;
  let text: string;
  try {
    text = readFileSync(arg, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && !arg.includes('/') && !arg.endsWith('.json')) {
      throw new UsageError(
        `unknown scenario '${arg}' (built in: ${[...SCENARIOS, ...BATCH_SCENARIOS].map((s) => s.name).join(', ')}; or a scenario file)`,
      );
    }
    throw new UsageError(`cannot read scenario file ${arg}: ${(e as Error).message}`);
  }
  try {
    return parseScenarioFile(text, arg);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

function intArg(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n <= 0) throw new UsageError(`${name}: expected a positive integer, got '${v}'`);
    return n;
  };
}

export function register(program: Command, io: Io, status: ExitStatus): void {
  program
    .command('model')
    .description(
      'check a live-patching protocol against concurrent execution, NMI and #MC (exhaustive, bounded); exit 1 when unsafe',
    )
    .option('--protocol <name>', `protocol (${PROTOCOLS.map((p) => p.name).join(', ')})`)
    .option(
      '--scenario <name|file>',
      `scenario (${[...SCENARIOS, ...BATCH_SCENARIOS].map((s) => s.name).join(', ')}) or a JSON scenario file`,
    )
    .option('--json', 'JSON output: {"verdict","property","states","trace":[...]}')
    .option('--promela <file>', 'also write the model as Promela for SPIN ("-" for stdout, then no exploration)')
    .option('--svg <file>', 'write the counterexample trace as an SVG sequence diagram')
    .option('--table', 'every built-in protocol x scenario verdict (Markdown, or JSON with --json)')
    .option('--list', 'list the built-in protocols and scenarios')
    .option(
      '--contract <name>',
      `fetch contract (${Object.keys(FETCH_CONTRACTS).join(', ')}); default: the scenario's, architectural for built-in ones`,
    )
    .option(
      '--fetch-unit <bytes>',
      'override the atomic fetch unit (1 = architectural: any byte may be read at any moment; 8 = aligned-8)',
      intArg('--fetch-unit'),
    )
    .option('--max-states <n>', 'give up after this many states (verdict "incomplete")', intArg('--max-states'))
    .action((o: Opts) => {
      if (o.list) {
        io.out('protocols:\n');
        for (const p of PROTOCOLS) io.out(`  ${p.name.padEnd(33)} ${p.summary}\n`);
        io.out('scenarios:\n');
        for (const s of SCENARIOS) io.out(`  ${s.name.padEnd(33)} ${s.description}\n`);
        io.out('scenarios with several sites and patching callers (for smp-text-poke-batch*):\n');
        for (const s of BATCH_SCENARIOS) io.out(`  ${s.name.padEnd(33)} ${s.description}\n`);
        return;
      }
      let contract: FetchContract | undefined;
      if (o.contract !== undefined) {
        if (!Object.hasOwn(FETCH_CONTRACTS, o.contract))
          throw new UsageError(
            `--contract: expected ${Object.keys(FETCH_CONTRACTS).join(' or ')}, got '${o.contract}'`,
          );
        if (o.fetchUnit !== undefined) throw new UsageError('give either --contract or --fetch-unit, not both');
        contract = o.contract as FetchContract;
      }
      if (o.table) {
        if (o.protocol || o.scenario || o.promela || o.svg || o.fetchUnit)
          throw new UsageError(
            '--table runs every built-in pair: do not combine it with --protocol, --scenario, --promela, --svg or --fetch-unit',
          );
        const cells = verdictTable({ maxStates: o.maxStates, ...(contract ? { contracts: [contract] } : {}) });
        io.out(o.json ? JSON.stringify(cells, null, 1) + '\n' : renderTable(cells));
        return;
      }
      if (!o.scenario) throw new UsageError('--scenario is required (or --table, --list)');
      let scenario = loadScenario(o.scenario);
      if (o.fetchUnit !== undefined) {
        if ((o.fetchUnit & (o.fetchUnit - 1)) !== 0 || o.fetchUnit > 64)
          throw new UsageError('--fetch-unit: expected a power of two up to 64');
        scenario = { ...scenario, fetchUnit: o.fetchUnit };
      }
      if (contract) scenario = { ...scenario, fetchUnit: FETCH_CONTRACTS[contract] };
      let protocol: Protocol | undefined;
      if (o.protocol) {
        protocol = findProtocol(o.protocol);
        if (!protocol)
          throw new UsageError(`unknown protocol '${o.protocol}' (known: ${PROTOCOLS.map((p) => p.name).join(', ')})`);
      } else if (!scenario.protocol) {
        throw new UsageError('--protocol is required (the scenario does not define one)');
      }
      let model: Model;
      try {
        model = compile(protocol, scenario);
      } catch (e) {
        throw new UsageError(`${o.scenario}: ${(e as Error).message}`);
      }
      if (o.promela) {
        let pml: string;
        try {
          pml = toPromela(model);
        } catch (e) {
          throw new UsageError(`--promela: ${(e as Error).message}`);
        }
        if (o.promela === '-') {
          io.out(pml);
          return;
        }
        writeAtomic(o.promela, pml);
      }
      const r: Result = explore(model, { maxStates: o.maxStates });
      if (o.svg) writeAtomic(o.svg, traceSvg(model, r));
      if (o.json) {
        io.out(
          JSON.stringify(
            {
              protocol: model.protocol,
              scenario: model.scenario,
              contract: model.contract,
              fetchUnit: model.fetchUnit,
              verdict: r.verdict,
              property: r.property ?? null,
              message: r.message ?? null,
              states: r.states,
              transitions: r.transitions,
              trace: r.trace,
              versions: r.versions,
            },
            null,
            1,
          ) + '\n',
        );
      } else {
        io.out(renderResult(model, r));
      }
      if (r.verdict === 'unsafe') status.raise(EXIT_FINDINGS);
    });
}
