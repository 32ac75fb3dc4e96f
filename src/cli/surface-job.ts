import { targetWarnings } from '../sites/crosscheck.js';
import { applyPatches } from '../patch/index.js';
import { indirectSurface, renderSurface } from '../surface/inventory.js';
import { cpuFor } from './cpu.js';
import { UsageError } from './context.js';
import { describeError, JobResult, openImage, resolveTarget } from './jobs.js';

export interface SurfaceTask {
  kind: 'surface';
  path: string;
  cpu?: string;
  profile?: string;
  all?: boolean;
  json?: boolean;
}

export async function runSurface(task: SurfaceTask): Promise<JobResult> {
  try {
    const img = await openImage(task.path);
    const target = resolveTarget(img, task.profile);
    const cpu = cpuFor(img, target, task.cpu);
    const { view, sites, errors } = applyPatches(img, target.profile!, cpu);
    const s = indirectSurface(img, view, sites, cpu.spec);
    const out = task.json
      ? JSON.stringify(
          task.all
            ? s
            : {
                ...s,
                functions: s.functions.filter(
                  (f) =>
                    f.counts.bareCall +
                      f.counts.bareJump +
                      f.counts.thunkCall +
                      f.counts.thunkJump +
                      f.counts.altcall +
                      f.counts.paravirt +
                      f.counts.staticCall >
                    0,
                ),
              },
        )
      : renderSurface(s, task.all ? Infinity : 20);
    return {
      out,
      errors: errors.map((e) => `${task.path}: ${e}`),
      warnings: targetWarnings(target, sites).map((w) => `${task.path}: warning: ${w}`),
      data: s.totals,
    };
  } catch (e) {
    const msg = e instanceof UsageError ? e.message : describeError(e);
    return {
      out: task.json ? JSON.stringify({ path: task.path, errors: [msg] }) : '',
      errors: [`${task.path}: ${msg}`],
    };
  }
}
