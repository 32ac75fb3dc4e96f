import { Command } from 'commander';
import { addSymbolOptions, profileOption } from './options.js';
import { CHECKS } from '../checks/index.js';
import { DEFAULT_CPU } from '../checks/run.js';
import type { Finding } from '../checks/finding.js';
import { FileReport, renderJson } from '../report/json.js';
import { renderSarif } from '../report/sarif.js';
import { renderCounts, renderFile, severityOf } from '../report/text.js';
import type { CheckTask } from './check-job.js';
import { EXIT_FINDINGS, EXIT_USAGE, ExitStatus, fileErrorLine, Io, UsageError } from './context.js';
import { validateCpuSpec } from './cpu.js';
import { expandPaths } from './files.js';
import { runAll } from './pool.js';
import { resolveCpuSpec } from './host-cpu.js';

const CPU_HELP = `CPU the checked text is patched for: PRESET[,+FEATURE,-FEATURE,key=value...] as for textpoke apply
(presets: intel-server, amd-server, old, all, none), 'host[,ITEM...]' for this machine, or 'as-built' for the bytes in the file. Default
'${DEFAULT_CPU}': for Xen, branch and lock hardening on (SC_NO_BRANCH_HARDEN/SC_NO_LOCK_HARDEN absent); for Linux,
the preset and mitigations Debian's 6.1 kernel picks on a recent Intel server (eIBRS: spectre_v2=eibrs, so
retpoline sites become plain indirect calls; no return thunk). Files that are no known kernel are checked as built`;

export function register(program: Command, io: Io, status: ExitStatus): void {
  addSymbolOptions(program.command('check'))
    .description(
      'speculation and patch-safety checks (nospec fences, outlined predicates, retpoline/rethunk/SLS coverage, site validity) with objtool-style diagnostics',
    )
    .argument(
      '<path...>',
      'ELF files (.o, .ko, .ko.xz/.zst/.gz, vmlinux, vmlinuz/bzImage, xen-syms, any x86-64 object) or directories to search',
    )
    .option('--cpu <spec>', CPU_HELP)
    .option(
      '--cpu-from <dir|file>',
      "CPU as another machine's saved /proc/cpuinfo, vulnerabilities and cmdline describe it (see docs/apply.md)",
    )
    .option(
      '--checks <ids>',
      `only these checks, comma-separated (${CHECKS.map((c) => c.id).join(', ')})`,
      (v: string, prev: string[] = []) => [...prev, ...v.split(',').filter(Boolean)],
    )
    .option('--werror', 'treat warnings as errors (exit 1 when there are any)')
    .option('--json', 'JSON output')
    .option('--sarif', 'SARIF 2.1.0 output')
    .addOption(profileOption('the files'))
    .option('-j, --jobs <n>', 'worker threads (default: all cores)', (v) => Number(v))
    .addHelpText(
      'after',
      `\nChecks:\n${CHECKS.map((c) => `  ${c.id.padEnd(22)} ${c.byDefault ? '' : '(not by default) '}${c.describe}`).join('\n')}\n`,
    )
    .action(
      async (
        paths: string[],
        o: {
          cpu?: string;
          cpuFrom?: string;
          checks?: string[];
          werror?: boolean;
          json?: boolean;
          sarif?: boolean;
          profile?: string;
          jobs?: number;
          symbols?: string;
          kaslrOffset?: string;
        },
      ) => {
        if (o.json && o.sarif) throw new UsageError('--json and --sarif are exclusive');
        for (const id of o.checks ?? [])
          if (!CHECKS.some((c) => c.id === id))
            throw new UsageError(`unknown check '${id}' (known: ${CHECKS.map((c) => c.id).join(', ')})`);
        const cpuNotes: string[] = [];
        o.cpu = resolveCpuSpec(o.cpu, o.cpuFrom, cpuNotes);
        validateCpuSpec(o.cpu);
        const files = expandPaths(paths);
        if (files.length === 0) throw new UsageError(`no ELF files or compressed modules under ${paths.join(' ')}`);
        const ids = o.checks ?? CHECKS.filter((c) => c.byDefault).map((c) => c.id);
        const tasks: CheckTask[] = files.map((path) => ({
          kind: 'check',
          path,
          profile: o.profile,
          checks: o.checks,
          cpu: o.cpu,
          symbols: o.symbols,
          kaslrOffset: o.kaslrOffset,
        }));
        const counts = new Map<string, number>();
        const reports: FileReport[] = [];
        const structured = o.json || o.sarif;
        let failed = 0;
        let usage = false;
        let errorLevel = false;
        for await (const [t, r] of runAll(tasks, { progress: io.isTTY && !structured, threads: o.jobs })) {
          const rep = JSON.parse(r.out) as FileReport;
          if (r.problems) failed++;
          if (r.usage) usage = true;
          for (const w of r.warnings ?? []) io.err(w + '\n');
          if (!structured) for (const n of r.notes ?? []) io.err(`note: ${n}\n`);
          if (r.errors.length) io.err(fileErrorLine(t.path, r.errors));
          for (const f of rep.findings) {
            counts.set(f.check, (counts.get(f.check) ?? 0) + 1);
            if (severityOf(f as Finding, o.werror) === 'error') errorLevel = true;
          }
          if (structured) reports.push(rep);
          else io.out(renderFile(rep.path, rep.findings, { werror: o.werror }));
        }
        if (o.json) io.out(renderJson(reports, o.werror));
        else if (o.sarif) io.out(renderSarif(reports, o.werror));
        else io.out(renderCounts(counts, ids, files.length, failed));
        if (errorLevel) status.raise(EXIT_FINDINGS);
        // A file that cannot be used is a finding; unreadable paths stopped in expandPaths; a --symbols file that
        // does not fit is bad usage.
        if (failed) status.raise(usage ? EXIT_USAGE : EXIT_FINDINGS);
      },
    );
}
