#!/usr/bin/env node
/**
 * Ground truth for `textpoke apply` on Xen: boot Debian's hypervisor (the bootable `xen-*.gz` of the same
 * build as the corpus's xen-syms) under qemu-system-x86_64 (TCG, a named -cpu model) as a multiboot kernel
 * with a dom0 module that is not an ELF file, so Xen patches itself (both _apply_alternatives passes), fails
 * to build dom0, panics "Could not construct domain 0" and, with `noreboot`, halts. Its text is then read back
 * through the QEMU monitor (`memsave` at Xen's virtual addresses: the halted CPU runs on Xen's page tables)
 * and compared byte for byte with textpoke's patched view of xen-syms for the features Xen itself set
 * (boot_cpu_data.x86_capability, read from the same dump) and with the CPU spec `--cpu-from` derives from
 * the boot log alone.
 *
 *   node scripts/qemu-xen-groundtruth.mjs [--xen 4.17|4.20]... [--model NAME]... [--json OUT] [--reuse]
 *                                         [--no-compare] [--verbose] [--timeout S] [--jobs N]
 *
 * --xen      which hypervisor: 4.17, 4.20 (default: both) or 4.17-bookworm (repeatable)
 * --model    QEMU CPU model, optionally with extra Xen arguments after a colon (repeatable; default DEFAULT_MODELS)
 * --json     write every run's result (boot facts, CPU specs, every differing range with its class) as JSON
 * --reuse    reuse the last boot's dump for a run when present (for working on the comparison)
 * --timeout  seconds one boot may take before the VM is killed (default 240)
 * --jobs     boots at a time (default 1)
 *
 * Exit status: 0 when every run booted, halted after the panic, dumped .text and every differing byte lies
 * in an explained class; 1 otherwise; 2 on bad usage or a missing tool/corpus file.
 * Work files: .cache/groundtruth-xen/ (the decompressed hypervisors, one directory per run).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { need, UsageError, which, writeAtomic } from './qemu/common.mjs';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const corpus = process.env.TEXTPOKE_CORPUS ?? join(repo, '.cache', 'corpus');
const work = join(repo, '.cache', 'groundtruth-xen');

/** The two hypervisors: the bootable image and the xen-syms of the same build (test/support/corpus.ts). */
export const XENS = {
  4.17: {
    gz: join(corpus, 'xen-4.17/boot/xen-4.17-amd64.gz'),
    syms: join(corpus, 'xen-4.17/usr/lib/debug/boot/xen-syms-4.17-amd64'),
  },
  '4.20': {
    gz: join(corpus, 'xen-4.20/boot/xen-4.20-amd64.gz'),
    syms: join(corpus, 'xen-4.20/usr/lib/debug/boot/xen-syms-4.20-amd64'),
  },
  /** bookworm's main-suite 4.17 (4.17.5+72): not run by default (`--xen 4.17-bookworm`). */
  '4.17-bookworm': {
    gz: join(corpus, 'xen-4.17-bookworm/boot/xen-4.17-amd64.gz'),
    syms: join(corpus, 'xen-4.17-bookworm/usr/lib/debug/boot/xen-syms-4.17-amd64'),
    optional: true,
  },
};
/**
 * The Linux ground truth's Intel and AMD models with Xen's defaults, then runs that move other alternatives:
 * qemu64 (AMD family 0xf: K8 NOPs, k8 MCE callbacks, no SMAP/BMI1/XSAVEOPT), Penryn (Intel family 6 model 0x17:
 * K8 NOPs, CPUID masking MSRs so intel_ctxt_switch_masking), `spec-ctrl=no` (every
 * SC_NO_*_HARDEN fence and lock site NOPed) and an Intel run with the LFENCE thunk, the long BHB sequence and
 * lock hardening on.
 */
