/**
 * `textpoke attest` on a booted guest, from what it sent over debugcon: its /proc/kallsyms, CPU files
 * (cpuinfo, vulnerabilities, cmdline), the section addresses of the dumped modules, and the bytes of the
 * core kernel's .text and of those modules' executable sections. They are laid out as the files attest reads
 * on a live machine (ROOT/proc, ROOT/sys and an ELF core file standing in for /proc/kcore) and attest runs on
 * them with --cpu host (the guest's CPU files under ROOT) and the corpus vmlinuz and module tree.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Minimal ELF core file: one PT_LOAD per chunk (the library's buildKcore, without importing dist/ here). */
async function kcore(chunks) {
  const { buildKcore } = await import(join(repo, 'dist/src/attest/kcore.js'));
  return buildKcore(chunks);
}

export async function attestGuestAsync(run, { dir, vmlinuz, modRoot, verbose, log, cpu, profile }) {
  const g = run.guest;
  rmSync(dir, { recursive: true, force: true });
  const root = join(dir, 'root');
  mkdirSync(join(root, 'proc'), { recursive: true });
  mkdirSync(join(root, 'sys/devices/system/cpu/vulnerabilities'), { recursive: true });
  const recs = run.recs;
  writeFileSync(join(root, 'proc/kallsyms'), recs.get('kallsyms') ?? '');
  writeFileSync(join(root, 'proc/cpuinfo'), recs.get('cpuinfo') ?? '');
  writeFileSync(join(root, 'proc/cmdline'), recs.get('cmdline') ?? '');
  for (const [k, v] of Object.entries(g.vulnerabilities))
    writeFileSync(join(root, 'sys/devices/system/cpu/vulnerabilities', k), v + '\n');
  const chunks = [];
  for (const [mod, m] of Object.entries(g.modules)) {
    if (mod !== 'vmlinux') {
      const sd = join(root, 'sys/module', mod, 'sections');
      mkdirSync(sd, { recursive: true });
      for (const [sec, addr] of Object.entries(m.sections)) writeFileSync(join(sd, sec), addr + '\n');
    }
    // A section dumped again after the tracepoint was switched on is the one attest sees.
    for (const [sec, d] of Object.entries({ ...m.dumps, ...(m.live ?? {}) }))
      if (sec) chunks.push({ vaddr: BigInt(d.addr.startsWith('0x') ? d.addr : '0x' + d.addr), bytes: d.bytes });
  }
  const core = join(dir, 'kcore');
  writeFileSync(core, await kcore(chunks));
  const results = {};
  // With the CPU the kernel itself recorded (boot_cpu_data, as the module comparison uses), then with --cpu host.
  for (const [label, cpuArgs] of [
    ['kernel-caps', cpu ? ['--cpu', cpu] : null],
    ['cpu-host', ['--cpu', 'host']],
  ]) {
    if (!cpuArgs) continue;
    const r = attestOnce(label, [...cpuArgs, ...(profile ? ['--profile', profile] : [])], {
      dir,
      vmlinuz,
      modRoot,
      core,
      root,
      verbose,
      log,
    });
    results[label] = r;
    if (!r.ran) return { ran: false, ...results };
  }
  return { ran: true, ...results };
}

function attestOnce(label, extra, { dir, vmlinuz, modRoot, core, root, verbose, log }) {
  const args = [
    join(repo, 'bin/textpoke.js'),
    'attest',
    '--vmlinuz',
    vmlinuz,
    '--modules',
    modRoot,
    '--kcore',
    core,
    '--sysfs',
    root,
    '--json',
    ...extra,
  ];
  const started = Date.now();
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 1 << 30, timeout: 600_000 });
  const seconds = (Date.now() - started) / 1000;
  if (r.status === null || !r.stdout) {
    log(`  attest ${label}: did not run (${r.error?.message ?? `exit ${r.status}`}): ${r.stderr.slice(0, 2000)}`);
    return { ran: false, exit: r.status, stderr: r.stderr };
  }
  const doc = JSON.parse(r.stdout);
  writeFileSync(join(dir, `attest-${label}.json`), r.stdout);
  log(
    `  attest --cpu ${label === 'cpu-host' ? 'host' : "(the kernel's boot_cpu_data)"} (${seconds.toFixed(1)} s, exit ${r.status}): ${Object.entries(
      doc.counts,
    )
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}`,
  );
  for (const o of doc.objects) {
    const cmp = o.sections.reduce((a, s) => a + s.compared, 0);
    const dif = o.sections.reduce((a, s) => a + s.differing, 0);
    log(
      `    ${o.object}: ${cmp} bytes compared, ${dif} differ; ${
        Object.entries(o.counts)
          .filter(([, v]) => v)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ') || 'no differences'
      }`,
    );
    for (const e of o.errors) log(`    error: ${e}`);
    const un = o.runs.filter((x) => x.class === 'unexplained');
    for (const x of verbose ? un : un.slice(0, 10))
      log(
        `      UNEXPLAINED ${x.where} (${x.address}): ${x.explanation}: ${x.predicted} -> ${x.live} | ${x.predictedAsm.join('; ')} -> ${x.liveAsm.join('; ')}`,
      );
    if (!verbose && un.length > 10)
      log(`      … ${un.length - 10} more (--verbose, or ${join(dir, `attest-${label}.json`)})`);
  }
  for (const n of doc.notes) if (verbose) log(`    note: ${n}`);
  // Unexplained runs by form (addresses and displacements replaced by X), to tell one gap from many.
  const patterns = (o) => {
    const p = {};
    for (const x of o.runs) {
      if (x.class !== 'unexplained') continue;
      const k = `${x.predictedAsm.join('; ')} -> ${x.liveAsm.join('; ')}`.replace(
        /0x[0-9a-f]+(\+0x[0-9a-f]+)?( <[^>]*>)?/g,
        'X',
      );
      p[k] = (p[k] ?? 0) + 1;
    }
    return p;
  };
  return {
    ran: true,
    exit: r.status,
    seconds,
    counts: doc.counts,
    objects: doc.objects.map((o) => ({
      object: o.object,
      counts: o.counts,
      errors: o.errors,
      sections: o.sections,
      unexplainedForms: patterns(o),
      // A module's explained runs are few (the run-time switches): kept whole, with their explanation.
      ...(o.object === 'vmlinux'
        ? {}
        : {
            explained: o.runs
              .filter((x) => x.class !== 'unexplained')
              .slice(0, 50)
              .map((x) => ({ where: x.where, class: x.class, explanation: x.explanation })),
          }),
      // The core kernel's ftrace calls and unexplained runs, whole (the first 50).
      ...(o.object === 'vmlinux'
        ? {
            ftrace: o.runs
              .filter((x) => x.class === 'ftrace')
              .slice(0, 50)
              .map((x) => ({ where: x.where, explanation: x.explanation })),
            unexplained: o.runs
              .filter((x) => x.class === 'unexplained')
              .slice(0, 50)
              .map((x) => ({
                where: x.where,
                explanation: x.explanation,
                predicted: x.predicted,
                live: x.live,
                predictedAsm: x.predictedAsm,
                liveAsm: x.liveAsm,
              })),
          }
        : {}),
    })),
  };
}

export const attestGuest = attestGuestAsync;
