/**
 * The comparison at the heart of `textpoke attest`: the bytes a kernel object should hold (apply's prediction
 * for this CPU) against the bytes it holds (read from /proc/kcore), section by section. Each differing run of
 * bytes is either the legitimate state of a known runtime patch site, named by its class, or unexplained:
 *
 * - jump-label: an `__jump_table` site as a NOP or as the jmp to its target (the key either way);
 * - static-call: a `.static_call_sites` site calling (or jumping to) the start of a function, a NOP (NULL),
 *   or a ret at a tail site; a static call trampoline (`__SCT__*`) jumping to a function or returning;
 * - ftrace: an `__mcount_loc` site as a NOP or a call (a tracer or a live patch attached; the destination is named);
 * - smp-lock: a `.smp_locks` lock prefix and the DS prefix a uniprocessor boot writes over it;
 * - runtime-const: the operand of a runtime constant (`runtime_ptr_NAME`, `runtime_shift_NAME`, `runtime_mask_NAME`
 *   sections of 6.12+ kernels: dentry_hashtable, d_hash_shift, USER_PTR_MAX, ...), which runtime_const_init()
 *   writes at boot from a value the boot computed (an allocation's address, a size's shift, a CPU's address width).
 *
 * Everything else is reported with its function and offset, the predicted and live bytes and their disassembly.
 */
import type { Image, Section } from '../elf/image.js';
import { lastAtOrBelow } from '../elf/sorted.js';
import type { PatchedView } from '../patch/view.js';
import type { Site } from '../sites/site.js';
import { disassemble } from '../x86/format.js';
import type { Kcore } from './kcore.js';

export type DiffClass = 'jump-label' | 'static-call' | 'ftrace' | 'smp-lock' | 'runtime-const' | 'unexplained';

/** One runtime constant's operand in the text: image address, length (8, 4 or 1 bytes) and the constant's name. */
export interface RuntimeConst {
  addr: number;
  length: number;
  name: string;
}

export interface DiffRun {
  object: string;
  section: string;
  /** Runtime (absolute) address of the first byte. */
  addr: bigint;
  /** function+0xoffset (or section+0xoffset when the image has no symbol there). */
  where: string;
  predicted: Uint8Array;
  live: Uint8Array;
  class: DiffClass;
  explanation: string;
  predictedAsm: string[];
  liveAsm: string[];
}

export interface SectionResult {
  name: string;
  addr: bigint;
  size: number;
  /** Bytes read and compared (less than size when kcore does not cover the section). */
  compared: number;
  differing: number;
}

export interface ObjectResult {
  object: string;
  path: string;
  sections: SectionResult[];
  runs: DiffRun[];
  errors: string[];
}

/** Names for runtime addresses outside the object (kallsyms), for destinations of calls. */
export interface AddressNames {
  /** The name of the symbol starting exactly at `abs`, if any. */
  startingAt(abs: bigint): string | undefined;
  /** symbol+offset for any address, if known. */
  near(abs: bigint): string | undefined;
  /** The runtime address of a kernel symbol of any type (text or data), if known. */
  addressOf?(name: string): bigint | undefined;
}

export interface AttestObjectOptions {
  object: string;
  path: string;
  view: PatchedView;
  sites: readonly Site[];
  /** The sections to compare (executable, still present after init). */
  sections: readonly Section[];
  kcore: Kcore;
  /** Added to the view's absolute addresses to get runtime ones (the KASLR offset; 0 for modules). */
  delta?: bigint;
  /** Predicted bytes of a section when they differ from view.bytesOf (KASLR relocations applied). */
  predicted?: (s: Section) => Uint8Array;
  names?: AddressNames;
  /** Runtime constants' operands (runtimeConsts(img)). */
  runtimeConsts?: readonly RuntimeConst[];
  /**
   * Functions a static call site may hold as one inline instruction instead of a call (LinuxRules.staticCallInline:
   * 7.x `ud1` for __WARN_trap, the native spin unlock).
   */
  staticCallInline?: readonly (readonly [string, readonly number[]])[];
}

/**
 * Runtime constants of a linked kernel: each `runtime_{ptr,shift,mask}_NAME` section is a list of s32 offsets from
 * the entry to the operand runtime_const_fixup() rewrites (arch/x86/include/asm/runtime-const.h: the imm64 of a
 * `movabs`, the imm8 of a `shr`, the imm32 of an `and`).
 */
