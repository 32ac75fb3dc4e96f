import type { Command } from 'commander';
import { findAmbiguous, renderAmbiguity, verdict } from '../symbols/ambiguous.js';
import { EXIT_USAGE, ExitStatus, Io } from './context.js';
import { describeError, openImage } from './jobs.js';

export function register(program: Command, io: Io, status: ExitStatus): void {
  program
    .command('symbols')
    .description('symbol questions for live patching: --ambiguous lists local names that repeat across translation units')
    .argument('<path...>', 'ELF files (vmlinux, xen-syms, .o, .ko)')
    .requiredOption('--ambiguous', 'local functions whose names repeat, grouped, with their files and whether name+file or name+size tells them apart')
    .option('--objects', 'include data objects, not only functions')
    .option('--json', 'JSON output')
    .action(async (paths: string[], o: { json?: boolean; objects?: boolean }) => {
      const docs = [];
      for (const p of paths) {
        try {
          const img = await openImage(p);
          const r = findAmbiguous(img, { objects: o.objects });
          if (o.json) docs.push({ ...r, groups: r.groups.map((g) => ({ ...g, verdict: verdict(g) })) });
          else io.out(renderAmbiguity(r));
        } catch (e) {
          io.err(`${p}: ${describeError(e)}\n`);
          status.raise(EXIT_USAGE);
        }
      }
      if (o.json) io.out(JSON.stringify({ files: docs }, null, 1) + '\n');
    });
}
