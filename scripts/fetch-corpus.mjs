#!/usr/bin/env node
// Downloads the Debian packages textpoke is tested and benchmarked on and unpacks them into the
// git-ignored cache (.cache/corpus/<package>/), idempotently: a package already unpacked is left alone.
// Usage: node scripts/fetch-corpus.mjs [--quiet] [--only NAME,...]
// Set TEXTPOKE_CORPUS to use another cache directory.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const cache = process.env.TEXTPOKE_CORPUS ?? join(root, '.cache', 'corpus');
const quiet = process.argv.includes('--quiet');
const onlyArg = process.argv.indexOf('--only');
const only = onlyArg > 0 ? new Set(process.argv[onlyArg + 1].split(',')) : null;
const log = (m) => { if (!quiet) process.stderr.write(m + '\n'); };

/** id -> Debian package (a function picks the newest matching version where the name moves). */
const PACKAGES = {
  'xen-hypervisor-4.17-amd64-dbg': () => 'xen-hypervisor-4.17-amd64-dbg',
  'linux-image-6.1.0-47-amd64': () => 'linux-image-6.1.0-47-amd64',
  'linux-kbuild-6.1': () => 'linux-kbuild-6.1',
  'linux-headers-6.1.0-47-common': () => 'linux-headers-6.1.0-47-common',
  'linux-image-6.12-amd64': () => newest(/^linux-image-6\.12\.\d+\+deb\d+-amd64-unsigned$/),
};

function apt(args, opts = {}) {
  return execFileSync(args[0], args.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', quiet ? 'ignore' : 'inherit'], ...opts });
}

let updated = false;
function ensureLists() {
  if (updated) return;
  updated = true;
  try {
    apt(['apt-cache', 'show', 'linux-kbuild-6.1']);
  } catch {
    log('apt lists missing: running apt-get update');
    apt(['apt-get', 'update']);
  }
}

function newest(re) {
  ensureLists();
  const names = apt(['apt-cache', 'pkgnames', 'linux-image-6.12']).split('\n').filter((n) => re.test(n));
  if (!names.length) throw new Error(`no Debian package matches ${re}`);
  const key = (n) => n.match(/\d+/g).map(Number);
  names.sort((a, b) => {
    const ka = key(a), kb = key(b);
    for (let i = 0; i < Math.max(ka.length, kb.length); i++) if ((ka[i] ?? 0) !== (kb[i] ?? 0)) return (ka[i] ?? 0) - (kb[i] ?? 0);
    return 0;
  });
  return names[names.length - 1];
}

mkdirSync(cache, { recursive: true });
let failed = 0;
for (const [id, pick] of Object.entries(PACKAGES)) {
  if (only && !only.has(id)) continue;
  const dest = join(cache, id);
  if (existsSync(join(dest, '.complete'))) continue;
  try {
    ensureLists();
    const pkg = pick();
    const debs = join(cache, '.debs');
    mkdirSync(debs, { recursive: true });
    log(`downloading ${pkg}`);
    apt(['apt-get', 'download', '-q', pkg], { cwd: debs });
    const deb = readdirSync(debs).find((f) => f.startsWith(pkg + '_') && f.endsWith('.deb'));
    if (!deb) throw new Error(`apt-get download left no .deb for ${pkg}`);
    const tmp = dest + '.tmp';
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    apt(['dpkg-deb', '-x', join(debs, deb), tmp]);
    writeFileSync(join(tmp, '.complete'), `${pkg}\n${deb}\n`);
    rmSync(dest, { recursive: true, force: true });
    renameSync(tmp, dest);
    rmSync(join(debs, deb), { force: true });
    log(`unpacked ${deb} into ${dest}`);
  } catch (e) {
    failed++;
    process.stderr.write(`fetch-corpus: ${id}: ${e.message.split('\n')[0]}\n`);
  }
}
process.exit(failed ? 1 : 0);
