/**
 * The package as a user gets it: `npm pack` the built tree, install the tarball into a scratch project under a
 * temp dir, and drive the public API (`import … from 'textpoke'`) from a script there, on a real module of the
 * 6.1 corpus: read it, detect it, read its sites, apply a CPU preset, run the checks, render the reports.
 * Oracles are independent of textpoke: readelf's section sizes divided by the entry sizes of the 6.1 kernel's
 * structs, cross-checked against the number of relocations of each table (each entry has a fixed number).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { imageFromBytes, detectTarget, readSites } from '../../src/index.js';
import { corpus, repoRoot } from '../support/corpus.js';
import { LINUX61_ENTRY, readelfTableCounts } from '../support/readelf.js';

/** Relocations per entry of 6.1's tables (one per pointer or offset field of the struct). */
const RELOCS_PER_ENTRY_61: Record<string, number> = {
  '.altinstructions': 2,
  '.parainstructions': 1,
  '.static_call_sites': 2,
  __jump_table: 3,
  '.retpoline_sites': 1,
  '.return_sites': 1,
  '.smp_locks': 1,
  __mcount_loc: 1,
};

const STEP_MS = 150_000;

function run(cmd: string, args: string[], cwd: string): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, {
    cwd,
    encoding: 'utf8',
    timeout: STEP_MS,
    maxBuffer: 64 << 20,
    env: { ...process.env, npm_config_update_notifier: 'false' },
  });
  assert.ok(!r.error, `${cmd} ${args.join(' ')}: ${r.error?.message}`);
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')} exited ${r.status}:\n${r.stderr}`);
  return r;
}

const SCRIPT = `
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  imageFromBytes, detectTarget, readSites, featureTable, parseCpu, applyToImage, PatchedView, prepare, runChecks,
  CHECKS, renderFile, renderJson, renderSarif,
} from 'textpoke';
import { analyse } from 'textpoke/html';
import { mount } from 'textpoke/viewer';
import { PROTOCOLS } from 'textpoke/model';
import { callRel32, hex } from 'textpoke/x86';

const out = [];
for (const path of process.argv.slice(2)) {
  const img = await imageFromBytes(readFileSync(path), path);
  const target = detectTarget(img);
  const set = readSites(img, target.profile);
  const cpu = parseCpu('intel-server', featureTable(target.profile.features));
  const view = applyToImage(img, target, cpu);
  const prepared = prepare(img, { cpu: 'intel-server' });
  const findings = runChecks(prepared.view);
  const report = { path, target: { os: target.os, version: target.version, profile: target.profile.id }, view: prepared.view.describe, findings, errors: prepared.tableErrors };
  out.push({
    elfSha256: createHash('sha256').update(img.bytes).digest('hex'),
    os: target.os, version: target.version, profile: target.profile.id,
    counts: set.counts, sites: set.sites.length, siteErrors: set.errors,
    isPatchedView: view instanceof PatchedView, patches: view.patches.map((p) => [p.addr, p.before.length, p.after.length]),
    checkIds: CHECKS.map((c) => c.id), findings, text: renderFile(path, findings),
    json: JSON.parse(renderJson([report])), sarif: JSON.parse(renderSarif([report])),
  });
}
process.stdout.write(JSON.stringify({
  files: out,
  subpaths: [typeof analyse, typeof mount, PROTOCOLS.length > 0, hex(callRel32(0x1000n, 0x2000n))],
}));
`;

/** A TypeScript consumer of every entry point; the compiler must see real types, not `any`. */
const CONSUMER = `
import {
  applyToImage, detectTarget, featureTable, type Finding, imageFromBytes, parseCpu, PatchedView, prepare, readSites,
  renderSarif, runChecks,
} from 'textpoke';
import { analyse, type ReportData } from 'textpoke/html';
import { mount } from 'textpoke/viewer';
import { explore, findScenario } from 'textpoke/model';
import { callRel32, jmpIndirect, Register } from 'textpoke/x86';

export async function check(bytes: Uint8Array, path: string): Promise<{ findings: Finding[]; sarif: string; sites: number; view: PatchedView }> {
  const img = await imageFromBytes(bytes, path);
  const target = detectTarget(img);
  if (!target.profile) throw new Error(target.note);
  const sites: number = readSites(img, target.profile).sites.length;
  const view = applyToImage(img, target, parseCpu('intel-server', featureTable(target.profile.features)));
  const findings = runChecks(prepare(img, { cpu: 'intel-server' }).view);
  // @ts-expect-error a Target is no number (were the declarations 'any', this line would compile)
  const wrong: number = target;
  void wrong;
  return { findings, sarif: renderSarif([{ path, findings, errors: [] }]), sites, view };
}
export const pieces = [analyse, mount, explore, findScenario, callRel32(0n, 5n), jmpIndirect(Register.R11)];
export type Data = ReportData;
`;

