import type { Command } from 'commander';
import type { ExitStatus, Io } from './context.js';

type Register = (program: Command, io: Io, status: ExitStatus) => void;

/**
 * One line per command; each command lives in its own file under src/cli/. Only the command being run is
 * loaded (a `sites` run does not load the patchers, the model checker or the report renderer); help and
 * unknown commands load them all.
 */
const COMMANDS: Record<string, () => Promise<{ register: Register }>> = {
  sites: () => import('./sites.js'),
  apply: () => import('./apply.js'),
  diff: () => import('./diff.js'),
  check: () => import('./check.js'),
  model: () => import('./model.js'),
  patchlets: () => import('./patchlets.js'),
  hypercalls: () => import('./hypercalls.js'),
  report: () => import('./report.js'),
  symbols: () => import('./symbols.js'),
  surface: () => import('./surface.js'),
  attest: () => import('./attest.js'),
};

export async function registerCommands(
  program: Command,
  io: Io,
  status: ExitStatus,
  argv: readonly string[] = [],
): Promise<void> {
  const first = argv.find((a) => !a.startsWith('-'));
  const names = first && first !== 'help' && COMMANDS[first] ? [first] : Object.keys(COMMANDS);
  for (const n of names) (await COMMANDS[n]!()).register(program, io, status);
}
