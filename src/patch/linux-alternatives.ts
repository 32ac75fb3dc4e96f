/**
 * Linux apply_alternatives (arch/x86/kernel/alternative.c), 6.1 rules and the 6.3+ differences.
 *
 * 6.1, per entry in table order (a later entry overwrites an earlier one at the same site):
 *  - BUG_ON(instrlen > 254), BUG_ON(feature >= (NCAPINTS + NBUGINTS) * 32): reported, entry skipped;
 *  - patch when `has(feature) != inverted`;
 *  - copy the replacement; when replacementlen == 5 and it starts with 0xe8, add (replacement - instr) to
 *    its rel32 (only then: a call inside a longer replacement is not fixed up);
 *  - when the replacement starts with 0xeb/0xe9 and is 5 bytes long, recompute_jump(): re-aim it from the
 *    site, as `eb rel8` + 3-byte NOP when the new displacement is forward and fits (a backward one always
 *    stays 5 bytes, the kernel's sign test never succeeds for it);
 *  - pad to instrlen with 0x90, write;
 *  - optimize_nops(instr, instrlen) on every entry, patched or not: every run of two or more 0x90 found while
 *    walking the site instruction by instruction becomes the longest NOPs (decoding stops at a bad byte).
 *    A replacement longer than the site is a build error the kernel does not check; it is reported and skipped.
 * 6.3+ (linux-14 layout): unpatched entries get optimize_nops too; patched entries: copy, pad with 0x90,
 *  then apply_relocation() fixes every rel8/rel32 branch or call whose target lies outside the replacement,
 *  turning jumps into the shortest form and NOP-optimising the result (see applyRelocation63).
 */
import type { Site } from '../sites/site.js';
import type { Cpu } from './cpu.js';
import { decodeOne } from './decode.js';
import { addNops, LINUX_NOPS } from './nops.js';
import type { PatchedView } from './view.js';

const MAX_PATCH_LEN = 254;

/** optimize_nops() over a buffer (the kernel decodes each instruction from the buffer itself). */
export function optimizeNops(buf: Uint8Array, len: number, ip = 0n): void {
  let i = 0;
  for (;;) {
    const d = decodeOne(buf.subarray(i), ip + BigInt(i));
    if (d.length === 0) return;
    if (d.length === 1 && buf[i] === 0x90) {
      let j = i;
      while (j < len && buf[j] === 0x90) j++;
      const n = j - i;
      if (n > 1) addNops(LINUX_NOPS, buf, i, n);
      i += n;
    } else i += d.length;
    if (i >= len) return;
  }
}

/** Runs optimize_nops on the live text at a site (reading up to 15 bytes past it, as insn decoding may). */
function optimizeNopsAt(view: PatchedView, addr: number, len: number, site: Site): void {
  const cur = view.readUpTo(addr, len + 15);
  if (!cur || cur.length < len) return;
  const buf = cur.slice();
  optimizeNops(buf, len, view.abs(addr));
  let same = true;
  for (let k = 0; k < len; k++) if (buf[k] !== cur[k]) { same = false; break; }
  if (!same) view.write('alternatives', addr, buf.subarray(0, len), site, 'optimize_nops');
}

function s32(b: Uint8Array, o: number): number {
  return (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) | 0;
}
function put32(b: Uint8Array, o: number, v: number): void {
  b[o] = v & 0xff; b[o + 1] = (v >>> 8) & 0xff; b[o + 2] = (v >>> 16) & 0xff; b[o + 3] = (v >>> 24) & 0xff;
}

/** recompute_jump() of 6.1: the replacement is 5 bytes and starts with a JMP opcode. */
function recomputeJump(buf: Uint8Array, instrAbs: bigint, replAbs: bigint, replLen: number): string | undefined {
  if (replLen !== 5) return undefined;
  const oDspl = s32(buf, 1);
  const tgt = replAbs + BigInt(replLen) + BigInt(oDspl);
  let n = Number(BigInt.asIntN(32, tgt - instrAbs));
  const forward = tgt - instrAbs >= 0n;
  const two = forward ? n - 2 <= 127 : ((n - 2) & 0xff) === n - 2;
  if (two) {
    n -= 2;
    buf[0] = 0xeb;
    buf[1] = n & 0xff;
    addNops(LINUX_NOPS, buf, 2, 3);
    return 'recompute_jump: 2-byte jmp';
  }
  n -= 5;
  buf[0] = 0xe9;
  put32(buf, 1, n);
  return 'recompute_jump: 5-byte jmp';
}

