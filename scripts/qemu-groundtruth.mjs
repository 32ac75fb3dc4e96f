#!/usr/bin/env node
/**
 * Ground truth for `textpoke apply`: boot Debian's 6.1, 6.12 or 7.3 kernel under qemu-system-x86_64 (TCG, a
 * named -cpu model), load xfs and kvm and their dependencies from a minimal initramfs, read the modules'
 * executable sections back from /proc/kcore as the kernel patched and relocated them, and compare them byte
 * for byte with textpoke's patched view for the features and mitigations that kernel reports.
 *
 *   node scripts/qemu-groundtruth.mjs [--kernel 6.1|6.12|7.3]... [--model NAME]... [--module REL.ko]...
 *                                     [--json OUT] [--reuse] [--attest] [--no-compare] [--verbose] [--jobs N]
 *
 * --kernel   the corpus kernel(s) to boot (repeatable or comma-separated; default all three)
 * --model    QEMU CPU model, optionally with extra kernel arguments after a colon
 *            (`EPYC-Rome:mitigations=off`; repeatable; default: see DEFAULT_MODELS)
 * --module   module path under lib/modules/RELEASE/kernel, without .xz (repeatable; default xfs and kvm)
 * --jobs     guests booted at once (default 2)
 * --json     write the whole result (guest report + comparison) as JSON
 * --reuse    reuse the last boot's dump for a model when present (for working on the comparison)
 * --attest   also dump the core kernel's .text and run `textpoke attest` on what the guest reported
 *            (its kallsyms, CPU files, module sections and text, as a synthetic /sys, /proc and kcore)
 *
 * Needs: qemu-system-x86_64, busybox (static), gcc with a static libc, cpio; the corpus
 * (node scripts/fetch-corpus.mjs) and a built dist/ (npx tsc -p .).
 * Exit status: 0 when every model booted, loaded the modules and every byte either matches or falls in
 * a documented difference class; 1 otherwise; 2 on bad usage or a missing tool.
 * Work files live in .cache/groundtruth/<corpus id>/ (the initramfs is rebuilt only when an input changes),
 * or under $TEXTPOKE_GROUNDTRUTH_WORK.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { need, UsageError, which, writeAtomic } from './qemu/common.mjs';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const corpus = process.env.TEXTPOKE_CORPUS ?? join(repo, '.cache', 'corpus');
const workRoot = process.env.TEXTPOKE_GROUNDTRUTH_WORK ?? join(repo, '.cache', 'groundtruth');

/**
 * The kernels this script boots: Debian's own builds from the corpus (test/support/corpus.ts fetches them).
 * `release` picks the module tree's directory; `profile` is passed to attest where detection needs help
 * (the 6.1 banner also names gcc's Debian version, which detection misreads).
 */
export const KERNELS = {
  6.1: { id: 'linux-6.1', release: /^6\.1\.0-/, profile: 'linux-6.1', traceEvent: 'xfs/xfs_perag_get' },
  6.12: { id: 'linux-6.12', release: /^6\.12\./, profile: null, traceEvent: 'xfs/xfs_perag_get' },
  // 6.13 made the per-AG reference events generic over groups (xfs_perag_get became xfs_group_get).
  7.3: {
    id: 'linux-7',
    release: /^7\./,
    profile: null,
    traceEvent: 'xfs/xfs_group_get',
    /**
     * Default runs the kernel itself cannot boot (skipped unless named with --model): 7.3.4's emit_indirect()
     * gets a negative length for `lfence; call *%r8..%r15` in a 5-byte thunk call, WARNs (alternative.c:736 in
     * apply_retpolines) and, with `cs = len` negative, `while (cs--)` writes CS prefixes past the site: a triple
     * fault ("booted in 3 s, no report"). textpoke apply reports those sites as a kernel bug.
     */
    broken: {
      'Skylake-Client-IBRS:spectre_v2=retpoline,lfence':
        'Debian 7.3.4 triple-faults in apply_retpolines with spectre_v2=retpoline,lfence (emit_indirect() with a negative length)',
    },
  },
};
export const DEFAULT_KERNELS = ['6.1', '6.12', '7.3'];

