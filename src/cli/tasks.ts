/**
 * Every kind of per-file task the worker pool runs: one union member and one switch line per command
 * that analyses many files in parallel.
 */
import { JobResult, runSites, SitesTask } from './jobs.js';
import { CheckTask, runCheck } from './check-job.js';
import { runSurface, SurfaceTask } from './surface-job.js';

export type Task = SitesTask | CheckTask | SurfaceTask;

export async function runTask(task: Task): Promise<JobResult> {
  switch (task.kind) {
    case 'sites': return runSites(task);
    case 'check': return runCheck(task);
    case 'surface': return runSurface(task);
  }
}
