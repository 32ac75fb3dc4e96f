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
 * Modern rules (linux-14 layout; read from 6.12.117, see linux-alternatives-modern.ts).
 *
 * 7.0 rules (a4233c21e773, "patch a single alternative location only once"; rules.alternatives 'site'): the
 * consecutive entries for one site are considered together: the largest instrlen of the group is used, the
 * last entry whose feature test passes wins and its replacement is written once (relocated as in 6.12); when
 * none passes, only optimize_nops runs over the site. An entry the kernel would refuse (feature out of range)
 * is reported and takes no part.
 */
import type { AltSite, Site } from '../sites/site.js';
import type { Cpu } from './cpu.js';
import { decodeOne } from './decode.js';
import { readS32, writeS32 } from '../x86/insn.js';
import { addNops, LINUX_NOPS } from './nops.js';
import type { PatchedView } from './view.js';
import { applyModernAlternative, modernLengths } from './linux-alternatives-modern.js';
import type { LinuxRules } from '../target/profile.js';

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
  for (let k = 0; k < len; k++)
    if (buf[k] !== cur[k]) {
      same = false;
      break;
    }
  if (!same) view.write('alternatives', addr, buf.subarray(0, len), site, 'optimize_nops');
}

/** recompute_jump() of 6.1: the replacement is 5 bytes and starts with a JMP opcode. */
function recomputeJump(buf: Uint8Array, instrAbs: bigint, replAbs: bigint, replLen: number): string | undefined {
  if (replLen !== 5) return undefined;
  const oDspl = readS32(buf, 1);
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
  writeS32(buf, 1, n);
  return 'recompute_jump: 5-byte jmp';
}

export function applyLinuxAlternatives(view: PatchedView, sites: readonly Site[], cpu: Cpu, rules: LinuxRules): void {
  const limit = cpu.table.limit;
  const alts = sites.filter((s) => s.table === '.altinstructions');
  const modern = rules.alternatives !== 'entry-6.1';
  const lens = modern ? modernLengths(alts) : alts.map((s) => s.length);
  if (rules.alternatives === 'site') {
    applyOncePerSite(view, alts, lens, cpu, rules);
    return;
  }
  for (let k = 0; k < alts.length; k++) {
    const s = alts[k]!;
    const f = s.feature!;
    const len = lens[k]!;
    const repl = s.repl!;
    if (Number.isNaN(s.addr) || s.problems?.includes('address outside every section')) {
      view.finding('alternatives', s.addr, `alt_instr ${s.index}: site outside the image, skipped`, 'model', s);
      continue;
    }
    if (len > MAX_PATCH_LEN) {
      view.finding(
        'alternatives',
        s.addr,
        `alt_instr ${s.index}: instrlen ${len} > ${MAX_PATCH_LEN}: the kernel would BUG()`,
        'bug',
        s,
      );
      continue;
    }
    if (f >= limit) {
      view.finding(
        'alternatives',
        s.addr,
        `alt_instr ${s.index}: feature ${f} >= ${limit} ((NCAPINTS+NBUGINTS)*32): the kernel would BUG()`,
        'bug',
        s,
      );
      continue;
    }
    const patch = cpu.has(f) !== Boolean(s.inverted);
    if (modern) {
      applyModernAlternative(view, s, len, patch, rules);
      continue;
    }
    if (!patch) {
      optimizeNopsAt(view, s.addr, len, s);
      continue;
    }
    if (repl.length > len) {
      view.finding(
        'alternatives',
        s.addr,
        `alt_instr ${s.index}: replacement (${repl.length} bytes) longer than the site (${len}): the kernel would overwrite the following code; skipped`,
        'bug',
        s,
      );
      optimizeNopsAt(view, s.addr, len, s);
      continue;
    }
    const replBytes = repl.length ? view.read(repl.addr, repl.length) : new Uint8Array(0);
    if (!replBytes) {
      view.finding('alternatives', s.addr, `alt_instr ${s.index}: replacement outside the image, skipped`, 'model', s);
      continue;
    }
    const instrAbs = view.abs(s.addr);
    const replAbs = repl.length ? view.abs(repl.addr) : 0n;
    const buf = new Uint8Array(Math.max(len, repl.length));
    buf.set(replBytes);
    let note: string | undefined;
    if (repl.length === 5 && buf[0] === 0xe8) {
      writeS32(buf, 1, Number(BigInt.asIntN(32, BigInt(readS32(buf, 1)) + (replAbs - instrAbs))));
      note = 'call rel32 fixed up';
    }
    if (repl.length && (replBytes[0] === 0xeb || replBytes[0] === 0xe9))
      note = recomputeJump(buf, instrAbs, replAbs, repl.length) ?? note;
    for (let i = repl.length; i < len; i++) buf[i] = 0x90;
    view.write('alternatives', s.addr, buf.subarray(0, len), s, note);
    optimizeNopsAt(view, s.addr, len, s);
  }
}

/** 7.0: one decision and at most one write per site (see the header). */
function applyOncePerSite(
  view: PatchedView,
  alts: readonly AltSite[],
  lens: readonly number[],
  cpu: Cpu,
  rules: LinuxRules,
): void {
  const limit = cpu.table.limit;
  for (let a = 0; a < alts.length; ) {
    let b = a + 1;
    while (b < alts.length && alts[b]!.addr === alts[a]!.addr) b++;
    const first = alts[a]!;
    const len = Math.max(...lens.slice(a, b));
    let win: AltSite | undefined;
    let usable = true;
    for (let k = a; k < b; k++) {
      const s = alts[k]!;
      if (Number.isNaN(s.addr) || s.problems?.includes('address outside every section')) {
        view.finding('alternatives', s.addr, `alt_instr ${s.index}: site outside the image, skipped`, 'model', s);
        usable = false;
        break;
      }
      if (len > MAX_PATCH_LEN) {
        view.finding(
          'alternatives',
          s.addr,
          `alt_instr ${s.index}: instrlen ${len} > ${MAX_PATCH_LEN}: the kernel would BUG()`,
          'bug',
          s,
        );
        usable = false;
        break;
      }
      if (s.feature! >= limit) {
        view.finding(
          'alternatives',
          s.addr,
          `alt_instr ${s.index}: feature ${s.feature} >= ${limit} ((NCAPINTS+NBUGINTS)*32): the kernel would BUG()`,
          'bug',
          s,
        );
        continue;
      }
      if (cpu.has(s.feature!) !== Boolean(s.inverted)) win = s;
    }
    if (usable) applyModernAlternative(view, win ?? first, len, win !== undefined, rules);
    a = b;
  }
}