/**
 * The files of one kernel: its module tree (lib/modules/R, or usr/lib/modules/R in the usr-merged 7.x
 * packages), the bootable image (boot/vmlinuz-R, or usr/lib/modules/R/vmlinuz.unsigned) and its work dir.
 */
export function kernelFiles(key) {
  const k = KERNELS[key];
  if (!k) throw new UsageError(`unknown --kernel ${key} (one of ${Object.keys(KERNELS).join(', ')})`);
  const imageDir = join(corpus, k.id);
  let modRoot = null;
  for (const base of ['lib/modules', 'usr/lib/modules']) {
    const d = join(imageDir, base);
    const r = existsSync(d) ? readdirSync(d).find((x) => k.release.test(x)) : undefined;
    if (r) {
      modRoot = join(d, r);
      break;
    }
  }
  const release = modRoot ? basename(modRoot) : 'missing';
  const vmlinuz =
    [
      join(imageDir, 'boot', `vmlinuz-${release}`),
      ...(modRoot ? ['vmlinuz.unsigned', 'vmlinuz'].map((n) => join(modRoot, n)) : []),
    ].find((p) => existsSync(p)) ?? join(imageDir, 'boot', `vmlinuz-${release}`);
  return {
    key,
    id: k.id,
    release,
    modRoot: modRoot ?? join(imageDir, 'lib/modules', 'missing'),
    vmlinuz,
    profile: k.profile,
    traceEvent: k.traceEvent,
    /** @type {Record<string, string>} */
    broken: k.broken ?? {},
    work: join(workRoot, k.id),
  };
}

/**
 * Six boots per kernel: an Intel and an AMD model with the kernel's default mitigations (retpolines, return
 * thunks: its_return_thunk on Skylake, srso_return_thunk on Zen 2), two older models (qemu64: a K8-class
 * AMD; Penryn: an Intel Core 2 without PCID or AVX), then the first two with other choices so that
 * apply_retpolines rewrites its sites too (retpoline,lfence: `lfence; call *%reg`; mitigations=off: plain
 * indirect branches and `ret`).
 */
export const DEFAULT_MODELS = [
  'Skylake-Client-IBRS',
  'EPYC-Rome',
  'qemu64',
  'Penryn',
  'Skylake-Client-IBRS:spectre_v2=retpoline,lfence',
  'EPYC-Rome:mitigations=off',
];
/**
 * xfs (returns, retpolines, ftrace, 1,308 static calls, 2 alternatives) and kvm (180 alternatives,
 * 98 paravirt sites, NULL static call keys, a per-cpu section): between them every 6.1 module patcher runs.
 */
export const DEFAULT_MODULES = ['fs/xfs/xfs.ko', 'arch/x86/kvm/kvm.ko'];
/** Two CPUs: with one, the kernel also rewrites every .smp_locks lock prefix to ds (alternatives_smp_unlock). */
export const SMP = 2;
// no_timer_check: under a loaded host TCG runs slowly enough for the IO-APIC timer check to panic the boot.
/**
 * The hook --attest plants: a kprobe in `func` just after its fentry call (the guest takes the call's address from
 * tracefs' available_filter_functions_addrs where the kernel has it, 6.5+; else the function's start: 6.1, where
 * `call __fentry__` opens the function) and reports where it went (record kprobe:NAME, e.g. vfs_read+9).
 */
export const KPROBE = { name: 'attest_hook', func: 'vfs_read' };
/** The function --attest traces with the function tracer (its fentry site becomes a call). */
export const FTRACE_FUNCTION = 'vfs_write';
export const APPEND = 'console=ttyS0 nokaslr panic=-1 quiet loglevel=4 no_timer_check';

async function lib() {
  const dist = join(repo, 'dist', 'src');
  need(join(dist, 'index.js'), 'built library (run: npx tsc -p .)');
  return { load: await import('textpoke') };
}

/** Module name (as the kernel spells it: '-' becomes '_') -> path under modRoot/kernel (.ko or .ko.xz). */
function moduleIndex(modRoot) {
  const idx = new Map();
  const walk = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.ko(\.xz)?$/.test(e.name)) idx.set(moduleName(e.name), p);
    }
  };
  walk(join(modRoot, 'kernel'));
  return idx;
}