export const DEFAULT_MODELS = [
  'Skylake-Client-IBRS',
  'EPYC-Rome',
  'qemu64',
  'Penryn',
  'EPYC-Rome:spec-ctrl=no',
  'Skylake-Client-IBRS:spec-ctrl=bti-thunk=lfence,bhb-seq=long,lock-harden',
];
/**
 * Xen's command line: serial console on COM1 (captured to a file), everything logged, no reboot after the
 * panic (so the CPU halts in Xen with its page tables live). One CPU: Xen's patching does not depend on the
 * number of CPUs (no .smp_locks-style unlocking), and TCG time is shared.
 */
export const APPEND = 'console=com1 com1=115200,8n1 noreboot loglvl=all guest_loglvl=all';
export const SMP = 1;
/** The last line Xen prints before halting with noreboot. */
const HALTED = /Manual reset required \('noreboot' specified\)/;

// Only characters QEMU's option syntax takes in a path (no ',' or '=').
const runName = (xen, spec) => `${xen}-${spec.replace(/[^A-Za-z0-9_.-]+/g, '_')}`;
let socketSeq = 0;
const runDir = (xen, spec) => join(work, runName(xen, spec));

export function splitModel(spec) {
  const i = spec.indexOf(':');
  return i < 0 ? [spec, ''] : [spec.slice(0, i), spec.slice(i + 1)];
}

/** Xen's `xen` image (a 32-bit ELF with a multiboot header) from xen-*.gz: QEMU's -kernel takes neither gzip nor ELF64. */
function hypervisor(xen) {
  const out = join(work, `xen-${xen}`);
  const gz = need(XENS[xen].gz, `Xen ${xen} image (node scripts/fetch-corpus.mjs)`);
  if (!existsSync(out)) writeAtomic(out, gunzipSync(readFileSync(gz)));
  return out;
}

/** A dom0 "kernel" that is not an ELF file: construct_dom0 fails and Xen panics right after patching. */
function dom0() {
  const p = join(work, 'dom0-not-elf.bin');
  if (!existsSync(p)) writeAtomic(p, 'textpoke: not a kernel, so Xen panics "Could not construct domain 0"\n');
  return p;
}

/** Every live qemu child, killed on any exit path of this process. */
const children = new Set();
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    for (const c of children) c.kill('SIGKILL');
    process.exit(130);
  });
}
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

/** A line-oriented client for QEMU's human monitor on a unix socket. */
class Monitor {
  static open(path, timeoutMs) {
    return new Promise((res, rej) => {
      const sock = connect(path);
      const m = new Monitor(sock);
      const t = setTimeout(() => {
        sock.destroy();
        rej(new Error('monitor: no prompt'));
      }, timeoutMs);
      m.waitPrompt().then(
        () => {
          clearTimeout(t);
          res(m);
        },
        (e) => {
          clearTimeout(t);
          rej(e);
        },
      );
      sock.on('error', (e) => {
        clearTimeout(t);
        rej(e);
      });
    });
  }
  constructor(sock) {
    this.sock = sock;
    this.buf = '';
    this.waiters = [];
    sock.on('data', (d) => {
      this.buf += d.toString('latin1');
      this.pump();
    });
    sock.on('close', () => {
      for (const w of this.waiters.splice(0)) w.rej(new Error('monitor closed'));
    });
  }
  pump() {
    const at = this.buf.indexOf('(qemu) ');
    if (at < 0 || !this.waiters.length) return;
    const text = this.buf.slice(0, at);
    this.buf = this.buf.slice(at + 7);
    this.waiters.shift().res(text);
  }
  waitPrompt() {
    return new Promise((res, rej) => {
      this.waiters.push({ res, rej });
      this.pump();
    });
  }
  /** Runs one command; resolves with its output (the echoed command line removed). */
  async cmd(line, timeoutMs = 60000) {
    const p = this.waitPrompt();
    this.sock.write(line + '\n');
    let t;
    const out = await Promise.race([
      p,
      new Promise((_, rej) => {
        t = setTimeout(() => rej(new Error(`monitor: '${line}' timed out`)), timeoutMs);
      }),
    ]);
    clearTimeout(t);
    // The monitor echoes the command with terminal escapes; keep what follows the first newline.
    const nl = out.indexOf('\n');
    return (nl < 0 ? '' : out.slice(nl + 1)).replace(/\r/g, '').trim();
  }
  close() {
    this.sock.destroy();
  }
}

