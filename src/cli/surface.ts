import type { Command } from 'commander';
import { addCounts, Counts, countsLine, emptyCounts, HEAD } from '../surface/inventory.js';
import { EXIT_FINDINGS, ExitStatus, fileErrorLine, Io } from './context.js';
import { DEFAULT_CPU, validateCpuSpec } from './cpu.js';
import { expandPaths } from './files.js';
import { runAll } from './pool.js';
import { resolveCpuSpec } from './host-cpu.js';
import type { SurfaceTask } from './surface-job.js';

export function register(program: Command, io: Io, status: ExitStatus): void {
  program
    .command('surface')
    .description(
      'indirect calls and jumps left in the text a CPU runs: bare, through thunks, and made direct at boot (altcall, paravirt, static calls)',
    )
    .argument('<path...>', 'ELF files or directories')
    .option(
      '--cpu <spec>',
      `CPU description (default ${DEFAULT_CPU}: Debian's choices on a recent Intel server; Xen: hardening on), or host[,ITEM...] for this machine`,
    )
    .option(
      '--cpu-from <dir|file>',
      "CPU as another machine's saved /proc/cpuinfo, vulnerabilities and cmdline describe it (see docs/apply.md)",
    )
    .option('--all', 'list every function, not only the top 20 per file')
    .option('--json', 'JSON output')
    .option('--profile <id>', 'read the files with this profile')
    .action(
      async (
        paths: string[],
        o: { cpu?: string; cpuFrom?: string; all?: boolean; json?: boolean; profile?: string },
      ) => {
        o.cpu = resolveCpuSpec(o.cpu, o.cpuFrom);
        validateCpuSpec(o.cpu);
        const files = expandPaths(paths);
        const tasks: SurfaceTask[] = files.map((path) => ({
          kind: 'surface',
          path,
          cpu: o.cpu,
          profile: o.profile,
          all: o.all,
          json: o.json,
        }));
        const totals: Counts = emptyCounts();
        let failed = 0;
        let first = true;
        if (o.json) io.out('{"files":[');
        for await (const [t, r] of runAll(tasks, { progress: io.isTTY })) {
          if (o.json) {
            if (r.out) {
              io.out((first ? '\n' : ',\n') + r.out);
              first = false;
            }
          } else if (files.length === 1 || o.all) io.out(r.out);
          for (const w of r.warnings ?? []) io.err(w + '\n');
          if (r.errors.length) io.err(fileErrorLine(t.path, r.errors));
          if (r.errors.length) failed++;
          if (r.data) addCounts(totals, r.data as Counts);
        }
        if (o.json) io.out(`\n],"totals":${JSON.stringify(totals)}}\n`);
        else {
          io.out(
            `\n${files.length} file${files.length > 1 ? 's' : ''}${failed ? `, ${failed} with errors` : ''}: indirect branches\n`,
          );
          io.out(`  ${''.padEnd(12)}${HEAD.map((h) => h.padStart(12)).join('')}\n`);
          io.out(`  ${'TOTAL'.padEnd(12)}${countsLine(totals)}\n`);
        }
        if (failed) status.raise(EXIT_FINDINGS); // a file that cannot be used is a finding; unreadable paths stopped in expandPaths
      },
    );
}
