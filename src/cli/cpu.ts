/** The CPU a command analyses for: `--cpu SPEC` against the file's feature table, or the default. */
import type { Image } from '../elf/image.js';
import { Cpu, CpuSpecError, parseCpu } from '../patch/index.js';
import type { Target } from '../target/detect.js';
import { featureTable } from '../target/features/index.js';
import { UsageError } from './context.js';

/** Default: Debian's choices on a recent Intel server (Linux); hardening on (Xen's intel-server preset). */
export const DEFAULT_CPU = 'intel-server';

export function cpuFor(_img: Image, target: Target, spec?: string): Cpu {
  try {
    return parseCpu(spec ?? DEFAULT_CPU, featureTable(target.profile!.features));
  } catch (e) {
    if (e instanceof CpuSpecError) throw new UsageError(e.message);
    throw e;
  }
}