/** Allocated sections of xen-syms to read back: .text is compared, the data ones give boot_cpu_data and the
 *  function pointers altcalls went through. */
async function dumpPlan(xen) {
  const { load } = await lib();
  const img = await load.imageFromBytes(readFileSync(XENS[xen].syms), XENS[xen].syms);
  const secs = img.sections.filter((s) => s.alloc && s.size > 0 && !Number.isNaN(s.addr) && s.type !== 8 /* NOBITS */);
  return secs.map((s) => ({ name: s.name, addr: img.base + BigInt(s.addr), size: s.size }));
}

/**
 * Boots one (xen, model) run; resolves once Xen halted and the sections were read, or on failure/timeout.
 * The VM is killed on every path.
 */
async function boot(xen, spec, timeoutMs) {
  const [model, extra] = splitModel(spec);
  const dir = runDir(xen, spec);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const serial = join(dir, 'serial.log');
  // A unix socket path must stay under 108 bytes: a short one in the temporary directory.
  const sock = join(tmpdir(), `textpoke-xen-${process.pid}-${socketSeq++}.sock`);
  rmSync(sock, { force: true });
  const args = [
    '-accel',
    'tcg,thread=single',
    '-cpu',
    model,
    '-smp',
    String(SMP),
    '-m',
    '512M',
    '-display',
    'none',
    '-no-reboot',
    '-kernel',
    hypervisor(xen),
    '-append',
    extra ? `${APPEND} ${extra}` : APPEND,
    '-initrd',
    dom0(),
    '-serial',
    `file:${serial}`,
    '-monitor',
    `unix:${sock},server=on,wait=off`,
    '-net',
    'none',
  ];
  const plan = await dumpPlan(xen);
  const started = Date.now();
  const child = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  children.add(child);
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d.toString('latin1')));
  let exited = null;
  const exitP = new Promise(
    /** @param {(v?: unknown) => void} res */ (res) =>
      child.on('close', (code, sig) => {
        exited = { code, sig };
        children.delete(child);
        res();
      }),
  );
  const result = {
    xen,
    model: spec,
    args,
    seconds: 0,
    halted: false,
    timedOut: false,
    dumps: {},
    dumpErrors: {},
    stderr: '',
  };
  const deadline = started + timeoutMs;
  let mon;
  try {
    // Wait for the halt line on the serial console.
    for (;;) {
      if (exited) break;
      const log = existsSync(serial) ? readFileSync(serial, 'latin1') : '';
      if (HALTED.test(log)) {
        result.halted = true;
        break;
      }
      if (Date.now() > deadline) {
        result.timedOut = true;
        break;
      }
      await new Promise((r) => setTimeout(r, 500));
    }
    if (result.halted) {
      mon = await Monitor.open(sock, 20000);
      await mon.cmd('stop');
      for (const p of plan) {
        const file = join(dir, `mem-${p.name.replace(/^\./, '')}.bin`);
        const out = await mon.cmd(`memsave 0x${p.addr.toString(16)} ${p.size} "${file}"`);
        if (out || !existsSync(file)) result.dumpErrors[p.name] = out || 'no file written';
        else result.dumps[p.name] = { addr: '0x' + p.addr.toString(16), size: p.size, file };
      }
      result.registers = await mon.cmd('info registers');
      // The CPUID words QEMU's model gives the guest (after TCG's filtering): the part of the CPU the boot log
      // does not print, for --cpu-from.
      const fw = await mon.cmd('qom-get /machine/unattached/device[0] feature-words');
      try {
        result.featureWords = JSON.parse(fw.slice(fw.indexOf('[')));
      } catch {
        result.featureWordsError = fw.slice(0, 200);
      }
      mon.sock.write('quit\n');
    }
  } catch (e) {
    result.error = e instanceof Error ? e.message : String(e);
  } finally {
    mon?.close();
    const t = setTimeout(() => child.kill('SIGKILL'), 5000);
    if (!exited) {
      if (!result.halted) child.kill('SIGKILL');
      await exitP;
    }
    clearTimeout(t);
  }
  result.seconds = (Date.now() - started) / 1000;
  result.serial = existsSync(serial) ? readFileSync(serial, 'latin1') : '';
  result.stderr = stderr;
  rmSync(sock, { force: true });
  if (result.featureWords) writeAtomic(join(dir, 'cpu-from.txt'), cpuFromFile(result.serial, result.featureWords));
  writeAtomic(join(dir, 'boot.json'), JSON.stringify({ ...result, serial: undefined }, null, 1));
  return result;
}

