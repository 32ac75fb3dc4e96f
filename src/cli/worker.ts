/**
 * Worker-thread entry for the pool (piscina calls the default export once per message): one task, or a
 * batch of tasks run one after the other (fewer round trips to the main thread over thousands of small files).
 */
import type { JobResult } from './jobs.js';
import { runTask, Task } from './tasks.js';

export default async function (work: Task | Task[]): Promise<JobResult | JobResult[]> {
  if (!Array.isArray(work)) return runTask(work);
  const out: JobResult[] = [];
  for (const t of work) out.push(await runTask(t));
  return out;
}
