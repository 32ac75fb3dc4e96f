#!/usr/bin/env node
// Measures the build matrix of docs/sites.md ("Builds read") on the corpus as fetched (see its manifest):
// for each build, what detection chose, the table totals, unnamed features and warnings, the writes of
// `apply` under every preset with verifyView's problems, and `diff`, `check` and `surface` runs through the
// CLI (every module of a tree through the library for apply; a sample of modules through the CLI).
//
//   npm run build && node scripts/target-matrix.mjs [--every N] [ids...]   (prints a Markdown table and JSON)
//
// One-off measurement: it reads whole module trees (a few minutes); the test suite samples instead.
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => join(ROOT, 'dist', p);
const { imageFromBytes } = await import(dist('src/elf/load.js'));
const { applyPatches, parseCpu, PRESET_IDS, verifyView } = await import(dist('src/patch/index.js'));
const { readSites } = await import(dist('src/sites/read.js'));
const { crossCheckSites } = await import(dist('src/sites/crosscheck.js'));
const { detectTarget } = await import(dist('src/target/detect.js'));
const { featureTable } = await import(dist('src/target/features/index.js'));
const { expandPaths } = await import(dist('src/cli/files.js'));

const corpus = join(ROOT, '.cache', 'corpus');
const manifest = JSON.parse(readFileSync(join(corpus, 'manifest.json'), 'utf8')).entries;
const args = process.argv.slice(2);
let every = 40;
const ei = args.indexOf('--every');
if (ei >= 0) {
  every = Number(args[ei + 1]);
  args.splice(ei, 2);
}

function modulesDir(id) {
  for (const base of [join(corpus, id, 'usr/lib/modules'), join(corpus, id, 'lib/modules')]) {
    if (!existsSync(base)) continue;
    const rel = readdirSync(base).filter((d) => existsSync(join(base, d, 'kernel')));
    if (rel.length === 1) return join(base, rel[0], 'kernel');
  }
  return undefined;
}
function xenSyms(id) {
  const d = join(corpus, id, 'usr/lib/debug/boot');
  const name = existsSync(d) ? readdirSync(d).find((n) => n.startsWith('xen-syms-')) : undefined;
  return name ? join(d, name) : undefined;
}

const BUILDS = [
  'xen-4.17-bookworm',
  'xen-4.17',
  'xen-4.20',
  'linux-6.1',
  'linux-6.12',
  'linux-6.12-trixie',
  'linux-7',
  'linux-7-cloud',
  'linux-7-rt',
];

function cli(argv) {
  const r = spawnSync(process.execPath, [join(ROOT, 'bin/textpoke.js'), ...argv], {
    encoding: 'utf8',
    maxBuffer: 1 << 30,
    timeout: 600_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const rows = [];
for (const id of args.length ? args : BUILDS) {
  const m = manifest[id];
  if (!m) {
    console.error(`${id}: not in the manifest`);
    continue;
  }
  const xen = xenSyms(id);
  const files = xen ? [xen] : expandPaths([modulesDir(id)]);
  const row = {
    id,
    build: m.packages[0].version,
    files: files.length,
    profiles: {},
    features: {},
    totals: {},
    unnamed: 0,
    alternatives: 0,
    warnings: 0,
    notes: 0,
    apply: {},
    verify: 0,
    bugs: 0,
    diff: 0,
    check: {},
    surface: 0,
    crashes: 0,
  };
  for (const p of PRESET_IDS) row.apply[p] = 0;
  for (const f of files) {
    const img = await imageFromBytes(readFileSync(f), f);
    const t = detectTarget(img);
    row.profiles[t.profile.id] = (row.profiles[t.profile.id] ?? 0) + 1;
    row.features[t.profile.features] = (row.features[t.profile.features] ?? 0) + 1;
    if (t.note) row.notes++;
    const set = readSites(img, t.profile);
    for (const [k, v] of Object.entries(set.counts)) row.totals[k] = (row.totals[k] ?? 0) + v;
    const ft = featureTable(t.profile.features);
    for (const s of set.sites)
      if (s.table === '.altinstructions') {
        row.alternatives++;
        if (!ft.byNumber.has(s.feature)) row.unnamed++;
      }
    row.warnings += (t.warnings?.length ?? 0) + crossCheckSites(t, set.sites).length;
    for (const p of PRESET_IDS) {
      const r = applyPatches(img, t.profile, parseCpu(p, ft), { sites: set.sites });
      row.apply[p] += r.view.patches.length;
      row.verify += verifyView(r.view).length;
      row.bugs += r.view.findings.filter((x) => x.kind === 'bug').length;
    }
  }
  // CLI runs: the Xen file, or every `every`-th module.
  const sample = files.filter((_, i) => i % every === 0);
  for (const f of sample) {
    const d = cli(['diff', '--summary', '--cpu', 'intel-server', f]);
    if (d.code !== 0 || /internal error/.test(d.err)) row.crashes++;
    else row.diff++;
    const s = cli(['surface', '--json', f]);
    if (s.code !== 0 || /internal error/.test(s.err)) row.crashes++;
    else row.surface++;
  }
  const c = cli(['check', '--json', '-j', '1', ...sample]);
  if (c.code === 2 || /internal error/.test(c.err)) row.crashes++;
  const doc = JSON.parse(c.out);
  row.checkFiles = doc.files.length;
  for (const fl of doc.files) for (const fd of fl.findings) row.check[fd.check] = (row.check[fd.check] ?? 0) + 1;
  rows.push(row);
  console.error(`${id}: done`);
}

const n = (x) => x.toLocaleString('en-US');
console.log(
  '| build | files | profile (features) | alternatives (unnamed) | other tables | warnings | apply writes: ' +
    PRESET_IDS.join(' / ') +
    ' | verify problems, bug findings | diff, surface, check runs (crashes) | check findings |',
);
console.log('|---|---|---|---|---|---|---|---|---|---|');
for (const r of rows) {
  const other =
    Object.entries(r.totals)
      .filter(([k]) => k !== '.altinstructions')
      .map(([k, v]) => `${k} ${n(v)}`)
      .join(', ') || '-';
  console.log(
    `| ${r.id} ${r.build} | ${n(r.files)} | ${Object.keys(r.profiles).join(', ')} (${Object.keys(r.features).join(', ')}) | ${n(r.alternatives)} (${r.unnamed}) | ${other} | ${r.warnings} | ${PRESET_IDS.map((p) => n(r.apply[p])).join(' / ')} | ${r.verify}, ${r.bugs} | ${r.diff}, ${r.surface}, ${r.checkFiles} (${r.crashes}) | ${
      Object.entries(r.check)
        .map(([k, v]) => `${k} ${n(v)}`)
        .join(', ') || '0'
    } |`,
  );
}
console.log('\n' + JSON.stringify(rows));
