/**
 * An independent oracle for table sizes: readelf's section headers. A table that is a section holds
 * section size / entry size entries; tests compare textpoke's counts with this for whatever build the
 * corpus holds.
 */
import { execFileSync } from 'node:child_process';

/** Entry sizes of the Linux 6.1 tables (12-byte alt_instr). */
export const LINUX61_ENTRY = {
  '.altinstructions': 12,
  '.parainstructions': 16,
  '.static_call_sites': 8,
  __jump_table: 16,
  '.retpoline_sites': 4,
  '.return_sites': 4,
  '.smp_locks': 4,
  __mcount_loc: 8,
} as const satisfies Record<string, number>;

/** Entries per table section of an ELF file, from `readelf -SW`: size / entry size for each named section. */
export function readelfTableCounts(path: string, entry: Readonly<Record<string, number>>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of execFileSync('readelf', ['-SW', path], { encoding: 'utf8' }).split('\n')) {
    const m = /\]\s+(\S+)\s+\S+\s+[0-9a-f]+\s+[0-9a-f]+\s+([0-9a-f]+)/.exec(line);
    const size = m ? entry[m[1]!] : undefined;
    if (m && size) out[m[1]!] = parseInt(m[2]!, 16) / size;
  }
  return out;
}

/** Entries of Xen's alternatives table (14-byte alt_instr between __alt_instructions and _end), from `nm`. */
export function nmXenAltCount(path: string): number {
  const at: Record<string, bigint> = {};
  for (const line of execFileSync('nm', [path], { encoding: 'utf8', maxBuffer: 1 << 28 }).split('\n')) {
    const m = /^([0-9a-f]+) \S (__alt_instructions(?:_end)?)$/.exec(line);
    if (m) at[m[2]!] = BigInt('0x' + m[1]!);
  }
  const start = at.__alt_instructions;
  const end = at.__alt_instructions_end;
  if (start === undefined || end === undefined) throw new Error(`${path}: no __alt_instructions symbols`);
  return Number(end - start) / 14;
}

/** Size of one section of an ELF file, from `readelf -SW` (throws when the file has no such section). */
export function sectionSize(path: string, name: string): number {
  for (const line of execFileSync('readelf', ['-SW', path], { encoding: 'utf8' }).split('\n')) {
    const m = /\]\s+(\S+)\s+\S+\s+[0-9a-f]+\s+[0-9a-f]+\s+([0-9a-f]+)/.exec(line);
    if (m && m[1] === name) return parseInt(m[2]!, 16);
  }
  throw new Error(`${path}: no section ${name}`);
}
