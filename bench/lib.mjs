// Shared benchmark plumbing: run commands (optionally one process per file, N at a time), take the
// median wall time of several runs, and print side-by-side tables with ratios. Peers run in the same
// invocation on the same machine so ratios are comparable; absolute times are not.
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const corpusDir = process.env.TEXTPOKE_CORPUS ?? join(root, '.cache', 'corpus');
export const textpoke = join(root, 'bin', 'textpoke.js');

/** base/<the one entry starting with prefix>/rest (corpus entries are named by series; the build varies). */
function onlyDir(base, prefix, rest) {
  let names = [];
  try {
    names = readdirSync(base).filter((d) => d.startsWith(prefix));
  } catch {
    /* corpus not fetched */
  }
  return join(base, names[0] ?? `${prefix}MISSING`, rest);
}
export const paths = {
  modules61: onlyDir(join(corpusDir, 'linux-6.1/lib/modules'), '6.1.0-', 'kernel'),
  xenSyms: join(corpusDir, 'xen-4.17/usr/lib/debug/boot/xen-syms-4.17-amd64'),
  objtool: join(corpusDir, 'linux-kbuild-6.1/usr/lib/linux-kbuild-6.1/tools/objtool/objtool'),
};
export const cores = availableParallelism();

/** Every .ko below a directory, sorted (the peers run one process per module). */
export function modules(dir, out = []) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) modules(p, out);
    else if (e.name.endsWith('.ko')) out.push(p);
  }
  return out.sort();
}

/** A benchmarked command that failed: its run is not timed. */
export class RunFailed extends Error {}

/**
 * Runs one command to completion, stdout discarded; resolves to its exit code when that code is one of
 * `ok` (default: 0 only; `textpoke check` passes [0, 1], 1 being findings), and rejects otherwise (or
 * when killed or not started), with the end of its stderr: a crashing run is never timed as a fast one.
 */
export function exec(cmd, args, { ok = [0] } = {}) {
  return new Promise((res, rej) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => {
      err = (err + d.toString()).slice(-2000);
    });
    p.on('error', (e) => rej(new RunFailed(`${cmd} could not start: ${e.message}`)));
    p.on('close', (code, signal) => {
      if (code !== null && ok.includes(code)) res(code);
      else {
        const last = err.trim().split('\n').slice(-3).join(' | ');
        rej(
          new RunFailed(
            `${[cmd, ...args].join(' ').slice(0, 200)}: ${signal ? `killed by ${signal}` : `exit ${code}`}${last ? `: ${last}` : ''}`,
          ),
        );
      }
    });
  });
}

/** Runs `make(item)` for each item, `parallel` processes at a time (as kbuild runs objtool); rejects if any run fails. */
export async function execEach(items, make, parallel = cores, opts = {}) {
  let i = 0;
  const worker = async () => {
    while (i < items.length) {
      const [cmd, args] = make(items[i++]);
      await exec(cmd, args, opts);
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, items.length) }, worker));
}

export async function median(runs, fn) {
  const times = [];
  for (let r = 0; r < runs; r++) {
    const t = performance.now();
    await fn();
    times.push((performance.now() - t) / 1000);
  }
  times.sort((a, b) => a - b);
  return { median: times[Math.floor(times.length / 2)], min: times[0], max: times[times.length - 1], runs };
}

const say = (text) => process.stdout.write(text);

/** Prints rows {name, median} with each row's ratio to the first row (peer time / textpoke time). */
export function table(title, rows) {
  const base = rows[0].median;
  say(`\n${title}\n`);
  for (const r of rows) {
    const ratio = r === rows[0] ? '' : `  ${(r.median / base).toFixed(2)}x textpoke's time`;
    say(
      `  ${r.name.padEnd(46)} ${r.median.toFixed(3).padStart(8)} s  (min ${r.min.toFixed(3)}, max ${r.max.toFixed(3)}, ${r.runs} runs)${ratio}\n`,
    );
  }
}

/** Prints a paragraph that belongs with the tables (a row that could not be timed, and why). */
export function note(text) {
  say(`\n${text}\n`);
}
