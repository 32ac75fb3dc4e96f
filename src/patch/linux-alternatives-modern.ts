/**
 * apply_alternatives as Linux 6.12 (6.12.117, the Debian trixie/bookworm-backports kernel) does it; used for the
 * 14-byte alt_instr layout (profiles linux-6.3 and linux-6.8). Per entry, in table order:
 *  - nested ALTERNATIVE()s: consecutive entries for one site all take the largest instrlen;
 *  - not patched: optimize_nops over the site as it is;
 *  - patched: copy the replacement; ALT_FLAG_DIRECT_CALL (paravirt) turns `call BUG_func` into a call to the
 *    pv_ops slot's function (or to BUG_func when NULL, or nothing for nop_func); pad with 0x90;
 *    __apply_relocation(): every Jcc/JMP/CALL (rel8/rel32) and RIP-relative operand whose target lies outside
 *    [repl, repl + repl_len] moves by (repl - instr); every JMP rel32 whose displacement fits in 8 bits
 *    becomes `jmp rel8` + int3 filler; then optimize_nops(): each run of NOPs (0x90 without an F3 prefix, or
 *    NOPL 0f 1f) that does not already end the site becomes one NOP of that length (<= 8 bytes) or a JMP over
 *    int3 filler.
 * 6.3-6.7 kernels differ in details (no nested-length pass, only 0x90 runs optimized, no DIRECT_CALL): textpoke
 * applies the 6.12 rules to them and says so in the README (textpoke apply).
 */
import type { AltSite, Site } from '../sites/site.js';
import { RULES_612, type LinuxRules } from '../target/profile.js';
import { decodeFull } from './decode.js';
import { linuxNops } from './nops.js';
import { int3, jmpRel32, jmpRel8 } from '../x86/encode.js';
import { readS32 } from '../x86/insn.js';
import { pvSlotTarget } from './linux-paravirt.js';
import type { PatchedView } from './view.js';

const ALT_FLAG_DIRECT_CALL = 2;

/** instrlen per entry after the nested-ALTERNATIVE max pass (entries in table order). */
export function modernLengths(alts: readonly Site[]): number[] {
  const lens = alts.map((s) => s.length);
  for (let a = 0; a < alts.length; a++) {
    for (let b = a + 1; b < alts.length && alts[b]!.addr === alts[a]!.addr; b++) {
      const l = Math.max(lens[a]!, lens[b]!);
      lens[a] = lens[b] = l;
    }
  }
  return lens;
}

function isNop(b: Uint8Array, at: number): number {
  const d = decodeFull(b.subarray(at));
  if (d.length === 0) return -1;
  const o = at + d.op;
  if (b[o] === 0x90 && d.firstPrefix !== 0xf3) return d.length;
  if (b[o] === 0x0f && b[o + 1] === 0x1f) return d.length;
  return 0;
}

/** 6.12 add_nop(): one NOP up to ASM_NOP_MAX (8, or 11 with NOP9..NOP11) bytes, else a JMP over int3 filler. */
export function addNopModern(buf: Uint8Array, at: number, len: number, nopMax: 8 | 11 = 8): void {
  if (!len) return;
  const nops = linuxNops(nopMax);
  if (len <= nops.max) {
    buf.set(nops.nops[len]!, at);
    return;
  }
  // A jump from the start of the gap to its end (offsets relative to the gap), int3 after it.
  const jmp = len < 128 ? jmpRel8(0n, BigInt(len)) : jmpRel32(0n, BigInt(len));
  buf.set(jmp, at);
  buf.fill(int3()[0]!, at + jmp.length, at + len);
}

/** 6.12 optimize_nops(instr, buf, len). */
export function optimizeNopsModern(buf: Uint8Array, len: number, nopMax: 8 | 11 = 8): void {
  for (let i = 0, next = 0; i < len; i = next) {
    const d = decodeFull(buf.subarray(i));
    if (d.length === 0) return;
    next = i + d.length;
    if (isNop(buf, i) > 0) {
      const nop = i;
      if (i + d.length === len) return;
      // skip_nops
      let off = next;
      while (off < len) {
        const n = isNop(buf, off);
        if (n <= 0) break;
        off += n;
      }
      next = off;
      addNopModern(buf, nop, next - nop, nopMax);
    }
  }
}

