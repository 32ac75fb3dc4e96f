/**
 * `textpoke report PATH... -o FILE.html`: one self-contained HTML page (no network at view time) with the
 * summary, findings, a page per function (disassembly before and after patching, control-flow graph laid
 * out by Graphviz in WebAssembly) and the model checker's traces. Analysis is the library's
 * (src/report/html/data.ts); this file only reads inputs, the viewer and Graphviz, and writes atomically.
 */
import { readFileSync, realpathSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { profileOption } from './options.js';
import { CHECKS } from '../checks/index.js';
import { analyse, FileData, ReportData } from '../report/html/data.js';
import { modelTraces } from '../report/html/model.js';
import { renderPage } from '../report/html/page.js';
import { EXIT_FINDINGS, ExitStatus, fileErrorLine, Io, UsageError } from './context.js';
import { validateCpuSpec } from './cpu.js';
import { expandPaths } from './files.js';
import { describeError, openImage } from './jobs.js';
import { resolveCpuSpec } from './host-cpu.js';

export interface ReportOptions {
  cpu?: string;
  profile?: string;
  checks?: string[];
  allFunctions?: boolean;
  modelStates?: number;
}

/**
 * The viewer's compiled JavaScript and Graphviz's browser build, read from the installed package. The page
 * runs the viewer as one classic script, so the wire codec it imports (wire.js) goes in front of it and the
 * import line goes.
 */
export function pageParts(): { viewerJs: string; vizJs: string } {
  const compiled = (name: string): string =>
    readFileSync(fileURLToPath(new URL(`../report/html/${name}`, import.meta.url)), 'utf8').replace(
      /^\/\/# sourceMappingURL=.*$/m,
      '',
    );
  const viewerJs =
    compiled('wire.js') + '\n' + compiled('viewer.js').replace(/^import \{[^}]*\} from '\.\/wire\.js';$/m, '');
  const req = createRequire(import.meta.url);
  const vizMain = req.resolve('@viz-js/viz');
  const vizJs = readFileSync(join(dirname(vizMain), 'viz-global.js'), 'utf8');
  return { viewerJs, vizJs };
}

