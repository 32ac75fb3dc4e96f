/**
 * Ground truth from real boots (scripts/qemu-xen-groundtruth.mjs): Debian's Xen 4.17 and 4.20 under
 * qemu-system-x86_64 (TCG, six CPU model / command-line runs each) patch themselves and halt after failing to
 * build dom0; .text read back through the QEMU monitor is compared byte for byte with (1) xen-syms as linked and
 * (2) textpoke's patched view for the features Xen set (boot_cpu_data), and for the spec `--cpu-from` derives
 * from the boot log.
 *
 * Needs qemu-system-x86_64 (Debian qemu-system-x86). Without it this fails at once, unless TEXTPOKE_NO_QEMU=1
 * opts out explicitly. The script kills every VM it started on every exit path; the test gives it 10 minutes.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { corpus, repoRoot } from '../support/corpus.js';
import { tempDir } from '../support/build.js';

const optOut = process.env.TEXTPOKE_NO_QEMU === '1';
const skip = optOut ? 'TEXTPOKE_NO_QEMU=1' : false;
const haveQemu = spawnSync('sh', ['-c', 'command -v qemu-system-x86_64'], { encoding: 'utf8' }).status === 0;

interface Site {
  addr: string;
  where: string;
  bytes: number;
  class: string;
  detail?: string;
  slot?: string;
  features: string[];
  textpoke: string;
  guest: string;
}
interface Comparison {
  xen: string;
  model: string;
  ok: boolean;
  cpu: { vendor: string; family: number; model: number; features: string[]; nops: string };
  spec: string;
  specFromLog: string;
  logDiff: { bytes: number; sites: number } | null;
  cli?: { ok: boolean; status: number };
  altcalls: { direct: number; ud: number; indirect: number };
  sections: {
    '.text': {
      size: number;
      reference: { bytes: number; altSites: number; cfClobberBytes: number; outsideSites: number };
      textpoke: { bytes: number; sites: number };
    };
  };
  classes: Record<string, number>;
  sites: Site[];
}
interface Run {
  boot: {
    xen: string;
    model: string;
    halted: boolean;
    timedOut: boolean;
    log: string[];
    dumps: Record<string, { addr: string; size: number }>;
  };
  comparison?: Comparison;
}

const MODELS = [
  'Skylake-Client-IBRS',
  'EPYC-Rome',
  'qemu64',
  'Penryn',
  'EPYC-Rome:spec-ctrl=no',
  'Skylake-Client-IBRS:spec-ctrl=bti-thunk=lfence,bhb-seq=long,lock-harden',
];

let runs: Run[] | undefined;
let out = '';
let status: number | null = null;
let failure: Error | undefined;

/** Runs the script once for all tests; a failure is remembered, not retried. */
function boot(): Run[] {
  if (runs) return runs;
  if (failure) throw failure;
  if (!haveQemu) {
    failure = new Error(
      'qemu-system-x86_64 is not installed (Debian package qemu-system-x86); set TEXTPOKE_NO_QEMU=1 to opt out of the ground-truth test',
    );
    throw failure;
  }
  corpus.xenGz417;
  corpus.xenGz420;
  corpus.xenSyms;
  corpus.xenSyms420; // fail with the corpus hint when missing
  const json = join(tempDir(), 'xen-groundtruth.json');
  // Hard limit: SIGTERM makes the script kill its VMs before it exits.
  const r = spawnSync(process.execPath, [join(repoRoot, 'scripts/qemu-xen-groundtruth.mjs'), '--json', json], {
    encoding: 'utf8',
    maxBuffer: 1 << 28,
    timeout: 540_000,
  });
  out = `${r.stdout}\n${r.stderr}`;
  status = r.status;
  if (r.error || r.signal) {
    failure = new Error(
      `qemu-xen-groundtruth.mjs did not finish (${r.error?.message ?? r.signal}):\n${out.slice(-3000)}`,
    );
    throw failure;
  }
  if (r.status === 2) {
    failure = new Error(`qemu-xen-groundtruth.mjs could not run:\n${out}`);
    throw failure;
  }
  runs = JSON.parse(readFileSync(json, 'utf8')) as Run[];
  return runs;
}

test('Xen ground truth: both hypervisors boot on every model, patch themselves, halt after the dom0 panic, and .text is read back', {
  skip,
  timeout: 600_000,
}, () => {
  const rs = boot();
  assert.deepEqual(
    rs.map((r) => `${r.boot.xen} ${r.boot.model}`),
    ['4.17', '4.20'].flatMap((x) => MODELS.map((m) => `${x} ${m}`)),
  );
  for (const r of rs) {
    const b = r.boot;
    assert.ok(b.halted, `${b.xen} ${b.model}: did not halt${b.timedOut ? ' (timed out)' : ''}\n${out.slice(-3000)}`);
    assert.ok(
      b.log.some((l) => l.includes(`Xen version ${b.xen}.`)),
      `${b.xen} ${b.model}: another Xen booted`,
    );
    assert.ok(
      b.log.some((l) => l.includes('Could not construct domain 0')),
      `${b.xen} ${b.model}: did not stop at dom0`,
    );
    // Both _apply_alternatives passes ran ("alt table" is printed by each).
    assert.equal(b.log.filter((l) => l.includes('alt table')).length, 2, `${b.xen} ${b.model}: alternative passes`);
    assert.equal(b.dumps['.text']!.addr, '0xffff82d040200000', `${b.xen} ${b.model}: .text at _stext`);
  }
});

