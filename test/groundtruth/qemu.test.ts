/**
 * Ground truth from a real boot (scripts/qemu-groundtruth.mjs): Debian's 6.1 kernel under
 * qemu-system-x86_64 (TCG, named CPU models) loads xfs.ko; the module's executable sections read back
 * from /proc/kcore are compared byte for byte with (1) the file relocated independently of textpoke and
 * (2) textpoke's patched view for the features and mitigations the guest reported.
 *
 * Needs qemu-system-x86_64, busybox-static, cpio and gcc's static libc (CI installs
 * scripts/setup-system.mjs, run by `npm test`). Without qemu this fails, unless TEXTPOKE_NO_QEMU=1 opts out explicitly.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { corpus, repoRoot } from '../support/corpus.js';
import { tempDir } from '../support/build.js';
import { sectionSize } from '../support/readelf.js';

const optOut = process.env.TEXTPOKE_NO_QEMU === '1';
/** qemu present and able to start (prints its version within 10 s); a missing one fails the tests at once. */
const qemuProbe = spawnSync('qemu-system-x86_64', ['--version'], {
  encoding: 'utf8',
  timeout: 10_000,
  killSignal: 'SIGKILL',
});
const haveQemu = !qemuProbe.error && qemuProbe.status === 0;

interface Diff {
  section: string;
  where: string;
  addr: string;
  length: number;
  tables: string[];
  class: string;
  explained: boolean;
  guest: { hex: string; asm: string };
  textpoke: { hex: string; asm: string };
}
interface SectionResult {
  name: string;
  size: number;
  unresolved: number;
  cliDiffers?: number;
  reference: { ranges: number; bytes: number; byTable: Record<string, number> };
  textpoke?: { ranges: number; bytes: number; byClass: Record<string, number>; diffs: Diff[] };
}
interface AttestObject {
  object: string;
  counts: Record<string, number>;
  errors: string[];
  sections: { name: string; size: number; compared: number; differing: number }[];
  unexplainedForms: Record<string, number>;
  explained?: { where: string; class: string; explanation: string }[];
  ftrace?: { where: string; explanation: string }[];
  unexplained?: { where: string; explanation: string; live: string; liveAsm: string[] }[];
}
interface AttestRun {
  ran: boolean;
  exit: number;
  counts: Record<string, number>;
  objects: AttestObject[];
}
interface Run {
  model: string;
  attest?: { ran: boolean; 'kernel-caps'?: AttestRun; 'cpu-host'?: AttestRun };
  guest: {
    release: string;
    done: boolean;
    insmod: string[];
    errors: string[];
    flags: string[];
    vulnerabilities: Record<string, string>;
    anchors: Record<string, string>;
    modules: Record<
      string,
      { sections: Record<string, string>; dumps: Record<string, { addr: string; size: number }> }
    >;
  };
  comparison: {
    ok: boolean;
    text: string | null;
    modules: {
      module: string;
      features?: { kernel?: { names: string[] } };
      cpu: string | null;
      note?: string;
      patches?: number;
      cli?: { status: number; error?: string };
      sections: SectionResult[];
    }[];
  };
}

let runs: Run[] = [];
let scriptOut = '';
let scriptStatus: number | null = null;

let bootError: unknown;

/** Runs the script once for all tests (a failure is remembered, not retried: one boot costs a minute). */
function boot(): Run[] {
  if (runs.length) return runs;
  if (bootError) throw bootError;
  try {
    return bootOnce();
  } catch (e) {
    bootError = e;
    throw e;
  }
}

function bootOnce(): Run[] {
  if (!haveQemu) {
    throw new Error(
      'qemu-system-x86_64 is missing or cannot start: install the Debian package qemu-system-x86 (npm test does, through scripts/setup-system.mjs), or set TEXTPOKE_NO_QEMU=1 to opt out of the ground-truth test',
    );
  }
  corpus.vmlinuz61; // fails with the corpus hint when missing
  const out = join(tempDir(), 'groundtruth.json');
  const r = spawnSync(process.execPath, [join(repoRoot, 'scripts/qemu-groundtruth.mjs'), '--attest', '--json', out], {
    encoding: 'utf8',
    maxBuffer: 1 << 28,
    timeout: 720_000,
    killSignal: 'SIGTERM', // the script kills its guests on SIGTERM; the runner's file limit kills the whole group
  });
  scriptOut = `${r.stdout}\n${r.stderr}`;
  scriptStatus = r.status;
  assert.notEqual(r.status, 2, `qemu-groundtruth.mjs could not run:\n${scriptOut}`);
  runs = (JSON.parse(readFileSync(out, 'utf8')) as { runs: Run[] }).runs;
  return runs;
}