/** 'xfs.ko', 'crc32c-intel.ko.xz' -> the module's name as the kernel spells it ('crc32c_intel'). */
function moduleName(file) {
  return basename(file)
    .replace(/\.ko(\.xz)?$/, '')
    .replace(/-/g, '_');
}

/** A module file's ELF bytes: .ko.xz is decompressed host-side with textpoke's own decompressor. */
async function moduleBytes(path) {
  const { load } = await lib();
  const b = readFileSync(path);
  return path.endsWith('.xz') ? Buffer.from(await load.decompress(b)) : b;
}

/**
 * Modules whose .modinfo declares `alias=NAME` or `alias=crypto-NAME`. The files whose name contains NAME
 * are read first (crc32c: crc32c_generic, crc32c-intel); only when none of them declares it is every module
 * read (decompressing a whole .ko.xz tree takes a while).
 */
async function aliasProviders(idx, name) {
  const needles = [`alias=${name}\0`, `alias=crypto-${name}\0`].map((n) => Buffer.from(n));
  const scan = async (paths) => {
    const out = [];
    for (const p of paths) {
      const b = await moduleBytes(p);
      if (needles.some((n) => b.includes(n))) out.push(p);
    }
    return out.sort();
  };
  const all = [...idx.values()];
  const named = await scan(all.filter((p) => moduleName(p).includes(name)));
  return named.length ? named : scan(all);
}

function modinfoOf(img) {
  /** @type {{ depends: string[], softpre: string[] }} */
  const out = { depends: [], softpre: [] };
  for (const kv of img.modinfo()) {
    const eq = kv.indexOf('=');
    const k = kv.slice(0, eq);
    const v = kv.slice(eq + 1);
    if (k === 'depends') out.depends.push(...v.split(',').filter(Boolean));
    if (k === 'softdep') {
      const m = /pre:\s*([^:]*?)(?:\s+post:|$)/.exec(v);
      if (m) out.softpre.push(...m[1].split(/\s+/).filter(Boolean));
    }
  }
  return out;
}

/**
 * The modules to insmod, dependencies first (modinfo `depends=` and `softdep=pre:`, as modprobe would),
 * and for the requested ones the executable sections kept after init, with their sizes.
 */
async function plan(kf, modules) {
  const { load } = await lib();
  const { modRoot } = kf;
  const idx = moduleIndex(modRoot);
  const order = [];
  const seen = new Set();
  const images = new Map();
  const visit = async (name, soft) => {
    name = name.replace(/-/g, '_');
    if (seen.has(name)) return;
    seen.add(name);
    let path = idx.get(name);
    if (!path && soft) {
      // A softdep names a module or an alias (libcrc32c: "pre: crc32c", provided by crc32c_generic
      // through alias=crypto-crc32c). modules.alias is not shipped in the package, so look the alias
      // up in the modules' own .modinfo; prefer the portable *_generic implementation.
      const hits = await aliasProviders(idx, name);
      path = hits.find((p) => /_generic\.ko(\.xz)?$/.test(p)) ?? hits[0];
      if (!path) return; // built in, or provided by nothing: modprobe ignores that too
      name = moduleName(path);
      if (seen.has(name)) return;
      seen.add(name);
    }
    if (!path) throw new UsageError(`module ${name} not found under ${modRoot}`);
    const img = await load.imageFromBytes(await moduleBytes(path), path);
    images.set(name, img);
    const mi = modinfoOf(img);
    for (const d of mi.softpre) await visit(d, true);
    for (const d of mi.depends) await visit(d, false);
    order.push({ name, path });
  };
  const targets = [];
  for (const rel of modules) {
    // `fs/xfs/xfs.ko` names the module in every tree: the file may be xfs.ko or xfs.ko.xz.
    const file = [rel, `${rel}.xz`].map((r) => join(modRoot, 'kernel', r)).find((p) => existsSync(p));
    const path = need(file ?? join(modRoot, 'kernel', rel), 'module');
    const name = moduleName(rel);
    await visit(name, false);
    const img = images.get(name);
    const sections = img.sections
      .filter((s) => s.alloc && s.exec && s.size > 0 && !s.name.startsWith('.init'))
      .map((s) => ({ name: s.name, size: s.size }));
    targets.push({ name, rel: relative(join(modRoot, 'kernel'), path), path, sections });
  }
  return { order, targets };
}