test('Xen ground truth: xen-syms as linked differs from the booted .text only inside alternative sites', {
  skip,
  timeout: 600_000,
}, () => {
  for (const r of boot()) {
    const c = r.comparison!;
    const t = c.sections['.text'];
    assert.equal(t.size, c.xen === '4.17' ? 1443715 : 1450638);
    assert.equal(t.reference.outsideSites, 0, `${c.xen} ${c.model}: bytes changed outside every alternative site`);
    assert.ok(
      t.reference.bytes > 2000 && t.reference.altSites > 500,
      `${c.xen} ${c.model}: only ${t.reference.bytes} bytes in ${t.reference.altSites} sites patched`,
    );
    // TCG has no CET: the cf_clobber ENDBR64 poisoning does not run.
    assert.equal(t.reference.cfClobberBytes, 0);
  }
});

test("Xen ground truth: textpoke apply reproduces every patched byte except the platform timer's altcalls (the machine picks the timer)", {
  skip,
  timeout: 600_000,
}, async () => {
  const { EXPLAINED } = (await import(join(repoRoot, 'scripts/qemu/xen-compare.mjs'))) as {
    EXPLAINED: Record<string, string>;
  };
  assert.deepEqual(Object.keys(EXPLAINED), ['altcall-platform-timer']);
  for (const r of boot()) {
    const c = r.comparison!;
    const bad = c.sites.filter((s) => !EXPLAINED[s.class]);
    assert.deepEqual(
      bad
        .slice(0, 5)
        .map((s) => `${s.addr} ${s.where} ${s.class} ${s.detail ?? ''}: textpoke ${s.textpoke} | guest ${s.guest}`),
      [],
      `${c.xen} ${c.model}: ${bad.length} unexplained sites`,
    );
    // Exactly the two HPET altcalls (read_counter, time_resume), each a 5-byte call plus its NOP.
    assert.deepEqual(
      c.sites.map((s) => `${s.where.replace(/\+.*/, '')} ${s.slot?.replace(/\+.*/, '')}`),
      ['read_counter plt_src', 'time_resume plt_src'],
    );
    assert.ok(
      c.sections['.text'].textpoke.bytes <= 6,
      `${c.xen} ${c.model}: ${c.sections['.text'].textpoke.bytes} bytes differ`,
    );
    // The altcalls were resolved from the binary, not left indirect.
    assert.equal(c.altcalls.indirect, 0);
    assert.ok(c.altcalls.direct + c.altcalls.ud > 250, `${c.xen} ${c.model}: ${JSON.stringify(c.altcalls)}`);
    if (c.model.startsWith('EPYC-Rome'))
      assert.ok(c.altcalls.direct > 150, `${c.xen} ${c.model}: hvm_funcs (SVM) altcalls resolved`);
    // The runs differ where they should: K8 NOPs on family 0xf, hardening off with spec-ctrl=no, the LFENCE thunk.
    // K8 NOPs on AMD family 0xf (qemu64) and Intel family 6 model 0x17 (Penryn), P6 elsewhere.
    assert.equal(c.cpu.nops, c.model === 'qemu64' || c.model === 'Penryn' ? 'k8' : 'p6');
    assert.equal(c.cpu.features.includes('X86_FEATURE_SC_NO_BRANCH_HARDEN'), c.model.endsWith('spec-ctrl=no'));
    assert.equal(c.cpu.features.includes('X86_FEATURE_IND_THUNK_LFENCE'), c.model.includes('bti-thunk=lfence'));
    assert.equal(c.cpu.features.includes('X86_FEATURE_SC_NO_LOCK_HARDEN'), !c.model.includes('lock-harden'));
  }
  assert.equal(status, 0, out.slice(-3000));
});

test("Xen ground truth: --cpu-from on the boot log (+ the QEMU model's CPUID words) gives the same .text, library and CLI", {
  skip,
  timeout: 600_000,
}, () => {
  for (const r of boot()) {
    const c = r.comparison!;
    assert.ok(c.specFromLog?.startsWith('none,'), `${c.xen} ${c.model}: ${c.specFromLog}`);
    assert.equal(c.logDiff?.bytes, 0, `${c.xen} ${c.model}: the boot-log spec gives other text`);
    assert.ok(c.cli?.ok, `${c.xen} ${c.model}: textpoke apply --cpu-from: ${JSON.stringify(c.cli)}`);
  }
});
