import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { EXIT_FINDINGS, UsageError, type ExitStatus, type Io } from './context.js';
import { writeAtomic } from './patchlets.js';
import { preprocess, CppError } from '../hypercall/cpp.js';
import { defineMap, parseDefs, DefsError, X86_DEFINES, type Defs } from '../hypercall/defs.js';
import { generate, STYLES, type Style } from '../hypercall/gen.js';
import { parseNumbers, XEN_417_NUMBERS } from '../hypercall/numbers.js';
import { abiDiff } from '../hypercall/abi.js';
import { modelCosts, parseFreq, weighted, type Cost, type CostRow } from '../hypercall/cost.js';
import { recoverDispatch, type PathResult } from '../hypercall/binary.js';
import { XEN_417_BINARY_CALLERS } from '../hypercall/xen417.js';
import { benchBuilds, benchFiles, compareText, parseCsv, summarise } from '../hypercall/bench.js';
import { describeError, openImage } from './jobs.js';

function readInput(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UsageError(
      `${path}: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : `cannot read (${code ?? String(e)})`}`,
    );
  }
}

export interface DefsOptions {
  define?: string[];
  cpp?: boolean;
  numbers?: string;
}

/** -D NAME, repeatable; none given means Xen 4.17's default x86_64 configuration. */
export function definesOf(o: DefsOptions): string[] {
  return o.define?.length ? o.define : [...X86_DEFINES];
}

