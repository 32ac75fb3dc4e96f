import type { Command } from 'commander';
import type { ExitStatus, Io } from './context.js';
import { register as sites } from './sites.js';
import { register as model } from './model.js';
import { register as patchlets } from './patchlets.js';
import { register as hypercalls } from './hypercalls.js';

/** One line per command; each command lives in its own file under src/cli/. */
export function registerCommands(program: Command, io: Io, status: ExitStatus): void {
  sites(program, io, status);
  model(program, io, status);
  patchlets(program, io, status);
  hypercalls(program, io, status);
}