function sha(parts) {
  const h = createHash('sha256');
  for (const p of parts) h.update(typeof p === 'string' ? p : Buffer.from(p)).update('\0');
  return h.digest('hex').slice(0, 16);
}

/**
 * Builds (or reuses) the initramfs: busybox, /init, /kdump, the module files (a .ko.xz decompressed here),
 * /groundtruth.conf.
 * @param {ReturnType<typeof kernelFiles>} kf
 * @param {{ order: any[], targets: any[], ktext?: number }} p
 */
async function buildInitramfs(kf, p) {
  const { order, targets, ktext } = p;
  const { work } = kf;
  const busybox = need(process.env.TEXTPOKE_BUSYBOX ?? '/bin/busybox', 'busybox (apt-get install busybox-static)');
  const initSrc = readFileSync(join(repo, 'scripts/qemu/init.sh'), 'utf8');
  const kdumpSrc = readFileSync(join(repo, 'scripts/qemu/kdump.c'), 'utf8');
  const conf =
    [
      ...order.map((m) => `insmod /lib/modules/${m.name}.ko`),
      ...targets.map((t) => `sections ${t.name}`),
      ...targets.flatMap((t) => t.sections.map((s) => `dump ${t.name} ${s.name} ${s.size}`)),
      // For attest: switch a tracepoint on in xfs and dump xfs's text again (records live:MODULE:SECTION:ADDR), trace
      // one core function with ftrace, plant a kprobe inside another, then dump the core kernel's .text.
      ...(ktext
        ? [
            `trace ${kf.traceEvent}`,
            `kprobe ${KPROBE.name} ${KPROBE.func}`,
            `ftrace ${FTRACE_FUNCTION}`,
            ...targets
              .filter((t) => t.name === 'xfs')
              .flatMap((t) => t.sections.map((s) => `live ${t.name} ${s.name} ${s.size}`)),
            `ktext ${ktext}`,
          ]
        : []),
    ].join('\n') + '\n';
  const key = sha([
    initSrc,
    kdumpSrc,
    conf,
    ...order.map((m) => `${m.path}:${statSync(m.path).size}:${statSync(m.path).mtimeMs}`),
    `${busybox}:${statSync(busybox).size}`,
  ]);
  const out = join(work, `initramfs-${key}.cpio`);
  if (existsSync(out)) return out;
  // Private build directory and temp name: several runs (parallel `npm test`s in one tree) may build at once.
  const root = mkdtempSync(join(work, `root-${key}-`));
  mkdirSync(join(root, 'bin'), { recursive: true });
  mkdirSync(join(root, 'lib/modules'), { recursive: true });
  copyFileSync(busybox, join(root, 'bin/busybox'));
  chmodSync(join(root, 'bin/busybox'), 0o755);
  // A statically linked busybox is required: the initramfs carries no shared libraries.
  const file = spawnSync('busybox', ['--help'], { encoding: 'utf8' });
  if (file.error) throw new UsageError(`busybox does not run: ${file.error.message}`);
  writeFileSync(join(root, 'init'), initSrc, { mode: 0o755 });
  writeFileSync(join(root, 'groundtruth.conf'), conf);
  const cc = spawnSync(
    'gcc',
    ['-static', '-O2', '-Wall', '-o', join(root, 'kdump'), join(repo, 'scripts/qemu/kdump.c')],
    { encoding: 'utf8' },
  );
  if (cc.status !== 0) throw new UsageError(`gcc -static scripts/qemu/kdump.c failed:\n${cc.stderr}`);
  for (const m of order) writeFileSync(join(root, 'lib/modules', `${m.name}.ko`), await moduleBytes(m.path));
  const list = spawnSync('sh', ['-c', 'find . | LC_ALL=C sort'], { cwd: root, encoding: 'utf8' });
  const cpio = spawnSync('cpio', ['-o', '-H', 'newc', '--quiet', '-R', '0:0'], {
    cwd: root,
    input: list.stdout,
    maxBuffer: 1 << 30,
  });
  if (cpio.status !== 0) throw new UsageError(`cpio failed: ${cpio.stderr}`);
  writeFileSync(`${out}.${process.pid}.tmp`, cpio.stdout);
  renameSync(`${out}.${process.pid}.tmp`, out);
  rmSync(root, { recursive: true, force: true });
  return out;
}

