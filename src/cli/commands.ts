import type { Command } from 'commander';
import type { ExitStatus, Io } from './context.js';
import { register as sites } from './sites.js';
import { register as apply } from './apply.js';
import { register as diff } from './diff.js';
import { register as check } from './check.js';
import { register as model } from './model.js';
import { register as patchlets } from './patchlets.js';
import { register as hypercalls } from './hypercalls.js';
import { register as report } from './report.js';
import { register as symbols } from './symbols.js';
import { register as surface } from './surface.js';

/** One line per command; each command lives in its own file under src/cli/. */
export function registerCommands(program: Command, io: Io, status: ExitStatus): void {
  sites(program, io, status);
  apply(program, io, status);
  diff(program, io, status);
  check(program, io, status);
  model(program, io, status);
  patchlets(program, io, status);
  hypercalls(program, io, status);
  report(program, io, status);
  symbols(program, io, status);
  surface(program, io, status);
}
