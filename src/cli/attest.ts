/**
 * `textpoke attest`: is the running kernel's text exactly what this vmlinuz, these modules and this CPU
 * should produce? Live text comes from /proc/kcore (core kernel at its KASLR address, each loaded module at
 * the section addresses /sys/module/NAME/sections lists); the prediction is apply's, for `--cpu host` by
 * default. Every differing byte is explained as a legitimate state of a known site or reported (src/attest/).
 * Every input has a flag (--vmlinuz, --modules, --kcore, --sysfs, --symbols), so a saved or synthetic
 * machine can be attested offline.
 */
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { profileOption } from './options.js';
import { attestObject, AddressNames, ObjectResult, runtimeConsts } from '../attest/compare.js';
import { Kcore, KcoreError } from '../attest/kcore.js';
import { applyKaslr, readKaslrRelocs } from '../attest/relocs.js';
import { renderAttestJson, renderAttestSarif, renderAttestText } from '../attest/render.js';
import type { Image, Section } from '../elf/image.js';
import { loadImage } from '../elf/load.js';
import { applyPatches, CpuSpecError, parseCpu, parseSymbolMap } from '../patch/index.js';
import { featureTable } from '../target/features/index.js';
import { linuxRules, preemptModeProblem } from '../target/profile.js';
import { EXIT_FINDINGS, EXIT_USAGE, ExitStatus, Io, UsageError } from './context.js';
import { resolveCpuSpec } from './host-cpu.js';
import { describeError, openImage, parseKaslrOffset, resolveTarget } from './jobs.js';

interface AttestOptions {
  vmlinuz?: string;
  modules?: string;
  kcore?: string;
  sysfs: string;
  symbols?: string;
  kaslrOffset?: string;
  cpu?: string;
  cpuFrom?: string;
  profile?: string;
  module?: string[];
  kernel: boolean;
  json?: boolean;
  sarif?: boolean;
  preempt?: 'none' | 'voluntary' | 'full' | 'lazy' | 'unknown';
}

/**
 * Executable sections still present after boot. The core kernel frees its init region, which holds init and
 * exit text and the alternatives' replacement code; a module frees only its init text.
 */
function liveTextSections(img: Image, keep?: (s: Section) => boolean): Section[] {
  const freed = img.kind === 'rel' ? /^\.init/ : /^\.(init|exit|altinstr_)/;
  // Writable sections are data even when flagged executable (7.3's vmlinux has a WAX .data): the kernel maps them NX.
  return img.sections.filter(
    (s) =>
      s.alloc &&
      s.exec &&
      !(s.flags & SHF_WRITE) &&
      s.size > 0 &&
      s.type !== 8 &&
      !freed.test(s.name) &&
      (!keep || keep(s)),
  );
}
const SHF_WRITE = 1;

function kcoreFile(path: string): { kcore: Kcore; close(): void } {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UsageError(
      `${path}: ${code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied (attest reads /proc/kcore as root)' : `cannot open (${code})`}`,
    );
  }
  const readAt = (offset: number, length: number): Uint8Array => {
    const b = Buffer.alloc(length);
    let got = 0;
    while (got < length) {
      const n = readSync(fd, b, got, length - got, offset + got);
      if (n <= 0) break;
      got += n;
    }
    return b.subarray(0, got);
  };
  try {
    return { kcore: Kcore.open(readAt), close: () => closeSync(fd) };
  } catch (e) {
    closeSync(fd);
    throw new UsageError(`${path}: ${e instanceof KcoreError ? e.message : String(e)}`);
  }
}