/**
 * Xen's featureset word order (public/arch-x86/cpufeatureset.h): CPUID leaf, subleaf, register per word;
 * words 16-17 are MSR_ARCH_CAPS, which QEMU's feature-words do not list (TCG has no ARCH_CAPS): zero.
 */
export const FEATURESET_WORDS = [
  [1, 0, 'EDX'],
  [1, 0, 'ECX'],
  [0x80000001, 0, 'EDX'],
  [0x80000001, 0, 'ECX'],
  [0xd, 1, 'EAX'],
  [7, 0, 'EBX'],
  [7, 0, 'ECX'],
  [0x80000007, 0, 'EDX'],
  [0x80000008, 0, 'EBX'],
  [7, 0, 'EDX'],
  [7, 1, 'EAX'],
  [0x80000021, 0, 'EAX'],
  [7, 1, 'EBX'],
  [7, 2, 'EDX'],
  [7, 1, 'ECX'],
  [7, 1, 'EDX'],
  null,
  null,
  [0x80000021, 0, 'ECX'],
];

/** QEMU's feature-words as featureset words. */
export function featuresetFromQemu(words) {
  return FEATURESET_WORDS.map((w) => {
    if (!w) return 0;
    const hit = words.find(
      (x) => x['cpuid-input-eax'] === w[0] && (x['cpuid-input-ecx'] ?? 0) === w[1] && x['cpuid-register'] === w[2],
    );
    return hit ? hit.features >>> 0 : 0;
  });
}

/**
 * The file `--cpu-from` reads for a run: Xen's boot log, then the CPUID words of QEMU's model in the form
 * xen-cpuid prints its Raw featureset (there is no dom0 to run xen-cpuid in).
 */
function cpuFromFile(serial, featureWords) {
  const fs = featuresetFromQemu(featureWords)
    .map((w) => w.toString(16).padStart(8, '0'))
    .join(':');
  return `${serial.replace(/\s*$/, '')}\n# CPUID of QEMU's CPU model (qom-get feature-words) as xen-cpuid's Raw featureset line\nRaw                       ${fs}\n`;
}

function reuse(xen, spec) {
  const p = join(runDir(xen, spec), 'boot.json');
  if (!existsSync(p)) return null;
  const r = JSON.parse(readFileSync(p, 'utf8'));
  const serial = join(runDir(xen, spec), 'serial.log');
  r.serial = existsSync(serial) ? readFileSync(serial, 'latin1') : '';
  return r.halted && Object.values(r.dumps).every((d) => existsSync(d.file)) ? r : null;
}

let libCache;
async function lib() {
  if (libCache) return libCache;
  const dist = join(repo, 'dist', 'src');
  need(join(dist, 'elf', 'load.js'), 'built library (run: npx tsc -p .)');
  const compare = await import(join(repo, 'scripts', 'qemu', 'xen-compare.mjs'));
  libCache = { load: await import(join(dist, 'elf', 'load.js')), compare };
  return libCache;
}

