/**
 * Worker for the robustness test (test/robustness/mutants.test.ts): mutates real binaries with a fixed
 * seed and runs every command that reads a binary on each mutant, in-process through the command line's
 * own entry point (main() of src/cli/main.ts, with captured output), so every command's whole path runs:
 * sites, apply (and the file it writes), diff, check with every check on the patched and the as-built view,
 * surface, symbols --ambiguous and, for a share of the mutants, report.
 *
 * Per run it checks the contract: exit 0, 1 or 2 only; no internal error and no stack trace; at most one
 * error line on stderr, naming the file; no address printed as negative hex; a time bound; apply and report leave their output only when they
 * succeed (exit 0 or 1), never a partial or temporary file, and apply's output parses again. Anything else
 * is a violation, reported back with the mutant's seed position so it can be reproduced.
 *
 * Progress messages ({ at, cmd }) go to the parent before each run so a hang names its mutant.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { getHeapStatistics } from 'node:v8';
import { Image } from '../../src/elf/image.js';
import { decompress } from '../../src/elf/load.js';
import { CHECKS } from '../../src/checks/index.js';
import { main } from '../../src/cli/main.js';

export interface MutantInput {
  /** Plain ELF files (modules, xen-syms): mutated at the ELF level. */
  plain: string[];
  /** Compressed modules (.ko.xz): corrupt streams, truncations, and ELF mutants compressed again. */
  compressed: string[];
  /** Files mutated a few times only (xen-syms: a second per command). */
  large: string[];
  mutants: number;
  largeMutants: number;
  seed: number;
  /** Every reportEvery-th mutant also runs `report` (the slowest command). */
  reportEvery: number;
  /** Per-run wall-clock bound (ms) for small and large files. */
  boundMs: number;
  largeBoundMs: number;
  /** Directory where a sample of mutants is kept for the multi-file runs of the real CLI. */
  keepDir: string;
  keep: number;
  /** Scratch directory for the mutants and outputs (removed by the worker, and by the test if the worker is stopped). */
  workDir: string;
}

export interface CommandFigures {
  runs: number;
  exits: [number, number, number];
  worstMs: number;
  worstFile: string;
}
export interface MutantResult {
  mutants: number;
  byKind: Record<string, number>;
  commands: Record<string, CommandFigures>;
  /** Runs whose file could not be used (exit 1 with an error line, or exit 2), and those that went through. */
  rejected: number;
  accepted: number;
  violations: string[];
  violationCount: number;
  peakHeapMb: number;
  kept: string[];
  seconds: number;
}

const input = workerData as MutantInput;