/** 'MODEL[:KERNEL ARGS]' -> [model, args]. */
export function splitModel(spec) {
  const i = spec.indexOf(':');
  return i < 0 ? [spec, ''] : [spec.slice(0, i), spec.slice(i + 1)];
}

function runDir(kf, spec) {
  return join(kf.work, spec.replace(/[^A-Za-z0-9._-]+/g, '_'));
}

/** Writes `data` to `path` through a private temp file and a rename (concurrent runs never see half a file). */

/**
 * Boots one CPU model; resolves with the raw debugcon stream and the serial console log. The guest writes
 * into a private directory (two runs of this script in one tree must not share a debugcon file); the
 * results are then published to .cache/groundtruth/<model>/ for --reuse.
 */
// Guests still running when this script is stopped (a test's time limit, ^C) are killed with it.
const guests = new Set();
process.on('exit', () => {
  for (const c of guests) c.kill('SIGKILL');
});
for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'])
  process.on(sig, () => process.exit(128 + (sig === 'SIGINT' ? 2 : sig === 'SIGHUP' ? 1 : 15)));

function boot(kf, spec, initrd, timeoutMs) {
  const [model, extra] = splitModel(spec);
  const dir = mkdtempSync(join(kf.work, 'boot-'));
  const dbg = join(dir, 'debugcon.bin');
  const args = [
    // One host thread per guest (thread=single): several guests boot side by side on a 2-core CI machine.
    '-accel',
    'tcg,thread=single',
    '-cpu',
    model,
    '-smp',
    String(SMP),
    '-m',
    '1G',
    '-nographic',
    '-no-reboot',
    '-kernel',
    kf.vmlinuz,
    '-initrd',
    initrd,
    '-append',
    extra ? `${APPEND} ${extra}` : APPEND,
    '-chardev',
    `file,id=dbg,path=${dbg}`,
    '-device',
    'isa-debugcon,iobase=0xe9,chardev=dbg',
    '-net',
    'none',
    '-monitor',
    'none',
    '-serial',
    'stdio',
  ];
  return new Promise((resolvePromise) => {
    const started = Date.now();
    const child = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    guests.add(child);
    child.on('error', (e) => {
      log += `qemu-system-x86_64 cannot start: ${e.message}\n`;
    });
    let log = '';
    child.stdout.on('data', (d) => (log += d.toString('latin1')));
    child.stderr.on('data', (d) => (log += d.toString('latin1')));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('close', (code) => {
      guests.delete(child);
      clearTimeout(timer);
      const stream = existsSync(dbg) ? readFileSync(dbg) : Buffer.alloc(0);
      rmSync(dir, { recursive: true, force: true });
      writeAtomic(join(runDir(kf, spec), 'serial.log'), log);
      writeAtomic(join(runDir(kf, spec), 'debugcon.bin'), stream);
      resolvePromise({
        kernel: kf.key,
        model: spec,
        args,
        exit: code,
        timedOut,
        seconds: (Date.now() - started) / 1000,
        serial: log,
        stream,
      });
    });
  });
}

/** Splits the debugcon stream into records {name -> Buffer}. */
export function parseRecords(buf) {
  const recs = new Map();
  let i = 0;
  const BEGIN = Buffer.from('@@BEGIN ');
  while (i < buf.length) {
    const at = buf.indexOf(BEGIN, i);
    if (at < 0) break;
    const nl = buf.indexOf(10, at);
    if (nl < 0) break;
    const [name, lenStr] = buf
      .subarray(at + BEGIN.length, nl)
      .toString('latin1')
      .split(' ');
    const len = Number(lenStr);
    const body = buf.subarray(nl + 1, nl + 1 + len);
    if (body.length < len) break; // truncated stream: the guest died mid-record
    recs.set(name, Buffer.from(body));
    i = nl + 1 + len;
  }
  return recs;
}

