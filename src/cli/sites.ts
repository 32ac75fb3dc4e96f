import { Command } from 'commander';
import { addSymbolOptions, profileOption } from './options.js';
import { TABLE_IDS, TableId } from '../target/profile.js';
import { EXIT_FINDINGS, EXIT_USAGE, ExitStatus, fileErrorLine, Io, UsageError } from './context.js';
import { expandPaths } from './files.js';
import { runAll } from './pool.js';
import type { SitesTask } from './jobs.js';

export function register(program: Command, io: Io, status: ExitStatus): void {
  addSymbolOptions(program.command('sites'))
    .description(
      'list every runtime patch site (alternatives, paravirt, static calls, jump labels, retpoline/return/call sites, IBT seal, lock prefixes, mcount)',
    )
    .argument(
      '<path...>',
      'ELF files (.o, .ko, .ko.xz/.zst/.gz, vmlinux, vmlinuz/bzImage, xen-syms) or directories to search',
    )
    .option(
      '--table <ids>',
      `only these tables, comma-separated or repeated (${TABLE_IDS.join(', ')})`,
      (v: string, prev: string[] = []) => [...prev, ...v.split(',').filter(Boolean)],
    )
    .option('--summary', 'counts per table only')
    .option('--json', 'JSON output (schema in README)')
    .addOption(profileOption('the files'))
    .option('-j, --jobs <n>', 'worker threads (default: all cores)', (v) => Number(v))
    .action(
      async (
        paths: string[],
        o: {
          table?: string[];
          summary?: boolean;
          json?: boolean;
          profile?: string;
          jobs?: number;
          symbols?: string;
          kaslrOffset?: string;
        },
      ) => {
        const tables = o.table?.map((t) => {
          if (!(TABLE_IDS as readonly string[]).includes(t))
            throw new UsageError(`unknown table '${t}' (known: ${TABLE_IDS.join(', ')})`);
          return t as TableId;
        });
        const files = expandPaths(paths);
        if (files.length === 0) throw new UsageError(`no ELF files or compressed modules under ${paths.join(' ')}`);
        const tasks: SitesTask[] = files.map((path) => ({
          kind: 'sites',
          path,
          profile: o.profile,
          tables,
          summary: o.summary,
          json: o.json,
          symbols: o.symbols,
          kaslrOffset: o.kaslrOffset,
        }));
        const totals = new Map<string, number>();
        let failed = 0;
        let usage = false;
        let problems = 0;
        if (o.json) io.out('{"files":[');
        let first = true;
        for await (const [t, r] of runAll(tasks, { progress: io.isTTY, threads: o.jobs })) {
          if (o.json) {
            io.out((first ? '\n' : ',\n') + r.out);
            first = false;
          } else if (r.out) io.out(o.summary ? summaryLine(r.out) : r.out);
          for (const w of r.warnings ?? []) io.err(w + '\n');
          if (r.errors.length) io.err(fileErrorLine(t.path, r.errors));
          if (r.errors.length) failed++;
          if (r.usage) usage = true;
          problems += r.problems ?? 0;
          for (const [k, v] of Object.entries(r.counts ?? {})) totals.set(k, (totals.get(k) ?? 0) + (v ?? 0));
        }
        if (o.json) io.out('\n]}\n');
        else if (files.length > 1) {
          io.out(
            `\n${files.length} files${failed ? `, ${failed} with errors` : ''}${problems ? `, ${problems} sites with problems` : ''}\n`,
          );
          for (const id of TABLE_IDS) if (totals.has(id)) io.out(`  ${id.padEnd(20)} ${totals.get(id)}\n`);
        }
        // A file that cannot be used is a finding; unreadable paths stopped in expandPaths; a --symbols file that
        // does not fit is bad usage.
        if (failed) status.raise(usage ? EXIT_USAGE : EXIT_FINDINGS);
      },
    );
}

/** In --summary mode the job already leaves sites out; keep its header and totals. */
function summaryLine(text: string): string {
  return text;
}
