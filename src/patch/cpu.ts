/**
 * CPU descriptions: `--cpu PRESET[,+FEATURE,-FEATURE,FEATURE,KEY=VALUE…]` parsed against a file's feature table.
 *
 * Items after the preset, left to right:
 *  - `+NAME` / `NAME` sets a feature, `-NAME` clears it (names as `textpoke sites` prints them, with or without
 *    X86_FEATURE_, any case, '-' for '_'); `?NAME` sets it when the table has it and is silently skipped
 *    otherwise (`-?NAME` clears it likewise) (the specs `--cpu host` builds from /proc/cpuinfo, see host-cpu.ts, use it);
 *    `?NAME@WITNESS` sets NAME only when the table also has WITNESS (a feature that came with the kernel change
 *    that made the kernel set NAME: the table's own evidence of the version's rule);
 *  - Linux mitigation choices (they set the synthetic features the kernel's bugs.c sets):
 *    `spectre_v2=retpoline|lfence|eibrs|eibrs-retpoline|eibrs-lfence|ibrs|off`,
 *    `rethunk=default|retbleed|srso|srso-alias|its|off` (which x86_return_thunk apply_returns writes);
 *  - Xen: `branch-harden=on|off` (off = +SC_NO_BRANCH_HARDEN), `lock-harden=on|off` (off = +SC_NO_LOCK_HARDEN),
 *    `nops=p6|k8` (the NOP table arch_init_ideal_nops picks).
 *
 * @example
 * ```ts
 * const cpu = parseCpu('amd-server,-LA57,rethunk=off', featureTable('linux-6.1.85'));
 * cpu.has(featureNumber(cpu.table, 'POPCNT')!); // true
 * ```
 */
import { FeatureTable, featureName, featureNumber } from '../target/features/index.js';
import { LINUX_PRESETS, Preset, XEN_PRESETS } from './presets.js';

export class CpuSpecError extends Error {}

export type ReturnThunk =
  | '__x86_return_thunk'
  | 'retbleed_return_thunk'
  | 'srso_return_thunk'
  | 'srso_alias_return_thunk'
  | 'its_return_thunk';

export interface Cpu {
  readonly spec: string;
  readonly preset: string;
  readonly table: FeatureTable;
  /** Feature bits set (numbers in the table's numbering). */
  readonly features: ReadonlySet<number>;
  /** Linux: the x86_return_thunk symbol apply_returns targets when RETHUNK is set. */
  readonly returnThunk: ReturnThunk;
  /** Xen: NOP table. */
  readonly nops: 'p6' | 'k8';
  /** Preset names the table does not know (skipped). */
  readonly notes: readonly string[];
  has(feature: number): boolean;
}

export function presetsFor(table: FeatureTable): readonly Preset[] {
  return table.family === 'xen' ? XEN_PRESETS : LINUX_PRESETS;
}

export const PRESET_IDS = ['intel-server', 'amd-server', 'old', 'all', 'none'] as const;

function need(t: FeatureTable, name: string): number {
  const n = featureNumber(t, name);
  if (n === undefined) throw new CpuSpecError(`unknown CPU feature '${name}' for feature table ${t.id}`);
  return n;
}

const parsed = new Map<string, Cpu>();

/**
 * Parses a CPU SPEC against a feature table; throws CpuSpecError with a one-line message. A Cpu is
 * immutable, so each (spec, table) is parsed once per process (a run over thousands of modules asks again
 * for every file).
 */
export function parseCpu(spec: string, table: FeatureTable): Cpu {
  const key = `${table.id}\n${spec}`;
  let cpu = parsed.get(key);
  if (!cpu) parsed.set(key, (cpu = parseCpuSpec(spec, table)));
  return cpu;
}

