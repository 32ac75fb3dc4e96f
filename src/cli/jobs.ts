/**
 * Per-file jobs, run in the main thread or in worker threads. Each returns strings ready to print so
 * little crosses between threads; every failure becomes one line naming the file and the problem.
 */
import { readFileSync } from 'node:fs';
import { ElfError, Image, ParseOptions } from '../elf/image.js';
import { loadImage } from '../elf/load.js';
import { SymbolFileError } from '../elf/symbol-file.js';
import { detectTarget, ProfileError, Target } from '../target/detect.js';
import type { TableId } from '../target/profile.js';
import { readSites } from '../sites/read.js';
import { fileJson, renderText } from '../sites/listing.js';
import { TableError } from '../sites/table.js';

export interface SitesTask extends SymbolOptions {
  kind: 'sites';
  path: string;
  profile?: string;
  tables?: TableId[];
  summary?: boolean;
  json?: boolean;
}

export interface JobResult {
  /** Output for stdout (text or a JSON fragment). */
  out: string;
  /** One-line errors for stderr. */
  errors: string[];
  /** One-line warnings for stderr (detection disagreements, unnamed features): printed, not failures. */
  warnings?: string[];
  /** One-line notes on how the file was read (printed on stderr with the text output). */
  notes?: string[];
  counts?: Partial<Record<TableId, number>>;
  /** Sites with problems (not on a boundary, ...). */
  problems?: number;
  /** Command-specific structured data for totals across files. */
  data?: unknown;
  /** The failure was bad usage (a --symbols file that is no symbol file or does not fit the image): exit 2. */
  usage?: boolean;
}

/** Symbols for a stripped kernel image (a vmlinuz): `--symbols FILE` and `--kaslr-offset HEX`. */
export interface SymbolOptions {
  symbols?: string;
  kaslrOffset?: string;
}

function readOrFail(path: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ElfError(
      code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : `cannot read (${code ?? String(e)})`,
    );
  }
}

/** `--kaslr-offset`: hexadecimal (0x optional) or decimal; negative allowed. */
export function parseKaslrOffset(v: string | undefined): bigint | undefined {
  if (v === undefined) return undefined;
  const m = /^(-)?(0x[0-9a-f]+|[0-9]+)$/i.exec(v.trim());
  if (!m) throw new ElfError(`--kaslr-offset ${v}: expected a number such as 0x1e000000`);
  const n = BigInt(m[2]!);
  return m[1] ? -n : n;
}

/**
 * Reads, decompresses and parses one file (a vmlinuz is unpacked to its vmlinux); throws a one-line message
 * on failure. `sym` attaches a symbol file to a linked image (relocatable objects ignore it here).
 */
export async function openImage(
  path: string,
  options: ParseOptions = {},
  sym: SymbolOptions = {},
  notes?: string[],
): Promise<Image> {
  const bytes = readOrFail(path);
  let symbolFile: { bytes: Uint8Array; path: string } | undefined;
  if (sym.symbols) {
    try {
      symbolFile = { bytes: readOrFail(sym.symbols), path: sym.symbols };
    } catch (e) {
      throw new SymbolFileError(`--symbols ${sym.symbols}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  const r = await loadImage(bytes, path, { ...options, symbolFile, kaslrOffset: parseKaslrOffset(sym.kaslrOffset) });
  notes?.push(...r.notes);
  return r.image;
}

export function describeError(e: unknown): string {
  if (e instanceof ElfError || e instanceof TableError || e instanceof ProfileError) return e.message;
  if (e instanceof RangeError) return 'truncated or corrupt data';
  return `internal error: ${e instanceof Error ? e.message : String(e)}`;
}

export function resolveTarget(img: Image, profile?: string): Target {
  const t = detectTarget(img, profile);
  if (!t.profile) throw new ProfileError(`${t.note ?? 'cannot tell which kernel this is'}`);
  return t;
}

export async function runSites(task: SitesTask): Promise<JobResult> {
  try {
    const img = await openImage(task.path, {}, task);
    const target = resolveTarget(img, task.profile);
    const set = readSites(img, target.profile!, { tables: task.tables ? new Set(task.tables) : undefined });
    const f = fileJson(img, target, set, { summary: task.summary });
    const problems = set.sites.filter((s) => s.problems).length;
    return {
      out: task.json ? JSON.stringify(f) : renderText(f),
      errors: set.errors.map((m) => `${task.path}: ${m}`),
      warnings: (f.target.warnings ?? []).map((m) => `${task.path}: warning: ${m}`),
      counts: set.counts,
      problems,
    };
  } catch (e) {
    const msg = `${task.path}: ${describeError(e)}`;
    return {
      out: task.json
        ? JSON.stringify({
            path: task.path,
            target: { os: 'unknown', version: null, profile: null },
            counts: {},
            errors: [describeError(e)],
          })
        : '',
      errors: [msg],
      usage: e instanceof SymbolFileError,
    };
  }
}