/** 6.12 __apply_relocation(buf, instr, instrlen, repl, repl_len); returns a BUG message on overflow. */
export function applyRelocationModern(
  buf: Uint8Array,
  len: number,
  instr: bigint,
  repl: bigint,
  replLen: number,
): string | undefined {
  const delta = repl - instr;
  const needReloc = (off: number): boolean => off < 0 || off > replLen; // target = repl + off
  const reloc = (at: number, n: number): string | undefined => {
    const v =
      BigInt(
        n === 1 ? (buf[at]! << 24) >> 24 : n === 2 ? ((buf[at]! | (buf[at + 1]! << 8)) << 16) >> 16 : readS32(buf, at),
      ) + delta;
    const bits = BigInt(n * 8);
    if (v < -(1n << (bits - 1n)) || v >= 1n << (bits - 1n))
      return `relocated displacement does not fit in ${n} byte(s): the kernel would BUG()`;
    const x = Number(BigInt.asIntN(32, v));
    for (let k = 0; k < n; k++) buf[at + k] = (x >>> (8 * k)) & 0xff;
    return undefined;
  };
  for (let i = 0, next = 0; i < len; i = next) {
    const d = decodeFull(buf.subarray(i, Math.min(buf.length, i + 15)));
    if (d.length === 0) return undefined; // WARN_ON_ONCE and stop
    next = i + d.length;
    const o = i + d.op;
    const op = buf[o]!;
    const branch =
      (op === 0x0f && buf[o + 1]! >= 0x80 && buf[o + 1]! <= 0x8f) ||
      (op >= 0x70 && op <= 0x7f) ||
      op === 0xeb ||
      op === 0xe9 ||
      op === 0xe8;
    if (branch && d.immSize) {
      const immAt = i + d.immOff;
      const imm = d.immSize === 1 ? (buf[immAt]! << 24) >> 24 : readS32(buf, immAt);
      if (needReloc(next + imm)) {
        const e = reloc(immAt, d.immSize);
        if (e) return e;
      }
      if (op === 0xe9) {
        const v = imm + Number(delta) + 3;
        if (v >= -128 && v <= 127) {
          // The same jump as eb rel8 (v is its displacement), int3 after it.
          buf.set(jmpRel8(0n, BigInt(v + 2)), i);
          buf.fill(int3()[0]!, i + 2, i + d.length);
        }
      }
    }
    if (d.ripRel && d.dispSize) {
      const at = i + d.dispOff;
      if (needReloc(next + readS32(buf, at))) {
        const e = reloc(at, d.dispSize);
        if (e) return e;
      }
    }
  }
  return undefined;
}

export function applyModernAlternative(
  view: PatchedView,
  s: AltSite,
  len: number,
  patch: boolean,
  rules: LinuxRules = RULES_612,
): void {
  const { pvOps, nopMax } = rules;
  const cur = view.read(s.addr, len);
  if (!cur) {
    view.finding('alternatives', s.addr, `alt_instr ${s.index}: site outside the image`, 'model', s);
    return;
  }
  if (!patch) {
    const buf = new Uint8Array(len + 15);
    buf.set(view.readUpTo(s.addr, len + 15)!);
    optimizeNopsModern(buf, len, nopMax);
    if (buf.subarray(0, len).some((x, k) => x !== cur[k]))
      view.write('alternatives', s.addr, buf.subarray(0, len), s, 'optimize_nops');
    return;
  }
  const repl = s.repl!;
  if (repl.length > len) {
    view.finding(
      'alternatives',
      s.addr,
      `alt_instr ${s.index}: replacement (${repl.length} bytes) longer than the site (${len}): the kernel would overwrite the following code; skipped`,
      'bug',
      s,
    );
    return;
  }
  const replBytes = repl.length ? view.read(repl.addr, repl.length) : new Uint8Array(0);
  if (!replBytes) {
    view.finding('alternatives', s.addr, `alt_instr ${s.index}: replacement outside the image`, 'model', s);
    return;
  }
  const instr = view.abs(s.addr);
  const replAbs = repl.length ? view.abs(repl.addr) : instr;
  const buf = new Uint8Array(len + 15);
  buf.set(replBytes);
  let size = repl.length;
  let note: string | undefined;
  if ((s.altFlags ?? 0) & ALT_FLAG_DIRECT_CALL) {
    if (repl.length !== 5 || buf[0] !== 0xe8) {
      view.finding(
        'alternatives',
        s.addr,
        `alt_instr ${s.index}: ALT_FLAG_DIRECT_CALL on a non-call replacement: the kernel would BUG()`,
        'bug',
        s,
      );
      return;
    }
    if (len !== 6 || cur[0] !== 0xff || cur[1] !== 0x15) {
      view.finding(
        'alternatives',
        s.addr,
        `alt_instr ${s.index}: ALT_FLAG_DIRECT_CALL on an unrecognized indirect call: the kernel would BUG()`,
        'bug',
        s,
      );
      return;
    }
    const slot = instr + 6n + BigInt(readS32(cur, 2));
    const t = pvSlotTarget(view, slot, pvOps);
    const bug = view.symbolAbs('BUG_func');
    const nop = view.symbolAbs('nop_func');
    let target = t?.abs;
    let name = t?.name ?? 'BUG_func';
    if (t === null || target === undefined) {
      if (t !== null && t?.name !== 'nop_func') {
        view.finding(
          'alternatives',
          s.addr,
          `alt_instr ${s.index}: no address for the pv_ops function at ${view.nameOf(slot)}; skipped`,
          'model',
          s,
        );
        return;
      }
    }
    if (t === null) {
      target = bug;
      name = 'BUG_func';
    }
    if (bug === undefined || (target === undefined && name !== 'nop_func')) {
      view.finding('alternatives', s.addr, `alt_instr ${s.index}: no address for BUG_func; skipped`, 'model', s);
      return;
    }
    if (name === 'nop_func' || (target !== undefined && target === nop)) {
      size = 0;
      note = 'direct call: nop_func';
    } else {
      const v = BigInt(readS32(buf, 1)) + (target! - bug);
      new DataView(buf.buffer).setInt32(1, Number(BigInt.asIntN(32, v)), true);
      note = `call ${name}`;
    }
  }
  for (let k = size; k < len; k++) buf[k] = 0x90;
  const err = applyRelocationModern(buf, len, instr, replAbs, repl.length);
  if (err) {
    view.finding('alternatives', s.addr, `alt_instr ${s.index}: ${err}`, 'bug', s);
    return;
  }
  optimizeNopsModern(buf, len, nopMax);
  view.write('alternatives', s.addr, buf.subarray(0, len), s, note);
}