function parseCpuSpec(spec: string, table: FeatureTable): Cpu {
  const items = spec
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (!items.length) throw new CpuSpecError('empty --cpu');
  const presets = presetsFor(table);
  const pid = items[0]!.toLowerCase();
  const preset = presets.find((p) => p.id === pid);
  if (!preset)
    throw new CpuSpecError(`unknown CPU preset '${items[0]}' (known: ${presets.map((p) => p.id).join(', ')})`);
  const set = new Set<number>();
  const notes: string[] = [];
  if (preset.features.includes('*')) {
    for (let n = 0; n < table.limit; n++) set.add(n);
  } else {
    for (const f of preset.features) {
      const n = featureNumber(table, f);
      if (n === undefined) notes.push(`preset ${preset.id}: ${f} not in ${table.id}, skipped`);
      else set.add(n);
    }
  }
  let thunk: ReturnThunk | undefined = preset.returnThunk as ReturnThunk | undefined;
  let nops = preset.nops ?? 'p6';
  const on = (name: string): void => {
    const n = featureNumber(table, name);
    if (n !== undefined) set.add(n);
  };
  const off = (name: string): void => {
    const n = featureNumber(table, name);
    if (n !== undefined) set.delete(n);
  };
  const linux = table.family === 'linux';
  for (const item of items.slice(1)) {
    const kv = /^([a-z0-9_-]+)=(.*)$/i.exec(item);
    if (kv) {
      const key = kv[1]!.toLowerCase().replace(/_/g, '-');
      const val = kv[2]!.toLowerCase();
      if (linux && key === 'spectre-v2') {
        off('RETPOLINE');
        off('RETPOLINE_LFENCE');
        off('KERNEL_IBRS');
        if (val === 'retpoline' || val === 'eibrs-retpoline') on('RETPOLINE');
        else if (val === 'lfence' || val === 'eibrs-lfence') {
          on('RETPOLINE');
          on('RETPOLINE_LFENCE');
        } else if (val === 'ibrs') on('KERNEL_IBRS');
        else if (val !== 'eibrs' && val !== 'off' && val !== 'none')
          throw new CpuSpecError(
            `spectre_v2=${val}: expected retpoline, lfence, eibrs, eibrs-retpoline, eibrs-lfence, ibrs or off`,
          );
      } else if (linux && key === 'rethunk') {
        for (const f of ['RETHUNK', 'UNRET', 'SRSO', 'SRSO_ALIAS']) off(f);
        const m: Record<string, [ReturnThunk, string[]]> = {
          default: ['__x86_return_thunk', ['RETHUNK']],
          retbleed: ['retbleed_return_thunk', ['RETHUNK', 'UNRET']],
          srso: ['srso_return_thunk', ['RETHUNK', 'UNRET', 'SRSO']],
          'srso-alias': ['srso_alias_return_thunk', ['RETHUNK', 'UNRET', 'SRSO_ALIAS']],
          its: ['its_return_thunk', ['RETHUNK']],
        };
        if (val === 'off' || val === 'none') thunk = undefined;
        else if (m[val]) {
          thunk = m[val]![0];
          for (const f of m[val]![1]) on(f);
        } else throw new CpuSpecError(`rethunk=${val}: expected default, retbleed, srso, srso-alias, its or off`);
      } else if (!linux && (key === 'branch-harden' || key === 'lock-harden')) {
        const f = key === 'branch-harden' ? 'SC_NO_BRANCH_HARDEN' : 'SC_NO_LOCK_HARDEN';
        if (val === 'on') set.delete(need(table, f));
        else if (val === 'off') set.add(need(table, f));
        else throw new CpuSpecError(`${key}=${val}: expected on or off`);
      } else if (!linux && key === 'nops') {
        if (val !== 'p6' && val !== 'k8') throw new CpuSpecError(`nops=${val}: expected p6 or k8`);
        nops = val;
      } else throw new CpuSpecError(`unknown --cpu option '${kv[1]}' for ${table.family}`);
      continue;
    }
    if (item.startsWith('-?')) {
      const n = featureNumber(table, item.slice(2));
      if (n !== undefined) set.delete(n);
    } else if (item.startsWith('?')) {
      // Set when the table knows the name (what a host's /proc/cpuinfo reports, for any kernel version).
      const [name, witness] = item.slice(1).split('@');
      const n = featureNumber(table, name!);
      if (n !== undefined && (witness === undefined || featureNumber(table, witness) !== undefined)) set.add(n);
    } else if (item.startsWith('-')) set.delete(need(table, item.slice(1)));
    else set.add(need(table, item.startsWith('+') ? item.slice(1) : item));
  }
  // The thunk apply_returns targets follows the features bugs.c sets, in its selection order.
  if (!thunk) {
    const has = (name: string): boolean => {
      const n = featureNumber(table, name);
      return n !== undefined && set.has(n);
    };
    thunk = has('SRSO_ALIAS')
      ? 'srso_alias_return_thunk'
      : has('SRSO')
        ? 'srso_return_thunk'
        : has('UNRET')
          ? 'retbleed_return_thunk'
          : '__x86_return_thunk';
  }
  return {
    spec,
    preset: preset.id,
    table,
    features: set,
    returnThunk: thunk,
    nops,
    notes,
    has: (n: number) => set.has(n),
  };
}

/** The feature names set, sorted by number (for reports and docs). */
export function cpuFeatureNames(cpu: Cpu): string[] {
  return [...cpu.features].sort((a, b) => a - b).map((n) => featureName(cpu.table, n));
}
