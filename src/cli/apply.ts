import { targetWarnings } from '../sites/crosscheck.js';
import {
  accessSync,
  constants,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { Command, Option } from 'commander';
import { profileOption } from './options.js';
import { preemptModeProblem } from '../target/profile.js';
import { ElfError, Image } from '../elf/image.js';
import { SymbolFileError } from '../elf/symbol-file.js';
import { TableError } from '../sites/table.js';
import { ProfileError } from '../target/detect.js';
import {
  applyPatches,
  CpuSpecError,
  parseCpu,
  parseLoadMap,
  parseSymbolMap,
  patchedElf,
  summarize,
} from '../patch/index.js';
import type { ApplyResult, Cpu } from '../patch/index.js';
import { featureTable } from '../target/features/index.js';
import { EXIT_FINDINGS, ExitStatus, fileErrorLine, Io, UsageError } from './context.js';
import { cpuSpecFromFile } from './cpu-from.js';
import { describeError, openImage, resolveTarget } from './jobs.js';
import { COMPRESSED_MODULE, expandInputs } from './files.js';
import { resolveCpuSpec } from './host-cpu.js';

export interface ApplyCliOptions {
  cpu?: string;
  cpuFrom?: string;
  profile?: string;
  load?: string[];
  loadFile?: string;
  symbols?: string;
  kaslrOffset?: string;
  altcallNull?: 'keep' | 'ud';
  ftrace?: 'nop' | 'call';
  preempt?: 'none' | 'voluntary' | 'full' | 'lazy' | 'unknown';
}

/**
 * A file that was read but cannot be used (not ELF, corrupt, an unknown kernel). With one input file this is
 * exit 2 as any usage error; in a run over several files it is a finding: one line naming the file, exit 1,
 * the other files still done.
 */
export class UnusableFile extends UsageError {}

/** Shared by apply and diff: open, detect, parse --cpu, run the patchers. Throws UsageError on bad input. */
export async function openAndApply(
  file: string,
  o: ApplyCliOptions,
): Promise<{ img: Image; cpu: Cpu; result: ApplyResult; cpuNotes: string[]; warnings: string[] }> {
  const cpuNotes: string[] = [];
  let img: Image;
  let target;
  try {
    img = await openImage(file, {}, { symbols: o.symbols, kaslrOffset: o.kaslrOffset }, cpuNotes);
    target = resolveTarget(img, o.profile);
  } catch (e) {
    // A --symbols file that cannot be read or parsed is bad usage for every file, not this file's fault.
    if (e instanceof SymbolFileError) throw new UsageError(`${file}: ${describeError(e)}`);
    throw new UnusableFile(`${file}: ${describeError(e)}`);
  }
  const profile = target.profile!;
  const table = featureTable(profile.features);
  // --cpu-from: for a Xen file its boot log; for Linux another machine's /proc/cpuinfo, vulnerabilities, cmdline.
  const xenFrom = o.cpuFrom !== undefined && table.family === 'xen' ? cpuSpecFromFile(o.cpuFrom, table) : undefined;
  if (xenFrom && o.cpu !== undefined) throw new UsageError('--cpu and --cpu-from exclude each other');
  const spec = xenFrom ? xenFrom.spec : resolveCpuSpec(o.cpu, o.cpuFrom, cpuNotes);
  if (spec === undefined) throw new UsageError('one of --cpu SPEC, --cpu host or --cpu-from DIR|FILE is required');
  if (xenFrom) cpuNotes.push(...xenFrom.notes);
  let cpu: Cpu;
  try {
    cpu = parseCpu(spec, table);
  } catch (e) {
    if (e instanceof CpuSpecError) throw new UsageError(e.message);
    throw e;
  }
  let load: Map<string, bigint> | undefined;
  let symbols: Map<string, bigint> | undefined;
  try {
    if (o.loadFile) {
      // A copy of /sys/module/NAME/sections/ (one file per section holding its address) or a text file of lines.
      if (statSync(o.loadFile).isDirectory()) {
        const lines = readdirSync(o.loadFile).map((n) => `${n}=${readFileSync(join(o.loadFile!, n), 'utf8').trim()}`);
        load = parseLoadMap(lines.join('\n'));
      } else load = parseLoadMap(readFileSync(o.loadFile, 'utf8'));
    }
    if (o.load?.length) {
      load ??= new Map();
      for (const [k, v] of parseLoadMap(o.load.join('\n'))) load.set(k, v);
    }
    if (o.symbols && img.kind === 'rel') symbols = parseSymbolMap(readFileSync(o.symbols, 'utf8'));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const path = (e as NodeJS.ErrnoException).path;
    throw new UsageError(
      code && path
        ? `${path}: ${code === 'ENOENT' ? 'no such file' : `cannot read (${code})`}`
        : e instanceof Error
          ? e.message
          : String(e),
    );
  }
  if (load && img.kind !== 'rel') throw new UsageError(`${file}: --load applies to relocatable objects (.o, .ko) only`);
  const preemptProblem = preemptModeProblem(profile, o.preempt);
  if (preemptProblem) throw new UsageError(`${file}: ${preemptProblem}`);
  let result: ApplyResult;
  try {
    result = applyPatches(img, profile, cpu, {
      load,
      symbols,
      xen: { altcallNull: o.altcallNull },
      xenCpu: xenFrom?.xenCpu,
      ftrace: o.ftrace,
      preempt: o.preempt,
    });
  } catch (e) {
    throw unusable(file, e);
  }
  return {
    img,
    cpu,
    result,
    cpuNotes,
    warnings: targetWarnings(target, result.sites).map((w) => `${file}: warning: ${w}`),
  };
}

/** A file whose damage only shows while patching (a relocation naming no symbol, data cut short): one line naming it, exit 2. */
export function unusable(file: string, e: unknown): unknown {
  return e instanceof ElfError || e instanceof TableError || e instanceof ProfileError || e instanceof RangeError
    ? new UnusableFile(`${file}: ${describeError(e)}`)
    : e;
}

export function findingLines(path: string, img: Image, result: ApplyResult): string[] {
  return result.view.findings.map((f) => {
    const where = Number.isNaN(f.addr) ? '?' : img.where(f.addr);
    return `${path}: warning: textpoke: ${where}: ${f.message} [apply-${f.kind}]`;
  });
}

export function addApplyOptions(c: Command): Command {
  return c
    .option(
      '--cpu <spec>',
      'CPU: PRESET[,+FEATURE,-FEATURE,KEY=VALUE...]; presets intel-server, amd-server, old, all, none; or host[,ITEM...] for this machine (/proc/cpuinfo, /sys/devices/system/cpu/vulnerabilities, /proc/cmdline) (see docs)',
    )
    .option(
      '--cpu-from <dir|file>',
      'CPU as a booted machine reported it: for Linux its saved /proc/cpuinfo, vulnerabilities and cmdline (a directory or one file); for Xen its boot log, optionally with xen-cpuid output appended (see docs)',
    )
    .addOption(profileOption('the file'))
    .option('--load <section=addr>', 'module section load address (repeatable)', (v: string, prev: string[] = []) => [
      ...prev,
      v,
    ])
    .option(
      '--load-file <file>',
      'module section load addresses: a copy of /sys/module/NAME/sections/ (a directory), or SECTION=ADDR lines',
    )
    .option(
      '--symbols <file>',
      'a module (.o, .ko): addresses of the symbols it imports (a System.map or kallsyms dump; otherwise synthetic); a stripped kernel image (vmlinuz): its symbols, from a System.map, a /proc/kallsyms dump (as root) or the debug vmlinux',
    )
    .option(
      '--kaslr-offset <hex>',
      'kernel image: subtracted from the --symbols addresses (default: found from _text in a kallsyms dump)',
    )
    .addOption(
      new Option(
        '--ftrace <mode>',
        'Linux mcount sites: nop (as ftrace leaves them at boot and module load with no tracer) or call (a tracer on every function)',
      )
        .choices(['nop', 'call'])
        .default('nop'),
    )
    .addOption(
      new Option(
        '--preempt <mode>',
        "Linux PREEMPT_DYNAMIC mode the kernel booted with (sets the preempt_schedule/cond_resched static calls of modules): none, voluntary, full, lazy, or unknown (leave those sites alone); default Debian's for the version (voluntary up to 6.x, lazy in 7.x)",
      ).choices(['none', 'voluntary', 'full', 'lazy', 'unknown']),
    )
    .addOption(
      new Option(
        '--altcall-null <mode>',
        'Xen altcall through a pointer that is NULL in the image: keep (leave indirect) or ud (ud2; ud0, as the hypervisor would if it stayed NULL)',
      )
        .choices(['keep', 'ud'])
        .default('keep'),
    );
}

type ApplyCommandOptions = ApplyCliOptions & { output: string; quiet?: boolean };

/** One PATH that is a file (or does not exist: reported as today): apply writes OUT as a file. */
export function singleFile(paths: string[]): boolean {
  if (paths.length !== 1) return false;
  try {
    return !statSync(paths[0]!).isDirectory();
  } catch {
    return true;
  }
}

/**
 * The files --symbols, --load-file and --cpu-from name: checked before a run over several files, so that a
 * missing one is exit 2 with nothing written rather than found while patching the first file.
 */
export function checkOptionFiles(o: ApplyCliOptions): void {
  for (const [flag, path] of [
    ['--symbols', o.symbols],
    ['--load-file', o.loadFile],
    ['--cpu-from', o.cpuFrom],
  ] as const) {
    if (path === undefined) continue;
    try {
      accessSync(path, constants.R_OK);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new UsageError(`${flag} ${path}: ${code === 'ENOENT' ? 'no such file' : `cannot read (${code})`}`);
    }
  }
}

function cpuLabel(o: ApplyCliOptions, cpu: Cpu): string {
  return o.cpuFrom ? `from ${o.cpuFrom}` : /^host/.test(o.cpu ?? '') ? o.cpu! : cpu.spec;
}

function summaryLines(
  file: string,
  shownOut: string,
  o: ApplyCliOptions,
  cpu: Cpu,
  cpuNotes: string[],
  result: ApplyResult,
): string {
  let t = `${file}: ${result.view.patches.length} writes for --cpu ${cpuLabel(o, cpu)} -> ${shownOut}\n`;
  // --cpu host / --cpu-from: the spec they gave, so the run can be repeated with --cpu.
  if (o.cpuFrom || /^host/.test(o.cpu ?? '')) t += `  note: the CPU as --cpu ${cpu.spec}\n`;
  for (const n of [...cpuNotes, ...cpu.notes, ...result.view.notes]) t += `  note: ${n}\n`;
  if (result.relocation)
    t += `  relocations applied: ${result.relocation.applied} (imports: ${result.relocation.resolved} from --symbols, ${result.relocation.synthetic} synthetic)\n`;
  for (const s of summarize(result.view))
    t += `  ${s.patcher.padEnd(18)} ${String(s.sites).padStart(6)} sites  ${String(s.bytesChanged).padStart(7)} bytes changed\n`;
  return t;
}

/** Table entries that cannot be used are findings: named on stderr, the output written without them (exit 1). */
function isFinding(result: ApplyResult): boolean {
  return result.errors.length > 0 || result.view.findings.some((f) => f.kind === 'bug');
}

async function applyOne(file: string, o: ApplyCommandOptions, io: Io, status: ExitStatus): Promise<void> {
  const out = resolve(o.output);
  let inReal = resolve(file);
  try {
    inReal = realpathSync(file);
  } catch {
    /* reported by openImage */
  }
  let outReal = out;
  try {
    outReal = realpathSync(out);
  } catch {
    /* does not exist yet */
  }
  if (outReal === inReal) throw new UsageError(`${file}: refusing to write the output over the input`);
  const { img, cpu, result, cpuNotes, warnings } = await openAndApply(file, o);
  for (const w of warnings) io.err(w + '\n');
  let bytes: Uint8Array;
  try {
    bytes = patchedElf(result.view);
  } catch (e) {
    throw unusable(file, e);
  }
  const tmp = join(dirname(out), `.${basename(out)}.${process.pid}.tmp`);
  try {
    writeFileSync(tmp, bytes, { mode: 0o644 });
    renameSync(tmp, out);
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {
      /* nothing to clean */
    }
    throw new UsageError(`${o.output}: cannot write (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  if (result.errors.length) io.err(fileErrorLine(file, result.errors));
  for (const l of findingLines(file, img, result)) io.err(l + '\n');
  if (!o.quiet) io.out(summaryLines(file, o.output, o, cpu, cpuNotes, result));
  if (isFinding(result)) status.raise(EXIT_FINDINGS);
}

/** The name an input is written under in the output directory: a compressed module loses its suffix. */
export function outputName(rel: string): string {
  return COMPRESSED_MODULE.test(rel) ? rel.replace(/\.(xz|zst|gz)$/, '') : rel;
}

/**
 * Several inputs or a directory: OUT is a directory that does not exist or is empty. Every output is first
 * written to a temporary file beside its place and renamed there only when the whole run has got through
 * without a usage error, so exit 2 leaves nothing behind; a file that cannot be used is named and skipped.
 */
async function applyMany(paths: string[], o: ApplyCommandOptions, io: Io, status: ExitStatus): Promise<void> {
  const inputs = expandInputs(paths);
  checkOptionFiles(o);
  const outDir = resolve(o.output);
  const byName = new Map<string, string>();
  for (const i of inputs) {
    const name = outputName(i.rel);
    const other = byName.get(name);
    if (other !== undefined)
      throw new UsageError(`${join(o.output, name)}: would be written from both ${other} and ${i.path}`);
    byName.set(name, i.path);
  }
  let existed = false;
  try {
    const st = statSync(outDir);
    existed = true;
    if (!st.isDirectory())
      throw new UsageError(`${o.output}: not a directory (several inputs need an output directory)`);
    if (readdirSync(outDir).length)
      throw new UsageError(`${o.output}: not empty (apply writes into a new or empty directory)`);
  } catch (e) {
    if (e instanceof UsageError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') throw new UsageError(`${o.output}: cannot read (${code ?? String(e)})`);
  }
  const pending: { tmp: string; dest: string }[] = [];
  const created: string[] = [];
  let out = '';
  let err = '';
  const cleanUp = (): void => {
    for (const p of pending) rmSync(p.tmp, { force: true });
    for (const d of created.reverse()) rmSync(d, { recursive: true, force: true });
  };
  // Interrupted (Ctrl-C, a job's time limit), the run leaves nothing behind either: clean up, then die of the
  // same signal.
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  let committed = false;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (!committed) cleanUp();
    for (const s of signals) process.off(s, onSignal);
    process.kill(process.pid, sig);
  };
  for (const s of signals) process.on(s, onSignal);
  try {
    if (!existed) {
      const first = mkdirSync(outDir, { recursive: true });
      if (first !== undefined) created.push(first);
    }
    for (const i of inputs) {
      // A turn of the event loop between files, so that a signal is handled (above) while the run goes on.
      await new Promise((r) => setImmediate(r));
      const name = outputName(i.rel);
      const dest = join(outDir, name);
      let done;
      let bytes: Uint8Array;
      try {
        done = await openAndApply(i.path, o);
        bytes = patchedElf(done.result.view);
      } catch (e) {
        const u = done ? unusable(i.path, e) : e;
        if (!(u instanceof UnusableFile)) throw u;
        err += `${u.message}\n`;
        status.raise(EXIT_FINDINGS);
        continue;
      }
      const { img, cpu, result, cpuNotes, warnings } = done;
      for (const w of warnings) err += w + '\n';
      const dir = dirname(dest);
      const first = mkdirSync(dir, { recursive: true });
      if (first !== undefined && existed) created.push(first);
      const tmp = join(dir, `.${basename(dest)}.${process.pid}.tmp`);
      pending.push({ tmp, dest });
      try {
        writeFileSync(tmp, bytes, { mode: 0o644 });
      } catch (e) {
        throw new UsageError(
          `${join(o.output, name)}: cannot write (${(e as NodeJS.ErrnoException).code ?? String(e)})`,
        );
      }
      if (result.errors.length) err += fileErrorLine(i.path, result.errors);
      for (const l of findingLines(i.path, img, result)) err += l + '\n';
      if (!o.quiet) out += summaryLines(i.path, join(o.output, name), o, cpu, cpuNotes, result);
      if (isFinding(result)) status.raise(EXIT_FINDINGS);
    }
    for (const p of pending) renameSync(p.tmp, p.dest);
    committed = true;
    // A signal that came while the last file or the renames ran (synchronous code) is handled here, before
    // its listener goes: the outputs are complete, so it only ends the process.
    await new Promise((r) => setImmediate(r));
  } catch (e) {
    cleanUp();
    if (e instanceof UsageError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    if (code) throw new UsageError(`${o.output}: cannot write (${code})`);
    throw e;
  } finally {
    for (const s of signals) process.off(s, onSignal);
  }
  io.err(err);
  io.out(out);
}

export function register(program: Command, io: Io, status: ExitStatus): void {
  addApplyOptions(
    program
      .command('apply')
      .description(
        'write a copy of each input with the bytes a given CPU runs after the boot-time patchers (same layout: objdump -d OUT shows the patched text)',
      )
      .argument(
        '<paths...>',
        'ELF files (vmlinux, vmlinuz/bzImage, xen-syms, .o, .ko, .ko.xz/.zst/.gz; compressed input and a vmlinuz are written as the uncompressed ELF file) or directories searched for them',
      ),
  )
    .requiredOption(
      '-o, --output <out>',
      'one input file: the output file; several inputs or a directory: a new or empty output directory (never an input)',
    )
    .option('--quiet', 'no summary')
    .action(async (paths: string[], o: ApplyCommandOptions) => {
      if (singleFile(paths)) await applyOne(paths[0]!, o, io, status);
      else await applyMany(paths, o, io, status);
    });
}
