#!/usr/bin/env node
// Installs the Debian packages a textpoke job needs, so that the README's two commands work on a fresh
// Debian 12 machine: `npm run demo` runs `setup-system.mjs demo`, `npm test` runs `setup-system.mjs test`.
//
// Only what is missing is installed (dpkg-query decides). apt runs as root when we are root (CI,
// containers), through `sudo -n` otherwise; when neither works the one-line message says what to install.
// The apt lists are refreshed first when they are older than a day (or absent), and again when a package
// is not found in them, so a machine whose lists are weeks old still finds today's packages.
//
// Usage: node scripts/setup-system.mjs demo|test [--dry-run]
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** What each job uses, and why (a test that needs a missing program fails naming it; nothing is skipped). */
const PACKAGES = {
  demo: [
    'binutils',
    'gcc',
    'libc6-dev', // the demo assembles and compiles its example objects
    'ca-certificates', // apt-get download over the archive mirrors (the demo reads Debian's Xen)
  ],
  test: [
    'binutils',
    'gcc',
    'libc6-dev',
    'clang', // fixtures built at test time with both compilers
    'xz-utils',
    'zstd',
    'lz4',
    'gzip',
    'bzip2', // compressed-module and vmlinuz fixtures and oracles
    'ca-certificates', // the corpus is fetched with apt-get download
    'libubsan1', // generated hypercall dispatch runs under UBSan
    'spin', // the model checker's cross-check
    'qemu-system-x86',
    'busybox-static',
    'cpio', // the ground truth boots Debian's kernels
    'chromium',
    'fonts-liberation', // the report and playground end-to-end tests (playwright-core)
  ],
};

const LIST_MAX_AGE_MS = 24 * 3600 * 1000;
const job = process.argv[2];
const dryRun = process.argv.includes('--dry-run');
if (!PACKAGES[job]) {
  process.stderr.write(`setup-system: usage: setup-system.mjs ${Object.keys(PACKAGES).join('|')} [--dry-run]\n`);
  process.exit(2);
}

/** @returns {never} */
function fail(msg) {
  process.stderr.write(`setup-system: ${msg}\n`);
  process.exit(2);
}

function installed(pkg) {
  const r = spawnSync('dpkg-query', ['-W', '-f=${Status}', pkg], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.includes('install ok installed');
}

if (spawnSync('dpkg-query', ['--version']).status !== 0)
  fail('this is not a Debian-like system (no dpkg-query); install the packages of scripts/setup-system.mjs by hand');
const missing = PACKAGES[job].filter((p) => !installed(p));
if (!missing.length) process.exit(0);

/** How to run apt: directly as root, else through passwordless sudo; null when neither works. */
function privilege() {
  if (process.getuid?.() === 0) return [];
  if (spawnSync('sudo', ['-n', 'true'], { stdio: 'ignore' }).status === 0) return ['sudo', '-n'];
  return null;
}
const maybePrefix = privilege();
if (!maybePrefix)
  fail(
    `missing Debian packages (${missing.join(' ')}); run as root or with passwordless sudo, or install them: apt-get install ${missing.join(' ')}`,
  );
const prefix = maybePrefix;
if (dryRun) {
  process.stdout.write(`would install: ${missing.join(' ')}\n`);
  process.exit(0);
}

function apt(args) {
  const cmd = [...prefix, 'env', 'DEBIAN_FRONTEND=noninteractive', 'apt-get', ...args];
  return spawnSync(cmd[0], cmd.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Age of the newest file in /var/lib/apt/lists (Infinity when there is none). */
function listsAge() {
  const dir = '/var/lib/apt/lists';
  let newest = 0;
  try {
    for (const f of readdirSync(dir))
      if (f.endsWith('Release')) newest = Math.max(newest, statSync(join(dir, f)).mtimeMs);
  } catch {
    /* no lists */
  }
  return newest ? Date.now() - newest : Infinity;
}

let updated = false;
function update(why) {
  updated = true;
  process.stderr.write(`setup-system: apt-get update (${why})\n`);
  const r = apt(['-q', 'update']);
  if (r.status !== 0) fail(`apt-get update failed: ${(r.stderr || r.stdout).trim().split('\n').pop()}`);
}

if (listsAge() > LIST_MAX_AGE_MS)
  update(listsAge() === Infinity ? 'no package lists yet' : 'package lists older than a day');
process.stderr.write(`setup-system: installing ${missing.join(' ')}\n`);
let r = apt(['-q', '-y', 'install', '--no-install-recommends', ...missing]);
if (
  r.status !== 0 &&
  !updated &&
  /Unable to locate|has no installation candidate|404\s+Not Found|Failed to fetch/.test(r.stderr + r.stdout)
) {
  update('a package was not found in the lists');
  r = apt(['-q', '-y', 'install', '--no-install-recommends', ...missing]);
}
if (r.status !== 0)
  fail(`apt-get install ${missing.join(' ')} failed: ${(r.stderr || r.stdout).trim().split('\n').pop()}`);
const still = missing.filter((p) => !installed(p));
if (still.length) fail(`still missing after apt-get install: ${still.join(' ')}`);