/** What the guest reported, in structured form. */
export function guestReport(recs) {
  const text = (n) => recs.get(n)?.toString('latin1');
  const cpuinfo = text('cpuinfo') ?? '';
  const field = (k) => new RegExp(`^${k}\\s*:\\s*(.*)$`, 'm').exec(cpuinfo)?.[1]?.trim();
  const vulnerabilities = {};
  const modules = {};
  const errors = [];
  for (const [name, body] of recs) {
    if (name.startsWith('vuln:')) vulnerabilities[name.slice(5)] = body.toString('latin1').trim();
    else if (name.startsWith('error:')) errors.push(`${name.slice(6)}: ${body.toString('latin1').trim()}`);
    else if (name.startsWith('sections:')) {
      const m = (modules[name.slice(9)] ??= { sections: {}, dumps: {} });
      for (const line of body.toString('latin1').split('\n')) {
        const [sec, addr] = line.trim().split(/\s+/);
        if (sec && addr) m.sections[sec] = addr;
      }
    } else if (name.startsWith('dump:')) {
      const [, mod, sec, addr] = name.split(':');
      const m = (modules[mod] ??= { sections: {}, dumps: {} });
      m.dumps[sec] = { addr, bytes: body };
    } else if (name.startsWith('live:')) {
      const [, mod, sec, addr] = name.split(':');
      const m = (modules[mod] ??= { sections: {}, dumps: {} });
      (m.live ??= {})[sec] = { addr, bytes: body };
    }
  }
  const kvars = {};
  for (const [name, body] of recs) {
    if (!name.startsWith('kvar:')) continue;
    const [, sym, addr] = name.split(':');
    kvars[sym] = { addr, bytes: body };
  }
  const insmod = [...recs.keys()].filter((n) => n.startsWith('insmod:')).map((n) => n.slice(7));
  // Where the guest planted each kprobe (FUNC+OFFSET) and the trace events it enabled.
  const kprobes = Object.fromEntries(
    [...recs.keys()].filter((n) => n.startsWith('kprobe:')).map((n) => [n.slice(7), text(n)?.trim()]),
  );
  const traced = [...recs.keys()].filter((n) => n.startsWith('trace:')).map((n) => n.slice(6));
  // /proc/kallsyms: "addr type name" for the kernel (System.map's format), "addr type name\t[module]".
  const kallsyms = text('kallsyms') ?? '';
  const kernelMap = [];
  const modsyms = [];
  for (const line of kallsyms.split('\n')) {
    const m = /^([0-9a-f]+) (\S) (\S+)(?:\s+\[(\S+)\])?/.exec(line);
    if (!m) continue;
    if (m[4]) modsyms.push({ addr: m[1], type: m[2], name: m[3], module: m[4] });
    else kernelMap.push(line.trim());
  }
  const anchors = {};
  for (const l of kernelMap) {
    const [addr, , sym] = l.split(' ');
    if (sym === '_text' || sym === 'startup_64') anchors[sym] = addr;
  }
  return {
    release: text('start'),
    cmdline: text('cmdline')?.trim(),
    done: recs.has('done'),
    modelName: field('model name'),
    vendor: field('vendor_id'),
    family: field('cpu family'),
    model: field('model'),
    stepping: field('stepping'),
    flags: (field('flags') ?? '').split(/\s+/).filter(Boolean),
    bugs: (field('bugs') ?? '').split(/\s+/).filter(Boolean),
    vulnerabilities,
    insmod,
    kprobes,
    traced,
    preempt: /Dynamic Preempt: (\w+)/.exec(text('dmesg') ?? '')?.[1] ?? null,
    modules,
    anchors,
    kvars,
    kernelMap,
    modsyms,
    dmesg: text('dmesg') ?? '',
    errors,
  };
}

