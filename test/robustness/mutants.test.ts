/**
 * Thousands of fixed-seed mutants of real binaries through every command that reads one: plain 6.1
 * modules, 6.12 and 7.x .ko.xz modules (corrupt and truncated compressed streams, and ELF mutants
 * compressed again) and xen-syms; section headers, table entries, relocations, symbols, string tables,
 * truncations. The commands run in-process in a worker thread with a heap limit (test/support/
 * mutant-worker.ts checks each run: exit 0/1/2, no internal error or stack trace, at most one error line
 * naming the file, a time bound, no partial output); a hang fails the test and names the mutant. Then a
 * sample of the mutants goes through the real command line (bin/textpoke.js) in multi-file runs of every
 * command (apply into an output directory), where the good files must still be reported (apply: written).
 *
 * TEXTPOKE_MUTANTS=N changes the number of module mutants (default 4000) for a longer or shorter run.
 */
import test, { after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { corpus, repoRoot } from '../support/corpus.js';
import { tempDir } from '../support/build.js';
import type { MutantInput, MutantResult } from '../support/mutant-worker.js';

const PLAIN = [
  'fs/nls/nls_cp437.ko',
  'net/ipv4/tcp_bic.ko',
  'drivers/input/misc/pcspkr.ko',
  'crypto/crc32_generic.ko',
  'lib/crc-itu-t.ko',
  'drivers/char/hw_random/virtio-rng.ko',
  'fs/fat/vfat.ko',
  'net/sched/sch_prio.ko',
];
const COMPRESSED = ['net/ipv4/tcp_bic.ko.xz', 'crypto/crc32_generic.ko.xz', 'net/sched/sch_prio.ko.xz'];
const MUTANTS = Number(process.env.TEXTPOKE_MUTANTS ?? 4000);
const LARGE_MUTANTS = 24;
const HEAP_LIMIT_MB = 768;
const HEAP_BOUND_MB = 512;
/** The whole in-process run; the runner's per-file limit is far above it. */
const WORKER_MS = 480_000;

let result: MutantResult;
const keepDir = tempDir('textpoke-mutants-kept-');
const workDir = tempDir('textpoke-mutants-work-');
const reportDir = tempDir('textpoke-mutants-report-');
after(() => {
  for (const d of [keepDir, workDir, reportDir]) rmSync(d, { recursive: true, force: true });
});

test(`${MUTANTS} module mutants and ${LARGE_MUTANTS} xen-syms mutants through every command, in-process`, {
  timeout: WORKER_MS + 30_000,
}, async () => {
  const input: MutantInput = {
    plain: PLAIN.map((m) => corpus.module61(m)),
    compressed: [...COMPRESSED.map((m) => join(corpus.modules612, m)), join(corpus.modules7, 'net/ipv4/tcp_bic.ko.xz')],
    large: [corpus.xenSyms],
    mutants: MUTANTS,
    largeMutants: LARGE_MUTANTS,
    seed: 0x7e47,
    reportEvery: 16,
    boundMs: 10_000,
    largeBoundMs: 30_000,
    keepDir,
    keep: 24,
    workDir,
  };
  const worker = new Worker(new URL('../support/mutant-worker.js', import.meta.url), {
    workerData: input,
    resourceLimits: { maxOldGenerationSizeMb: HEAP_LIMIT_MB },
    env: { ...process.env, TEXTPOKE_DEBUG: '' },
  });
  let last = { at: 'before the first mutant', cmd: '' };
  try {
    result = await new Promise<MutantResult>((resolve, reject) => {
      const guard = setTimeout(
        () =>
          reject(
            new Error(`mutant run did not finish in ${WORKER_MS / 1000} s: last started ${last.cmd} on ${last.at}`),
          ),
        WORKER_MS,
      );
      worker.on('message', (m: { done?: MutantResult; at?: string; cmd?: string }) => {
        if (m.done) {
          clearTimeout(guard);
          resolve(m.done);
        } else last = { at: m.at!, cmd: m.cmd! };
      });
      worker.once('error', (e) => {
        clearTimeout(guard);
        reject(new Error(`worker died during ${last.cmd} on ${last.at}: ${e.message}`));
      });
      worker.once('exit', (code) => {
        clearTimeout(guard);
        reject(new Error(`worker exited (${code}) during ${last.cmd} on ${last.at}`));
      });
    });
  } finally {
    await worker.terminate();
  }
  const r = result;
  const figures = Object.entries(r.commands)
    .map(
      ([c, f]) =>
        `  ${c.padEnd(22)} ${String(f.runs).padStart(5)} runs  exit 0/1/2: ${f.exits.join('/')}  worst ${f.worstMs.toFixed(0)} ms`,
    )
    .join('\n');
  console.log(
    `mutants: ${r.mutants} in ${r.seconds.toFixed(0)} s; ${r.accepted} runs went through, ${r.rejected} rejected the file with one line; peak heap ${r.peakHeapMb} MB\n${figures}\nkinds: ${JSON.stringify(r.byKind)}`,
  );
  assert.equal(r.violationCount, 0, r.violations.join('\n\n'));
  assert.equal(r.mutants, MUTANTS + LARGE_MUTANTS);
  assert.ok(r.peakHeapMb < HEAP_BOUND_MB, `peak heap ${r.peakHeapMb} MB`);
  for (const c of [
    'sites',
    'apply',
    'diff',
    'check',
    'check --cpu as-built',
    'surface',
    'symbols --ambiguous',
    'report',
  ]) {
    const f = r.commands[c];
    assert.ok(f && f.runs > 0, `${c} ran`);
  }
  // The mutations must both break files and leave some usable, for each command that reads tables.
  for (const c of ['sites', 'apply', 'check']) {
    const f = r.commands[c]!;
    assert.ok(f.exits[0] > f.runs / 20, `${c}: some mutants still read (${f.exits.join('/')})`);
    assert.ok(f.exits[1] + f.exits[2] > f.runs / 5, `${c}: many mutants rejected (${f.exits.join('/')})`);
  }
  for (const k of [
    'section header',
    'table entries',
    'relocations',
    'symbols',
    'string tables',
    'truncation',
    'corrupt compressed stream',
    'truncated compressed stream',
  ]) {
    assert.ok((r.byKind[k] ?? 0) > 0, `mutation kind ${k} used`);
  }
});

test('multi-file runs of the real command line: every bad mutant named at most once, the good files still reported', {
  timeout: 300_000,
}, () => {
  assert.ok(result, 'the in-process run finished');
  const kept = result.kept;
  assert.ok(kept.length >= 12, `${kept.length} mutants kept`);
  const goodPlain = corpus.module61('net/ipv4/tcp_bic.ko');
  const goodXz = join(corpus.modules612, 'crypto/crc32_generic.ko.xz');
  const out = reportDir;
  const commands: [string, string[]][] = [
    ['sites', ['sites', '--json']],
    ['check', ['check', '--json']],
    ['check as built', ['check', '--json', '--cpu', 'as-built']],
    ['surface', ['surface', '--json']],
    ['symbols', ['symbols', '--ambiguous', '--json']],
    ['report', ['report', '--model-states', '0', '-o', join(out, 'r.html')]],
    ['apply', ['apply', '--cpu', 'intel-server', '-o', join(out, 'apply')]],
    ['diff', ['diff', '--cpu', 'intel-server', '--summary']],
  ];
  let runs = 0;
  for (let g = 0; g + 3 <= kept.length && g < 12; g += 3) {
    const bad = kept.slice(g, g + 3);
    const files = [goodPlain, ...bad, goodXz];
    for (const [name, args] of commands) {
      const r = spawnSync(process.execPath, [join(repoRoot, 'bin', 'textpoke.js'), ...args, ...files], {
        encoding: 'utf8',
        maxBuffer: 1 << 28,
        timeout: 120_000,
        killSignal: 'SIGKILL',
      });
      runs++;
      const what = `${name} on ${bad.map((b) => b.split('/').pop()).join(', ')}`;
      assert.equal(r.signal, null, `${what}: killed (hang)`);
      assert.ok(r.status === 0 || r.status === 1, `${what}: exit ${r.status}\n${r.stderr}`);
      assert.doesNotMatch(r.stderr, /internal error|\n\s+at |TypeError|RangeError/, what);
      const lines = r.stderr.split('\n').filter((l) => l && !/: warning: textpoke: /.test(l));
      for (const f of files)
        assert.ok(
          lines.filter((l) => l.startsWith(`${f}: `)).length <= 1,
          `${what}: ${f} named more than once:\n${r.stderr}`,
        );
      for (const l of lines)
        assert.ok(
          files.some((f) => l.startsWith(`${f}: `)),
          `${what}: a line naming no file: ${l}`,
        );
      for (const good of [goodPlain, goodXz])
        assert.ok(!lines.some((l) => l.startsWith(`${good}: `)), `${what}: the good file ${good} was rejected`);
      if (name === 'report') {
        assert.ok(existsSync(join(out, 'r.html')), `${what}: report written`);
        assert.deepEqual(readdirSync(out), ['r.html'], `${what}: no temporary file`);
      } else if (name === 'apply') {
        // Each good file written under its basename (the .ko.xz decompressed as .ko), nothing else but the
        // mutants that could be used.
        const written = readdirSync(join(out, 'apply'));
        for (const good of [goodPlain, goodXz])
          assert.ok(written.includes(basename(good).replace(/\.xz$/, '')), `${what}: ${good} written`);
        assert.ok(!written.some((n) => n.endsWith('.tmp')), `${what}: no temporary file`);
        rmSync(join(out, 'apply'), { recursive: true });
      } else if (name === 'diff') {
        for (const good of [goodPlain, goodXz])
          assert.ok(r.stdout.includes(`${good}: --cpu intel-server: `), `${what}: ${good} reported`);
      } else {
        const doc = JSON.parse(r.stdout) as { files: { path: string }[] };
        for (const good of [goodPlain, goodXz])
          assert.ok(
            doc.files.some((f) => f.path === good),
            `${what}: ${good} reported`,
          );
      }
    }
  }
  assert.ok(runs >= 32, `${runs} multi-file runs`);
});