export function runtimeConsts(img: Image): RuntimeConst[] {
  const out: RuntimeConst[] = [];
  for (const sec of img.sections) {
    const m = /^runtime_(ptr|shift|mask)_(.+)$/.exec(sec.name);
    if (!m || !sec.alloc || sec.type === 8) continue;
    const length = m[1] === 'ptr' ? 8 : m[1] === 'shift' ? 1 : 4;
    const b = img.read(sec.addr, sec.size);
    if (!b) continue;
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    for (let off = 0; off + 4 <= sec.size; off += 4)
      out.push({ addr: sec.addr + off + dv.getInt32(off, true), length, name: m[2]! });
  }
  return out.sort((a, b) => a.addr - b.addr);
}

const XOR5RAX = [0x2e, 0x2e, 0x2e, 0x31, 0xc0];

const NOP5 = [0x0f, 0x1f, 0x44, 0x00, 0x00];
const isNop5 = (b: Uint8Array): boolean => b.length === 5 && NOP5.every((x, i) => b[i] === x);
const isNop2 = (b: Uint8Array): boolean => b.length === 2 && b[0] === 0x66 && b[1] === 0x90;
const littleEndian = (b: Uint8Array): bigint => {
  let v = 0n;
  for (let k = b.length - 1; k >= 0; k--) v = (v << 8n) | BigInt(b[k]!);
  return v;
};
const rel32 = (b: Uint8Array): number => b[1]! | (b[2]! << 8) | (b[3]! << 16) | (b[4]! << 24);

