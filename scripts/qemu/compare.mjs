/**
 * The comparison half of scripts/qemu-groundtruth.mjs: the bytes a booted kernel left in a module's
 * executable sections (read from /proc/kcore) against
 *   - `reference`: the file's bytes with every relocation applied here, independently of textpoke, the
 *     way the module loader does (apply_relocate_add), and nothing patched: these differ from the guest
 *     exactly at the patch sites, which checks the dump and the relocation model;
 *   - `textpoke`: textpoke's patched view (src/patch, `applyToImage`) for the CPU the guest reported.
 * Every differing byte range is attributed to the patch site(s) covering it and to a difference class;
 * the classes a clean run may still contain are listed in KNOWN with their explanation
 * (the README (ground truth section) repeats them).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Absolute-address symbolizer over the guest's /proc/kallsyms (kernel and modules): the names the
 * running kernel itself uses, so a branch in the dump reads as `jmp srso_return_thunk`.
 */
export class Symbolizer {
  /** @param {{ name: string, addr: bigint }[]} entries */
  constructor(entries) {
    const xs = entries
      .filter((e) => e.addr > 0n && !/^(__key|__UNIQUE_ID|\$)/.test(e.name))
      .sort((a, b) => (a.addr < b.addr ? -1 : a.addr > b.addr ? 1 : 0));
    this.addrs = xs.map((e) => e.addr);
    this.names = xs.map((e) => e.name);
  }
  /** @param {bigint} addr */
  where(addr) {
    let lo = 0,
      hi = this.addrs.length - 1,
      k = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.addrs[mid] <= addr) {
        k = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    if (k < 0) return '0x' + addr.toString(16);
    const off = addr - this.addrs[k];
    if (off > 0x100000n) return '0x' + addr.toString(16);
    return off === 0n ? this.names[k] : `${this.names[k]}+0x${off.toString(16)}`;
  }
}

/** @type {import('textpoke/x86').Formatter | null} */
let fmtr = null;
/** @type {import('textpoke/x86').Instruction | null} */
let insn = null;
/** AT&T text of `bytes` at absolute address `ip` (bigint), branch targets named through `sym`. */
export async function disasmAbs(bytes, ip, sym) {
  const x86 = await import('textpoke/x86');
  const dec = x86.decoder(bytes, { ip });
  if (!fmtr) {
    fmtr = x86.newFormatter(x86.FormatterSyntax.Gas);
    fmtr.uppercaseHex = false;
    fmtr.branchLeadingZeros = false;
    insn = x86.newInstruction();
  }
  const f = fmtr;
  const ins = /** @type {import('textpoke/x86').Instruction} */ (insn);
  const out = [];
  try {
    while (dec.canDecode) {
      dec.decodeOut(ins);
      let t = ins.isInvalid ? '(bad)' : f.format(ins);
      if (!ins.isInvalid && (ins.isCallNear || ins.isJmpNear || ins.isJccShortOrNear || ins.isJmpShort)) {
        t = `${t.split(' ')[0]} ${sym.where(ins.nearBranchTarget)}`;
      }
      out.push(t);
    }
  } finally {
    dec.free();
  }
  return out.join('; ');
}

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const dist = join(repo, 'dist', 'src');

/**
 * Difference classes, decided per patch site (a differing range is explained only when every differing
 * byte lies in a site and every such site's class is `explained`). `explained: false` marks a class
 * textpoke can and should reproduce (a gap in the patchers, listed so the report says exactly what is
 * missing); an explained class is kernel run-time state no file records. the README (ground truth section) repeats these.
 */
export const CLASSES = {
  'vmlinux-static-call-key': {
    explained: true,
    text:
      'static call site whose key lives in vmlinux: the kernel retargets it at module load to the function ' +
      'the key holds at that moment (static_call_add_module). Here the keys are the PREEMPT_DYNAMIC ones and ' +
      "their value is the boot-time preemption mode the guest's dmesg names (Dynamic Preempt: voluntary on 6.1 " +
      'and 6.12, lazy on 7.3): voluntary: preempt_schedule[_notrace] = NULL (NOP5), cond_resched/might_resched = ' +
      '__cond_resched; full and lazy: preempt_schedule[_notrace]_thunk, cond_resched/might_resched return 0. ' +
      'A module file does not record it; the comparison checks the guest holds exactly that form.',
  },
  'vmlinux-tracepoint-key': {
    explained: true,
    text:
      'static call site of a tracepoint defined in vmlinux (__SCK__tp_func_NAME): static_call_add_module() points ' +
      'it at what the key holds at module load, which with no probe attached is its definition, __traceiter_NAME ' +
      '(DEFINE_STATIC_CALL(tp_func_NAME, __traceiter_NAME) in include/linux/tracepoint.h). A module file does not ' +
      'record the key; the comparison checks the guest calls exactly __traceiter_NAME.',
  },
  unexplained: { explained: false, text: 'no class: a patcher bug or an unmodelled patcher' },
};

/**
 * Expected functions of the PREEMPT_DYNAMIC static call keys per boot mode (sched_dynamic_update() in
 * kernel/sched/core.c; x86's enabled preempt_schedule is the asm thunk; '(return 0)' is __static_call_return0's
 * `xor %eax,%eax`).
 */
