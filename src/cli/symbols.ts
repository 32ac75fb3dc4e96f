import type { Command } from 'commander';
import { findAmbiguous, renderAmbiguity, verdict } from '../symbols/ambiguous.js';
import { EXIT_FINDINGS, ExitStatus, Io } from './context.js';
import { expandPaths } from './files.js';
import { describeError, openImage } from './jobs.js';

export function register(program: Command, io: Io, status: ExitStatus): void {
  program
    .command('symbols')
    .description(
      'symbol questions for live patching: --ambiguous lists local names that repeat across translation units',
    )
    .argument('<path...>', 'ELF files (vmlinux, xen-syms, .o, .ko, .ko.xz/.zst/.gz) or directories to search')
    .requiredOption(
      '--ambiguous',
      'local functions whose names repeat, grouped, with their files and whether name+file or name+size tells them apart',
    )
    .option('--objects', 'include data objects, not only functions')
    .option('--json', 'JSON output')
    .action(async (paths: string[], o: { json?: boolean; objects?: boolean }) => {
      const files = expandPaths(paths);
      const docs = [];
      const errors: { path: string; error: string }[] = [];
      for (const p of files) {
        try {
          const img = await openImage(p);
          const r = findAmbiguous(img, { objects: o.objects });
          if (o.json) docs.push({ ...r, groups: r.groups.map((g) => ({ ...g, verdict: verdict(g) })) });
          else io.out(renderAmbiguity(r));
        } catch (e) {
          // A file that cannot be used is a finding: named once, the other files still reported.
          errors.push({ path: p, error: describeError(e) });
          io.err(`${p}: ${describeError(e)}\n`);
          status.raise(EXIT_FINDINGS);
        }
      }
      if (o.json) io.out(JSON.stringify({ files: docs, errors }, null, 1) + '\n');
    });
}