test('ground truth: each CPU model boots the 6.1 kernel, loads xfs and kvm and dumps their executable sections', {
  skip: optOut ? 'TEXTPOKE_NO_QEMU=1' : false,
  timeout: 780_000,
}, async () => {
  const rs = boot();
  const xfsTextSize = sectionSize(corpus.module61('fs/xfs/xfs.ko'), '.text');
  assert.deepEqual(
    rs.map((r) => r.model),
    [
      'Skylake-Client-IBRS',
      'EPYC-Rome',
      'Skylake-Client-IBRS:spectre_v2=retpoline,lfence',
      'EPYC-Rome:mitigations=off',
    ],
  );
  const v2 = rs.map((r) => r.guest.vulnerabilities.spectre_v2 ?? '');
  assert.match(v2[0]!, /^Mitigation: Retpolines/);
  assert.match(v2[1]!, /^Mitigation: Retpolines/);
  assert.match(v2[2]!, /^Vulnerable: LFENCE/);
  assert.match(v2[3]!, /^Vulnerable/);
  assert.match(rs[1]!.guest.vulnerabilities.spec_rstack_overflow ?? '', /safe RET/);
  assert.match(rs[0]!.guest.vulnerabilities.indirect_target_selection ?? '', /Aligned branch\/return thunks/);
  for (const r of rs) {
    const g = r.guest;
    assert.ok(g.done, `${r.model}: the guest did not finish\n${scriptOut}`);
    assert.deepEqual(g.errors, [], `${r.model}: guest errors`);
    assert.equal(g.release, corpus.release61);
    assert.deepEqual(g.insmod, ['crc32c_generic.ko', 'libcrc32c.ko', 'xfs.ko', 'irqbypass.ko', 'kvm.ko']);
    assert.equal(r.comparison.text, 'ffffffff81000000', `${r.model}: nokaslr`);
    assert.ok(g.flags.includes('lm') && g.flags.length > 20, `${r.model}: cpuinfo flags`);
    const xfs = g.modules.xfs;
    assert.ok(xfs, `${r.model}: no xfs sections`);
    const dumped = Object.keys(xfs.dumps).sort();
    assert.deepEqual(dumped, ['.altinstr_replacement', '.exit.text', '.static_call.text', '.text', '.text.unlikely']);
    assert.equal(xfs.dumps['.text']!.size, xfsTextSize, `${r.model}: .text dump as long as readelf's .text of xfs.ko`);
    const kvm = g.modules.kvm;
    assert.ok(kvm, `${r.model}: no kvm sections`);
    assert.deepEqual(Object.keys(kvm.dumps).sort(), [
      '.altinstr_aux',
      '.altinstr_replacement',
      '.exit.text',
      '.noinstr.text',
      '.static_call.text',
      '.text',
      '.text.unlikely',
    ]);
    for (const m of [xfs, kvm])
      for (const [name, d] of Object.entries(m.dumps))
        assert.equal(d.addr, m.sections[name], `${r.model} ${name}: dump address`);
  }
});

