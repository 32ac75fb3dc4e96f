/**
 * `--cpu host` and `--cpu-from DIR|FILE`: the files that describe a machine's CPU to textpoke, read here
 * (node only) and turned into a `--cpu` spec by src/patch/host-cpu.ts.
 *
 * - `host`: /proc/cpuinfo, /sys/devices/system/cpu/vulnerabilities/*, /proc/cmdline of this machine.
 * - `--cpu-from DIR`: the same files saved from another machine, either as a copy of the tree
 *   (DIR/proc/cpuinfo, DIR/sys/devices/system/cpu/vulnerabilities/, DIR/proc/cmdline) or flat
 *   (DIR/cpuinfo, DIR/vulnerabilities/, DIR/cmdline).
 * - `--cpu-from FILE`: one text file: cpuinfo, plus `grep -r . /sys/devices/system/cpu/vulnerabilities`
 *   lines (`.../vulnerabilities/NAME:VALUE`) and a `cmdline:...` line, in any order.
 * Extra items after `host` (`--cpu host,-LA57`) are appended to the spec.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { HostFiles, hostCpuSpec } from '../patch/host-cpu.js';
import { UsageError } from './context.js';

function readDirFiles(root: string): HostFiles {
  const pick = (...c: string[]): string | undefined => c.map((p) => join(root, p)).find((p) => existsSync(p));
  const cpuinfo = pick('proc/cpuinfo', 'cpuinfo');
  if (!cpuinfo) throw new UsageError(`${root}: no proc/cpuinfo or cpuinfo in it`);
  const vdir = pick('sys/devices/system/cpu/vulnerabilities', 'vulnerabilities');
  const vulnerabilities: Record<string, string> = {};
  if (vdir)
    for (const n of readdirSync(vdir).sort()) {
      try {
        vulnerabilities[n] = readFileSync(join(vdir, n), 'utf8').trim();
      } catch {
        /* unreadable entry: left out */
      }
    }
  const cmd = pick('proc/cmdline', 'cmdline');
  return {
    cpuinfo: readFileSync(cpuinfo, 'utf8'),
    vulnerabilities,
    cmdline: cmd ? readFileSync(cmd, 'utf8').trim() : undefined,
  };
}

/** One saved text file: cpuinfo lines, vulnerabilities lines as grep -r prints them, and `cmdline:` (see above). */
export function parseCpuFile(text: string): HostFiles {
  const info: string[] = [];
  const vulnerabilities: Record<string, string> = {};
  let cmdline: string | undefined;
  for (const line of text.split('\n')) {
    const v = /^(?:\S*\/)?vulnerabilities\/([a-z0-9_]+):(.*)$/.exec(line);
    if (v) vulnerabilities[v[1]!] = v[2]!.trim();
    else if (/^(?:\/proc\/)?cmdline:/.test(line)) cmdline = line.slice(line.indexOf(':') + 1).trim();
    else info.push(line);
  }
  return { cpuinfo: info.join('\n'), vulnerabilities, cmdline };
}

/** Reads host files from `source` (a root such as '/', a saved directory, or a saved file). */
export function readHostFiles(source: string): HostFiles {
  let st;
  try {
    st = statSync(source);
  } catch {
    throw new UsageError(`${source}: no such file or directory`);
  }
  try {
    return st.isDirectory() ? readDirFiles(source) : parseCpuFile(readFileSync(source, 'utf8'));
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError(`${source}: cannot read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
}

/**
 * Resolves `--cpu`/`--cpu-from` to a spec string: `host[,ITEM...]` reads this machine (or `hostRoot`),
 * `--cpu-from` a saved copy; anything else passes through. Notes say what was read.
 */
export function resolveCpuSpec(
  cpu: string | undefined,
  cpuFrom: string | undefined,
  notes: string[] = [],
  hostRoot = '/',
): string | undefined {
  if (cpu !== undefined && cpuFrom !== undefined && !/^host(,|$)/i.test(cpu)) {
    if (cpu.split(',')[0]!.trim())
      throw new UsageError(
        '--cpu PRESET and --cpu-from are exclusive (extra items: --cpu host,ITEM... --cpu-from SRC)',
      );
  }
  const isHost = cpu !== undefined && /^host(,|$)/i.test(cpu.trim());
  if (!isHost && cpuFrom === undefined) return cpu;
  const source = cpuFrom ?? hostRoot;
  const files = readHostFiles(source);
  let host;
  try {
    host = hostCpuSpec(files);
  } catch (e) {
    throw new UsageError(`${cpuFrom ?? join(hostRoot, 'proc/cpuinfo')}: ${e instanceof Error ? e.message : String(e)}`);
  }
  for (const n of host.notes) notes.push(`--cpu ${cpuFrom ? `from ${cpuFrom}` : 'host'}: ${n}`);
  const extra = isHost ? cpu!.trim().split(',').slice(1).filter(Boolean) : [];
  return [host.spec, ...extra].join(',');
}
