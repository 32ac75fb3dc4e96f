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
const rel = (p) => p.startsWith(root + '/') ? p.slice(root.length + 1) : p;

function step(title, args, { head } = {}) {
  process.stdout.write(`\n=== ${title}\n$ textpoke ${args.map(rel).join(' ')}\n`);
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', maxBuffer: 1 << 28 });
  let text = r.stdout + (r.stderr ? r.stderr : '');
  if (head) {
    const lines = text.split('\n');
    if (lines.length > head) text = lines.slice(0, head).join('\n') + `\n... (${lines.length - head} more lines)\n`;
  }
  process.stdout.write(text);
  process.stdout.write(`(exit ${r.status})\n`);
}

function build(src, flags = []) {
  const o = join(out, src.split('/').pop().replace(/\.[Sc]$/, '.o'));
  const isAsm = /\.S$/.test(src);
  execFileSync('gcc', ['-c', ...(isAsm ? ['-x', 'assembler-with-cpp'] : flags), join(root, src), '-o', o]);
  return o;
}

// 1. Patch sites of an object built from our sources: one entry of every Linux 6.1 table.
const tables = build('test/fixtures/sites/tables61.S');
step('Every kind of patch site in a Linux 6.1-style object (built from test/fixtures/sites/tables61.S)', ['sites', tables]);

// 2. Debian's Xen 4.17 hypervisor, when apt can fetch it.
const xen = join(root, '.cache/corpus/xen-hypervisor-4.17-amd64-dbg/usr/lib/debug/boot/xen-syms-4.17-amd64');
let haveXen = existsSync(xen);
if (!haveXen && spawnSync('apt-get', ['--version']).status === 0) {
  process.stdout.write('\n(fetching Debian\'s xen-hypervisor-4.17-amd64-dbg into .cache/corpus)\n');
  haveXen = spawnSync(process.execPath, [join(root, 'scripts/fetch-corpus.mjs'), '--quiet', '--only', 'xen-hypervisor-4.17-amd64-dbg'], { stdio: 'inherit' }).status === 0 && existsSync(xen);
}
if (haveXen) {
  step('Xen 4.17 (Debian xen-syms): alternatives, feature names, replacements', ['sites', xen], { head: 14 });
  step('Xen 4.17: totals per table', ['sites', '--summary', xen]);
} else {
  process.stdout.write('\n(Debian packages not reachable: skipping the Xen 4.17 part of the demo)\n');
}
