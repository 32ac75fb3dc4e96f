/**
 * Every kind of per-file task the worker pool runs: one union member and one loader line per command
 * that analyses many files in parallel. A worker loads only the job modules its tasks need.
 */
import type { JobResult, SitesTask } from './jobs.js';
import type { CheckTask } from './check-job.js';
import type { SurfaceTask } from './surface-job.js';

export type Task = SitesTask | CheckTask | SurfaceTask;

export async function runTask(task: Task): Promise<JobResult> {
  switch (task.kind) {
    case 'sites':
      return (await import('./jobs.js')).runSites(task);
    case 'check':
      return (await import('./check-job.js')).runCheck(task);
    case 'surface':
      return (await import('./surface-job.js')).runSurface(task);
  }
}