export function applyLinuxAlternatives(view: PatchedView, sites: readonly Site[], cpu: Cpu, rules: '6.1' | '6.3'): void {
  const limit = cpu.table.limit;
  for (const s of sites) {
    if (s.table !== '.altinstructions') continue;
    const f = s.feature!;
    const len = s.length;
    const repl = s.repl!;
    if (Number.isNaN(s.addr) || s.problems?.includes('address outside every section')) {
      view.finding('alternatives', s.addr, `alt_instr ${s.index}: site outside the image, skipped`, 'model', s);
      continue;
    }
    if (len > MAX_PATCH_LEN) { view.finding('alternatives', s.addr, `alt_instr ${s.index}: instrlen ${len} > ${MAX_PATCH_LEN}: the kernel would BUG()`, 'bug', s); continue; }
    if (f >= limit) { view.finding('alternatives', s.addr, `alt_instr ${s.index}: feature ${f} >= ${limit} ((NCAPINTS+NBUGINTS)*32): the kernel would BUG()`, 'bug', s); continue; }
    const patch = cpu.has(f) !== Boolean(s.inverted);
    if (!patch) {
      optimizeNopsAt(view, s.addr, len, s);
      continue;
    }
    if (repl.length > len) {
      view.finding('alternatives', s.addr, `alt_instr ${s.index}: replacement (${repl.length} bytes) longer than the site (${len}): the kernel would overwrite the following code; skipped`, 'bug', s);
      if (rules === '6.1') optimizeNopsAt(view, s.addr, len, s);
      continue;
    }
    const replBytes = repl.length ? view.read(repl.addr, repl.length) : new Uint8Array(0);
    if (!replBytes) { view.finding('alternatives', s.addr, `alt_instr ${s.index}: replacement outside the image, skipped`, 'model', s); continue; }
    const instrAbs = view.abs(s.addr);
    const replAbs = repl.length ? view.abs(repl.addr) : 0n;
    const buf = new Uint8Array(Math.max(len, repl.length));
    buf.set(replBytes);
    let note: string | undefined;
    if (rules === '6.1') {
      if (repl.length === 5 && buf[0] === 0xe8) {
        put32(buf, 1, Number(BigInt.asIntN(32, BigInt(s32(buf, 1)) + (replAbs - instrAbs))));
        note = 'call rel32 fixed up';
      }
      if (repl.length && (replBytes[0] === 0xeb || replBytes[0] === 0xe9)) note = recomputeJump(buf, instrAbs, replAbs, repl.length) ?? note;
      for (let k = repl.length; k < len; k++) buf[k] = 0x90;
    } else {
      for (let k = repl.length; k < len; k++) buf[k] = 0x90;
      note = applyRelocation63(buf, len, instrAbs, replAbs, repl.length);
    }
    view.write('alternatives', s.addr, buf.subarray(0, len), s, note);
    if (rules === '6.1') optimizeNopsAt(view, s.addr, len, s);
  }
}

/**
 * 6.3+ apply_relocation(): walk the padded buffer; every Jcc/JMP/CALL (rel8/rel32) whose target lies outside
 * [repl, repl+repl_len) is re-aimed from the site; JMPs are then shortened (2-byte form when it fits,
 * remainder NOPs) and runs of 0x90 optimized.
 */
export function applyRelocation63(buf: Uint8Array, len: number, instrAbs: bigint, replAbs: bigint, replLen: number): string | undefined {
  let note: string | undefined;
  for (let i = 0, next = 0; i < len; i = next) {
    const d = decodeOne(buf.subarray(i, len), replAbs + BigInt(i));
    if (d.length === 0) return note;
    next = i + d.length;
    if (d.length === 1 && buf[i] === 0x90) {
      let j = i;
      while (j < len && buf[j] === 0x90) j++;
      if (j - i > 1) addNops(LINUX_NOPS, buf, i, j - i);
      next = j;
      continue;
    }
    if (!(d.isCall || d.isJmp || d.isJcc) || d.branchTarget === undefined) continue;
    const tgt = BigInt.asIntN(64, d.branchTarget);
    const src = BigInt.asIntN(64, replAbs);
    if (tgt >= src && tgt < src + BigInt(replLen)) continue;
    const immLen = d.length - immOffset(buf, i, d.length);
    const immAt = i + d.length - immLen;
    const delta = replAbs - instrAbs;
    if (immLen === 1) {
      const v = ((buf[immAt]! << 24) >> 24) + Number(delta);
      buf[immAt] = v & 0xff;
    } else put32(buf, immAt, Number(BigInt.asIntN(32, BigInt(s32(buf, immAt)) + delta)));
    note = 'apply_relocation';
    if (d.isJmp) {
      // fix_jump / optimize: shortest JMP to the same target, rest NOPs.
      const target = instrAbs + BigInt(i) + BigInt(d.length) + BigInt(immLen === 1 ? ((buf[immAt]! << 24) >> 24) : s32(buf, immAt));
      const disp2 = Number(target - (instrAbs + BigInt(i) + 2n));
      if (disp2 >= -128 && disp2 <= 127 && d.length >= 2) {
        buf[i] = 0xeb;
        buf[i + 1] = disp2 & 0xff;
        if (d.length > 2) addNops(LINUX_NOPS, buf, i + 2, d.length - 2);
      }
    }
  }
  return note;
}

/** Offset of the immediate of a branch at buf[i] (length n): rel8 branches end in 1 byte, rel32 in 4. */
function immOffset(buf: Uint8Array, i: number, n: number): number {
  let k = i;
  while (k < i + n && (buf[k] === 0x2e || buf[k] === 0x3e || buf[k] === 0x66 || buf[k] === 0xf2 || buf[k] === 0xf3 || (buf[k]! & 0xf0) === 0x40)) k++;
  const op = buf[k]!;
  const short = op === 0xeb || (op >= 0x70 && op <= 0x7f) || op === 0xe3 || (op >= 0xe0 && op <= 0xe2);
  return n - (short ? 1 : 4);
}
