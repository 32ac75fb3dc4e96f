/**
 * Runs per-file tasks on all cores with piscina (a maintained worker-thread pool: queueing, thread
 * reuse and error propagation we would otherwise write ourselves), yielding results in input order,
 * with a progress bar from cli-progress on a terminal (never when piped).
 */
import { availableParallelism } from 'node:os';
import type { JobResult } from './jobs.js';
import { runTask, Task } from './tasks.js';

export async function* runAll(
  tasks: Task[],
  opts: { progress: boolean; threads?: number },
): AsyncGenerator<[Task, JobResult]> {
  const threads = Math.max(1, Math.min(opts.threads ?? availableParallelism(), tasks.length));
  // Both libraries load only when used: a one-file run needs neither.
  const cliProgress = opts.progress && tasks.length > 1 ? (await import('cli-progress')).default : undefined;
  const bar = cliProgress
    ? new cliProgress.SingleBar(
        {
          format: 'textpoke [{bar}] {value}/{total} files  {file}',
          stream: process.stderr,
          clearOnComplete: true,
          hideCursor: true,
        },
        cliProgress.Presets.shades_classic,
      )
    : undefined;
  bar?.start(tasks.length, 0, { file: '' });
  try {
    if (threads === 1 || tasks.length < 4) {
      for (const t of tasks) {
        const r = await runTask(t);
        bar?.increment({ file: t.path.split('/').pop() });
        yield [t, r];
      }
      return;
    }
    const { Piscina } = await import('piscina');
    const pool = new Piscina({
      filename: new URL('./worker.js', import.meta.url).href,
      maxThreads: threads,
      minThreads: threads,
    });
    try {
      // Tasks go to the workers in batches of a few files: each hand-over is a round trip through the main
      // thread's event loop, during which the worker waits. Batches stay small (a 16th of each worker's share
      // at most) so that no worker is left with a long tail.
      const size = Math.max(1, Math.min(8, Math.floor(tasks.length / (threads * 16))));
      const pending: Promise<JobResult[]>[] = [];
      for (let i = 0; i < tasks.length; i += size) {
        const batch = tasks.slice(i, i + size);
        pending.push(
          pool.run(batch).then((r: JobResult[]) => {
            bar?.increment(batch.length, { file: batch[batch.length - 1]!.path.split('/').pop() });
            return r;
          }),
        );
      }
      for (let b = 0; b < pending.length; b++) {
        const results = await pending[b]!;
        for (let k = 0; k < results.length; k++) yield [tasks[b * size + k]!, results[k]!];
      }
    } finally {
      await pool.destroy();
    }
  } finally {
    bar?.stop();
  }
}
