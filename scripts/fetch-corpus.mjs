#!/usr/bin/env node
// Fetches the Debian builds textpoke is tested and benchmarked on into the git-ignored cache
// (.cache/corpus/<id>/), resolving each series to what Debian serves today and recording the exact builds
// in .cache/corpus/manifest.json.
//
// The archive moves: a build pinned today is gone at the next point release. So every corpus entry names a
// series (a package-name pattern and the suites to look in), never a build; the newest build served is
// fetched, and a cached entry whose build is no longer the newest served is replaced. Tests assert
// invariants for whatever build the manifest records and pin exact numbers only to the build they were
// measured on (test/support/corpus.ts).
//
// apt runs with a private configuration inside the cache (sources for bookworm, trixie and their
// updates/security/backports suites, its own lists and its own download cache): the system's sources and
// lists are never read or changed. The lists are refreshed when older than a day or when a series has no
// match in them.
//
// Usage: node scripts/fetch-corpus.mjs [--quiet] [--only ID,...] [--list]
// Set TEXTPOKE_CORPUS to use another cache directory.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const cache = resolve(process.env.TEXTPOKE_CORPUS ?? join(root, '.cache', 'corpus'));
const aptDir = join(dirname(cache), 'apt');
const argv = process.argv.slice(2);
const quiet = argv.includes('--quiet');
const onlyArg = argv.indexOf('--only');
const only = onlyArg >= 0 ? new Set(argv[onlyArg + 1].split(',')) : null;
const log = (m) => {
  if (!quiet) process.stderr.write(m + '\n');
};

const BOOKWORM = ['bookworm', 'bookworm-updates', 'bookworm-security'];
const TRIXIE = ['trixie', 'trixie-updates', 'trixie-security'];
const BACKPORTS = ['trixie-backports'];
const LIST_MAX_AGE_MS = 24 * 3600 * 1000;

/**
 * The corpus: id -> the packages of one build. A package is a name pattern (the newest matching name wins,
 * by the numbers in the name) and the suites it may come from (the highest version among them wins).
 * `same` reuses a capture of an earlier package's name so that packages of one build stay together.
 */
export const CORPUS = [
  // Each Xen entry: xen-syms (the -dbg package) and the bootable xen.gz of the same build.
  {
    id: 'xen-4.17',
    what: 'Xen 4.17, newest build (bookworm-security when it has one)',
    packages: [
      { name: /^xen-hypervisor-4\.17-amd64-dbg$/, suites: BOOKWORM },
      { name: () => 'xen-hypervisor-4.17-amd64', suites: BOOKWORM },
    ],
  },
  {
    id: 'xen-4.17-bookworm',
    what: "Xen 4.17 of bookworm's main suite (Debian's own backports on a 4.17.5 base)",
    packages: [
      { name: /^xen-hypervisor-4\.17-amd64-dbg$/, suites: ['bookworm'] },
      { name: () => 'xen-hypervisor-4.17-amd64', suites: ['bookworm'] },
    ],
  },
  {
    id: 'xen-4.20',
    what: "Xen 4.20, trixie's",
    packages: [
      { name: /^xen-hypervisor-4\.20-amd64-dbg$/, suites: TRIXIE },
      { name: () => 'xen-hypervisor-4.20-amd64', suites: TRIXIE },
    ],
  },
  {
    id: 'linux-6.1',
    what: 'Linux 6.1, the newest 6.1.0-N image in bookworm (modules, vmlinuz), with its headers',
    packages: [
      { name: /^linux-image-6\.1\.0-(\d+)-amd64-unsigned$/, suites: BOOKWORM },
      { name: (m) => `linux-headers-6.1.0-${m[1]}-common`, suites: BOOKWORM },
    ],
  },
  {
    id: 'linux-kbuild-6.1',
    what: "linux-kbuild-6.1 (objtool 6.1, the benchmarks' peer)",
    packages: [{ name: /^linux-kbuild-6\.1$/, suites: BOOKWORM }],
  },
  {
    id: 'linux-6.12',
    what: 'Linux 6.12, the newest in bookworm',
    packages: [{ name: /^linux-image-6\.12\.(\d+)\+deb12-amd64-unsigned$/, suites: BOOKWORM }],
  },
  {
    id: 'linux-6.12-trixie',
    what: 'Linux 6.12, the newest in trixie',
    packages: [{ name: /^linux-image-6\.12\.(\d+)\+deb13-amd64-unsigned$/, suites: TRIXIE }],
  },
  {
    id: 'linux-7',
    what: 'Linux 7.x, the newest Debian ships (trixie-backports): modules and vmlinuz',
    packages: [
      { name: /^linux-modules-(7\.\d+\.\d+)\+deb13-amd64$/, suites: BACKPORTS },
      { name: (m) => `linux-binary-unsigned-${m[1]}+deb13-amd64`, suites: BACKPORTS },
    ],
  },
  {
    id: 'linux-7-cloud',
    what: 'Linux 7.x cloud flavour (trixie-backports): modules and vmlinuz',
    packages: [
      { name: /^linux-modules-(7\.\d+\.\d+)\+deb13-cloud-amd64$/, suites: BACKPORTS },
      { name: (m) => `linux-binary-unsigned-${m[1]}+deb13-cloud-amd64`, suites: BACKPORTS },
    ],
  },
  {
    id: 'linux-7-rt',
    what: 'Linux 7.x PREEMPT_RT flavour (trixie-backports): modules and vmlinuz',
    packages: [
      { name: /^linux-modules-(7\.\d+\.\d+)\+deb13-rt-amd64$/, suites: BACKPORTS },
      { name: (m) => `linux-binary-unsigned-${m[1]}+deb13-rt-amd64`, suites: BACKPORTS },
    ],
  },
];