test('ground truth: the independently relocated, unpatched modules differ from the guest only at patch sites', {
  skip: optOut ? 'TEXTPOKE_NO_QEMU=1' : false,
  timeout: 780_000,
}, () => {
  for (const r of boot()) {
    assert.deepEqual(
      r.comparison.modules.map((m) => m.module),
      ['xfs', 'kvm'],
    );
    for (const m of r.comparison.modules) {
      // Every relocation resolved: kernel symbols from the guest's kallsyms, other modules' exports (libcrc32c,
      // irqbypass) from their __ksymtab entries, kvm's per-cpu section from its per-cpu symbols.
      for (const s of m.sections)
        assert.equal(s.unresolved, 0, `${r.model} ${m.module} ${s.name}: unresolved relocations`);
      // Every differing byte lies in some patch site: the dump and the relocation model are exact.
      for (const s of m.sections)
        assert.equal(
          s.reference.byTable['no site'] ?? 0,
          0,
          `${r.model} ${m.module} ${s.name}: differences outside every patch site`,
        );
    }
    // The kernel patched thousands of sites (returns, ftrace NOPs, static calls), kvm's paravirt and alternatives too.
    const text = r.comparison.modules[0]!.sections.find((s) => s.name === '.text')!;
    assert.ok(text.reference.ranges > 5000, `${r.model}: only ${text.reference.ranges} patched ranges`);
    assert.ok((text.reference.byTable['.return_sites'] ?? 0) > 2500);
    assert.ok((text.reference.byTable['__mcount_loc'] ?? 0) > 2000);
    assert.ok((text.reference.byTable['.static_call_sites'] ?? 0) > 1000);
    const kt = r.comparison.modules[1]!.sections.find((s) => s.name === '.text')!;
    assert.ok((kt.reference.byTable['.parainstructions'] ?? 0) > 40, `${r.model}: kvm paravirt sites`);
    assert.ok((kt.reference.byTable['.altinstructions'] ?? 0) > 50, `${r.model}: kvm alternatives`);
  }
});

test('ground truth: textpoke apply reproduces every byte the kernel patched, except static calls to vmlinux keys (run-time state)', {
  skip: optOut ? 'TEXTPOKE_NO_QEMU=1' : false,
  timeout: 780_000,
}, async () => {
  const { CLASSES } = (await import(join(repoRoot, 'scripts/qemu/compare.mjs'))) as {
    CLASSES: Record<string, { explained: boolean }>;
  };
  for (const r of boot()) {
    for (const m of r.comparison.modules) {
      assert.ok(m.cpu, `${r.model} ${m.module}: ${m.note ?? 'textpoke apply did not run'}`);
      assert.ok((m.patches ?? 0) > 2000, `${r.model} ${m.module}: textpoke made only ${m.patches} patches`);
      // The CPU is every feature bit the kernel set (boot_cpu_data), hidden synthetic ones included.
      assert.ok(
        m.features?.kernel?.names.includes('X86_FEATURE_LFENCE_RDTSC'),
        `${r.model}: capability words not read`,
      );
      assert.equal(m.cli?.status, 0, `${r.model}: textpoke apply failed: ${m.cli?.error}`);
      for (const s of m.sections) {
        assert.equal(s.cliDiffers, 0, `${r.model} ${s.name}: textpoke apply's output differs from the library view`);
        const tp = s.textpoke!;
        // No differing byte outside a patch site, and none in a site of a table textpoke patches
        // (.return_sites, .retpoline_sites, .altinstructions, relocations): those match byte for byte.
        const bad = tp.diffs.filter((d) => d.class === 'unexplained');
        assert.deepEqual(
          bad
            .slice(0, 5)
            .map(
              (d) =>
                `${d.addr} ${d.where} [${d.tables.join('+')}] guest ${d.guest.hex} (${d.guest.asm}) textpoke ${d.textpoke.hex} (${d.textpoke.asm})`,
            ),
          [],
          `${r.model} ${m.module} ${s.name}: ${bad.length} unexplained differences`,
        );
        for (const d of tp.diffs) {
          for (const c of d.class.split('+')) assert.ok(CLASSES[c], `${c} is not a documented class`);
          assert.ok(d.explained, `${r.model} ${m.module} ${d.where}: class ${d.class} is a gap textpoke should close`);
          assert.deepEqual(
            d.tables.filter((t) => t !== '.static_call_sites' && t !== '__mcount_loc' && t !== '.return_sites'),
            [],
            `${r.model} ${d.where}: ${d.tables.join('+')}`,
          );
          assert.ok(
            !d.tables.some((t) => t === '.retpoline_sites' || t === '.altinstructions') ||
              d.tables.includes('.static_call_sites') ||
              d.tables.includes('__mcount_loc'),
          );
        }
      }
      // The runs that rewrite retpoline sites (lfence, off) did so at hundreds of sites, and textpoke agreed.
      const text = m.sections.find((s) => s.name === '.text')!;
      const least = m.module === 'xfs' ? 700 : 400;
      if (/lfence|mitigations=off/.test(r.model))
        assert.ok((text.reference.byTable['.retpoline_sites'] ?? 0) > least, `${r.model} ${m.module}: retpoline sites`);
    }
  }
  assert.ok(Object.keys(CLASSES).length <= 3, 'the documented difference list must stay small');
  // Every run is fully explained, so the script itself reports success.
  assert.equal(scriptStatus, 0, scriptOut.slice(-4000));
});