/** Analyses files into report data; a file that cannot be read becomes an error entry, not a failure of the run. */
export async function buildReport(
  files: string[],
  o: ReportOptions,
  onError: (line: string) => void,
): Promise<{ data: ReportData; failed: number }> {
  const out: FileData[] = [];
  let failed = 0;
  for (const path of files) {
    try {
      const img = await openImage(path);
      out.push(analyse(img, { cpu: o.cpu, profile: o.profile, checks: o.checks, allFunctions: o.allFunctions }));
    } catch (e) {
      failed++;
      const msg = describeError(e);
      onError(`${path}: ${msg}`);
      out.push({
        path,
        target: { os: 'unknown', version: null, profile: null },
        checked: 'nothing',
        patchedFor: 'not patched',
        counts: {},
        features: [],
        patchers: [],
        checks: [],
        findings: [],
        errors: [msg],
        functions: [],
        details: [],
      });
    }
  }
  const missing: string[] = [];
  let model;
  if ((o.modelStates ?? 20000) > 0) {
    try {
      model = modelTraces(
        o.modelStates ?? 20000,
        out.slice(0, 3).flatMap((f) => (f.modelSite ? [f.modelSite] : [])),
      );
    } catch (e) {
      missing.push(`Model checker results are missing: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  return { data: { generator: 'textpoke report', files: out, ...(model ? { model } : {}), missing }, failed };
}

export function register(program: Command, io: Io, status: ExitStatus): void {
  program
    .command('report')
    .description(
      'one self-contained HTML report: summary with charts, findings, per-function disassembly before/after patching and control-flow graphs, model-checker traces',
    )
    .argument('<path...>', 'ELF files (.o, .ko, .ko.xz/.zst/.gz, vmlinux, xen-syms) or directories to search')
    .requiredOption('-o, --output <file.html>', 'output HTML file (written atomically, never over an input)')
    .option(
      '--cpu <spec>',
      "CPU the checked text and the 'after' column are patched for, as for textpoke check: PRESET[,+FEATURE,-FEATURE,key=value...] (intel-server, amd-server, old, all, none), 'host[,ITEM...]' for this machine, or 'as-built' (checks on the file's bytes; the 'after' column then shows intel-server). Default intel-server",
    )
    .option(
      '--cpu-from <dir|file>',
      "CPU as another machine's saved /proc/cpuinfo, vulnerabilities and cmdline describe it (see docs/apply.md)",
    )
    .option(
      '--checks <ids>',
      `only these checks, comma-separated (${CHECKS.map((c) => c.id).join(', ')})`,
      (v: string, prev: string[] = []) => [...prev, ...v.split(',').filter(Boolean)],
    )
    .addOption(profileOption('the files'))
    .option(
      '--all-functions',
      'a page for every function, not only those with sites, findings or patches (large inputs get big)',
    )
    .option(
      '--model-states <n>',
      'state limit per model-checker cell (0: leave the model section out)',
      (v) => Number(v),
      20000,
    )
    .action(async (paths: string[], o: ReportOptions & { output: string; cpuFrom?: string }) => {
      o.cpu = resolveCpuSpec(o.cpu, o.cpuFrom);
      for (const id of o.checks ?? [])
        if (!CHECKS.some((c) => c.id === id))
          throw new UsageError(`unknown check '${id}' (known: ${CHECKS.map((c) => c.id).join(', ')})`);
      if (!Number.isInteger(o.modelStates) || o.modelStates! < 0)
        throw new UsageError('--model-states takes a non-negative integer');
      validateCpuSpec(o.cpu);
      const files = expandPaths(paths);
      if (files.length === 0) throw new UsageError(`no ELF files or compressed modules under ${paths.join(' ')}`);
      const out = resolve(o.output);
      let outReal = out;
      try {
        outReal = realpathSync(out);
      } catch {
        /* does not exist yet */
      }
      for (const f of files) {
        let inReal = resolve(f);
        try {
          inReal = realpathSync(f);
        } catch {
          /* reported when read */
        }
        if (inReal === outReal) throw new UsageError(`${f}: refusing to write the report over an input`);
      }
      const { data, failed } = await buildReport(files, o, (l) => io.err(l + '\n'));
      const html = renderPage(data, pageParts());
      const tmp = join(dirname(out), `.${basename(out)}.${process.pid}.tmp`);
      try {
        writeFileSync(tmp, html);
        renameSync(tmp, out);
      } catch (e) {
        try {
          unlinkSync(tmp);
        } catch {
          /* nothing to clean */
        }
        throw new UsageError(`${o.output}: cannot write (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
      }
      const nFind = data.files.reduce((a, f) => a + f.findings.length, 0);
      const nPages = data.files.reduce((a, f) => a + f.details.length, 0);
      io.out(
        `${o.output}: ${files.length} file${files.length === 1 ? '' : 's'}, ${nFind} findings, ${nPages} function pages, ${(html.length / 1e6).toFixed(1)} MB\n`,
      );
      for (const f of data.files)
        if (f.checked !== 'nothing' && f.errors.length) io.err(fileErrorLine(f.path, f.errors));
      // Files that cannot be used, and a --cpu one file's feature table does not know (the report shows its
      // bytes as built), are findings: named on stderr and in the report (exit 1). A --cpu no table knows
      // was refused above, before anything was read or written (exit 2).
      if (failed || data.files.some((f) => f.errors.some((e) => e.startsWith('--cpu ')))) status.raise(EXIT_FINDINGS);
      if (data.files.some((f) => f.findings.some((x) => x.severity === 'error'))) status.raise(EXIT_FINDINGS);
    });
}