function parseArgs(argv) {
  /** @type {{ kernels: string[], models: string[], defaultModels?: boolean, modules: string[], json: string | null, reuse: boolean, compare: boolean, verbose: boolean, timeout: number, attest: boolean, jobs: number }} */
  const o = {
    kernels: [],
    models: [],
    modules: [],
    json: null,
    reuse: false,
    compare: true,
    verbose: false,
    timeout: 240,
    attest: false,
    jobs: 2,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) throw new UsageError(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--model') o.models.push(val());
    else if (a === '--kernel') o.kernels.push(...val().split(','));
    else if (a === '--jobs') o.jobs = Number(val());
    else if (a === '--module') o.modules.push(val());
    else if (a === '--json') o.json = resolve(val());
    else if (a === '--reuse') o.reuse = true;
    else if (a === '--attest') o.attest = true;
    else if (a === '--no-compare') o.compare = false;
    else if (a === '--verbose') o.verbose = true;
    else if (a === '--timeout') o.timeout = Number(val());
    else if (a === '-h' || a === '--help') {
      process.stdout.write(
        readFileSync(fileURLToPath(import.meta.url), 'utf8')
          .split('*/')[0]
          .replace(/^#!.*\n\/\*\*\n/, '')
          .replace(/^ \* ?/gm, ''),
      );
      process.exit(0);
    } else throw new UsageError(`unknown argument ${a}`);
  }
  o.defaultModels = !o.models.length;
  if (!o.models.length) o.models = DEFAULT_MODELS;
  if (!o.kernels.length) o.kernels = DEFAULT_KERNELS;
  for (const k of o.kernels) kernelFiles(k); // an unknown name is bad usage
  if (!(o.jobs >= 1)) throw new UsageError('--jobs needs a positive number');
  if (!o.modules.length) o.modules = DEFAULT_MODULES;
  return o;
}

/** Boots (or reuses) every model and returns [{model, boot, guest}]. */
/** Runs `jobs` async thunks, at most `limit` at a time (two QEMU guests at once on a 2-core machine). */
async function pool(jobs, limit) {
  const out = new Array(jobs.length);
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const i = next++;
      out[i] = await jobs[i]();
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, jobs.length)) }, worker));
  return out;
}

