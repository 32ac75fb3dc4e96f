/**
 * The comparison half of scripts/qemu-xen-groundtruth.mjs: Xen's .text as the booted hypervisor left it
 * (read through the QEMU monitor) against
 *   - `reference`: xen-syms' .text as linked, nothing patched: it differs from the guest only inside patch
 *     sites (alternatives, and the ENDBR64s the cf_clobber pass poisons), which checks the dump;
 *   - `textpoke`: textpoke's patched view (`applyPatches`) for the features Xen itself set
 *     (boot_cpu_data.x86_capability, read from the dumped data), and for the spec `--cpu-from` derives
 *     from the boot log alone (`log` view).
 * Each differing byte range is attributed to the site(s) covering it and each differing site to a class;
 * EXPLAINED lists the classes a clean run may contain, every other class fails the run. Classes that fail:
 * `altcall-boot-pointer` (another pointer the boot set that textpoke left unresolved), `altcall-wrong-target`
 * (textpoke resolved an altcall to another destination), `altcall-pointer-changed` (the guest's branch is not
 * the dumped pointer's value), `altcall-null-at-patching` / `altcall-null-then-set` (the guest wrote ud2; ud0
 * where textpoke did not), `outside-sites`, `unexplained`.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const dist = join(repo, 'dist', 'src');
const imp = (p) => import(pathToFileURL(join(dist, p)).href);

/** Classes of differing sites that are explained (with what checks them). */
export const EXPLAINED = {
  'altcall-platform-timer':
    "an altcall through the platform timer's ops (plt_src: HPET, ACPI PM timer or PIT, whichever the machine has): " +
    "textpoke leaves it unresolved, and the guest's direct branch goes exactly to the pointer's value in the dumped data " +
    '(+4 past an ENDBR64)',
};

/** offsetof(struct cpuinfo_x86, x86_capability) in 4.17 and 4.20: 4 bytes, cpuid_level, extended_cpuid_level. */
const CAPS_OFFSET = 12;

function u64(b, o) {
  return new DataView(b.buffer, b.byteOffset + o, 8).getBigUint64(0, true);
}
function s32(b, o) {
  return new DataView(b.buffer, b.byteOffset + o, 4).getInt32(0, true);
}

/** The guest's memory as dumped: read(absAddr, len) from whichever dumped section covers it. */
export function guestMemory(run) {
  const secs = Object.entries(run.dumps).map(([name, d]) => ({
    name,
    addr: BigInt(d.addr),
    size: d.size,
    bytes: new Uint8Array(readFileSync(d.file)),
  }));
  return {
    secs,
    read(abs, len) {
      for (const s of secs) {
        if (abs >= s.addr && abs + BigInt(len) <= s.addr + BigInt(s.size)) {
          const o = Number(abs - s.addr);
          return s.bytes.subarray(o, o + len);
        }
      }
      return undefined;
    },
  };
}

/** Lines worth keeping from the boot log (CPU, spec-ctrl, alt table, panic). */
export function bootLogLines(serial) {
  return serial
    .split('\n')
    .filter((l) =>
      /CPU Vendor|Speculative|Hardware (hints|features)|Compiled-in|Xen settings|Support for|XPTI|L1TF|Mitigating|alt table|Panic|Could not|Xen version/.test(
        l,
      ),
    )
    .map((l) => l.trimEnd());
}

let iced;
async function disasm(bytes, ip, name) {
  iced ??= await import('iced-x86');
  const { Decoder, DecoderOptions, Formatter, FormatterSyntax, Instruction } = iced;
  const dec = new Decoder(64, bytes, DecoderOptions.None);
  dec.ip = ip;
  const f = new Formatter(FormatterSyntax.Gas);
  const ins = new Instruction();
  const out = [];
  while (dec.canDecode) {
    dec.decodeOut(ins);
    let t = f.format(ins);
    if (ins.isCallNear || ins.isJmpNear) t += ` <${name(ins.nearBranchTarget)}>`;
    out.push(t);
  }
  dec.free?.();
  f.free?.();
  ins.free?.();
  return out.join('; ');
}

/** Differing byte ranges of two equal-length arrays, merging gaps shorter than `gap`. */
function ranges(a, b, gap = 1) {
  const out = [];
  for (let i = 0; i < a.length; i++) {
    if (a[i] === b[i]) continue;
    const last = out[out.length - 1];
    if (last && i - last.end < gap) last.end = i + 1;
    else out.push({ start: i, end: i + 1 });
  }
  return out;
}