/** @param {string[]} argv */
function parseArgs(argv) {
  /** @type {{ xens: string[], models: string[], json: string | null, reuse: boolean, compare: boolean, verbose: boolean, timeout: number, jobs: number }} */
  const o = { xens: [], models: [], json: null, reuse: false, compare: true, verbose: false, timeout: 240, jobs: 1 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) throw new UsageError(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--xen') {
      const v = val();
      if (!XENS[v]) throw new UsageError(`--xen ${v}: expected ${Object.keys(XENS).join(' or ')}`);
      o.xens.push(v);
    } else if (a === '--model') o.models.push(val());
    else if (a === '--json') o.json = val();
    else if (a === '--reuse') o.reuse = true;
    else if (a === '--no-compare') o.compare = false;
    else if (a === '--verbose') o.verbose = true;
    else if (a === '--timeout') o.timeout = Number(val());
    else if (a === '--jobs') o.jobs = Math.max(1, Number(val()));
    else throw new UsageError(`unknown argument ${a}`);
  }
  if (!o.xens.length) o.xens = Object.keys(XENS).filter((x) => !XENS[x].optional);
  if (!o.models.length) o.models = DEFAULT_MODELS;
  return o;
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (!which('qemu-system-x86_64'))
    throw new UsageError('qemu-system-x86_64 not found (Debian package qemu-system-x86)');
  for (const x of o.xens) {
    need(XENS[x].gz, `Xen ${x} image`);
    need(XENS[x].syms, `Xen ${x} xen-syms`);
  }
  mkdirSync(work, { recursive: true });
  const runs = o.xens.flatMap((x) => o.models.map((m) => [x, m]));
  const results = new Array(runs.length);
  let next = 0;
  const worker = async () => {
    while (next < runs.length) {
      const k = next++;
      const [x, m] = runs[k];
      results[k] = (o.reuse && reuse(x, m)) || (await boot(x, m, o.timeout * 1000));
    }
  };
  await Promise.all(Array.from({ length: Math.min(o.jobs, runs.length) }, worker));
  let ok = true;
  const out = [];
  for (const r of results) {
    const line = `Xen ${r.xen} on ${r.model}: ${r.halted ? 'halted' : r.timedOut ? 'TIMED OUT' : 'did not halt'} after ${r.seconds.toFixed(1)} s`;
    process.stdout.write(line + (r.error ? ` (${r.error})` : '') + '\n');
    if (!r.halted && r.stderr)
      process.stdout.write(`  qemu: ${r.stderr.trim().split('\n').slice(-3).join('\n  qemu: ')}\n`);
    if (!r.halted || !r.dumps['.text']) {
      ok = false;
      out.push({ boot: { ...r, serial: r.serial.slice(-4000) } });
      continue;
    }
    if (!o.compare) {
      out.push({ boot: r });
      continue;
    }
    const { compare } = await lib();
    const c = await compare.compareRun(r, XENS[r.xen].syms);
    process.stdout.write(compare.formatRun(c, o.verbose));
    if (!c.ok) ok = false;
    out.push({ boot: { ...r, serial: undefined, log: compare.bootLogLines(r.serial) }, comparison: c });
  }
  if (o.json)
    writeAtomic(
      o.json,
      JSON.stringify(out, (_k, v) => (typeof v === 'bigint' ? '0x' + v.toString(16) : v), 1),
    );
  return ok ? 0 : 1;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().then(
    (code) => process.exit(code),
    (e) => {
      if (e instanceof UsageError) {
        process.stderr.write(`qemu-xen-groundtruth: ${e.message}\n`);
        process.exit(2);
      }
      process.stderr.write(`qemu-xen-groundtruth: ${e.stack ?? e}\n`);
      process.exit(1);
    },
  );
}