/** Reads and preprocesses a hypercall-defs.c (internal preprocessor, or the system cpp with --cpp). */
export function loadDefs(path: string, o: DefsOptions): Defs {
  const text = readInput(path);
  const ds = definesOf(o);
  let pre: string;
  try {
    if (o.cpp) {
      pre = execFileSync('cpp', ['-P', '-undef', '-nostdinc', ...ds.map((d) => `-D${d}`), '-x', 'c', '-'], {
        input: text,
        encoding: 'utf8',
        stdio: ['pipe', 'pipe', 'pipe'],
      });
    } else pre = preprocess(text, defineMap(ds));
    return parseDefs(pre);
  } catch (e) {
    if (e instanceof CppError || e instanceof DefsError) throw new UsageError(`${path}: ${e.message}`);
    const err = e as { stderr?: string; code?: string };
    if (o.cpp && (err.stderr !== undefined || err.code))
      throw new UsageError(`${path}: cpp failed: ${(err.stderr ?? err.code ?? '').toString().trim().split('\n')[0]}`);
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
    .option(
      '-D, --define <name[=value]>',
      'a preprocessor macro, repeatable (default: Xen 4.17 x86_64 defaults: ' + X86_DEFINES.join(' ') + ')',
      collect,
    )
    .option('--cpp', 'preprocess with the system cpp instead of the built-in one')
    .option('--numbers <tsv>', 'hypercall numbers (name<TAB>number); default: Xen 4.17');
}

export function register(program: Command, io: Io, status: ExitStatus): void {
  const cmd = program
    .command('hypercalls')
    .description('generate and analyse Xen hypercall dispatch (hypercall-defs.c)');

  defsOptions(
    cmd
      .command('gen')
      .description(
        "emit the prototypes and per-caller dispatch macros Xen's gen_hypercall.awk emits, without UB for any number and without the 64-hypercall limit",
      )
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
      .description(
        'prototype and table changes that alter what a guest sees: argument count, width or signedness under the 64-bit or 32-bit compat ABI, return type, handler per caller (row order and priorities are not ABI)',
      )
      .argument('<old>', 'old hypercall-defs.c')
      .argument('<new>', 'new hypercall-defs.c')
      .option('--json', 'JSON output'),
  ).action((oldPath: string, newPath: string, o: DefsOptions & { json?: boolean }) => {
    const a = loadDefs(oldPath, o);
    const b = loadDefs(newPath, o);
    const changes = abiDiff(a, b);
    if (o.json) io.out(JSON.stringify({ old: oldPath, new: newPath, changes }, null, 1) + '\n');
    else {
      for (const c of changes)
        io.out(
          `${newPath}: ${c.prefix}_${c.hypercall} [${c.callers.join(',') || 'no caller'}]${c.abi ? ` ${c.abi}` : ''}: ${c.what}\n`,
        );
      io.out(`${changes.length} ABI change${changes.length === 1 ? '' : 's'}\n`);
    }
    if (changes.length) status.raise(EXIT_FINDINGS);
  });

  defsOptions(
    cmd
      .command('cost')
      .description(
        'compares and conditional branches on the hypercall number before each handler is called, per caller and style; with --binary, also as compiled in xen-syms, side by side',
      )
      .argument('<defs>', 'hypercall-defs.c')
      .option('--freq <file>', "call frequencies ('[caller] name count' per line): adds weighted means")
      .option('--binary <xen-syms>', 'recover the same figure from the compiled pv_hypercall/hvm_hypercall')
      .option('--jump-tables', 'model switches as jump tables (GCC default; Xen builds with -fno-jump-tables)')
      .option('--json', 'JSON output'),
  ).action(
    async (path: string, o: DefsOptions & { freq?: string; binary?: string; jumpTables?: boolean; json?: boolean }) => {
      const defs = loadDefs(path, o);
      const numbers = loadNumbers(o.numbers);
      const rows = modelCosts(defs, numbers, { jumpTables: o.jumpTables });
      const freq = loadFreq(o.freq);
      const bin = new Map<string, Map<number, PathResult>>();
      const binNotes: string[] = [];
      if (o.binary) {
        let img;
        try {
          img = await openImage(o.binary);
        } catch (e) {
          throw new UsageError(`${o.binary}: ${describeError(e)}`);
        }
        const handlers = new Set(defs.protos.map((p) => `${p.prefix}_${p.name}`));
        for (const caller of defs.callers) {
          const how = XEN_417_BINARY_CALLERS[caller];
          if (!how) {
            binNotes.push(`${caller}: no known dispatch function`);
            continue;
          }
          if (!img.symbol(how.fn)) {
            binNotes.push(`${caller}: ${how.fn} not in ${o.binary}`);
            continue;
          }
          const nums = [
            ...new Set([-1, ...rows.filter((r) => r.caller === caller).map((r) => r.number), 11, 43, 63, 64, 127]),
          ];
          const res = recoverDispatch(
            img,
            { fn: how.fn, handlers, returns: how.returns, numberOffset: how.numberOffset },
            nums,
          );
          bin.set(caller, new Map(res.map((r) => [r.number, r])));
        }
      }
      const cs = (c?: Cost): string => (c ? `${c.compares}/${c.branches}${c.indirect ? `+${c.indirect}i` : ''}` : '-');
      if (o.json) {
        io.out(
          JSON.stringify(
            {
              defs: path,
              binary: o.binary,
              jumpTables: !!o.jumpTables,
              notes: binNotes,
              rows: rows.map((r) => ({ ...r, binary: bin.get(r.caller)?.get(r.number) })),
              enosys: [...bin.entries()].flatMap(([caller, m]) =>
                [...m.values()]
                  .filter((p) => !rows.some((r) => r.caller === caller && r.number === p.number))
                  .map((p) => ({ caller, ...p })),
              ),
            },
            (_k, v) => (typeof v === 'bigint' ? v.toString() : v),
            1,
          ) + '\n',
        );
        return;
      }
      let mismatched = 0;
      for (const caller of defs.callers) {
        const mine = rows
          .filter((r) => r.caller === caller)
          .sort((a, b) => a.cost.chain.compares - b.cost.chain.compares || a.number - b.number);
        const b = bin.get(caller);
        io.out(`\n${caller}: compares/branches on the number before the handler call (+Ni = indirect jumps/calls)\n`);
        io.out(
          `  ${'hypercall'.padEnd(31)} ${'nr'.padStart(3)} prio  ${'chain'.padStart(6)} ${'switch'.padStart(7)} ${'table'.padStart(7)}${b ? `   ${'binary'.padStart(6)}  handler in binary` : ''}\n`,
        );
        for (const r of mine) {
          let tail = '';
          if (b) {
            const p = b.get(r.number);
            const same = p?.handler === r.handler;
            if (!same) mismatched++;
            const bc = p?.handler ? `${p.compares}/${p.branches}` : '-';
            const d = p?.handler ? p.compares - r.cost.chain.compares : 0;
            tail = `   ${bc.padStart(6)}  ${same ? '' : `${p?.handler ?? 'none'} (table says ${r.handler}) `}${d ? `[${d > 0 ? '+' : ''}${d}]` : ''}${p?.shortcuts.length ? ` shortcut ${p.shortcuts.map((x) => `${x.compares}/${x.branches}`).join(',')}` : ''}${p?.alsoReaches.length ? ` also reaches ${p.alsoReaches.join(',')}` : ''}`;
          }
          io.out(
            `  ${r.name.padEnd(31)} ${String(r.number).padStart(3)} ${String(r.prio === 100 ? '-' : r.prio).padStart(4)}  ${cs(r.cost.chain).padStart(6)} ${cs(r.cost.switch).padStart(7)} ${cs(r.cost.table).padStart(7)}${tail}\n`,
          );
        }
        if (b) {
          const stray = [...b.values()].filter((p) => p.handler && !mine.some((r) => r.number === p.number));
          for (const p of stray) {
            mismatched++;
            io.out(`  number ${p.number} has no handler in the table but the binary calls ${p.handler}\n`);
          }
        }
        const mean = (f: (r: CostRow) => Cost | undefined): string => {
          const xs = mine.map(f).filter((c): c is Cost => !!c);
          return xs.length
            ? `${(xs.reduce((s2, c) => s2 + c.compares, 0) / xs.length).toFixed(2)}/${(xs.reduce((s2, c) => s2 + c.branches, 0) / xs.length).toFixed(2)}`
            : '-';
        };
        const binCost = (r: CostRow): Cost | undefined => {
          const p = b?.get(r.number);
          return p?.handler ? { compares: p.compares, branches: p.branches, indirect: p.indirect } : undefined;
        };
        io.out(
          `  ${'mean (unweighted)'.padEnd(41)} ${mean((r) => r.cost.chain).padStart(10)} ${mean((r) => r.cost.switch).padStart(10)} ${mean((r) => r.cost.table).padStart(10)}${b ? ` ${mean(binCost).padStart(10)} (binary)` : ''}\n`,
        );
        if (freq) {
          const fmt = (m: Map<string, { compares: number; branches: number; total: number }>): string => {
            const v = m.get(caller);
            return v ? `${v.compares.toFixed(2)}/${v.branches.toFixed(2)}` : '-';
          };
          io.out(
            `  ${'mean (weighted by --freq)'.padEnd(41)} ${fmt(weighted(mine, freq, (r) => r.cost.chain)).padStart(10)} ${fmt(weighted(mine, freq, (r) => r.cost.switch)).padStart(10)} ${fmt(weighted(mine, freq, (r) => r.cost.table)).padStart(10)}${b ? ` ${fmt(weighted(mine, freq, binCost)).padStart(10)} (binary)` : ''}\n`,
          );
        }
      }
      for (const n of binNotes) io.err(`textpoke: ${n}\n`);
      if (o.binary && mismatched)
        io.err(
          `textpoke: ${mismatched} hypercall${mismatched === 1 ? '' : 's'} dispatched differently in the binary than in the table\n`,
        );
    },
  );

  defsOptions(
    cmd
      .command('bench')
      .description(
        'write a self-contained C benchmark of the chain, switch and table styles, with and without retpoline/return-thunk code generation; --run builds and runs it here; --compare summarises CSV results',
      )
      .argument('[defs]', 'hypercall-defs.c (not needed with --compare)')
      .option('-o, --output <dir>', 'directory for the benchmark sources')
      .option('--freq <file>', "call frequencies for the mix ('[caller] name count' per line); default: uniform")
      .option('--run', 'build with the system gcc and run; CSV on stdout and in DIR/results.csv')
      .option('--iterations <n>', 'calls per timed run', (v) => Number(v))
      .option('--compare <csv...>', 'summarise result files: a table and a chart'),
  ).action(
    (
      path: string | undefined,
      o: DefsOptions & { output?: string; freq?: string; run?: boolean; iterations?: number; compare?: string[] },
    ) => {
      if (o.compare) {
        const sums = o.compare.flatMap((f) => {
          try {
            return summarise(f, parseCsv(readInput(f)));
          } catch (e) {
            if (e instanceof UsageError) throw e;
            throw new UsageError(`${f}: ${(e as Error).message}`);
          }
        });
        io.out(compareText(sums));
        return;
      }
      if (!path) throw new UsageError('bench needs a hypercall-defs.c (or --compare CSV...)');
      if (!o.output) throw new UsageError('bench needs -o DIR');
      const defs = loadDefs(path, o);
      const freq = loadFreq(o.freq);
      const files = benchFiles(defs, { numbers: loadNumbers(o.numbers), freq, iterations: o.iterations });
      mkdirSync(o.output, { recursive: true });
      for (const [name, text] of files) writeAtomic(join(o.output, name), text);
      if (!o.run) {
        io.err(
          `textpoke: wrote ${files.size} files to ${o.output} (sh ${join(o.output, 'build.sh')} builds and runs them)\n`,
        );
        return;
      }
      let csv = 'style,codegen,caller,number,name,cycles\n';
      for (const b of benchBuilds()) {
        try {
          execFileSync('gcc', b.args, { cwd: o.output, stdio: ['ignore', 'ignore', 'pipe'] });
        } catch (e) {
          const err = (e as { stderr?: Buffer }).stderr?.toString().trim().split('\n')[0] ?? String(e);
          throw new UsageError(`building ${b.exe} failed: ${err}`);
        }
        csv += execFileSync(join(o.output, b.exe), { encoding: 'utf8' });
      }
      writeAtomic(join(o.output, 'results.csv'), csv);
      io.out(csv);
    },
  );
}

/** The --freq table, if given; a bad one is a usage error naming the file. */
function loadFreq(path: string | undefined): ReturnType<typeof parseFreq> | undefined {
  if (!path) return undefined;
  try {
    return parseFreq(readInput(path));
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError(`${path}: ${(e as Error).message}`);
  }
}