/**
 * Compares one run. Returns { ok, xen, model, spec, specFromLog, sections: {...}, classes, sites }.
 */
export async function compareRun(run, symsPath) {
  const { imageFromBytes } = await imp('elf/load.js');
  const { readSites } = await imp('sites/read.js');
  const { detectTarget } = await imp('target/detect.js');
  const { featureTable, featureName } = await imp('target/features/index.js');
  const { parseCpu } = await imp('patch/cpu.js');
  const { applyPatches } = await imp('patch/apply.js');
  const { cpuFromXenBootLog } = await imp('patch/xen-bootlog.js');

  const img = await imageFromBytes(readFileSync(symsPath), symsPath);
  const target = detectTarget(img);
  const profile = target.profile;
  const table = featureTable(profile.features);
  const mem = guestMemory(run);
  const abs = (rel) => img.base + BigInt(rel);
  const symAbs = (name) => {
    const s = img.symbol(name);
    return s && !Number.isNaN(s.addr) ? abs(s.addr) : undefined;
  };

  // The features Xen set: boot_cpu_data.x86_capability (NCAPINTS words = the table's limit / 32).
  const bcd = symAbs('boot_cpu_data');
  const words = table.limit / 32;
  const caps = mem.read(bcd + BigInt(CAPS_OFFSET), words * 4);
  if (!caps) throw new Error('boot_cpu_data not in the dump');
  const bits = [];
  for (let w = 0; w < words; w++) {
    const v = new DataView(caps.buffer, caps.byteOffset + w * 4, 4).getUint32(0, true);
    for (let b = 0; b < 32; b++) if (v & (1 << b)) bits.push(w * 32 + b);
  }
  const head = mem.read(bcd, 4);
  if (!head) throw new Error('boot_cpu_data not in the dump');
  const vendorId = Buffer.from(mem.read(bcd + BigInt(CAPS_OFFSET + words * 4), 16) ?? [])
    .toString('latin1')
    .replace(/\0.*$/s, '');
  const names = bits.map((n) => featureName(table, n));
  // NOPs as arch_init_ideal_nops() picks them: K8 on AMD family <= 0xf and on Intel family 6 models
  // 0x0f-0x1b, 0x1d-0x25, 0x28-0x2f; P6 otherwise.
  const family = head[0];
  const model = head[2];
  const oldIntel =
    family === 6 &&
    ((model >= 0x0f && model <= 0x1b) || (model >= 0x1d && model <= 0x25) || (model >= 0x28 && model <= 0x2f));
  const nops =
    (vendorId === 'AuthenticAMD' && family <= 0xf) || (vendorId === 'GenuineIntel' && oldIntel) ? 'k8' : 'p6';
  const spec = ['none', ...names.map((n) => `+${n}`), `nops=${nops}`].join(',');
  const cpu = parseCpu(spec, table);

  const set = readSites(img, profile, { decode: false });
  const sites = set.sites;
  const alts = sites.filter((s) => s.table === '.altinstructions');
  const text = img.sections.find((s) => s.name === '.text');
  const guestText = mem.read(abs(text.addr), text.size);
  if (!guestText) throw new Error(`${run.xen} ${run.model}: the dump does not cover .text`);
  const fileText = img.sectionBytes(text);

  const views = {};
  const xenOpts = { altcallNull: 'ud' };
  const xenCpu = {
    vendor: vendorId === 'AuthenticAMD' ? 'amd' : vendorId === 'HygonGenuine' ? 'hygon' : 'intel',
    family,
    model,
  };
  views.textpoke = applyPatches(img, profile, cpu, { sites, xen: xenOpts, xenCpu }).view;
  // --cpu-from: the boot log plus the QEMU model's CPUID words (cpu-from.txt, written by the boot).
  let specFromLog;
  let logNotes = [];
  /** @type {{ onlyLog: string[], onlyCaps: string[], nopsDiffer?: boolean }} */
  const logBits = { onlyLog: [], onlyCaps: [] };
  const cpuFrom = join(dirname(run.dumps['.text'].file), 'cpu-from.txt');
  if (existsSync(cpuFrom)) {
    const r = cpuFromXenBootLog(readFileSync(cpuFrom, 'latin1'), table);
    specFromLog = r.spec;
    logNotes = r.notes;
    const logCpu = parseCpu(specFromLog, table);
    views.log = applyPatches(img, profile, logCpu, { sites, xen: xenOpts, xenCpu: r.id }).view;
    const used = new Set(alts.map((a) => a.feature));
    for (const n of logCpu.features)
      if (!cpu.features.has(n))
        logBits.onlyLog.push(featureName(table, n) + (used.has(n) ? ' (used by alternatives)' : ''));
    for (const n of cpu.features)
      if (!logCpu.features.has(n))
        logBits.onlyCaps.push(featureName(table, n) + (used.has(n) ? ' (used by alternatives)' : ''));
    logBits.nopsDiffer = logCpu.nops !== cpu.nops;
  }

  // Site index by text offset: alternative origins (orig_len + pad_len) and cf_clobber ENDBR64s.
  const byOff = new Map();
  for (const a of alts) {
    const len = (a.origLen ?? 0) + (a.padLen ?? 0);
    for (let k = 0; k < len; k++) {
      const o = a.addr - text.addr + k;
      if (!byOff.has(o)) byOff.set(o, []);
      byOff.get(o).push(a);
    }
  }
  const symNames = [...img.symbols]
    .filter((s) => !Number.isNaN(s.addr) && s.name && (s.type === 2 || s.type === 1 || s.type === 0))
    .sort((a, b) => a.addr - b.addr);
  const nameOf = (absAddr) => {
    const rel = Number(absAddr - img.base);
    let lo = 0,
      hi = symNames.length - 1,
      k = -1;
    while (lo <= hi) {
      const m = (lo + hi) >> 1;
      if (symNames[m].addr <= rel) {
        k = m;
        lo = m + 1;
      } else hi = m - 1;
    }
    if (k < 0) return '0x' + absAddr.toString(16);
    const off = rel - symNames[k].addr;
    return off ? `${symNames[k].name}+0x${off.toString(16)}` : symNames[k].name;
  };

  /** @type {Record<string, any>} */
  const result = {
    xen: run.xen,
    model: run.model,
    ok: true,
    cpu: { vendor: vendorId, family, model: head[2], stepping: head[3], features: names, nops },
    spec,
    specFromLog,
    logNotes,
    logBits,
    sections: {},
    classes: {},
    sites: [],
    logDiff: null,
  };
  // How textpoke patched the altcalls: resolved to a direct branch, ud2; ud0 for NULL, or left indirect.
  const ap = views.textpoke.patches.filter((p) => p.patcher === 'xen-alternatives' && /^altcall/.test(p.note ?? ''));
  result.altcalls = {
    direct: ap.filter((p) => p.note.startsWith('altcall -> ')).length,
    ud: ap.filter((p) => p.note.includes('ud2')).length,
    indirect: views.textpoke.findings.filter((f) => /left indirect/.test(f.message)).length,
  };
  const cfPoisoned = new Set(
    views.textpoke.patches.filter((p) => p.patcher === 'xen-cf-clobber').map((p) => p.addr - text.addr),
  );

  // reference: every differing range must lie in an alternative site or a poisoned ENDBR64.
  const ref = ranges(fileText, guestText);
  let refOutside = 0;
  let refBytes = 0;
  const refSites = new Set();
  let refCf = 0;
  for (const r of ref) {
    for (let o = r.start; o < r.end; o++) {
      if (fileText[o] === guestText[o]) continue;
      refBytes++;
      const s = byOff.get(o);
      if (s) {
        for (const x of s) refSites.add(x.addr);
        continue;
      }
      let cf = false;
      for (let k = 0; k < 4; k++) if (cfPoisoned.has(o - k)) cf = true;
      if (cf) {
        refCf++;
        continue;
      }
      refOutside++;
    }
  }
  result.sections['.text'] = {
    size: text.size,
    reference: {
      ranges: ref.length,
      bytes: refBytes,
      altSites: refSites.size,
      cfClobberBytes: refCf,
      outsideSites: refOutside,
    },
  };

  const textpokeText = views.textpoke.bytesOf(text);
  const tr = ranges(textpokeText, guestText);
  // Group differing bytes by site (the first alternative covering the byte; else the byte itself).
  const bySite = new Map();
  let tBytes = 0;
  for (const r of tr) {
    for (let o = r.start; o < r.end; o++) {
      if (textpokeText[o] === guestText[o]) continue;
      tBytes++;
      const s = byOff.get(o);
      const key = s ? s[0].addr - text.addr : `byte:${o}`;
      if (!bySite.has(key)) bySite.set(key, { sites: s ?? [], bytes: 0 });
      bySite.get(key).bytes++;
    }
  }
  for (const [key, g] of bySite) {
    const site = g.sites[0];
    const off = typeof key === 'number' ? key : Number(String(key).slice(5));
    const len = site ? (site.origLen ?? 0) + (site.padLen ?? 0) : 1;
    const at = abs(text.addr + off);
    const guest = guestText.subarray(off, off + len);
    const tp = textpokeText.subarray(off, off + len);
    const cls = classify({ site, guest, tp, at, file: fileText.subarray(off, off + len), mem, img, nameOf });
    result.classes[cls.name] = (result.classes[cls.name] ?? 0) + 1;
    if (!EXPLAINED[cls.name]) result.ok = false;
    result.sites.push({
      addr: '0x' + at.toString(16),
      where: nameOf(at),
      bytes: g.bytes,
      class: cls.name,
      detail: cls.detail,
      slot: cls.slot,
      features: g.sites.map((s) => featureName(table, s.feature)),
      textpoke: await disasm(tp, at, nameOf),
      guest: await disasm(guest, at, nameOf),
    });
  }
  result.sections['.text'].textpoke = { ranges: tr.length, bytes: tBytes, sites: bySite.size };
  if (views.log) {
    // The boot-log spec must give exactly the text the capability words give.
    const lt = views.log.bytesOf(text);
    const lr = ranges(lt, textpokeText);
    let bytes = 0;
    const lsites = new Set();
    for (const r of lr)
      for (let o = r.start; o < r.end; o++)
        if (lt[o] !== textpokeText[o]) {
          bytes++;
          const s = byOff.get(o);
          lsites.add(s ? s[0].addr : `b${o}`);
        }
    result.logDiff = { ranges: lr.length, bytes, sites: lsites.size };
    if (bytes) result.ok = false;
    // The CLI, as a user runs it: `textpoke apply xen-syms --cpu-from FILE --altcall-null ud -o OUT`; its .text
    // must equal the library view.
    const dir = mkdtempSync(join(tmpdir(), 'textpoke-xen-'));
    try {
      const out = join(dir, 'xen-syms.patched');
      const r = spawnSync(
        process.execPath,
        [
          join(repo, 'bin', 'textpoke.js'),
          'apply',
          symsPath,
          '--cpu-from',
          cpuFrom,
          '--altcall-null',
          'ud',
          '--quiet',
          '-o',
          out,
        ],
        { encoding: 'utf8', maxBuffer: 1 << 26 },
      );
      if (!existsSync(out)) result.cli = { ok: false, status: r.status, stderr: r.stderr.slice(-500) };
      else {
        const o = await imageFromBytes(readFileSync(out), out);
        const ot = o.sectionBytes(o.sections.find((x) => x.name === '.text'));
        let diff = 0;
        for (let k = 0; k < ot.length; k++) if (ot[k] !== lt[k]) diff++;
        result.cli = { ok: diff === 0 && ot.length === lt.length, status: r.status, bytesDiffer: diff };
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    if (!result.cli.ok) result.ok = false;
  }
  return result;
}

/**
 * One differing site's class. A class applies only where the guest holds exactly the form it describes.
 */
function classify({ site, guest, tp, at, file, mem, img, nameOf }) {
  if (!site) return { name: 'outside-sites' };
  const isEndbr = (b) => b && b[0] === 0xf3 && b[1] === 0x0f && b[2] === 0x1e && b[3] === 0xfa;
  const fileBytes = (absAddr, n) => {
    const r = Number(absAddr - img.base);
    const s = img.sectionAt(r);
    return s ? img.sectionBytes(s).subarray(r - s.addr, r - s.addr + n) : undefined;
  };
  // An altcall: `call/jmp *disp32(%rip)` in the file.
  if (file[0] === 0xff && (file[1] === 0x15 || file[1] === 0x25)) {
    const slot = at + 6n + BigInt(s32(file, 2));
    const p = mem.read(slot, 8);
    const v = p ? u64(p, 0) : undefined;
    const via = `${nameOf(slot)} = ${v === undefined ? '?' : v ? nameOf(v) : 'NULL'}`;
    const ud = guest[0] === 0x0f && guest[1] === 0x0b && guest[2] === 0x0f && guest[3] === 0xff;
    const tpUnresolved =
      (tp[0] === 0x0f && tp[1] === 0x0b && tp[2] === 0x0f && tp[3] === 0xff) || (tp[0] === 0xff && tp[1] === file[1]);
    if (!tpUnresolved) return { name: 'altcall-wrong-target', detail: via, slot: nameOf(slot) };
    if ((guest[0] & 0xfe) === 0xe8 && (guest[0] === 0xe8) === (file[1] === 0x15)) {
      const dest = at + 5n + BigInt(s32(guest, 1));
      if (v === undefined) return { name: 'altcall-pointer-not-dumped', detail: via, slot: nameOf(slot) };
      // The guest's ENDBR64 may be poisoned by now (cf_clobber): the file's bytes decide the +4.
      if (v && (dest === v || dest === v + 4n) && (dest === v) !== isEndbr(fileBytes(v, 4)))
        return {
          name: nameOf(slot).startsWith('plt_src') ? 'altcall-platform-timer' : 'altcall-boot-pointer',
          detail: via,
          slot: nameOf(slot),
        };
      return { name: 'altcall-pointer-changed', detail: `${via}; guest -> ${nameOf(dest)}`, slot: nameOf(slot) };
    }
    if (ud)
      return { name: v === 0n ? 'altcall-null-at-patching' : 'altcall-null-then-set', detail: via, slot: nameOf(slot) };
  }
  return { name: 'unexplained' };
}

export function formatRun(c, verbose) {
  const t = c.sections['.text'];
  const lines = [];
  lines.push(
    `  CPU: ${c.cpu.vendor} family ${c.cpu.family} model ${c.cpu.model}: ${c.cpu.features.length} features set (boot_cpu_data), ${c.cpu.nops} NOPs`,
  );
  lines.push(
    `  .text ${t.size} bytes: reference differs in ${t.reference.bytes} bytes (${t.reference.altSites} alternative sites, ${t.reference.cfClobberBytes} cf_clobber bytes, ${t.reference.outsideSites} outside sites)`,
  );
  lines.push(
    `  altcalls: ${c.altcalls.direct} direct, ${c.altcalls.ud} ud2 (NULL at the second pass), ${c.altcalls.indirect} left indirect`,
  );
  lines.push(
    `  textpoke (boot_cpu_data spec) differs in ${t.textpoke.bytes} bytes, ${t.textpoke.sites} sites: ${
      Object.entries(c.classes)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ') || 'none'
    }`,
  );
  if (c.logDiff) {
    lines.push(
      `  --cpu-from (boot log + QEMU CPUID): ${c.logDiff.bytes} bytes in ${c.logDiff.sites} sites differ from the boot_cpu_data view`,
    );
    const used = (l) => l.filter((x) => x.includes('(used')).length;
    lines.push(
      `    bits only in the log spec: ${c.logBits.onlyLog.length} (${used(c.logBits.onlyLog)} used by alternatives); only in boot_cpu_data: ${c.logBits.onlyCaps.length} (${used(c.logBits.onlyCaps)} used)${c.logBits.nopsDiffer ? '; NOP tables differ' : ''}`,
    );
    if (verbose)
      lines.push(
        `    only log: ${c.logBits.onlyLog.join(' ') || '-'}\n    only boot_cpu_data: ${c.logBits.onlyCaps.join(' ') || '-'}`,
      );
    lines.push(
      `    CLI (textpoke apply --cpu-from): ${c.cli?.ok ? '.text equals the library view' : `FAILED (${JSON.stringify(c.cli)})`}`,
    );
  } else lines.push('  --cpu-from: no cpu-from.txt for this run');
  lines.push(`  ${c.ok ? 'OK: every differing byte explained' : 'NOT OK'}`);
  const show = verbose ? c.sites : c.sites.filter((s) => !EXPLAINED[s.class]).slice(0, 20);
  for (const s of show)
    lines.push(
      `    ${s.addr} ${s.where} [${s.features.join(' ')}] ${s.class}${s.detail ? ` (${s.detail})` : ''}\n      textpoke: ${s.textpoke}\n      guest:    ${s.guest}`,
    );
  return lines.join('\n') + '\n';
}