/** Runtime address -> name, from a kallsyms dump (module symbols included). */
function kallsymsNames(text: string | undefined): AddressNames | undefined {
  if (!text) return undefined;
  const entries: Array<[bigint, string]> = [];
  // Every kernel symbol by name, data included (a static call key, a runtime constant's variable).
  const byName = new Map<string, bigint>();
  for (const line of text.split('\n')) {
    const m = /^([0-9a-fA-F]{8,16})\s+([a-zA-Z])\s+(\S+)(?:\s+\[(\S+)\])?/.exec(line);
    if (!m) continue;
    const at = BigInt('0x' + m[1]!);
    if (!m[4] && !byName.has(m[3]!)) byName.set(m[3]!, at);
    if ('tTwW'.includes(m[2]!)) entries.push([at, m[4] ? `${m[3]} [${m[4]}]` : m[3]!]);
  }
  entries.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const exact = new Map<bigint, string>();
  for (const [a, n] of entries) if (!exact.has(a)) exact.set(a, n);
  return {
    addressOf: (name) => byName.get(name),
    startingAt: (abs) => exact.get(abs),
    near: (abs) => {
      let lo = 0;
      let hi = entries.length - 1;
      let k = -1;
      while (lo <= hi) {
        const mid = (lo + hi) >> 1;
        if (entries[mid]![0] <= abs) {
          k = mid;
          lo = mid + 1;
        } else hi = mid - 1;
      }
      if (k < 0) return undefined;
      const [a, n] = entries[k]!;
      return abs - a < 0x100000n ? `${n}+0x${(abs - a).toString(16)}` : undefined;
    },
  };
}

/** name -> path of every module file under `dir` (names with '-' as '_', as /sys/module has them). */
function moduleIndex(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string): void => {
    let entries;
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else {
        const m = /^(.*)\.ko(\.xz|\.zst|\.gz)?$/.exec(e.name);
        if (m) {
          const k = m[1]!.replace(/-/g, '_');
          if (!out.has(k)) out.set(k, p);
        }
      }
    }
  };
  walk(dir);
  return out;
}