test("ground truth, the whole kernel: textpoke attest explains every byte of the core .text and of both modules (a tracepoint and a tracer switched on at run time included), with the kernel's own CPU bits and with --cpu host, and catches a planted kprobe by name", {
  skip: optOut ? 'TEXTPOKE_NO_QEMU=1' : false,
  timeout: 780_000,
}, () => {
  for (const r of boot()) {
    assert.ok(r.attest?.ran, `${r.model}: attest did not run`);
    for (const source of ['kernel-caps', 'cpu-host'] as const) {
      const a: AttestRun = r.attest![source]!;
      assert.deepEqual(
        a.objects.map((o) => o.object),
        ['vmlinux', 'kvm', 'xfs'],
        `${r.model} ${source}`,
      );
      for (const o of a.objects as AttestObject[]) {
        assert.deepEqual(o.errors, [], `${r.model} ${source} ${o.object}`);
        for (const s of o.sections)
          assert.equal(s.compared, s.size, `${r.model} ${o.object} ${s.name}: compared in full`);
      }
      const [vmlinux, ...modules] = a.objects;
      assert.ok(vmlinux!.sections[0]!.size > 14_000_000, 'the core kernel .text');
      // The kernel switched jump labels and static calls at run time: explained, not flagged.
      assert.ok(
        vmlinux!.counts['jump-label']! > 50 && vmlinux!.counts['static-call']! > 2000,
        `${r.model} ${source}: ${JSON.stringify(vmlinux!.counts)}`,
      );
      for (const m of modules)
        assert.equal(
          m.counts.unexplained,
          0,
          `${r.model} ${source} ${m.object}: ${JSON.stringify(m.unexplainedForms)}`,
        );
      // The guest switched xfs's xfs_perag_get trace event on before xfs was dumped for attest: its tracepoint's
      // jump label now jumps, and attest names it as that key's state.
      const xfs = modules.find((m) => m.object === 'xfs')!;
      assert.ok(
        xfs.explained!.some(
          (x) =>
            x.class === 'jump-label' &&
            /^jump label __tracepoint_xfs_perag_get: jmp to xfs_perag_get\+0x/.test(x.explanation),
        ),
        `${r.model} ${source}: ${JSON.stringify(xfs.explained)}`,
      );
      // The guest planted a kprobe at vfs_read+5 (an int3, or a jmp once optimized): caught and named, the only
      // unexplained run (the retpoline sites to __x86_indirect_thunk_rax, which shares its address with
      // __x86_indirect_thunk_array, were a gap until the patcher fell back to the array offset for that name).
      const hooks = vmlinux!.unexplained!;
      assert.deepEqual(
        hooks.map((x) => x.where),
        ['vfs_read+0x5'],
        `${r.model} ${source}: ${JSON.stringify(hooks)}`,
      );
      assert.match(hooks[0]!.live, /^(cc|e9) /);
      const forms = Object.keys(vmlinux!.unexplainedForms).filter((f) => !/^push %r15\b/.test(f)); // the kprobe, checked above
      assert.deepEqual(forms, [], `${r.model} ${source}`);
      // The function tracer on vfs_write: its fentry site calls the ftrace trampoline, and ftrace's callback sites
      // call the tracer: explained as ftrace.
      const ft = vmlinux!.ftrace!;
      assert.ok(
        ft.some((x) => x.where === 'vfs_write+0x0' && /^ftrace: call ftrace_trampoline/.test(x.explanation)),
        `${r.model} ${source}: ${JSON.stringify(ft)}`,
      );
      assert.ok(
        ft.some((x) => /^ftrace callback ftrace_(regs_)?call: call function_trace_call/.test(x.explanation)),
        `${r.model} ${source}: ${JSON.stringify(ft)}`,
      );
    }
  }
});