export function attestObject(o: AttestObjectOptions): ObjectResult {
  const { view } = o;
  const img = view.img;
  const delta = o.delta ?? 0n;
  const runtime = (rel: number): bigint => view.abs(rel) + delta;
  const result: ObjectResult = { object: o.object, path: o.path, sections: [], runs: [], errors: [] };
  // Sites by address, for the tables whose runtime state may legitimately change.
  const live = new Set(['__jump_table', '.static_call_sites', '__mcount_loc', '.smp_locks']);
  const siteAt = new Map<number, Site>();
  for (const s of o.sites) if (live.has(s.table) && !Number.isNaN(s.addr)) siteAt.set(s.addr, s);
  const siteAddrs = [...siteAt.keys()].sort((a, b) => a - b);
  const rcs = o.runtimeConsts ?? [];
  const runtimeConstAt = (rel: number): RuntimeConst | undefined => {
    let lo = 0;
    let hi = rcs.length - 1;
    let k = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (rcs[mid]!.addr <= rel) {
        k = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    const c = k >= 0 ? rcs[k] : undefined;
    return c && rel < c.addr + c.length ? c : undefined;
  };
  const coveringSite = (rel: number): Site | undefined => {
    const k = lastAtOrBelow(siteAddrs, rel);
    for (let j = k; j >= 0 && j >= k - 1; j--) {
      const s = siteAt.get(siteAddrs[j]!)!;
      if (rel < s.addr + siteLength(s)) return s;
    }
    return undefined;
  };
  const siteLength = (s: Site): number => {
    if (s.table === '.smp_locks') return 1;
    const b = view.read(s.addr, 2);
    if (s.table === '__jump_table' && b && (b[0] === 0xeb || (b[0] === 0x66 && b[1] === 0x90))) return 2;
    return 5;
  };
  const nameOfAbs = (abs: bigint): string => {
    const rel = view.rel(abs - delta);
    if (!Number.isNaN(rel) && img.sectionAt(rel)) return img.where(rel).replace(/\+0x0$/, '');
    return o.names?.near(abs) ?? `0x${abs.toString(16)}`;
  };
  const functionAt = (abs: bigint): string | undefined => {
    const rel = view.rel(abs - delta);
    if (!Number.isNaN(rel) && img.sectionAt(rel)) {
      const s = img.symbolize(rel);
      return s.offset === 0 && s.sym ? s.name : undefined;
    }
    return o.names?.startingAt(abs);
  };

  /** A symbol's runtime address: the object's own symbol, else the kernel's (kallsyms). */
  const symbolAbs = (name: string): bigint | undefined => {
    const s = img.symbol(name);
    if (s && s.shndx !== 0 && !Number.isNaN(s.addr)) return runtime(s.addr);
    return o.names?.addressOf?.(name);
  };
  /** A little-endian value of `length` bytes read from kcore at a runtime address (undefined: not in kcore). */
  const readLive = (abs: bigint, length: number): bigint | undefined => {
    const b = o.kcore.read(abs, length);
    return b && b.length >= length ? littleEndian(b.subarray(0, length)) : undefined;
  };
  // Runtime constants explained so far, by name: every site of one name must hold the one value the boot wrote.
  const constRuns = new Map<string, { run: DiffRun; value: bigint }[]>();

  for (const sec of o.sections) {
    const pred = o.predicted ? o.predicted(sec) : view.bytesOf(sec);
    const base = runtime(sec.addr);
    const sr: SectionResult = { name: sec.name, addr: base, size: sec.size, compared: 0, differing: 0 };
    result.sections.push(sr);
    // Read in pages so a hole in kcore costs only the pages it covers.
    const liveBytes = new Uint8Array(sec.size);
    const covered = new Uint8Array(sec.size);
    for (let off = 0; off < sec.size; off += 4096) {
      const n = Math.min(4096, sec.size - off);
      const b = o.kcore.read(base + BigInt(off), n);
      if (!b) continue;
      liveBytes.set(b, off);
      covered.fill(1, off, off + n);
      sr.compared += n;
    }
    if (sr.compared < sec.size)
      result.errors.push(
        `${o.object} ${sec.name}: ${sec.size - sr.compared} of ${sec.size} bytes not in kcore (not compared)`,
      );
    let i = 0;
    while (i < sec.size) {
      if (!covered[i] || pred[i] === liveBytes[i]) {
        i++;
        continue;
      }
      const rel = sec.addr + i;
      const site = coveringSite(rel);
      const rc = site ? undefined : runtimeConstAt(rel);
      let start: number;
      let end: number;
      if (rc) {
        start = rc.addr - sec.addr;
        end = start + rc.length;
      } else if (site) {
        start = site.addr - sec.addr;
        end = start + siteLength(site);
      } else {
        start = i;
        end = i + 1;
        // Merge differences closer than 4 bytes that no site covers.
        for (let j = end; j < sec.size && j < end + 4; j++) {
          if (covered[j] && pred[j] !== liveBytes[j] && !coveringSite(sec.addr + j)) end = j + 1;
        }
      }
      for (let k = start; k < end; k++) if (covered[k] && pred[k] !== liveBytes[k]) sr.differing++;
      const p = pred.subarray(start, end);
      const l = liveBytes.subarray(start, end);
      const abs = runtime(sec.addr + start);
      const [cls, why] = rc
        ? runtimeConst(rc, l)
        : site
          ? explainSite(site, p, l, abs)
          : trampoline(sec.addr + start, l, abs);
      const run: DiffRun = {
        object: o.object,
        section: sec.name,
        addr: abs,
        where: img.where(sec.addr + start),
        predicted: p.slice(),
        live: l.slice(),
        class: cls,
        explanation: why,
        predictedAsm: [],
        liveAsm: [],
      };
      if (cls === 'unexplained') {
        const [a, b] = instructionSpan(img, sec, pred, start, end);
        run.predicted = pred.slice(a, b);
        run.live = liveBytes.slice(a, b);
        run.addr = runtime(sec.addr + a);
        run.where = img.where(sec.addr + a);
        run.predictedAsm = asm(img, run.predicted, sec.addr + a);
        run.liveAsm = asm(img, run.live, sec.addr + a);
        end = Math.max(end, b);
      } else {
        run.predictedAsm = asm(img, p, sec.addr + start);
        run.liveAsm = asm(img, l, sec.addr + start);
      }
      result.runs.push(run);
      if (rc && cls === 'runtime-const') {
        const list = constRuns.get(rc.name) ?? [];
        list.push({ run, value: littleEndian(l) });
        constRuns.set(rc.name, list);
      }
      i = end;
    }
  }
  for (const [name, list] of constRuns) {
    const values = new Set(list.map((x) => x.value));
    if (values.size < 2) continue;
    for (const { run } of list) {
      run.class = 'unexplained';
      run.explanation = `runtime constant ${name}: its sites hold ${values.size} different values (the boot writes one to all): ${[...values].map((v) => `0x${v.toString(16)}`).join(', ')}`;
    }
  }
  return result;

  function explainSite(s: Site, p: Uint8Array, l: Uint8Array, abs: bigint): [DiffClass, string] {
    const k = s.table === '__jump_table' || s.table === '.static_call_sites' ? s.key : undefined;
    const key = k?.name ?? (k && !Number.isNaN(k.addr) ? img.where(k.addr) : '?');
    const dest = (b: Uint8Array): bigint => BigInt.asUintN(64, abs + BigInt(b.length) + BigInt(rel32(b)));
    switch (s.table) {
      case '__jump_table': {
        const target = s.target && !Number.isNaN(s.target.addr) ? runtime(s.target.addr) : undefined;
        if ((l.length === 5 && isNop5(l)) || (l.length === 2 && isNop2(l)))
          return ['jump-label', `jump label ${key}: NOP (branch not taken)`];
        if (l.length === 5 && l[0] === 0xe9 && target !== undefined && dest(l) === target)
          return ['jump-label', `jump label ${key}: jmp to ${nameOfAbs(target)}`];
        if (
          l.length === 2 &&
          l[0] === 0xeb &&
          target !== undefined &&
          BigInt.asUintN(64, abs + 2n + BigInt((l[1]! << 24) >> 24)) === target
        )
          return ['jump-label', `jump label ${key}: jmp to ${nameOfAbs(target)}`];
        return [
          'unexplained',
          `jump label ${key} site holds neither a NOP nor a jmp to its target ${target !== undefined ? nameOfAbs(target) : '?'}`,
        ];
      }
      case '.static_call_sites': {
        // What the key holds now (struct static_call_key's first word, `func`), where kcore has the key's memory
        // (a live /proc/kcore has all of it): every form must agree with it, as __static_call_transform() wrote
        // the site from it. Where the key cannot be read, the form alone is explained and says so.
        const keyFunc = k && !Number.isNaN(k.addr) ? readLive(runtime(k.addr), 8) : undefined;
        const held = (fn: bigint | undefined, what: string): [DiffClass, string] => {
          if (keyFunc === undefined)
            return ['static-call', `static call ${key}: ${what} (key not in kcore: unconfirmed)`];
          if (fn !== undefined && keyFunc === fn) return ['static-call', `static call ${key}: ${what}`];
          return [
            'unexplained',
            `static call ${key} site holds ${what}, but the key holds ${keyFunc === 0n ? 'NULL' : nameOfAbs(keyFunc)}`,
          ];
        };
        const inl = o.staticCallInline?.find(([, b]) => b.length === l.length && b.every((x, k) => l[k] === x));
        const xor = l.length === 5 && XOR5RAX.every((x, k) => l[k] === x);
        // __static_call_validate(): a tail site holds only a jmp or a ret (xor5rax and the inline forms are calls).
        if (s.tail && (xor || inl))
          return ['unexplained', `static call ${key}: a tail-call site holds ${xor ? 'xor %eax,%eax' : inl![0]}`];
        if (isNop5(l) && !s.tail) return held(0n, 'NOP (NULL)');
        if (xor) return held(symbolAbs('__static_call_return0'), '__static_call_return0 (xor %eax,%eax)');
        if (inl) return held(symbolAbs(inl[0]), `${inl[0]} (inline)`);
        if (l[0] === 0xc3 && s.tail) return held(0n, 'ret (NULL, tail call)');
        if ((l[0] === 0xe8 && !s.tail) || (l[0] === 0xe9 && s.tail)) {
          const d = dest(l);
          const fn = functionAt(d);
          // A NULL tail call is a ret, which a return-thunk CPU has as `jmp x86_return_thunk` (static_call.c, RET).
          if (fn && s.tail && /return_thunk$/.test(fn)) return held(0n, `jmp ${fn} (a ret: NULL, tail call)`);
          if (fn) return held(d, `${l[0] === 0xe8 ? 'call' : 'jmp'} ${fn}`);
          return [
            'unexplained',
            `static call ${key} site ${l[0] === 0xe8 ? 'calls' : 'jumps to'} ${nameOfAbs(d)}, which is no function's start`,
          ];
        }
        return [
          'unexplained',
          `static call ${key} site holds none of the forms of a ${s.tail ? 'tail ' : ''}call site`,
        ];
      }
      case '__mcount_loc': {
        if (isNop5(l)) return ['ftrace', 'ftrace: NOP (not traced)'];
        if (l[0] === 0xe8) return ['ftrace', `ftrace: call ${nameOfAbs(dest(l))} (a tracer or live patch attached)`];
        return ['unexplained', 'ftrace site holds neither a NOP nor a call'];
      }
      case '.smp_locks':
        if ((p[0] === 0xf0 && l[0] === 0x3e) || (p[0] === 0x3e && l[0] === 0xf0))
          return ['smp-lock', `lock prefix ${l[0] === 0x3e ? 'replaced by DS (uniprocessor)' : 'restored (SMP)'}`];
        return ['unexplained', 'lock prefix site holds neither lock nor DS'];
      default:
        return ['unexplained', `${s.table} site changed`];
    }
  }

  /**
   * runtime_const_init(type, sym) writes the variable's own value into every site of its name (x86
   * runtime-const.h): the value must be the variable's, read from kcore where it has the variable, and
   * USER_PTR_MAX (the bound every user access checks) must be TASK_SIZE_MAX of 4- or 5-level paging.
   * Sites of one name that disagree are caught after the comparison.
   */
  function runtimeConst(c: RuntimeConst, l: Uint8Array): [DiffClass, string] {
    const v = littleEndian(l);
    const hex = `0x${v.toString(16)}`;
    if (c.name === 'USER_PTR_MAX' && v !== (1n << 47n) - 4096n && v !== (1n << 56n) - 4096n)
      return ['unexplained', `runtime constant USER_PTR_MAX = ${hex}: not TASK_SIZE_MAX of 4- or 5-level paging`];
    const at = symbolAbs(c.name);
    const variable = at === undefined ? undefined : readLive(at, c.length);
    if (variable === undefined)
      return ['runtime-const', `runtime constant ${c.name} = ${hex} (set at boot; variable not in kcore: unconfirmed)`];
    if (variable !== v)
      return ['unexplained', `runtime constant ${c.name} = ${hex}, but the variable holds 0x${variable.toString(16)}`];
    return ['runtime-const', `runtime constant ${c.name} = ${hex} (set at boot, as the variable holds)`];
  }

  /**
   * Call sites the kernel retargets outside the tables: a static call trampoline (__SCT__name: jmp to a function
   * or ret), and ftrace's own call sites in its trampolines (ftrace_call, ftrace_regs_call: the tracer callback;
   * ftrace_graph_call: jmp to the graph caller or the stub), all at the start of their symbol.
   */
  function trampoline(rel: number, l: Uint8Array, abs: bigint): [DiffClass, string] {
    void l;
    const s = img.symbolize(rel);
    if (s.offset > 4) return ['unexplained', 'no patch site covers these bytes'];
    const start = abs - BigInt(s.offset);
    const b = o.kcore.read(start, 5);
    const to =
      b && (b[0] === 0xe8 || b[0] === 0xe9) ? functionAt(BigInt.asUintN(64, start + 5n + BigInt(rel32(b)))) : undefined;
    if (s.name.startsWith('__SCT__')) {
      if (to && b![0] === 0xe9) return ['static-call', `static call trampoline ${s.name}: jmp ${to}`];
      if (b && b[0] === 0xc3) return ['static-call', `static call trampoline ${s.name}: ret (NULL)`];
    }
    if ((s.name === 'ftrace_call' || s.name === 'ftrace_regs_call') && to && b![0] === 0xe8)
      return ['ftrace', `ftrace callback ${s.name}: call ${to}`];
    if (s.name === 'ftrace_graph_call' && to && b![0] === 0xe9) return ['ftrace', `ftrace graph ${s.name}: jmp ${to}`];
    return ['unexplained', 'no patch site covers these bytes'];
  }
}

/** Whole instructions around [start, end): decoded from the enclosing function's start (or 64 bytes back). */
function instructionSpan(img: Image, sec: Section, bytes: Uint8Array, start: number, end: number): [number, number] {
  const s = img.symbolize(sec.addr + start);
  let from = s.sym && s.offset < 0x10000 ? start - s.offset : Math.max(0, start - 64);
  if (from < 0) from = 0;
  const insns = disassemble(bytes.subarray(from, Math.min(bytes.length, end + 16)), sec.addr + from, { img });
  let a = start;
  let b = end;
  for (const i of insns) {
    const o = i.addr - sec.addr;
    if (o <= start && o + i.len > start) a = o;
    if (o < end && o + i.len >= end) b = o + i.len;
  }
  return [a, Math.min(b, bytes.length)];
}

function asm(img: Image, bytes: Uint8Array, addr: number): string[] {
  try {
    return disassemble(bytes, addr, { img }).map((i) => i.text);
  } catch {
    return ['(undecodable)'];
  }
}