export function register(program: Command, io: Io, status: ExitStatus): void {
  program
    .command('attest')
    .description(
      "compare the running kernel's text (/proc/kcore: the core kernel and every loaded module) with what its vmlinuz, modules and CPU should produce; explain each difference as a runtime state of a known site or report it (as root)",
    )
    .option('--vmlinuz <file>', 'the kernel image (default /boot/vmlinuz-$(uname -r))')
    .option('--modules <dir>', 'the module tree (default /lib/modules/$(uname -r))')
    .option('--kcore <file>', 'the live memory image (default /proc/kcore)')
    .option(
      '--sysfs <root>',
      "root the machine's files are read under: ROOT/sys/module/*/sections, ROOT/proc/kallsyms, and for --cpu host ROOT/proc/cpuinfo, ROOT/sys/devices/system/cpu/vulnerabilities, ROOT/proc/cmdline",
      '/',
    )
    .option(
      '--symbols <file>',
      'kernel symbols (default ROOT/proc/kallsyms): a kallsyms dump, System.map or the debug vmlinux',
    )
    .option('--kaslr-offset <hex>', 'the KASLR offset (default: found from _text in the kallsyms dump)')
    .option('--cpu <spec>', 'CPU: host (default: the machine under ROOT) or a preset spec as for apply')
    .option('--cpu-from <dir|file>', 'CPU as saved files from the machine describe it (see docs/apply.md)')
    .addOption(profileOption('the kernel image'))
    .option(
      '--module <name>',
      'only these loaded modules (repeatable; default all)',
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .option('--no-kernel', 'modules only (skip the core kernel)')
    .addOption(
      new Option(
        '--preempt <mode>',
        "PREEMPT_DYNAMIC mode predicted for static calls (any function a key may hold is accepted anyway; default Debian's for the version)",
      ).choices(['none', 'voluntary', 'full', 'lazy', 'unknown']),
    )
    .option('--json', 'JSON output')
    .option('--sarif', 'SARIF 2.1.0 output')
    .action(async (o: AttestOptions) => {
      if (o.json && o.sarif) throw new UsageError('--json and --sarif are exclusive');
      const root = o.sysfs;
      const rel = release();
      const vmlinuz = o.vmlinuz ?? `/boot/vmlinuz-${rel}`;
      const modulesDir = o.modules ?? `/lib/modules/${rel}`;
      const kallsymsPath = join(root, 'proc/kallsyms');
      const symbols = o.symbols ?? (existsSync(kallsymsPath) ? kallsymsPath : undefined);
      const notes: string[] = [];
      const spec = resolveCpuSpec(o.cpu ?? (o.cpuFrom ? undefined : 'host'), o.cpuFrom, notes, root);
      if (!spec) throw new UsageError('no CPU: pass --cpu or --cpu-from');
      let symbolText: string | undefined;
      if (symbols) {
        try {
          symbolText = readFileSync(symbols, 'latin1');
        } catch (e) {
          throw new UsageError(`${symbols}: cannot read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
        }
      }
      const names = kallsymsNames(symbolText);
      const { kcore, close } = kcoreFile(o.kcore ?? '/proc/kcore');
      const results: ObjectResult[] = [];
      try {
        if (o.kernel) results.push(await attestKernel(vmlinuz, symbols, o, spec, kcore, names, notes));
        const modDir = join(root, 'sys/module');
        let loaded: string[] = [];
        try {
          loaded = readdirSync(modDir)
            .filter((m) => existsSync(join(modDir, m, 'sections')))
            .sort();
        } catch {
          notes.push(`${modDir}: not readable; no modules compared`);
        }
        if (o.module?.length) {
          for (const m of o.module)
            if (!loaded.includes(m))
              throw new UsageError(`--module ${m}: not loaded (no ${join(modDir, m, 'sections')})`);
          loaded = loaded.filter((m) => o.module!.includes(m));
        }
        const index = loaded.length ? moduleIndex(modulesDir) : new Map<string, string>();
        const imports = symbolText ? parseSymbolMap(symbolText) : undefined;
        for (const m of loaded) {
          const file = index.get(m);
          if (!file) {
            results.push({
              object: m,
              path: '',
              sections: [],
              runs: [],
              errors: [`${m}: loaded, but no ${m}.ko under ${modulesDir}`],
            });
            continue;
          }
          results.push(
            await attestModule(m, file, join(modDir, m, 'sections'), spec, kcore, imports, symbolText, names, o),
          );
        }
      } finally {
        close();
      }
      const header = {
        vmlinuz,
        modules: modulesDir,
        kcore: o.kcore ?? '/proc/kcore',
        cpu: o.cpuFrom
          ? `from ${o.cpuFrom}`
          : `${o.cpu ?? 'host'}${(o.cpu ?? 'host').startsWith('host') && root !== '/' ? ` (files under ${root})` : ''}`,
        notes,
      };
      if (o.json) io.out(renderAttestJson(header, results));
      else if (o.sarif) io.out(renderAttestSarif(header, results));
      else io.out(renderAttestText(header, results));
      if (results.some((r) => r.runs.some((x) => x.class === 'unexplained'))) status.raise(EXIT_FINDINGS);
      if (results.some((r) => r.errors.length)) {
        for (const r of results) for (const e of r.errors) io.err(`${e}\n`);
        status.raise(EXIT_USAGE);
      }
    });
}

async function attestKernel(
  vmlinuz: string,
  symbols: string | undefined,
  o: AttestOptions,
  spec: string,
  kcore: Kcore,
  names: AddressNames | undefined,
  notes: string[],
): Promise<ObjectResult> {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(vmlinuz);
  } catch (e) {
    throw new UsageError(
      `${vmlinuz}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : 'cannot read'}`,
    );
  }
  let loaded;
  try {
    loaded = await loadImage(bytes, vmlinuz, {
      symbolFile: symbols ? { bytes: readFileSync(symbols), path: symbols } : undefined,
      kaslrOffset: parseKaslrOffset(o.kaslrOffset),
    });
  } catch (e) {
    throw new UsageError(`${vmlinuz}: ${describeError(e)}`);
  }
  notes.push(...loaded.notes);
  const img = loaded.image;
  let target;
  try {
    target = resolveTarget(img, o.profile);
  } catch (e) {
    throw new UsageError(`${vmlinuz}: ${describeError(e)}`);
  }
  const preemptProblem = preemptModeProblem(target.profile!, o.preempt);
  if (preemptProblem) throw new UsageError(`${vmlinuz}: ${preemptProblem}`);
  const cpu = cpuFor(spec, target.profile!.features);
  const r = applyPatches(img, target.profile!, cpu, { preempt: o.preempt });
  const delta = loaded.kaslrOffset;
  let predicted: ((s: Section) => Uint8Array) | undefined;
  if (delta !== 0n) {
    const relocs = readKaslrRelocs(img.bytes, elfEnd(img));
    if (!relocs)
      notes.push(
        `${vmlinuz}: KASLR offset 0x${delta.toString(16)} but no relocation table after the ELF file: absolute addresses in the text will differ`,
      );
    else
      predicted = (s) => {
        const b = new Uint8Array(r.view.bytesOf(s)); // a copy (a Buffer's slice would share)
        applyKaslr(b, img.base + BigInt(s.addr), relocs, delta);
        return b;
      };
  }
  const res = attestObject({
    object: 'vmlinux',
    path: vmlinuz,
    view: r.view,
    sites: r.sites,
    sections: liveTextSections(img),
    kcore,
    delta,
    predicted,
    names,
    runtimeConsts: runtimeConsts(img),
    staticCallInline: linuxRules(target.profile!).staticCallInline,
  });
  res.errors.push(...r.errors.map((e) => `${vmlinuz}: ${e}`));
  return res;
}

function cpuFor(spec: string, features: string) {
  try {
    return parseCpu(spec, featureTable(features));
  } catch (e) {
    if (e instanceof CpuSpecError) throw new UsageError(e.message);
    throw e;
  }
}

/** End of the ELF file inside a decompressed payload: the relocation table follows it. */
function elfEnd(img: Image): number {
  const dv = new DataView(img.bytes.buffer, img.bytes.byteOffset, img.bytes.byteLength);
  const shoff = Number(dv.getBigUint64(40, true));
  let end = shoff + dv.getUint16(60, true) * 64;
  for (const s of img.sections) if (s.type !== 8) end = Math.max(end, s.offset + s.size);
  return end;
}

/**
 * The module's per-cpu area: /sys/module/NAME/sections does not list .data..percpu (the loader clears its
 * SHF_ALLOC), but kallsyms lists the module's per-cpu symbols at their per-cpu addresses, which fix its base.
 */
function percpuBase(img: Image, module: string, kallsyms: string | undefined): bigint | undefined {
  const pcpu = img.section('.data..percpu');
  if (!pcpu || !kallsyms) return undefined;
  const mine = new Map<string, bigint>();
  const re = new RegExp(`^([0-9a-f]{8,16}) \\S (\\S+)\\s+\\[${module.replace(/[^\w]/g, '')}\\]$`, 'gm');
  for (let m = re.exec(kallsyms); m; m = re.exec(kallsyms)) if (!mine.has(m[2]!)) mine.set(m[2]!, BigInt('0x' + m[1]!));
  const hit = img.symbols.find((s) => s.shndx === pcpu.index && s.name && mine.has(s.name));
  return hit ? mine.get(hit.name)! - BigInt(hit.addr - pcpu.addr) : undefined;
}

async function attestModule(
  name: string,
  file: string,
  sectionsDir: string,
  spec: string,
  kcore: Kcore,
  imports: Map<string, bigint> | undefined,
  kallsyms: string | undefined,
  names: AddressNames | undefined,
  o: AttestOptions,
): Promise<ObjectResult> {
  try {
    const load = new Map<string, bigint>();
    for (const n of readdirSync(sectionsDir)) {
      const p = join(sectionsDir, n);
      if (!statSync(p).isFile()) continue;
      const v = readFileSync(p, 'utf8').trim();
      if (/^0x[0-9a-f]+$/i.test(v)) load.set(n, BigInt(v));
    }
    // Parsed without the load addresses (they go to the patched view, as apply does): the per-cpu base is far
    // below the module's other sections, and one image base for both would not keep addresses exact.
    const img = await openImage(file);
    const pcpu = load.has('.data..percpu') ? undefined : percpuBase(img, name, kallsyms);
    if (pcpu !== undefined) load.set('.data..percpu', pcpu);
    const target = resolveTarget(img, undefined);
    const cpu = cpuFor(spec, target.profile!.features);
    const r = applyPatches(img, target.profile!, cpu, { load, symbols: imports, preempt: o.preempt });
    const sections = liveTextSections(img, (s) => load.has(s.name));
    const res = attestObject({
      object: name,
      path: file,
      view: r.view,
      sites: r.sites,
      sections,
      kcore,
      names,
      staticCallInline: linuxRules(target.profile!).staticCallInline,
    });
    res.errors.push(...r.errors.map((e) => `${file}: ${e}`));
    return res;
  } catch (e) {
    if (e instanceof UsageError) throw e;
    return { object: name, path: file, sections: [], runs: [], errors: [`${file}: ${describeError(e)}`] };
  }
}
