/** Worker-thread entry for the pool (piscina calls the default export once per task). */
import { runTask, Task, JobResult } from './jobs.js';

export default function (task: Task): Promise<JobResult> {
  return runTask(task);
}