const PREEMPT_KEYS = {
  voluntary: new Map([
    ['__SCK__preempt_schedule', null],
    ['__SCK__preempt_schedule_notrace', null],
    ['__SCK__cond_resched', '__cond_resched'],
    ['__SCK__might_resched', '__cond_resched'],
  ]),
  lazy: new Map([
    ['__SCK__preempt_schedule', 'preempt_schedule_thunk'],
    ['__SCK__preempt_schedule_notrace', 'preempt_schedule_notrace_thunk'],
    ['__SCK__cond_resched', '(return 0)'],
    ['__SCK__might_resched', '(return 0)'],
  ]),
};
PREEMPT_KEYS.full = PREEMPT_KEYS.lazy;

/** Kept for callers that list the explained classes. */
export const KNOWN = Object.entries(CLASSES)
  .filter(([, c]) => c.explained)
  .map(([id, c]) => ({ id, text: c.text }));

/** System.map -> Map(name -> bigint), first definition wins (exported symbols are unique). */
export function readSystemMap(path) {
  return parseSystemMap(readFileSync(path, 'latin1').split('\n'));
}

/** System.map lines -> Map(name -> bigint), first definition wins. */
export function parseSystemMap(lines) {
  const m = new Map();
  for (const line of lines) {
    const sp1 = line.indexOf(' ');
    const sp2 = line.indexOf(' ', sp1 + 1);
    if (sp1 < 0 || sp2 < 0) continue;
    const name = line.slice(sp2 + 1);
    if (!m.has(name)) m.set(name, BigInt('0x' + line.slice(0, sp1)));
  }
  return m;
}

const R_X86_64_64 = 1,
  R_X86_64_PC32 = 2,
  R_X86_64_PLT32 = 4,
  R_X86_64_32 = 10,
  R_X86_64_32S = 11,
  R_X86_64_PC64 = 24;
const SHN_UNDEF = 0,
  SHN_ABS = 0xfff1,
  STT_SECTION = 3;

/**
 * Relocates every executable section of `img` the way arch/x86/kernel/module.c does, with the given
 * section load addresses (module sections), kernel symbols (System.map) and other modules' symbols.
 * Returns Map(section name -> {bytes, unresolved: [{off, len, sym}] }).
 */
export function referenceRelocate(img, load, kernelSyms, moduleSyms) {
  const out = new Map();
  const secAbs = (idx) => {
    const s = img.sections[idx];
    return s ? load.get(s.name) : undefined;
  };
  for (const sec of img.sections) {
    if (!sec.alloc || !sec.exec || !load.has(sec.name)) continue;
    const bytes = img.sectionBytes(sec).slice();
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const unresolved = [];
    /** @type {bigint} */
    const P0 = load.get(sec.name);
    for (const r of img.relocs(sec).all()) {
      const sym = img.symbols[r.sym];
      /** @type {bigint | undefined} */
      let S;
      const name = img.relocSymbolName(r);
      if (sym.shndx === SHN_UNDEF) S = kernelSyms.get(sym.name) ?? moduleSyms.get(sym.name);
      else if (sym.shndx === SHN_ABS)
        S = BigInt(sym.addr) + img.base; // not used by modules in practice
      else {
        const base = secAbs(sym.shndx);
        const s = img.sections[sym.shndx];
        if (base !== undefined) S = base + BigInt(sym.type === STT_SECTION ? 0 : sym.addr - s.addr);
      }
      const len = r.type === R_X86_64_64 || r.type === R_X86_64_PC64 ? 8 : 4;
      if (S === undefined) {
        unresolved.push({ off: r.offset, len, sym: name });
        continue;
      }
      const A = BigInt(r.addend);
      const P = P0 + BigInt(r.offset);
      switch (r.type) {
        case R_X86_64_64:
          dv.setBigUint64(r.offset, BigInt.asUintN(64, S + A), true);
          break;
        case R_X86_64_32:
        case R_X86_64_32S:
          dv.setUint32(r.offset, Number(BigInt.asUintN(32, S + A)), true);
          break;
        case R_X86_64_PC32:
        case R_X86_64_PLT32:
          dv.setUint32(r.offset, Number(BigInt.asUintN(32, S + A - P)), true);
          break;
        case R_X86_64_PC64:
          dv.setBigUint64(r.offset, BigInt.asUintN(64, S + A - P), true);
          break;
        default:
          unresolved.push({ off: r.offset, len, sym: `${name} (type ${r.type})` });
      }
    }
    out.set(sec.name, { bytes, unresolved });
  }
  return out;
}

/** x86_return_thunk targets -> the `rethunk=` value of textpoke's --cpu. */
const THUNK_OPT = {
  __x86_return_thunk: 'default',
  retbleed_return_thunk: 'retbleed',
  srso_return_thunk: 'srso',
  srso_alias_return_thunk: 'srso-alias',
  its_return_thunk: 'its',
};

