/**
 * Expanding PATH arguments, the same for every command that reads binaries: files as given (plain or
 * compressed), directories searched recursively for ELF files, kernel images (bzImage) and compressed modules.
 *
 * The command-line contract: a path that does not exist or cannot be read, or a directory with nothing
 * to read, is a usage error (exit 2, checked here before anything is written); a file that is read but
 * cannot be used (not ELF, corrupt, an unknown kernel) is a finding of the run (exit 1, named on stderr,
 * the other files still reported and the output still written).
 */
import { accessSync, closeSync, constants, openSync, readSync, readdirSync, statSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import { UsageError } from './context.js';

export const COMPRESSED_MODULE = /\.ko\.(xz|zst|gz)$/;

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
  const entries = readdirSync(dir, { withFileTypes: true }).sort((a, b) =>
    a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
  );
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else if (e.isFile() && looksLikeInput(p)) out.push(p);
  }
}

/** Files named directly are always analysed (so a bad one is reported); directories contribute only ELF-looking files. */
export function expandPaths(paths: string[]): string[] {
  return expandInputs(paths).map((i) => i.path);
}

/** An input file and its name below the directory it was found under (its basename when named directly). */
export interface Input {
  path: string;
  rel: string;
}

/** expandPaths, keeping for each file where it sits below the PATH argument that named it (apply writes there). */
export function expandInputs(paths: string[]): Input[] {
  if (paths.length === 0) throw new UsageError('no input files');
  const inputs: Input[] = [];
  for (const p of paths) {
    let st;
    try {
      st = statSync(p);
      accessSync(p, constants.R_OK);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new UsageError(
        `${p}: ${code === 'ENOENT' || code === 'ENOTDIR' ? 'no such file' : `cannot read (${code ?? String(e)})`}`,
      );
    }
    if (st.isDirectory()) {
      const found: string[] = [];
      try {
        walk(p, found);
      } catch (e) {
        throw new UsageError(`${p}: cannot read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
      }
      if (found.length === 0) throw new UsageError(`${p}: no ELF files or compressed modules in this directory`);
      for (const f of found) inputs.push({ path: f, rel: relative(p, f) });
    } else inputs.push({ path: p, rel: basename(p) });
  }
  return inputs;
}