/** Boots (or reuses) every model of every kernel and returns [{kernel, files, model, boot, guest, plan}]. */
export async function runGuests(o) {
  for (const tool of ['qemu-system-x86_64', 'gcc', 'cpio']) {
    if (!which(tool)) throw new UsageError(`${tool} not found (npm test installs it through scripts/setup-system.mjs)`);
  }
  const jobs = [];
  for (const key of o.kernels) {
    const kf = kernelFiles(key);
    need(kf.vmlinuz, `corpus kernel ${kf.id} (run: node scripts/fetch-corpus.mjs)`);
    mkdirSync(kf.work, { recursive: true });
    /** @type {{ order: any[], targets: any[], ktext?: number }} */
    const p = await plan(kf, o.modules);
    if (o.attest) {
      const { load } = await lib();
      const img = await load.imageFromBytes(readFileSync(kf.vmlinuz), kf.vmlinuz);
      const text = img.section('.text');
      if (!text) throw new UsageError(`${kf.vmlinuz}: no .text section`);
      p.ktext = text.size;
    }
    const initrd = await buildInitramfs(kf, p);
    for (const model of o.models) {
      if (o.defaultModels && kf.broken[model]) {
        console.log(`${key} ${model}: skipped (${kf.broken[model]}; name it with --model to boot it anyway)`);
        continue;
      }
      jobs.push(async () => {
        const cached = join(runDir(kf, model), 'debugcon.bin');
        let b;
        const usable = (g) =>
          g.done &&
          p.targets.every((t) => t.sections.every((x) => g.modules[t.name]?.dumps[x.name]?.bytes.length === x.size)) &&
          (!p.ktext || (g.modules.vmlinux?.dumps['.text']?.bytes.length > 0 && g.modules.xfs?.live?.['.text']));
        if (o.reuse && existsSync(cached) && usable(guestReport(parseRecords(readFileSync(cached))))) {
          b = {
            kernel: key,
            model,
            reused: true,
            exit: 0,
            timedOut: false,
            seconds: 0,
            serial: readFileSync(join(runDir(kf, model), 'serial.log'), 'latin1'),
            stream: readFileSync(cached),
          };
        } else b = await boot(kf, model, initrd, o.timeout * 1000);
        return { kernel: key, files: kf, model, boot: b, guest: guestReport(parseRecords(b.stream)), plan: p };
      });
    }
  }
  return pool(jobs, o.jobs);
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const runs = await runGuests(o);
  let ok = true;
  /** @type {{ kernels: object[], append: string, runs: object[] }} */
  const result = {
    kernels: o.kernels.map((k) => {
      const kf = kernelFiles(k);
      return { kernel: k, id: kf.id, release: kf.release, vmlinuz: kf.vmlinuz };
    }),
    append: APPEND,
    runs: [],
  };
  const compare = o.compare ? await import('./qemu/compare.mjs') : null;
  for (const r of runs) {
    const g = r.guest;
    const head =
      `${r.kernel} ${r.model}: ${r.boot.reused ? 'reused dump' : `booted in ${r.boot.seconds.toFixed(1)} s`}, ` +
      `${g.release ?? 'no report'}, ${g.modelName ?? '?'}, insmod ${g.insmod.join(' ') || 'none'}`;
    console.log(head);
    for (const e of g.errors) console.log(`  guest error: ${e}`);
    if (!g.done || g.errors.length) {
      ok = false;
      if (!g.done)
        console.log(
          `  guest did not finish (exit ${r.boot.exit}${r.boot.timedOut ? ', timed out' : ''}); serial log tail:\n${r.boot.serial.slice(-3000)}`,
        );
    }
    console.log(`  flags: ${g.flags.join(' ')}`);
    console.log(`  bugs: ${g.bugs.join(' ')}`);
    for (const [k, v] of Object.entries(g.vulnerabilities)) console.log(`  ${k}: ${v}`);
    // The kernel's symbols as the guest reported them, in System.map format (for --symbols).
    const map = join(runDir(r.files, r.model), 'System.map');
    writeAtomic(map, g.kernelMap.join('\n') + '\n');
    console.log(`  kernel symbols: ${g.kernelMap.length} (${map}); _text ${g.anchors._text ?? '?'}`);
    const entry = {
      kernel: r.kernel,
      model: r.model,
      seconds: r.boot.seconds,
      systemMap: map,
      guest: {
        ...g,
        kernelMap: undefined,
        modsyms: undefined,
        dmesg: undefined,
        kvars: undefined,
        modules: summarizeModules(g.modules),
      },
    };
    if (compare && g.done) {
      const c = await compare.compareRun(r, { systemMap: map, verbose: o.verbose, log: (s) => console.log(s) });
      entry.comparison = c;
      if (!c.ok) ok = false;
    }
    if (o.attest && g.done) {
      const { attestGuest } = await import('./qemu/attest.mjs');
      const cpu = entry.comparison?.modules?.find((m) => m.features?.kernel)?.features?.spec;
      entry.attest = await attestGuest(
        { ...r, recs: parseRecords(r.boot.stream) },
        {
          dir: join(runDir(r.files, r.model), 'attest'),
          vmlinuz: r.files.vmlinuz,
          modRoot: r.files.modRoot,
          verbose: o.verbose,
          log: (s) => console.log(s),
          cpu,
          profile: r.files.profile ?? undefined,
        },
      );
      if (!entry.attest.ran) ok = false;
    }
    result.runs.push(entry);
  }
  if (o.json) {
    writeAtomic(
      o.json,
      JSON.stringify(result, (_k, v) => (typeof v === 'bigint' ? '0x' + v.toString(16) : v), 2),
    );
  }
  process.exitCode = ok ? 0 : 1;
}

function summarizeModules(mods) {
  const out = {};
  for (const [m, v] of Object.entries(mods)) {
    out[m] = {
      sections: v.sections,
      dumps: Object.fromEntries(Object.entries(v.dumps).map(([s, d]) => [s, { addr: d.addr, size: d.bytes.length }])),
    };
    if (v.live)
      out[m].live = Object.fromEntries(
        Object.entries(v.live).map(([s, d]) => [s, { addr: d.addr, size: d.bytes.length }]),
      );
  }
  return out;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e) => {
    if (e instanceof UsageError) {
      console.error(`qemu-groundtruth: ${e.message}`);
      process.exit(2);
    }
    console.error(e);
    process.exit(1);
  });
}