/** Differing byte ranges of two equal-length arrays; ranges closer than `gap` bytes are merged. */
export function diffRanges(a, b, gap = 4) {
  const out = [];
  const n = Math.min(a.length, b.length);
  let cur = null;
  for (let i = 0; i < n; i++) {
    if (a[i] === b[i]) continue;
    if (cur && i - cur.end < gap) cur.end = i + 1;
    else {
      cur = { start: i, end: i + 1 };
      out.push(cur);
    }
  }
  if (a.length !== b.length) out.push({ start: n, end: Math.max(a.length, b.length), lengthMismatch: true });
  return out;
}

/** Loads textpoke's patcher through the public API when the library is built. */
async function patcher() {
  if (!existsSync(join(dist, 'index.js'))) return null;
  const m = await import('textpoke');
  return typeof m.applyToImage === 'function' ? m : null;
}

const SRC61 = join(process.env.TEXTPOKE_CORPUS ?? join(repo, '.cache', 'corpus'), 'linux-6.1/usr/src');
const HEADERS61 = join(
  SRC61,
  (existsSync(SRC61) ? readdirSync(SRC61).find((d) => /^linux-headers-6\.1\.0-\d+-common$/.test(d)) : null) ??
    'missing',
  'arch/x86/include/asm/cpufeatures.h',
);

/** cpuinfo name -> macro suffix, from the quoted names in cpufeatures.h ("bug:NAME" for X86_BUG_*). */
export function cpuinfoAliases(path = HEADERS61) {
  const m = new Map();
  const re = /^#define X86_(FEATURE|BUG)_(\w+)\s.*?\/\*\s*"([^"]+)"/gm;
  for (const x of readFileSync(path, 'latin1').matchAll(re)) m.set(x[1] === 'BUG' ? `bug:${x[3]}` : x[3], x[2]);
  return m;
}

/**
 * Linux feature names the guest reported. /proc/cpuinfo flags are the cpufeatures.h names lowercased
 * (or the quoted name in the comment where one is given); bugs likewise. Synthetic features without a
 * cpuinfo name are inferred from the vulnerabilities files.
 */
export function guestFeatures(guest, table, featureNumber) {
  const names = new Set();
  const unknown = [];
  // Names in cpuinfo that differ from the macro: the quoted strings in cpufeatures.h comments of 6.1.
  const ALIAS = cpuinfoAliases();
  for (const f of guest.flags) {
    const cand = [ALIAS.get(f), f.toUpperCase()].filter(Boolean);
    const hit = cand.find((c) => featureNumber(table, `X86_FEATURE_${c}`) !== undefined);
    if (hit) names.add(`X86_FEATURE_${hit}`);
    else unknown.push(f);
  }
  for (const b of guest.bugs) {
    const n = ALIAS.get(`bug:${b}`) ?? b.toUpperCase();
    const hit = featureNumber(table, `X86_BUG_${n}`);
    if (hit !== undefined) names.add(`X86_BUG_${n}`);
    else unknown.push(`bug:${b}`);
  }
  // Synthetic features the vulnerabilities files reveal (arch/x86/kernel/cpu/bugs.c sets them).
  const v = guest.vulnerabilities;
  const inferred = [];
  const add = (n, why) => {
    if (featureNumber(table, n) !== undefined) {
      names.add(n);
      inferred.push(`${n} (${why})`);
    } else unknown.push(`${n} (${why}; not in the feature table)`);
  };
  add('X86_FEATURE_ALWAYS', 'always set');
  const s2 = v.spectre_v2 ?? '';
  if (/Retpolines/.test(s2)) add('X86_FEATURE_RETPOLINE', 'spectre_v2: Retpolines');
  if (/LFENCE/.test(s2)) {
    add('X86_FEATURE_RETPOLINE', 'spectre_v2: LFENCE');
    add('X86_FEATURE_RETPOLINE_LFENCE', 'spectre_v2: LFENCE');
  }
  if (/RSB filling/.test(s2)) add('X86_FEATURE_RSB_CTXSW', 'spectre_v2: RSB filling');
  if (/(^|[^e])IBRS/.test(s2.split(';')[0]) && !/eIBRS/.test(s2.split(';')[0]))
    add('X86_FEATURE_KERNEL_IBRS', 'spectre_v2: IBRS');
  const rb = v.retbleed ?? '';
  if (/untrained return thunk/.test(rb)) {
    add('X86_FEATURE_RETHUNK', 'retbleed: untrained return thunk');
    add('X86_FEATURE_UNRET', 'retbleed: untrained return thunk');
  }
  if (/IBPB/.test(rb)) add('X86_FEATURE_ENTRY_IBPB', 'retbleed: IBPB');
  if (/Stuffing/.test(rb)) add('X86_FEATURE_CALL_DEPTH', 'retbleed: Stuffing');
  const srso = v.spec_rstack_overflow ?? '';
  if (/safe RET/i.test(srso)) {
    add('X86_FEATURE_RETHUNK', 'spec_rstack_overflow: Safe RET');
    add('X86_FEATURE_SRSO', 'spec_rstack_overflow: Safe RET');
  }
  const its = v.indirect_target_selection ?? '';
  // its_select_mitigation() forces RETHUNK with x86_return_thunk = its_return_thunk (INDIRECT_THUNK_ITS only
  // when indirect branches do not already go through retpolines: the Skylake guest does not set it).
  if (/Aligned branch\/return thunks/.test(its))
    add('X86_FEATURE_RETHUNK', 'indirect_target_selection: Aligned branch/return thunks');
  if (/Mitigation: PTI/.test(v.meltdown ?? '')) add('X86_FEATURE_PTI', 'meltdown: PTI');
  if (/Clear CPU buffers/.test(v.mds ?? '') && !/Vulnerable/.test(v.mds ?? ''))
    add('X86_FEATURE_CLEAR_CPU_BUF', 'mds: Clear CPU buffers');
  if (/^Mitigation: Speculative Store Bypass disabled$/.test(v.spec_store_bypass ?? ''))
    add('X86_FEATURE_SPEC_STORE_BYPASS_DISABLE', 'spec_store_bypass');
  // The return thunk apply_returns targets: bugs.c prints each selection ("active return thunk: X"); the
  // last one wins. It matters only when RETHUNK is set (else return sites become plain `ret`).
  const thunks = [...(guest.dmesg ?? '').matchAll(/active return thunk: (\S+)/g)].map((m) => m[1]);
  const thunk = thunks.at(-1) ?? null;
  let rethunk = null;
  if (names.has('X86_FEATURE_RETHUNK') && thunk) {
    rethunk = THUNK_OPT[thunk] ?? null;
    if (!rethunk) unknown.push(`return thunk ${thunk} (no rethunk= option)`);
  }
  const spec = ['none', ...[...names].sort().map((n) => '+' + n), ...(rethunk ? [`rethunk=${rethunk}`] : [])].join(',');
  return { names: [...names].sort(), unknown, inferred, thunk, spec };
}

