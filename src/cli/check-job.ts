/**
 * The per-file job of `textpoke check` (runs in a worker thread): open, prepare the view, run the
 * checks, and hand back the file's report as JSON text (findings are rendered in the main thread so
 * text, JSON and SARIF share one path and counts add up across files).
 */
import { checkById, CHECKS } from '../checks/index.js';
import { DEFAULT_CPU, prepare, runChecks } from '../checks/run.js';
import type { FileReport } from '../report/json.js';
import { CpuSpecError } from '../patch/index.js';
import { describeError, JobResult, openImage, SymbolOptions } from './jobs.js';
import { targetWarnings } from '../sites/crosscheck.js';
import { SymbolFileError } from '../elf/symbol-file.js';

export interface CheckTask extends SymbolOptions {
  kind: 'check';
  path: string;
  profile?: string;
  /** Check ids to run (default: every check that runs by default). */
  checks?: string[];
  cpu?: string;
}

export async function runCheck(task: CheckTask): Promise<JobResult> {
  let view;
  try {
    const notes: string[] = [];
    const img = await openImage(task.path, {}, task, notes);
    const prep = prepare(img, { profile: task.profile, cpu: task.cpu ?? DEFAULT_CPU });
    view = prep.view;
    for (const s of view.skipped())
      notes.push(
        `${task.path}: ${s.name} not checked: writable and executable, and no symbols tell its code from its data`,
      );
    const checks = task.checks
      ? task.checks.map((id) => checkById(id)!).filter(Boolean)
      : CHECKS.filter((c) => c.byDefault);
    const findings = runChecks(view, checks);
    const t = view.target;
    const warnings = t.profile ? targetWarnings(t, view.sites) : [...(t.warnings ?? [])];
    const report: FileReport = {
      path: task.path,
      target: {
        os: t.os,
        version: t.version,
        profile: t.profile?.id ?? null,
        warnings,
        ...(notes.length ? { notes } : {}),
      },
      view: view.describe,
      findings,
      errors: prep.tableErrors,
    };
    return {
      out: JSON.stringify(report),
      errors: prep.tableErrors.map((m) => `${task.path}: ${m}`),
      warnings: warnings.map((w) => `${task.path}: warning: ${w}`),
      notes,
    };
  } catch (e) {
    const msg = e instanceof CpuSpecError ? `--cpu: ${e.message}` : describeError(e);
    const report: FileReport = { path: task.path, findings: [], errors: [msg] };
    return {
      out: JSON.stringify(report),
      errors: [`${task.path}: ${msg}`],
      problems: 1,
      usage: e instanceof SymbolFileError,
    };
  } finally {
    view?.dispose();
  }
}
