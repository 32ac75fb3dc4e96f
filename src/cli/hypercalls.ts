import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { EXIT_FINDINGS, EXIT_USAGE, UsageError, type ExitStatus, type Io } from './context.js';
import { writeAtomic } from './patchlets.js';
import { preprocess, CppError } from '../hypercall/cpp.js';
import { defineMap, parseDefs, DefsError, X86_DEFINES, type Defs } from '../hypercall/defs.js';
import { generate, STYLES, type Style } from '../hypercall/gen.js';
import { parseNumbers, XEN_417_NUMBERS } from '../hypercall/numbers.js';
import { abiDiff } from '../hypercall/abi.js';

function readInput(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UsageError(`${path}: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : `cannot read (${code ?? String(e)})`}`);
  }
}

export interface DefsOptions {
  define?: string[];
  cpp?: boolean;
  numbers?: string;
}

/** -D NAME, repeatable; none given means Xen 4.17's default x86_64 configuration. */
export function definesOf(o: DefsOptions): string[] {
  return o.define && o.define.length ? o.define : [...X86_DEFINES];
}

/** Reads and preprocesses a hypercall-defs.c (internal preprocessor, or the system cpp with --cpp). */
export function loadDefs(path: string, o: DefsOptions): Defs {
  const text = readInput(path);
  const ds = definesOf(o);
  let pre: string;
  try {
    if (o.cpp) {
      pre = execFileSync('cpp', ['-P', '-undef', '-nostdinc', ...ds.map((d) => `-D${d}`), '-x', 'c', '-'], { input: text, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
    } else pre = preprocess(text, defineMap(ds));
    return parseDefs(pre);
  } catch (e) {
    if (e instanceof CppError || e instanceof DefsError) throw new UsageError(`${path}: ${e.message}`);
    const err = e as { stderr?: string; code?: string };
    if (o.cpp && (err.stderr !== undefined || err.code)) throw new UsageError(`${path}: cpp failed: ${(err.stderr ?? err.code ?? '').toString().trim().split('\n')[0]}`);
    throw e;
  }
}

export function loadNumbers(path?: string): Record<string, number> {
  if (!path) return { ...XEN_417_NUMBERS };
  try {
    return parseNumbers(readInput(path));
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError(`${path}: ${(e as Error).message}`);
  }
}

const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

function defsOptions(c: Command): Command {
  return c
    .option('-D, --define <name[=value]>', 'a preprocessor macro, repeatable (default: Xen 4.17 x86_64 defaults: ' + X86_DEFINES.join(' ') + ')', collect)
    .option('--cpp', 'preprocess with the system cpp instead of the built-in one')
    .option('--numbers <tsv>', 'hypercall numbers (name<TAB>number); default: Xen 4.17');
}

export function register(program: Command, io: Io, status: ExitStatus): void {
  const cmd = program.command('hypercalls').description('generate and analyse Xen hypercall dispatch (hypercall-defs.c)');

  defsOptions(
    cmd
      .command('gen')
      .description("emit the prototypes and per-caller dispatch macros Xen's gen_hypercall.awk emits, without UB for any number and without the 64-hypercall limit")
      .argument('<defs>', 'hypercall-defs.c')
      .addOption(new Option('--style <style>', 'dispatch style').choices([...STYLES]).default('chain'))
      .option('-o, --output <file>', 'write the header here (atomically) instead of stdout'),
  ).action((path: string, o: DefsOptions & { style: Style; output?: string }) => {
    const defs = loadDefs(path, o);
    const text = generate(defs, { style: o.style, numbers: loadNumbers(o.numbers) });
    if (o.output) writeAtomic(o.output, text);
    else io.out(text);
  });

  defsOptions(
    cmd
      .command('abi-diff')
      .description('prototype and table changes that alter what a guest sees: argument count, width or signedness under the 64-bit or 32-bit compat ABI, return type, handler per caller (row order and priorities are not ABI)')
      .argument('<old>', 'old hypercall-defs.c')
      .argument('<new>', 'new hypercall-defs.c')
      .option('--json', 'JSON output'),
  ).action((oldPath: string, newPath: string, o: DefsOptions & { json?: boolean }) => {
    const a = loadDefs(oldPath, o);
    const b = loadDefs(newPath, o);
    const changes = abiDiff(a, b);
    if (o.json) io.out(JSON.stringify({ old: oldPath, new: newPath, changes }, null, 1) + '\n');
    else {
      for (const c of changes) io.out(`${newPath}: ${c.prefix}_${c.hypercall} [${c.callers.join(',') || 'no caller'}]${c.abi ? ` ${c.abi}` : ''}: ${c.what}\n`);
      io.out(`${changes.length} ABI change${changes.length === 1 ? '' : 's'}\n`);
    }
    if (changes.length) status.raise(EXIT_FINDINGS);
  });

  void EXIT_USAGE;
}