// ---------------------------------------------------------------------------------------------- apt

function run(cmd, args, opts = {}) {
  return execFileSync(cmd, args, {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 256 << 20,
    ...opts,
  });
}

function aptOptions() {
  return [
    '-o',
    `Dir::Etc::sourcelist=${join(aptDir, 'sources.list')}`,
    '-o',
    `Dir::Etc::sourceparts=${join(aptDir, 'sources.list.d')}`,
    '-o',
    `Dir::Etc::preferencesparts=${join(aptDir, 'preferences.d')}`,
    '-o',
    `Dir::State::Lists=${join(aptDir, 'lists')}`,
    '-o',
    `Dir::State::status=${join(aptDir, 'status')}`,
    '-o',
    `Dir::Cache=${join(aptDir, 'cache')}`,
    '-o',
    'APT::Architecture=amd64',
    '-o',
    'APT::Sandbox::User=root',
    '-o',
    'Acquire::Languages=none',
  ];
}

function setUpApt() {
  for (const d of ['lists/partial', 'sources.list.d', 'preferences.d', 'cache/archives/partial'])
    mkdirSync(join(aptDir, d), { recursive: true });
  const keyring = '/usr/share/keyrings/debian-archive-keyring.gpg';
  const signed = existsSync(keyring) ? `[signed-by=${keyring}] ` : '';
  const main = 'http://deb.debian.org/debian';
  const sec = 'http://deb.debian.org/debian-security';
  const lines = [
    ...['bookworm', 'bookworm-updates', 'trixie', 'trixie-updates', 'trixie-backports'].map(
      (s) => `deb ${signed}${main} ${s} main`,
    ),
    ...['bookworm-security', 'trixie-security'].map((s) => `deb ${signed}${sec} ${s} main`),
  ];
  writeFileSync(join(aptDir, 'sources.list'), lines.join('\n') + '\n');
  if (!existsSync(join(aptDir, 'status'))) writeFileSync(join(aptDir, 'status'), '');
}

let refreshed = false;
function listsAge() {
  try {
    return Date.now() - statSync(join(aptDir, 'lists', '.updated')).mtimeMs;
  } catch {
    return Infinity;
  }
}
function refreshLists(why) {
  if (refreshed) return false;
  refreshed = true;
  log(`fetch-corpus: refreshing the corpus apt lists (${why})`);
  run('apt-get', [...aptOptions(), '-q', 'update']);
  writeFileSync(join(aptDir, 'lists', '.updated'), new Date().toISOString() + '\n');
  return true;
}

