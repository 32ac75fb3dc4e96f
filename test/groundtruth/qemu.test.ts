/**
 * Ground truth from a real boot (scripts/qemu-groundtruth.mjs): Debian's 6.1 kernel under
 * qemu-system-x86_64 (TCG, named CPU models) loads xfs.ko; the module's executable sections read back
 * from /proc/kcore are compared byte for byte with (1) the file relocated independently of textpoke and
 * (2) textpoke's patched view for the features and mitigations the guest reported.
 *
 * Needs qemu-system-x86_64, busybox-static, cpio and gcc's static libc (CI installs
 * .ci/apt-packages.txt). Without qemu this fails, unless TEXTPOKE_NO_QEMU=1 opts out explicitly.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { corpus, repoRoot } from '../support/corpus.js';
import { tempDir } from '../support/build.js';

const optOut = process.env.TEXTPOKE_NO_QEMU === '1';
const haveQemu = spawnSync('sh', ['-c', 'command -v qemu-system-x86_64'], { encoding: 'utf8' }).status === 0;

interface Diff {
  section: string;
  where: string;
  addr: string;
  length: number;
  tables: string[];
  class: string;
  guest: { hex: string; asm: string };
  textpoke: { hex: string; asm: string };
}
interface SectionResult {
  name: string;
  size: number;
  unresolved: number;
  reference: { ranges: number; bytes: number; byTable: Record<string, number> };
  textpoke?: { ranges: number; bytes: number; byClass: Record<string, number>; diffs: Diff[] };
}
interface Run {
  model: string;
  guest: {
    release: string;
    done: boolean;
    insmod: string[];
    errors: string[];
    flags: string[];
    vulnerabilities: Record<string, string>;
    anchors: Record<string, string>;
    modules: Record<string, { sections: Record<string, string>; dumps: Record<string, { addr: string; size: number }> }>;
  };
  comparison: {
    ok: boolean;
    text: string | null;
    modules: { module: string; cpu: string | null; note?: string; sections: SectionResult[] }[];
  };
}

let runs: Run[] = [];
let scriptOut = '';

function boot(): Run[] {
  if (runs.length) return runs;
  if (!haveQemu) {
    throw new Error('qemu-system-x86_64 is not installed: install the packages in .ci/apt-packages.txt, or set TEXTPOKE_NO_QEMU=1 to opt out of the ground-truth test');
  }
  corpus.vmlinuz61; // fails with the corpus hint when missing
  const out = join(tempDir(), 'groundtruth.json');
  const r = spawnSync(process.execPath, [join(repoRoot, 'scripts/qemu-groundtruth.mjs'), '--json', out], {
    encoding: 'utf8',
    maxBuffer: 1 << 28,
    timeout: 360_000,
  });
  scriptOut = `${r.stdout}\n${r.stderr}`;
  assert.notEqual(r.status, 2, `qemu-groundtruth.mjs could not run:\n${scriptOut}`);
  runs = (JSON.parse(readFileSync(out, 'utf8')) as { runs: Run[] }).runs;
  return runs;
}

test('ground truth: each CPU model boots the 6.1 kernel, loads xfs and dumps its executable sections', { skip: optOut ? 'TEXTPOKE_NO_QEMU=1' : false, timeout: 420_000 }, async () => {
  const rs = boot();
  assert.deepEqual(rs.map((r) => r.model), ['Skylake-Client-IBRS', 'EPYC-Rome']);
  for (const r of rs) {
    const g = r.guest;
    assert.ok(g.done, `${r.model}: the guest did not finish\n${scriptOut}`);
    assert.deepEqual(g.errors, [], `${r.model}: guest errors`);
    assert.equal(g.release, '6.1.0-47-amd64');
    assert.deepEqual(g.insmod, ['crc32c_generic.ko', 'libcrc32c.ko', 'xfs.ko']);
    assert.equal(r.comparison.text, 'ffffffff81000000', `${r.model}: nokaslr`);
    assert.ok(g.flags.includes('lm') && g.flags.length > 20, `${r.model}: cpuinfo flags`);
    assert.match(g.vulnerabilities.spectre_v2 ?? '', /Mitigation/);
    const xfs = g.modules.xfs;
    assert.ok(xfs, `${r.model}: no xfs sections`);
    const dumped = Object.keys(xfs.dumps).sort();
    assert.deepEqual(dumped, ['.altinstr_replacement', '.exit.text', '.static_call.text', '.text', '.text.unlikely']);
    assert.equal(xfs.dumps['.text']!.size, 0xc2152);
    for (const [name, d] of Object.entries(xfs.dumps)) assert.equal(d.addr, xfs.sections[name], `${r.model} ${name}: dump address`);
  }
});

test('ground truth: the independently relocated, unpatched xfs.ko differs from the guest only at patch sites', { skip: optOut ? 'TEXTPOKE_NO_QEMU=1' : false, timeout: 420_000 }, () => {
  for (const r of boot()) {
    const secs = r.comparison.modules[0]!.sections;
    const text = secs.find((s) => s.name === '.text')!;
    // Every relocation resolved (kernel symbols from the guest's kallsyms, libcrc32c's from its module symbols).
    for (const s of secs) assert.equal(s.unresolved, 0, `${r.model} ${s.name}: unresolved relocations`);
    // The kernel patched thousands of sites (returns, ftrace NOPs, static calls) ...
    assert.ok(text.reference.ranges > 5000, `${r.model}: only ${text.reference.ranges} patched ranges`);
    assert.ok((text.reference.byTable['.return_sites'] ?? 0) > 2500);
    assert.ok((text.reference.byTable['__mcount_loc'] ?? 0) > 2000);
    assert.ok((text.reference.byTable['.static_call_sites'] ?? 0) > 1000);
    // ... and every differing byte lies in some patch site: the dump and the relocation model are exact.
    for (const s of secs) assert.equal(s.reference.byTable['no site'] ?? 0, 0, `${r.model} ${s.name}: differences outside every patch site`);
  }
});
