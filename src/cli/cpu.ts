/** The CPU a command analyses for: `--cpu SPEC` against the file's feature table, or the default. */
import type { Image } from '../elf/image.js';
import { Cpu, CpuSpecError, parseCpu } from '../patch/index.js';
import type { Target } from '../target/detect.js';
import { featureTable } from '../target/features/index.js';
import { PROFILES } from '../target/profile.js';
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

/**
 * Rejects a --cpu that no profile's feature table accepts, before any file is read or anything written (exit 2).
 * A spec some tables accept and others do not (a Linux feature on a Xen file) is reported per file.
 */
export function validateCpuSpec(spec: string | undefined): void {
  if (spec === undefined || spec === 'as-built') return;
  let first: CpuSpecError | undefined;
  const seen = new Set<string>();
  for (const p of PROFILES) {
    const table = featureTable(p.features);
    if (seen.has(table.id)) continue;
    seen.add(table.id);
    try {
      parseCpu(spec, table);
      return;
    } catch (e) {
      if (!(e instanceof CpuSpecError)) throw e;
      first ??= e;
    }
  }
  if (first) throw new UsageError(`--cpu ${spec}: ${first.message}`);
}