/** Every package name in the lists that matches `re`. */
function namesMatching(re) {
  const prefix = re.source.replace(/^\^/, '').split(/[\\([.+*?]/)[0];
  return run('apt-cache', [...aptOptions(), 'pkgnames', prefix])
    .split('\n')
    .filter((n) => n && re.test(n));
}

/** `apt-cache madison` rows of one package: [{version, suite}], highest version first. */
function versions(name) {
  let out = '';
  try {
    out = run('apt-cache', [...aptOptions(), 'madison', name]);
  } catch {
    return [];
  }
  const rows = [];
  for (const line of out.split('\n')) {
    const f = line.split('|').map((s) => s.trim());
    if (f.length < 3 || f[0] !== name) continue;
    const suite = f[2].split(/\s+/)[1]?.split('/')[0];
    rows.push({ version: f[1], suite });
  }
  return rows;
}

function cmpVersions(a, b) {
  if (a === b) return 0;
  try {
    execFileSync('dpkg', ['--compare-versions', a, 'gt', b], { stdio: 'ignore' });
    return 1;
  } catch {
    return -1;
  }
}

function nameKey(n) {
  return (n.match(/\d+/g) ?? []).map(Number);
}
function cmpNames(a, b) {
  const ka = nameKey(a),
    kb = nameKey(b);
  for (let i = 0; i < Math.max(ka.length, kb.length); i++)
    if ((ka[i] ?? 0) !== (kb[i] ?? 0)) return (ka[i] ?? 0) - (kb[i] ?? 0);
  return 0;
}

/** The newest build of one package spec served in its suites: {name, version, suite} or null. */
function resolvePackage(spec, match) {
  const candidates =
    typeof spec.name === 'function' ? [spec.name(match)] : namesMatching(spec.name).sort(cmpNames).reverse();
  for (const name of candidates) {
    const rows = versions(name).filter((r) => spec.suites.includes(r.suite));
    if (!rows.length) continue;
    rows.sort((x, y) => -cmpVersions(x.version, y.version));
    const m = typeof spec.name === 'function' ? match : name.match(spec.name);
    return { name, version: rows[0].version, suite: rows[0].suite, match: m };
  }
  return null;
}

function resolveEntry(entry) {
  const out = [];
  let match = null;
  for (const spec of entry.packages) {
    const r = resolvePackage(spec, match);
    if (!r) return null;
    if (!match) match = r.match;
    out.push({ name: r.name, version: r.version, suite: r.suite });
  }
  return out;
}

// ------------------------------------------------------------------------------------------ fetching

function readManifest() {
  try {
    return JSON.parse(readFileSync(join(cache, 'manifest.json'), 'utf8'));
  } catch {
    return { entries: {} };
  }
}
function writeManifest(m) {
  const tmp = join(cache, 'manifest.json.tmp');
  writeFileSync(tmp, JSON.stringify(m, null, 2) + '\n');
  renameSync(tmp, join(cache, 'manifest.json'));
}

function fetchEntry(entry, pkgs) {
  const debs = join(cache, '.debs');
  mkdirSync(debs, { recursive: true });
  const dest = join(cache, entry.id);
  const tmp = dest + '.tmp';
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  const recorded = [];
  for (const p of pkgs) {
    log(`fetch-corpus: ${entry.id}: downloading ${p.name} ${p.version} (${p.suite})`);
    for (const f of readdirSync(debs)) if (f.startsWith(p.name + '_')) rmSync(join(debs, f), { force: true });
    run('apt-get', [...aptOptions(), '-q', 'download', `${p.name}=${p.version}`], { cwd: debs });
    const deb = readdirSync(debs).find((f) => f.startsWith(p.name + '_') && f.endsWith('.deb'));
    if (!deb) throw new Error(`apt-get download left no .deb for ${p.name}`);
    const sha256 = createHash('sha256')
      .update(readFileSync(join(debs, deb)))
      .digest('hex');
    run('dpkg-deb', ['-x', join(debs, deb), tmp]);
    rmSync(join(debs, deb), { force: true });
    recorded.push({ ...p, deb, sha256 });
  }
  writeFileSync(join(tmp, '.complete'), JSON.stringify(recorded) + '\n');
  rmSync(dest, { recursive: true, force: true });
  renameSync(tmp, dest);
  return recorded;
}

function main() {
  if (argv.includes('--list')) {
    for (const e of CORPUS) process.stdout.write(`${e.id.padEnd(20)} ${e.what}\n`);
    return 0;
  }
  mkdirSync(cache, { recursive: true });
  setUpApt();
  if (listsAge() > LIST_MAX_AGE_MS) refreshLists(listsAge() === Infinity ? 'none yet' : 'older than a day');
  const manifest = readManifest();
  manifest.entries ??= {};
  let failed = 0;
  for (const entry of CORPUS) {
    if (only && !only.has(entry.id)) continue;
    const have = manifest.entries[entry.id];
    const present = have && existsSync(join(cache, entry.id, '.complete'));
    try {
      let pkgs = resolveEntry(entry);
      if (!pkgs && refreshLists(`no build of ${entry.id} in the lists`)) pkgs = resolveEntry(entry);
      if (!pkgs) {
        if (present) {
          log(
            `fetch-corpus: ${entry.id}: no longer served; keeping ${have.packages.map((p) => `${p.name} ${p.version}`).join(', ')}`,
          );
          manifest.entries[entry.id] = { ...have, served: false };
          continue;
        }
        throw new Error('no Debian package of this series is served in ' + entry.packages[0].suites.join(', '));
      }
      const same =
        present &&
        have.packages.length === pkgs.length &&
        have.packages.every((p, i) => p.name === pkgs[i].name && p.version === pkgs[i].version);
      if (same) {
        manifest.entries[entry.id] = { ...have, served: true };
        continue;
      }
      const recorded = fetchEntry(entry, pkgs);
      manifest.entries[entry.id] = {
        id: entry.id,
        what: entry.what,
        packages: recorded,
        fetched: new Date().toISOString(),
        served: true,
      };
      writeManifest(manifest);
      log(`fetch-corpus: ${entry.id}: ${recorded.map((p) => `${p.name} ${p.version}`).join(', ')}`);
    } catch (e) {
      failed++;
      const msg = (e.stderr?.toString().trim().split('\n').pop() || e.message).split('\n')[0];
      process.stderr.write(`fetch-corpus: ${entry.id}: ${msg}\n`);
    }
  }
  writeManifest(manifest);
  return failed ? 1 : 0;
}

process.exit(main());
