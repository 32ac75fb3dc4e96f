/** Worker-thread entry for the pool (piscina calls the default export once per task). */
import type { JobResult } from './jobs.js';
import { runTask, Task } from './tasks.js';

export default function (task: Task): Promise<JobResult> {
  return runTask(task);
}