const CONSUMER_TSCONFIG = {
  compilerOptions: {
    target: 'ES2022',
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    lib: ['ES2022', 'DOM'],
    strict: true,
    noEmit: true,
    skipLibCheck: false,
    types: [],
  },
  files: ['consumer.ts'],
};

test('npm pack: the installed package reads a module, applies a CPU and runs the checks through its public API', {
  timeout: 4 * STEP_MS,
}, async () => {
  const ko = corpus.module61('fs/xfs/xfs.ko');
  // kvm.ko has nospec-branch findings on the 6.1 build; xfs.ko has none.
  const kvm = corpus.module61('arch/x86/kvm/kvm.ko');
  const xz = join(corpus.modules612, 'fs', 'xfs', 'xfs.ko.xz');
  const dir = mkdtempSync(join(tmpdir(), 'textpoke-pack-'));
  try {
    run('npm', ['pack', '--silent', '--ignore-scripts', '--pack-destination', dir], repoRoot);
    const tgz = readdirSync(dir).find((f) => f.endsWith('.tgz'));
    assert.ok(tgz, 'npm pack wrote no tarball');
    const listing = run('tar', ['-tzf', join(dir, tgz)], dir)
      .stdout.split('\n')
      .filter(Boolean);
    assert.ok(
      listing.includes('package/dist/src/index.js') && listing.includes('package/dist/src/index.d.ts'),
      'entry point and its declarations ship',
    );
    assert.ok(listing.includes('package/bin/textpoke.js'), 'the command ships');
    assert.deepEqual(
      listing.filter((f) => /^package\/(dist\/test|test|src|scripts|web|bench)\//.test(f)),
      [],
      'no tests, sources or tooling ship',
    );
    // Every entry point package.json exports, with its declarations.
    const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as {
      exports: Record<string, string | { types: string; default: string }>;
    };
    for (const [sub, target] of Object.entries(pkg.exports)) {
      for (const file of typeof target === 'string' ? [target] : [target.types, target.default]) {
        assert.ok(listing.includes(`package/${file.replace(/^\.\//, '')}`), `${sub}: ${file} ships`);
      }
    }

    const proj = join(dir, 'proj');
    run('mkdir', [proj], dir);
    writeFileSync(join(proj, 'package.json'), JSON.stringify({ name: 'scratch', private: true, type: 'module' }));
    run('npm', ['install', '--no-audit', '--no-fund', '--no-package-lock', '--prefer-offline', join(dir, tgz)], proj);
    writeFileSync(join(proj, 'use.mjs'), SCRIPT);
    const both = JSON.parse(run(process.execPath, ['use.mjs', ko, kvm, xz], proj).stdout);
    assert.deepEqual(both.subpaths, ['function', 'function', true, 'e8 fb 0f 00 00'], 'the subpaths resolve');
    const [got, kvmGot, xzGot] = both.files;
    // A compressed module: unpacked by the installed package's xz decoder to the bytes xz(1) gives, and read
    // as the library in this tree reads it.
    const unpacked = spawnSync('xz', ['-dc', xz], { maxBuffer: 256 << 20, timeout: STEP_MS });
    assert.equal(unpacked.status, 0, 'xz -dc');
    assert.equal(xzGot.elfSha256, createHash('sha256').update(unpacked.stdout).digest('hex'));
    const here = await imageFromBytes(readFileSync(xz), xz);
    const hereSites = readSites(here, detectTarget(here).profile!);
    assert.match(xzGot.version, /^6\.12\./);
    assert.deepEqual(xzGot.counts, hereSites.counts);
    assert.ok(xzGot.sites > 1000);

    assert.equal(got.os, 'linux');
    assert.match(got.version, /^6\.1\.0-\d+-amd64$/);
    // Site counts: one per table entry, as readelf's sizes say, and as many as each table's relocations
    // (24-byte Elf64_Rela) divided by the relocations per entry.
    const expected = readelfTableCounts(ko, LINUX61_ENTRY);
    const byRelocs = readelfTableCounts(
      ko,
      Object.fromEntries(Object.entries(RELOCS_PER_ENTRY_61).map(([t, n]) => [`.rela${t}`, 24 * n])),
    );
    for (const [table, n] of Object.entries(expected)) {
      assert.ok(Number.isInteger(n), `${table}: size is a whole number of entries`);
      assert.equal(byRelocs[`.rela${table}`], n, `${table}: relocations per entry`);
    }
    assert.ok(Object.keys(expected).length >= 6, `xfs.ko has its tables (${Object.keys(expected)})`);
    assert.deepEqual(got.counts, expected);
    assert.equal(
      got.sites,
      Object.values(expected).reduce((a, b) => a + b, 0),
    );
    assert.deepEqual(got.siteErrors, []);
    // The CPU: intel-server turns retpoline sites into plain indirect calls, so the patched view has writes.
    assert.ok(got.isPatchedView);
    assert.ok(got.patches.length > 0, 'intel-server patches xfs.ko');
    for (const [, before, after] of got.patches)
      assert.equal(before, after, 'a patch keeps the length of what it replaces');
    // The checks: none on xfs.ko; on kvm.ko, findings of known checks in the documented shape, at symbols
    // readelf lists, rendered alike in text, JSON and SARIF.
    assert.deepEqual(got.findings, []);
    assert.equal(got.sarif.runs[0].results.length, 0);
    assert.ok(kvmGot.findings.length > 0, 'kvm.ko has findings');
    const symbols = new Set(
      run('readelf', ['-s', '-W', kvm], repoRoot)
        .stdout.split('\n')
        .map((l) => l.trim().split(/\s+/)[7]),
    );
    for (const f of kvmGot.findings) {
      assert.ok(kvmGot.checkIds.includes(f.check), `unknown check ${f.check}`);
      assert.ok(['error', 'warning', 'info'].includes(f.severity));
      assert.match(f.address, /^0x[0-9a-f]+$/);
      assert.ok(symbols.has(f.symbol), `finding at ${f.symbol}, a symbol readelf does not list`);
      assert.ok(Number.isInteger(f.offset) && f.offset >= 0);
      assert.ok(f.message.length > 0);
      assert.ok(Array.isArray(f.related));
    }
    assert.equal(kvmGot.text.split('\n').filter((l: string) => / textpoke: /.test(l)).length, kvmGot.findings.length);
    assert.deepEqual(
      kvmGot.json.files[0].findings.map((f: { address: string }) => f.address),
      kvmGot.findings.map((f: { address: string }) => f.address),
    );
    assert.equal(kvmGot.sarif.version, '2.1.0');
    assert.equal(kvmGot.sarif.runs[0].results.length, kvmGot.findings.length);

    // docs/library.md's example runs as written.
    const doc = readFileSync(join(repoRoot, 'docs', 'library.md'), 'utf8');
    const example = /<!-- library-example -->\n```js\n([\s\S]*?)```/.exec(doc);
    assert.ok(example, 'docs/library.md has its example');
    writeFileSync(join(proj, 'check.mjs'), example[1]);
    const ran = run(process.execPath, ['check.mjs', kvm], proj).stdout;
    assert.match(ran, new RegExp(`^${kvmGot.sites} sites`, 'm'));
    assert.match(ran, /^\d+ patches for intel-server$/m);
    assert.match(ran, new RegExp(`^SARIF: ${kvmGot.findings.length} results$`, 'm'));

    // The declarations: a strict TypeScript consumer compiles against the installed package (its .d.ts checked too).
    writeFileSync(join(proj, 'consumer.ts'), CONSUMER);
    writeFileSync(join(proj, 'tsconfig.json'), JSON.stringify(CONSUMER_TSCONFIG));
    run(process.execPath, [join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', proj], proj);

    // The command ships too.
    const cli = run(join(proj, 'node_modules', '.bin', 'textpoke'), ['sites', '--json', ko], proj);
    const listed = JSON.parse(cli.stdout);
    assert.ok(JSON.stringify(listed).includes('.retpoline_sites'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