function mulberry32(a: number): () => number {
  return () => {
    a |= 0;
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rnd = mulberry32(input.seed);
const int = (n: number) => Math.floor(rnd() * n);

const TABLES =
  /^(\.rela)?(\.altinstructions|__jump_table|\.static_call_sites|\.parainstructions|\.smp_locks|__mcount_loc|\.return_sites|\.retpoline_sites|\.call_sites|\.ibt_endbr_seal|\.altcall_sites|__bug_table|\.ex_table)$/;

/** One ELF-level mutation of `src`; returns the mutant and the kind of damage done. */
function mutateElf(src: Uint8Array, img: Image): [Uint8Array, string] {
  const b = Uint8Array.from(src);
  const dv = new DataView(b.buffer);
  const shoff = Number(dv.getBigUint64(40, true));
  const pickSection = () => img.sections[1 + int(img.sections.length - 1)]!;
  switch (int(10)) {
    case 0: // random bytes anywhere
      for (let k = 1 + int(8); k > 0; k--) b[int(b.length)] = int(256);
      return [b, 'random bytes'];
    case 1: // an ELF header field
      b[16 + int(48)] = int(256);
      return [b, 'ELF header'];
    case 2: {
      // a section header field: offset, size, link, info, entsize, name, type, address
      const s = pickSection();
      const field = [4, 24, 32, 40, 44, 56, 0, 16][int(8)]!;
      const o = shoff + s.index * 64 + field;
      if (field === 24 || field === 32 || field === 56 || field === 16)
        dv.setBigUint64(o, int(4) === 0 ? 0xffffffffffffn : BigInt(int(b.length * 2)), true);
      else dv.setUint32(o, int(4) === 0 ? 0xffffffff : int(img.sections.length + 3), true);
      return [b, 'section header'];
    }
    case 3: {
      // entries of a patch-site table or its relocations
      const tables = img.sections.filter((x) => TABLES.test(x.name) && x.size > 0 && x.type !== 8);
      const s = tables.length ? tables[int(tables.length)]! : pickSection();
      if (s.size === 0 || s.type === 8) return [b, 'table entries'];
      for (let k = 1 + int(6); k > 0; k--) b[s.offset + int(s.size)] = int(256);
      return [b, 'table entries'];
    }
    case 4: // truncation
      return [b.subarray(0, int(b.length)), 'truncation'];
    case 5: {
      // a symbol's section index, value or size
      const st = img.sections.find((x) => x.type === 2);
      if (!st) return [b, 'symbols'];
      const i = int(Math.floor(st.size / 24));
      const k = int(3);
      if (k === 0) dv.setUint16(st.offset + i * 24 + 6, [0xffff, 0xfff1, int(img.sections.length + 5)][int(3)]!, true);
      else if (k === 1) dv.setBigUint64(st.offset + i * 24 + 8, BigInt(int(0x7fffffff)) * 0x100000000n, true);
      else dv.setBigUint64(st.offset + i * 24 + 16, int(2) ? 0xffffffffffffffffn : BigInt(int(1 << 30)), true);
      return [b, 'symbols'];
    }
    case 6: {
      // a relocation's type, symbol index or addend
      const rs = img.sections.filter((x) => x.type === 4);
      if (!rs.length) return [b, 'relocations'];
      const s = rs[int(rs.length)]!;
      const i = int(Math.max(1, Math.floor(s.size / 24)));
      const k = int(3);
      if (k === 0) dv.setUint32(s.offset + i * 24 + 12, int(4) ? int(1 << 20) : 0xffffffff, true);
      else if (k === 1) dv.setUint32(s.offset + i * 24 + 8, int(64), true);
      else dv.setBigInt64(s.offset + i * 24 + 16, BigInt(int(0x7fffffff)) - 0x40000000n, true);
      return [b, 'relocations'];
    }
    case 7: {
      // a string table: names lose their terminators, or are overwritten
      const ss = img.sections.filter((x) => x.type === 3 && x.size > 0);
      if (!ss.length) return [b, 'string tables'];
      const s = ss[int(ss.length)]!;
      if (int(2))
        for (let k = s.offset; k < s.offset + s.size; k++) {
          if (b[k] === 0 && int(2)) b[k] = 0x41;
        }
      else for (let k = 1 + int(16); k > 0; k--) b[s.offset + int(s.size)] = int(256);
      return [b, 'string tables'];
    }
    case 8: {
      // a section's name index points elsewhere (a table no longer found, or found twice)
      const s = pickSection();
      dv.setUint32(
        shoff + s.index * 64,
        int(4) === 0 ? 0xfffffff0 : int(img.sections.find((x) => x.name === '.shstrtab')?.size ?? 64),
        true,
      );
      return [b, 'section header'];
    }
    default: // section header count / string index
      dv.setUint16(60 + 2 * int(2), int(3) === 0 ? 0xffff : int(img.sections.length + 4), true);
      return [b, 'section header'];
  }
}

function xz(bytes: Uint8Array): Uint8Array {
  const r = spawnSync('xz', ['-c', '-0', '--check=crc32'], { input: bytes, maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`xz failed: ${r.stderr}`);
  return r.stdout;
}

/** One mutation of a compressed module: its stream corrupted or cut, or an ELF mutant compressed again. */
function mutateCompressed(packed: Uint8Array, elf: Uint8Array, img: Image): [Uint8Array, string] {
  switch (int(4)) {
    case 0: {
      const b = Uint8Array.from(packed);
      for (let k = 1 + int(6); k > 0; k--) b[int(b.length)] = int(256);
      return [b, 'corrupt compressed stream'];
    }
    case 1:
      return [packed.subarray(0, int(packed.length)), 'truncated compressed stream'];
    default: {
      const [m, kind] = mutateElf(elf, img);
      return [xz(m), `${kind} (compressed)`];
    }
  }
}

interface Io {
  o: string;
  e: string;
  isTTY: boolean;
  out(t: string): void;
  err(t: string): void;
}
const io: Io = {
  o: '',
  e: '',
  isTTY: false,
  out(t) {
    io.o += t;
  },
  err(t) {
    io.e += t;
  },
};

const ALL_CHECKS = CHECKS.map((c) => c.id).join(',');
const work = input.workDir;
rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });
mkdirSync(input.keepDir, { recursive: true });

const commands: Record<string, CommandFigures> = {};
const violations: string[] = [];
let violationCount = 0;
let rejected = 0;
let accepted = 0;
let peak = 0;
const byKind: Record<string, number> = {};
const kept: string[] = [];

function violation(msg: string): void {
  violationCount++;
  if (violations.length < 25) violations.push(msg);
}

/** Runs one command in-process on one mutant and checks the contract. */
async function runOne(
  name: string,
  args: string[],
  file: string,
  label: string,
  bound: number,
  out?: { path: string; kind: 'elf' | 'html' },
): Promise<void> {
  parentPort!.postMessage({ at: label, cmd: name });
  io.o = '';
  io.e = '';
  const t0 = performance.now();
  let code: number;
  try {
    code = await main(args, io);
  } catch (e) {
    violation(`${label} ${name}: uncaught ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
    return;
  }
  const ms = performance.now() - t0;
  const f = (commands[name] ??= { runs: 0, exits: [0, 0, 0], worstMs: 0, worstFile: '' });
  f.runs++;
  if (ms > f.worstMs) {
    f.worstMs = ms;
    f.worstFile = label;
  }
  if (code !== 0 && code !== 1 && code !== 2) return violation(`${label} ${name}: exit ${code}`);
  f.exits[code]++;
  if (ms > bound) violation(`${label} ${name}: took ${ms.toFixed(0)} ms (bound ${bound} ms)`);
  const err = io.e;
  if (
    /internal error/.test(err) ||
    /\n\s+at /.test(err) ||
    /\b(TypeError|RangeError|ReferenceError|SyntaxError)\b/.test(err)
  ) {
    violation(`${label} ${name}: ${err.slice(0, 400)}`);
  }
  const negative = /0x-[0-9a-f]/.exec(io.o) ?? /0x-[0-9a-f]/.exec(err);
  if (negative)
    violation(
      `${label} ${name}: an address printed as negative hex: ${negative.input.slice(Math.max(0, negative.index - 80), negative.index + 40)}`,
    );
  const errorLines = err.split('\n').filter((l) => l && !/: warning: textpoke: /.test(l));
  if (errorLines.length > 1)
    violation(`${label} ${name}: ${errorLines.length} error lines:\n${errorLines.slice(0, 4).join('\n')}`);
  for (const l of errorLines)
    if (!l.startsWith(`${file}: `) && !l.startsWith(`textpoke: ${file}: `))
      violation(`${label} ${name}: error line does not name the file: ${l}`);
  if (code === 2 && !errorLines.length) violation(`${label} ${name}: exit 2 without an error line`);
  if (errorLines.length) rejected++;
  else accepted++;
  if (out) {
    const leftovers = readdirSync(work).filter((n) => n.endsWith('.tmp'));
    if (leftovers.length) violation(`${label} ${name}: temporary file left: ${leftovers.join(', ')}`);
    if (code === 2) {
      if (existsSync(out.path)) violation(`${label} ${name}: exit 2 but ${out.path} was written`);
    } else if (!existsSync(out.path)) violation(`${label} ${name}: exit ${code} but no output written`);
    else if (out.kind === 'elf') {
      // The patched copy must read back as the same ELF layout.
      try {
        const again = Image.parse(readFileSync(out.path), out.path);
        void again.sections.length;
      } catch (e) {
        violation(`${label} ${name}: the written output does not parse: ${e instanceof Error ? e.message : String(e)}`);
      }
    } else if (!readFileSync(out.path, 'utf8').startsWith('<!doctype html>'))
      violation(`${label} ${name}: the written report is not an HTML page`);
    rmSync(out.path, { force: true });
  }
}

async function runAllCommands(file: string, label: string, bound: number, withReport: boolean): Promise<void> {
  const outElf = join(work, 'out.ko');
  await runOne('sites', ['sites', file], file, label, bound);
  await runOne('apply', ['apply', file, '--cpu', 'intel-server', '-o', outElf, '--quiet'], file, label, bound, {
    path: outElf,
    kind: 'elf',
  });
  await runOne('diff', ['diff', file, '--cpu', 'amd-server'], file, label, bound);
  await runOne('check', ['check', '--checks', ALL_CHECKS, file], file, label, bound);
  await runOne(
    'check --cpu as-built',
    ['check', '--checks', ALL_CHECKS, '--cpu', 'as-built', file],
    file,
    label,
    bound,
  );
  await runOne('surface', ['surface', file], file, label, bound);
  await runOne('symbols --ambiguous', ['symbols', '--ambiguous', file], file, label, bound);
  if (withReport) {
    const html = join(work, 'out.html');
    await runOne('report', ['report', file, '-o', html, '--model-states', '0'], file, label, bound * 4, {
      path: html,
      kind: 'html',
    });
  }
}

const t0 = Date.now();
interface Original {
  path: string;
  bytes: Uint8Array;
  elf: Uint8Array;
  img: Image;
  compressed: boolean;
  large: boolean;
}
const originals: Original[] = [];
for (const path of [...input.plain, ...input.compressed, ...input.large]) {
  const bytes = new Uint8Array(readFileSync(path));
  const compressed = input.compressed.includes(path);
  const elf = compressed ? await decompress(bytes) : bytes;
  originals.push({ path, bytes, elf, img: Image.parse(elf, path), compressed, large: input.large.includes(path) });
}
const small = originals.filter((o) => !o.large);
const large = originals.filter((o) => o.large);

/** Mutants kept for the multi-file runs: spread over the whole run, whatever its length. */
const keepStride = Math.max(1, Math.floor(input.mutants / (input.keep + 1)));
let n = 0;
async function one(o: Original, i: number, large: boolean): Promise<void> {
  const [m, kind] = o.compressed ? mutateCompressed(o.bytes, o.elf, o.img) : mutateElf(o.elf, o.img);
  byKind[kind] = (byKind[kind] ?? 0) + 1;
  const name = `${large ? 'large' : 'm'}${i}-${o.path.split('/').pop()}`;
  const file = join(work, name);
  writeFileSync(file, m);
  const label = `mutant ${name} (seed 0x${input.seed.toString(16)}, ${kind})`;
  await runAllCommands(
    file,
    label,
    large ? input.largeBoundMs : input.boundMs,
    !large ? i % input.reportEvery === 0 : i === 0,
  );
  if (kept.length < input.keep && !large && i % keepStride === keepStride - 1) {
    const k = join(input.keepDir, name);
    writeFileSync(k, m);
    kept.push(k);
  }
  rmSync(file, { force: true });
  n++;
  peak = Math.max(peak, getHeapStatistics().used_heap_size);
}
for (let i = 0; i < input.mutants; i++) await one(small[i % small.length]!, i, false);
for (let i = 0; i < input.largeMutants; i++) await one(large[i % large.length]!, i, true);
rmSync(work, { recursive: true, force: true });

const result: MutantResult = {
  mutants: n,
  byKind,
  commands,
  rejected,
  accepted,
  violations,
  violationCount,
  peakHeapMb: Math.round(peak / 2 ** 20),
  kept,
  seconds: (Date.now() - t0) / 1000,
};
parentPort!.postMessage({ done: result });
