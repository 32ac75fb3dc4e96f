#!/usr/bin/env node
// `npm run demo`: textpoke's main jobs on built-in examples. Objects are built here from our own
// sources with the system gcc/as; Debian's Xen 4.17 hypervisor is fetched into the cache when apt is
// available. Each step prints the command it runs.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, '.cache', 'demo');
mkdirSync(out, { recursive: true });
const bin = join(root, 'bin', 'textpoke.js');
const rel = (p) => (p.startsWith(root + '/') ? p.slice(root.length + 1) : p);

/** @param {string} title @param {string[]} args @param {{ head?: number, tail?: number }} [o] */
function step(title, args, { head, tail } = {}) {
  process.stdout.write(`\n=== ${title}\n$ textpoke ${args.map(rel).join(' ')}\n`);
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', maxBuffer: 1 << 28 });
  let text = r.stdout + (r.stderr ? r.stderr : '');
  const lines = text.split('\n');
  if (head && lines.length > head)
    text = lines.slice(0, head).join('\n') + `\n... (${lines.length - head} more lines)\n`;
  if (tail && lines.length > tail + 1)
    text = `... (${lines.length - tail - 1} lines before)\n` + lines.slice(-tail - 1).join('\n');
  process.stdout.write(text);
  process.stdout.write(`(exit ${r.status})\n`);
}

function build(src, flags = []) {
  const o = join(
    out,
    src
      .split('/')
      .pop()
      .replace(/\.[Sc]$/, '.o'),
  );
  const isAsm = /\.S$/.test(src);
  execFileSync('gcc', ['-c', ...(isAsm ? ['-x', 'assembler-with-cpp'] : flags), join(root, src), '-o', o]);
  return o;
}

// 1. Patch sites of an object built from our sources: one entry of every Linux 6.1 table.
const tables = build('test/fixtures/sites/tables61.S');
step('Every kind of patch site in a Linux 6.1-style object (built from test/fixtures/sites/tables61.S)', [
  'sites',
  tables,
]);

// 2. The text a CPU runs: the same object patched for an old retpoline CPU, site by site.
step('What an old (retpoline) CPU runs after the boot-time patchers (textpoke diff)', ['diff', tables, '--cpu', 'old']);

// 3. Seed 000: an evaluate_nospec()-style predicate the compiler kept out of line (built here with gcc -O2).
const pred = build('test/fixtures/check/nospec-pred.c', ['-O2']);
step('Speculation checks on a gcc build of the seed-000 bug (test/fixtures/check/nospec-pred.c, -O2)', [
  'check',
  '--cpu',
  'as-built',
  pred,
]);

// 4. Seeds 002/004: live-patching protocols, model-checked.
step('Every live-patching protocol against every scenario (textpoke model --table)', ['model', '--table']);
step(
  'The shortest interleaving that breaks a plain copy',
  ['model', '--protocol', 'memcpy', '--scenario', 'static-call-retarget'],
  { head: 30 },
);

// 5. Seed 003: a hand-written patch byte table against the assembly in its comments.
step('Hand-written byte table checked against its comments (seed 003)', [
  'patchlets',
  'verify',
  join(root, 'test/fixtures/patchlets/paravirt_patch.c'),
]);

// 6. Seed 001: hypercall dispatch generated without UB, in Xen's priority-chain style.
step(
  'Xen hypercall dispatch for pv64, without UB for any number',
  ['hypercalls', 'gen', join(root, 'test/fixtures/hypercall/hypercall-defs-4.17.c'), '--style', 'chain'],
  { head: 40 },
);

// 7. Debian's Xen 4.17 hypervisor, when apt can fetch it.
const xen = join(root, '.cache/corpus/xen-4.17/usr/lib/debug/boot/xen-syms-4.17-amd64');
let haveXen = existsSync(xen);
if (!haveXen && spawnSync('apt-get', ['--version']).status === 0) {
  process.stdout.write("\n(fetching Debian's xen-hypervisor-4.17-amd64-dbg into .cache/corpus)\n");
  haveXen =
    spawnSync(process.execPath, [join(root, 'scripts/fetch-corpus.mjs'), '--quiet', '--only', 'xen-4.17'], {
      stdio: 'inherit',
    }).status === 0 && existsSync(xen);
}
if (haveXen) {
  step('Xen 4.17 (Debian xen-syms): alternatives, feature names, replacements', ['sites', xen], { head: 14 });
  step('Xen 4.17: totals per table', ['sites', '--summary', xen]);
  step('Xen 4.17 with branch hardening off: what changes', [
    'diff',
    xen,
    '--cpu',
    'intel-server,branch-harden=off',
    '--summary',
  ]);
  step(
    'Xen 4.17: speculation and patch-safety checks (outlined evaluate_nospec predicates, one-sided fences)',
    ['check', xen],
    { tail: 18 },
  );
  step('Xen 4.17: indirect branches left in the text an Intel server runs', ['surface', xen], { head: 10 });
  step(
    'Xen 4.17: branch depth per hypercall, compiled dispatch against the priorities',
    ['hypercalls', 'cost', join(root, 'test/fixtures/hypercall/hypercall-defs-4.17.c'), '--binary', xen],
    { head: 30 },
  );
  const html = join(out, 'xen-syms-report.html');
  step('Xen 4.17: the HTML report (open it in a browser)', ['report', xen, '-o', html]);
} else {
  process.stdout.write('\n(Debian packages not reachable: skipping the Xen 4.17 part of the demo)\n');
}
