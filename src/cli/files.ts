/** Expanding PATH arguments: files as given, directories searched recursively for ELF files, kernel images (bzImage) and compressed modules. */
import { closeSync, openSync, readSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { UsageError } from './context.js';

const COMPRESSED_MODULE = /\.ko\.(xz|zst|gz)$/;

function looksLikeInput(path: string): boolean {
  if (COMPRESSED_MODULE.test(path)) return true;
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const b = Buffer.alloc(0x206);
    const n = readSync(fd, b, 0, b.length, 0);
    if (n >= 4 && b[0] === 0x7f && b[1] === 0x45 && b[2] === 0x4c && b[3] === 0x46) return true;
    // A bzImage (vmlinuz): the boot header's "HdrS" signature.
    return n === b.length && b[0x202] === 0x48 && b[0x203] === 0x64 && b[0x204] === 0x72 && b[0x205] === 0x53;
  } catch {
    return false;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function walk(dir: string, out: string[]): void {
  const entries = readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else if (e.isFile() && looksLikeInput(p)) out.push(p);
  }
}

/** Files named directly are always analysed (so a bad one is reported); directories contribute only ELF-looking files. */
export function expandPaths(paths: string[]): string[] {
  if (paths.length === 0) throw new UsageError('no input files');
  const out: string[] = [];
  for (const p of paths) {
    let st;
    try {
      st = statSync(p);
    } catch {
      out.push(p); // reported as unreadable by the analysis, with the others still run
      continue;
    }
    if (st.isDirectory()) walk(p, out);
    else out.push(p);
  }
  return out;
}