/** First index whose key(x) >= v in an array sorted by key. */
function lowerBound(xs, v, key) {
  let lo = 0,
    hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (key(xs[mid]) < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Sites by address: the ones whose bytes (or, for alternatives, replacement bytes) overlap [a0, a1). */
class SiteIndex {
  constructor(sites) {
    const spans = [];
    for (const s of sites) {
      spans.push({ lo: s.addr, hi: s.addr + Math.max(s.length, 1), s });
      if (s.repl?.length) spans.push({ lo: s.repl.addr, hi: s.repl.addr + s.repl.length, s });
    }
    spans.sort((a, b) => a.lo - b.lo);
    this.spans = spans;
    this.maxLen = spans.reduce((m, x) => Math.max(m, x.hi - x.lo), 1);
  }
  overlapping(a0, a1) {
    const out = new Set();
    for (
      let i = lowerBound(this.spans, a0 - this.maxLen, (x) => x.lo);
      i < this.spans.length && this.spans[i].lo < a1;
      i++
    ) {
      const x = this.spans[i];
      if (x.hi > a0) out.add(x.s);
    }
    return [...out].sort((a, b) => a.addr - b.addr || a.index - b.index);
  }
}

/** The class of one differing site (see CLASSES). */
async function classifySite(ctx, site, g, t, abs, ref) {
  const x86 = await import('textpoke/x86');
  // Every class describes a site textpoke left as the loader did: a site textpoke rewrote differently from
  // the kernel is a patcher error, never a class.
  if (!ref || Buffer.compare(Buffer.from(t), Buffer.from(ref)) !== 0) return 'unexplained';
  const nop5 = g.length === 5 && g[0] === 0x0f && g[1] === 0x1f && g[2] === 0x44 && g[3] === 0 && g[4] === 0;
  const xor5 = g.length === 5 && g[0] === 0x2e && g[1] === 0x2e && g[2] === 0x2e && g[3] === 0x31 && g[4] === 0xc0;
  if (site.table === '.static_call_sites') {
    const key = site.key?.name;
    if (!key) return 'unexplained';
    const ks = ctx.img.symbol(key);
    const inModule = ks && ks.shndx !== 0;
    // What the guest's site does now: NOP5, or call/jmp to a named function.
    let target = null;
    if (xor5) target = '(return 0)';
    else if (!nop5) {
      const dec = x86.decoder(g, { ip: abs });
      const ins = dec.decode();
      if ((ins.isCallNear || ins.isJmpNear) && ins.length === g.length) target = ctx.sym.where(ins.nearBranchTarget);
      ins.free();
      dec.free();
      if (target === null) return 'unexplained';
    }
    // Keys defined in the module: textpoke sets their sites from the file (the key's initial function), so
    // any difference there is a patcher error.
    if (inModule) return 'unexplained';
    // Exported static calls are referenced through their trampoline (__SCT__X); the kernel maps it back
    // to the key __SCK__X through .static_call_tramp_key (static_call_add_module, tramp_key_lookup).
    const k = key.replace(/^__SCT__/, '__SCK__');
    const tp = /^__SCK__tp_func_(\w+)$/.exec(k);
    if (tp) return target === `__traceiter_${tp[1]}` ? 'vmlinux-tracepoint-key' : 'unexplained';
    const keys = PREEMPT_KEYS[ctx.preempt ?? 'voluntary'];
    if (!keys?.has(k)) return 'unexplained';
    const want = keys.get(k);
    return (want === null ? nop5 : target === want) ? 'vmlinux-static-call-key' : 'unexplained';
  }
  return 'unexplained';
}

/**
 * Every feature bit the running kernel set: boot_cpu_data.x86_capability, found inside the dumped
 * boot_cpu_data by matching words 0 (CPUID 1 EDX) and 4 (CPUID 1 ECX) against the cpuinfo flags (so no
 * struct offset is assumed), then checked against the cpuinfo bugs (which fixes NCAPINTS).
 * Returns {names, unnamed, offset} or {error}.
 * @returns {{ error: string, names?: undefined, unnamed?: undefined, offset?: undefined } | { error?: undefined, names: string[], unnamed: number[], offset: number }}
 */
export function kernelCapabilities(guest, table, featureNumber, featureName, cpuinfoNames) {
  const v = guest.kvars?.boot_cpu_data;
  if (!v) return { error: 'boot_cpu_data was not dumped' };
  const b = v.bytes;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const want = (w) => {
    let x = 0;
    for (const n of cpuinfoNames) {
      const k = featureNumber(table, n);
      if (k !== undefined && Math.floor(k / 32) === w) x |= 1 << (k % 32);
    }
    return x >>> 0;
  };
  const w0 = want(0),
    w4 = want(4);
  const words = table.limit / 32;
  for (let off = 0; off + words * 4 <= b.length; off += 4) {
    // A superset: the kernel also sets bits cpuinfo hides ("" names, such as OSXSAVE in word 4).
    if ((dv.getUint32(off, true) & w0) >>> 0 !== w0 || (dv.getUint32(off + 16, true) & w4) >>> 0 !== w4) continue;
    const names = [];
    const unnamed = [];
    for (let n = 0; n < table.limit; n++) {
      if (!(dv.getUint32(off + Math.floor(n / 32) * 4, true) & (1 << (n % 32)))) continue;
      const nm = featureName(table, n);
      if (table.byNumber.has(n)) names.push(nm);
      else unnamed.push(nm);
    }
    const bugs = cpuinfoNames.filter((n) => n.startsWith('X86_BUG_'));
    const missing = bugs.filter((n) => !names.includes(n));
    if (missing.length)
      return { error: `capability words at +${off} lack cpuinfo bugs ${missing.join(' ')} (NCAPINTS of ${table.id}?)` };
    return { names, unnamed, offset: off };
  }
  return { error: 'no x86_capability words in boot_cpu_data match the cpuinfo flags' };
}

/** Attributes one differing range: sites covering it, relocation fields in it, symbol, disassembly. */
async function attribute(ctx, secName, range, guestBytes, otherBytes, otherName) {
  const { img, fmt, relocsBySec } = ctx;
  const sec = img.section(secName);
  const a0 = sec.addr + range.start;
  const a1 = sec.addr + range.end;
  const covering = ctx.siteIndex.overlapping(a0, a1);
  const rs = relocsBySec.get(secName) ?? [];
  const relocs = [];
  for (let i = lowerBound(rs, range.start - 8, (r) => r.offset); i < rs.length && rs[i].offset < range.end; i++) {
    const r = rs[i];
    if (r.offset + (r.type === R_X86_64_64 || r.type === R_X86_64_PC64 ? 8 : 4) > range.start) relocs.push(r);
  }
  // Disassemble from the instruction containing the range start in the file's decoding, to the range end.
  const code = ctx.dis.of(sec);
  let from = range.start;
  const k = code.indexContaining(range.start);
  if (k >= 0) from = code.off[k];
  let to = range.end;
  const k2 = code.indexContaining(Math.max(range.end - 1, range.start));
  if (k2 >= 0) to = Math.max(to, code.off[k2] + code.len[k2]);
  // Extend to cover whole sites so both sides decode on the same boundaries.
  for (const s of covering)
    if (s.addr >= sec.addr && s.addr < sec.addr + sec.size) {
      from = Math.min(from, s.addr - sec.addr);
      to = Math.max(to, s.addr - sec.addr + s.length);
    }
  to = Math.min(to, sec.size);
  const ip = ctx.load.get(secName) + BigInt(from);
  // The reference comparison only needs the tables (thousands of ranges); text is for textpoke's diffs.
  const dis = (b) => (otherName === 'textpoke' ? disasmAbs(b.subarray(from, to), ip, ctx.sym) : '');
  // Per-site classes: every differing byte must lie in a classified site.
  const secAbs = ctx.load.get(secName);
  const siteClasses = [];
  let outside = 0;
  const otherIsTextpoke = otherName === 'textpoke';
  for (let o = range.start; o < range.end; o++) {
    if (guestBytes[o] === otherBytes[o]) continue;
    const a = sec.addr + o;
    if (!covering.some((s) => s.addr <= a && a < s.addr + Math.max(s.length, 1))) outside++;
  }
  if (otherIsTextpoke) {
    for (const s of covering) {
      if (s.addr < sec.addr || s.addr >= sec.addr + sec.size) continue;
      const so = s.addr - sec.addr;
      const g = guestBytes.subarray(so, so + s.length);
      const t = otherBytes.subarray(so, so + s.length);
      if (Buffer.compare(Buffer.from(g), Buffer.from(t)) === 0) continue;
      const ref = ctx.ref.get(secName)?.bytes.subarray(so, so + s.length);
      siteClasses.push(await classifySite(ctx, s, g, t, secAbs + BigInt(so), ref));
    }
  }
  const classes = [...new Set(siteClasses)].sort();
  const cls = !otherIsTextpoke
    ? undefined
    : outside || !classes.length || classes.includes('unexplained')
      ? 'unexplained'
      : classes.join('+');
  return {
    class: cls,
    siteClasses,
    explained: cls?.split('+').every((c) => CLASSES[c]?.explained) ?? false,
    section: secName,
    offset: range.start,
    length: range.end - range.start,
    where: img.where(a0),
    addr: '0x' + (ctx.load.get(secName) + BigInt(range.start)).toString(16),
    sites: covering.map((s) => ({
      table: s.table,
      index: s.index,
      where: img.where(s.addr),
      length: s.length,
      feature: s.feature,
      inverted: s.inverted,
      key: s.key?.name,
      tail: s.tail,
    })),
    tables: [...new Set(covering.map((s) => s.table))].sort(),
    relocations: relocs.map((r) => ({ offset: r.offset, type: r.type, sym: img.relocSymbolName(r), addend: r.addend })),
    guest: { hex: fmt.hexBytes(guestBytes.subarray(from, to)), asm: await dis(guestBytes) },
    [otherName]: { hex: fmt.hexBytes(otherBytes.subarray(from, to)), asm: await dis(otherBytes) },
  };
}

/**
 * Compares one booted run. Returns {ok, cpu, sections: [{name, size, reference: {...}, textpoke: {...}}], ...}.
 * `ok` requires: the guest loaded every module and every differing range against textpoke is in KNOWN.
 * Without a patcher (src/patch not built yet) only the reference comparison runs and `ok` is false.
 */
/** @param {any} run @param {{ systemMap: string, log?: (line: string) => void, verbose?: boolean }} o */
export async function compareRun(run, { systemMap, log = () => {}, verbose = false }) {
  const L = await import('textpoke');
  const { readSites, detectTarget, featureTable, featureNumber, featureName } = L;
  const fmt = await import('textpoke/x86');
  const { Disassembly } = fmt;
  // From this run's own kallsyms (the file in .cache/groundtruth is for users; another run may rewrite it).
  const kernelSyms = run.guest.kernelMap ? parseSystemMap(run.guest.kernelMap) : readSystemMap(systemMap);
  // Other modules' exports: kallsyms types module symbols in lower case, so take the names that have a
  // __ksymtab_ entry (what resolve_symbol() can bind a module's undefined symbol to).
  const exported = new Set(
    run.guest.modsyms.filter((x) => x.name.startsWith('__ksymtab_')).map((x) => x.name.slice(10)),
  );
  const moduleSyms = new Map(
    run.guest.modsyms
      .filter((x) => exported.has(x.name) && /^[tTdDbBrR]$/.test(x.type))
      .map((x) => [x.name, BigInt('0x' + x.addr)]),
  );
  /** @type {{ ok: boolean, modules: any[], anchors: object, text?: string | null }} */
  const result = { ok: true, modules: [], anchors: {} };
  const sym = new Symbolizer([
    ...[...kernelSyms].map(([name, addr]) => ({ name, addr })),
    ...run.guest.modsyms.map((s) => ({ name: s.name, addr: BigInt('0x' + s.addr) })),
  ]);

  // nokaslr: the kernel sits at its link address (_text = 0xffffffff81000000 for x86-64 defaults).
  result.text = run.guest.anchors._text ?? null;
  if (result.text !== 'ffffffff81000000') {
    result.ok = false;
    log(`  _text at ${result.text}: the kernel was not at its link address (nokaslr ignored?)`);
  }

  const P = await patcher();
  for (const t of run.plan.targets) {
    const gm = run.guest.modules[t.name];
    /** @type {{ module: string, path: string, sections: any[], [k: string]: any }} */
    const mres = { module: t.name, path: t.rel, sections: [] };
    result.modules.push(mres);
    if (!gm || !Object.keys(gm.dumps).length) {
      result.ok = false;
      log(`  ${t.name}: the guest dumped nothing`);
      continue;
    }
    const load = new Map(Object.entries(gm.sections).map(([k, v]) => [k, BigInt(v)]));
    const bytes = readFileSync(t.path);
    // Parsed WITHOUT `load`: Image.parse's load option stores absolute kernel addresses as doubles with
    // image base 0 (loses the low bits of 0xffffffffc0xxxxxx); absolute addresses come from `load` here.
    const img = await L.imageFromBytes(bytes, t.path);
    // The module's per-cpu area: sysfs does not list .data..percpu (the loader clears its SHF_ALLOC), but
    // kallsyms shows the module's per-cpu symbols at their per-cpu offsets, which fixes the section base.
    const pcpu = img.section('.data..percpu');
    if (pcpu && !load.has(pcpu.name)) {
      const bySym = new Map(
        run.guest.modsyms.filter((x) => x.module === t.name).map((x) => [x.name, BigInt('0x' + x.addr)]),
      );
      const hit = img.symbols.find((y) => y.shndx === pcpu.index && y.name && bySym.has(y.name));
      if (hit) {
        const base = /** @type {bigint} */ (bySym.get(hit.name)) - BigInt(hit.addr - pcpu.addr);
        load.set(pcpu.name, base);
        mres.percpu = { base: '0x' + base.toString(16), from: hit.name };
      }
    }
    const target = detectTarget(img);
    if (!target.profile) throw new Error(`${t.rel}: not detected as a kernel module (${target.note})`);
    const table = featureTable(target.profile.features);
    const feats = guestFeatures(run.guest, table, featureNumber);
    mres.target = { version: target.version, profile: target.profile.id, features: target.profile.features };
    // The CPU textpoke is run for: every bit the kernel set (boot_cpu_data.x86_capability) and the return
    // thunk it chose (x86_return_thunk), both read from the guest's memory. The cpuinfo/vulnerabilities
    // inference is kept beside it, and where the two disagree is reported (hidden synthetic features).
    const caps = kernelCapabilities(
      run.guest,
      table,
      featureNumber,
      featureName,
      feats.names.filter((n) => !feats.inferred.some((i) => i.startsWith(n + ' '))),
    );
    const rtv = run.guest.kvars?.x86_return_thunk;
    let thunk = null;
    if (rtv && rtv.bytes.length === 8) thunk = sym.where(Buffer.from(rtv.bytes).readBigUInt64LE(0));
    if (caps.error !== undefined) {
      result.ok = false;
      log(`  ${t.name}: ${caps.error}`);
    } else {
      const capSet = new Set(caps.names);
      feats.kernel = {
        names: caps.names,
        unnamed: caps.unnamed,
        thunk,
        hiddenFromCpuinfo: caps.names.filter((n) => !feats.names.includes(n)),
        inferredButUnset: feats.names.filter((n) => !capSet.has(n)),
      };
      const rethunk = capSet.has('X86_FEATURE_RETHUNK') ? THUNK_OPT[thunk] : null;
      if (capSet.has('X86_FEATURE_RETHUNK') && !rethunk) {
        result.ok = false;
        log(`  ${t.name}: x86_return_thunk is ${thunk}, which --cpu rethunk= cannot name`);
      }
      feats.cpuinfoSpec = feats.spec;
      feats.spec = ['none', ...caps.names.map((n) => '+' + n), ...(rethunk ? [`rethunk=${rethunk}`] : [])].join(',');
    }
    mres.features = feats;
    const { sites } = readSites(img, target.profile);
    const relocsBySec = new Map(
      img.sections
        .filter((s) => s.alloc && s.exec)
        .map((s) => [s.name, [...img.relocs(s).all()].sort((a, b) => a.offset - b.offset)]),
    );
    const ref = referenceRelocate(img, load, kernelSyms, moduleSyms);

    let view = null;
    let cpuSpec = null;
    if (P) {
      cpuSpec = feats.spec;
      const cpu = P.parseCpu(cpuSpec, table);
      // Kernel symbols (the guest's kallsyms in System.map form) and the other modules' exported symbols,
      // as `textpoke apply --symbols` would take them from a live system's /proc/kallsyms.
      const symbols = new Map([...moduleSyms, ...kernelSyms]);
      view = P.applyToImage(img, target, cpu, { load, symbols });
      mres.cpu = cpuSpec;
      mres.patches = view.patches.length;
      mres.cli = runCli(t.path, cpuSpec, load, symbols);
      if (!mres.cli.sections) {
        result.ok = false;
        log(`  ${t.name}: ${mres.cli.command} failed (exit ${mres.cli.status}): ${mres.cli.error}`);
      }
      mres.findings = view.findings.map((f) => ({
        patcher: f.patcher,
        where: img.where(f.addr),
        kind: f.kind,
        message: f.message,
      }));
    } else {
      result.ok = false;
      mres.cpu = null;
      mres.note = 'src/patch (applyToImage) is not built: only the reference (relocated, unpatched) comparison ran';
    }
    const dis = new Disassembly(img);
    const ctx = {
      ref,
      img,
      sites,
      siteIndex: new SiteIndex(sites),
      fmt,
      relocsBySec,
      dis,
      view,
      load,
      sym,
      preempt: run.guest.preempt,
    };
    for (const [secName, d] of Object.entries(gm.dumps)) {
      const sec = img.section(secName);
      if (!sec) throw new Error(`${t.rel}: the guest dumped ${secName}, which the file lacks`);
      const r = ref.get(secName);
      const guestBytes = d.bytes;
      const entry = { name: secName, addr: d.addr, size: guestBytes.length, unresolved: r.unresolved.length };
      const rr = diffRanges(guestBytes, r.bytes);
      entry.reference = {
        ranges: rr.length,
        bytes: rr.reduce((n, x) => n + x.end - x.start, 0),
        byTable: countBy(
          await Promise.all(rr.map((x) => attribute(ctx, secName, x, guestBytes, r.bytes, 'reference'))),
          (a) => a.tables.join('+') || 'no site',
        ),
      };
      if (view) {
        const tb = view.bytesOf(sec);
        // `textpoke apply` (the CLI) must write exactly the library's view into its output file.
        if (mres.cli.sections) {
          const cb = mres.cli.sections.get(secName);
          entry.cliDiffers = cb ? diffRanges(tb, cb).reduce((n, x) => n + x.end - x.start, 0) : -1;
          if (entry.cliDiffers !== 0) result.ok = false;
        }
        const tr = diffRanges(guestBytes, tb);
        const diffs = await Promise.all(tr.map((x) => attribute(ctx, secName, x, guestBytes, tb, 'textpoke')));
        for (const df of diffs) if (!df.explained) result.ok = false;
        entry.textpoke = {
          ranges: tr.length,
          bytes: tr.reduce((n, x) => n + x.end - x.start, 0),
          byClass: countBy(diffs, (a) => a.class),
          bySiteClass: countBy(
            diffs.flatMap((a) => a.siteClasses),
            (c) => c,
          ),
          byTable: countBy(diffs, (a) => a.tables.join('+') || 'no site'),
          diffs,
        };
      }
      mres.sections.push(entry);
      if (entry.cliDiffers)
        log(
          `  ${t.name} ${secName}: textpoke apply's output differs from the library view in ${entry.cliDiffers} bytes`,
        );
      log(
        `  ${t.name} ${secName} @${d.addr} (${guestBytes.length} bytes): reference differs in ${entry.reference.ranges} ranges ` +
          `(${entry.reference.bytes} bytes; ${fmtCounts(entry.reference.byTable)})` +
          (entry.textpoke
            ? `; textpoke differs in ${entry.textpoke.ranges} ranges (${entry.textpoke.bytes} bytes; ${fmtCounts(entry.textpoke.byClass)})`
            : '; textpoke: no patcher'),
      );
      if (entry.textpoke && (verbose || entry.textpoke.diffs.some((x) => x.class === 'unexplained'))) {
        for (const x of entry.textpoke.diffs) {
          if (!verbose && x.class !== 'unexplained') continue;
          log(
            `    [${x.class}] ${x.addr} ${x.where} (${x.length} B) sites: ${x.sites.map((s) => `${s.table}#${s.index}`).join(', ') || 'none'}`,
          );
          log(`      guest:    ${x.guest.hex}  | ${x.guest.asm}`);
          log(`      textpoke: ${x.textpoke.hex}  | ${x.textpoke.asm}`);
        }
      }
    }
  }
  for (const m of result.modules) if (m.cli) delete m.cli.sections;
  return result;
}

/**
 * Runs `textpoke apply FILE --cpu SPEC --load-file F --symbols S -o OUT` as a user would (load addresses
 * as /sys/module/NAME/sections lists them, symbols as /proc/kallsyms lists them) and returns the output's
 * executable section bytes by name.
 */
function runCli(path, spec, load, symbols) {
  const dir = mkdtempSync(join(tmpdir(), 'textpoke-gt-'));
  try {
    const lf = join(dir, 'sections.txt');
    const sf = join(dir, 'kallsyms');
    const out = join(dir, 'out.ko');
    writeFileSync(lf, [...load].map(([k, v]) => `${k}=0x${v.toString(16)}`).join('\n') + '\n');
    writeFileSync(sf, [...symbols].map(([k, v]) => `${v.toString(16).padStart(16, '0')} T ${k}`).join('\n') + '\n');
    const args = [
      join(repo, 'bin', 'textpoke.js'),
      'apply',
      path,
      '--cpu',
      spec,
      '--load-file',
      lf,
      '--symbols',
      sf,
      '-o',
      out,
      '--quiet',
    ];
    const r = spawnSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 1 << 26 });
    const command = `textpoke apply ${path} --cpu <spec> --load-file sections.txt --symbols kallsyms -o out.ko`;
    if (r.status !== 0 || !existsSync(out))
      return { command, status: r.status, error: (r.stderr || r.stdout).trim().split('\n')[0] };
    const b = readFileSync(out);
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const shoff = Number(dv.getBigUint64(0x28, true));
    const shnum = dv.getUint16(0x3c, true);
    const shstrndx = dv.getUint16(0x3e, true);
    const sh = (i) => shoff + i * 64;
    const strOff = Number(dv.getBigUint64(sh(shstrndx) + 24, true));
    const sections = new Map();
    for (let i = 0; i < shnum; i++) {
      const flags = Number(dv.getBigUint64(sh(i) + 8, true));
      if (!(flags & 4)) continue; // SHF_EXECINSTR
      let n = strOff + dv.getUint32(sh(i), true);
      let name = '';
      while (b[n]) name += String.fromCharCode(b[n++]);
      const off = Number(dv.getBigUint64(sh(i) + 24, true));
      const size = Number(dv.getBigUint64(sh(i) + 32, true));
      sections.set(name, b.subarray(off, off + size));
    }
    return { command, status: 0, sections };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function countBy(xs, key) {
  const m = {};
  for (const x of xs) m[key(x)] = (m[key(x)] ?? 0) + 1;
  return m;
}

function fmtCounts(m) {
  return (
    Object.entries(m)
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => `${k} ${v}`)
      .join(', ') || 'none'
  );
}
