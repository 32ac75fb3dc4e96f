/**
 * `--cpu-from FILE` for a Xen file: the CPU spec the hypervisor's boot log gives (`xl dmesg` or its serial
 * console), optionally with `xen-cpuid` output appended (src/patch/xen-bootlog.ts says what each line gives and
 * what has to be assumed). For Linux files `--cpu-from` reads saved /proc files instead (host-cpu.ts).
 */
import { readFileSync } from 'node:fs';
import { CpuSpecError } from '../patch/cpu.js';
import type { XenCpuId } from '../patch/xen-altcall-targets.js';
import { cpuFromXenBootLog } from '../patch/xen-bootlog.js';
import type { FeatureTable } from '../target/features/index.js';
import { UsageError } from './context.js';

export interface CpuFrom {
  spec: string;
  /** Xen: vendor, family and model from the log. */
  xenCpu?: XenCpuId;
  /** What the spec had to assume, for the user. */
  notes: string[];
}

export function cpuSpecFromFile(path: string, table: FeatureTable): CpuFrom {
  let text: string;
  try {
    text = readFileSync(path, 'latin1');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UsageError(`${path}: ${code === 'ENOENT' ? 'no such file' : `cannot read (${code ?? String(e)})`}`);
  }
  if (table.family !== 'xen')
    throw new UsageError(`--cpu-from ${path}: only Xen boot logs are read so far (this file is ${table.family})`);
  try {
    const r = cpuFromXenBootLog(text, table);
    return { spec: r.spec, xenCpu: r.id, notes: r.notes };
  } catch (e) {
    if (e instanceof CpuSpecError) throw new UsageError(`${path}: ${e.message}`);
    throw e;
  }
}
