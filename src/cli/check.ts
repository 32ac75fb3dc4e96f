import type { Command } from 'commander';
import type { ExitStatus, Io } from './context.js';

export function register(program: Command, _io: Io, _status: ExitStatus): void {
  program.command('check').description('(not yet implemented)');
}
