/**
 * Linux 6.1 apply_retpolines()/patch_retpoline(): `call/jmp/jcc __x86_indirect_thunk_REG` sites.
 *  - RETPOLINE set and RETPOLINE_LFENCE clear: left alone (the thunk is the mitigation);
 *  - otherwise rewritten inline: [Jncc.d8 over] [LFENCE if RETPOLINE_LFENCE] `call/jmp *%REG` [int3 after jmp]
 *    then 0x90 padding and optimize_nops; when that does not fit the site (lfence + call *%r8..r15 in 5 bytes) the
 *    thunk call stays, as in the kernel; REG = rsp is a BUG;
 *  - INDIRECT_THUNK_ITS (ITS mitigation) and an indirect branch ending in the lower half of a cache line:
 *    call/jmp to an ITS thunk instead. The kernel allocates those thunks at run time; textpoke aims at the
 *    static __x86_indirect_its_thunk_REG and says so.
 */
import type { Site } from '../sites/site.js';
import { featureNumber } from '../target/features/index.js';
import type { Cpu } from './cpu.js';
import { decodeOne } from './decode.js';
import { CS_PREFIX, GPR64_NAMES, gpr64, opcodeIndex } from '../x86/insn.js';
import { callIndirect, int3, jmpIndirect, lfence as lfenceInsn } from '../x86/encode.js';
import { optimizeNops } from './linux-alternatives.js';
import { LinuxRules, RULES_61 } from '../target/profile.js';
import { optimizeNopsModern } from './linux-alternatives-modern.js';
import type { PatchedView } from './view.js';

/** Register names in encoding order (thunk names end in them). */
export const REGS = GPR64_NAMES;

function has(cpu: Cpu, name: string): boolean {
  const n = featureNumber(cpu.table, name);
  return n !== undefined && cpu.has(n);
}

/** Register number of a thunk target: by name (modules, extern thunks) or by offset into __x86_indirect_thunk_array (32-byte thunks). */
function thunkReg(view: PatchedView, target: bigint): number | undefined {
  const name = view.nameOf(target);
  const m = /^__x86_indirect_thunk_(\w+)(\+0x0)?$/.exec(name);
  // A register's name; `__x86_indirect_thunk_array` (the start of the 32-byte thunks, where rax's thunk also
  // starts) falls through to the offset rule.
  const named = m ? REGS.indexOf(m[1]!) : -1;
  if (named >= 0) return named;
  const arr = view.symbolAbs('__x86_indirect_thunk_array');
  if (arr === undefined) return undefined;
  const d = target - arr;
  if (d < 0n || d % 32n !== 0n) return undefined;
  const r = Number(d / 32n);
  return r < 16 ? r : undefined;
}

/**
 * The site's own branch (jcc, or call/jmp with the CS prefix a 6-byte site has) re-aimed at `target` as rel32,
 * written into `bytes`: its length.
 */
function sameBranchTo(
  bytes: Uint8Array,
  jcc: boolean,
  op1: number,
  op2: number,
  len: number,
  at: bigint,
  target: bigint,
): number {
  let i = 0;
  if (jcc) {
    bytes[i++] = 0x0f;
    bytes[i++] = op2;
  } else {
    if (len === 6) bytes[i++] = CS_PREFIX;
    bytes[i++] = op1;
  }
  new DataView(bytes.buffer).setInt32(i, Number(BigInt.asIntN(32, target - (at + BigInt(i) + 4n))), true);
  return i + 4;
}

export function applyLinuxRetpolines(
  view: PatchedView,
  sites: readonly Site[],
  cpu: Cpu,
  rules: LinuxRules = RULES_61,
): void {
  const callDepth = rules.callDepth && has(cpu, 'CALL_DEPTH');
  const retpoline = has(cpu, 'RETPOLINE');
  const lfence = has(cpu, 'RETPOLINE_LFENCE');
  const its = has(cpu, 'INDIRECT_THUNK_ITS');
  for (const s of sites) {
    if (s.table !== '.retpoline_sites' || Number.isNaN(s.addr)) continue;
    const cur = view.readUpTo(s.addr, 15);
    if (!cur) continue;
    const at = view.abs(s.addr);
    const d = decodeOne(cur, at);
    if (d.length === 0) {
      view.finding('retpolines', s.addr, 'retpoline site does not decode: the kernel WARNs and skips it', 'warn', s);
      continue;
    }
    const oi = opcodeIndex(cur, d.length);
    const op1 = cur[oi]!;
    const op2 = cur[oi + 1]!;
    const jcc = op1 === 0x0f && op2 >= 0x80 && op2 <= 0x8f;
    if (!(op1 === 0xe8 || op1 === 0xe9 || jcc)) {
      view.finding(
        'retpolines',
        s.addr,
        `retpoline site is not call/jmp/jcc rel32 (${op1.toString(16)}): the kernel WARNs and skips it`,
        'warn',
        s,
      );
      continue;
    }
    const target = d.branchTarget!;
    const reg = thunkReg(view, target);
    if (reg === undefined) {
      view.finding(
        'retpolines',
        s.addr,
        `retpoline site targets ${view.nameOf(target)}, not a retpoline thunk: the kernel WARNs and skips it`,
        'warn',
        s,
      );
      continue;
    }
    if (reg === 4) {
      view.finding('retpolines', s.addr, 'retpoline through %rsp: the kernel would BUG()', 'bug', s);
      continue;
    }
    const len = d.length;
    const bytes = new Uint8Array(16);
    if (retpoline && !lfence) {
      if (!callDepth) continue;
      // 6.x call depth tracking: emit_call_track_retpoline -> call/jmp to the accounting thunks.
      const name = `__x86_indirect_${op1 === 0xe8 ? 'call' : 'jump'}_thunk_${REGS[reg]}`;
      const t = view.symbolAbs(name);
      if (t === undefined) {
        view.finding('retpolines', s.addr, `call depth tracking: no address for ${name}; skipped`, 'model', s);
        continue;
      }
      if (sameBranchTo(bytes, jcc, op1, op2, len, at, t) !== len) continue;
      view.write('retpolines', s.addr, bytes.slice(0, len), s, `${op1 === 0xe8 ? 'call' : 'jmp'} ${name}`);
      continue;
    }
    let i = 0;
    const op = jcc ? 0xe9 : op1;
    if (jcc) {
      bytes[i++] = 0x70 + ((op2 & 0xf) ^ 1);
      bytes[i++] = len - 2;
    }
    if (lfence) {
      const f = lfenceInsn();
      bytes.set(f, i);
      i += f.length;
    }
    let note = `${op === 0xe8 ? 'call' : 'jmp'} *%${REGS[reg]}`;
    if (its && ((at + BigInt(i + 1 + (reg >> 3))) & 0x20n) === 0n) {
      const thunkName = `__x86_indirect_its_thunk_${REGS[reg]}`;
      const thunk = view.symbolAbs(thunkName);
      if (thunk === undefined) {
        view.finding('retpolines', s.addr, `ITS: no address for ${thunkName}; skipped`, 'model', s);
        continue;
      }
      i = sameBranchTo(bytes, jcc, op1, op2, len, at, thunk);
      view.finding(
        'retpolines',
        s.addr,
        `ITS: the kernel branches to a thunk it allocates at run time; shown as ${thunkName}`,
        'model',
        s,
      );
      note = `ITS thunk ${thunkName}`;
    } else if (rules.retpolinePad === 'cs-int3') {
      // 6.18+ emit_indirect(op, reg, bytes + i, len - i): the excess beyond the instruction becomes CS prefixes
      // before a call (at most 3; more are left to the NOPs) or INT3s after a jmp.
      const branch = op === 0xe8 ? callIndirect(gpr64(reg)) : jmpIndirect(gpr64(reg));
      const excess = len - i - branch.length;
      if (excess < 0) {
        // WARN_ON_ONCE(len < 0), then `cs = len` (negative) and `while (cs--)` writes CS prefixes past the site:
        // Debian's 7.3.4 with spectre_v2=retpoline,lfence WARNs here and triple-faults under QEMU.
        view.finding(
          'retpolines',
          s.addr,
          `${lfence ? 'lfence; ' : ''}${op === 0xe8 ? 'call' : 'jmp'} *%${REGS[reg]} does not fit the ${len}-byte site: emit_indirect() WARNs and writes past the site (the kernel crashes)`,
          'bug',
          s,
        );
        continue;
      }
      if (op === 0xe8 && excess <= 3) for (let k = 0; k < excess; k++) bytes[i++] = 0x2e;
      bytes.set(branch, i);
      i += branch.length;
      if (op === 0xe9) while (i < len) bytes[i++] = int3()[0]!;
      while (i < len) bytes[i++] = 0x90;
    } else {
      const branch = op === 0xe8 ? callIndirect(gpr64(reg)) : jmpIndirect(gpr64(reg));
      bytes.set(branch, i);
      i += branch.length;
      if (op === 0xe9 && i < len) bytes[i++] = int3()[0]!;
      while (i < len) bytes[i++] = 0x90;
    }
    // The kernel pokes only when the result is exactly the site's length; otherwise the thunk call stays, silently.
    if (i !== len) continue;
    const out = bytes.slice(0, len);
    if (rules.alternatives !== 'entry-6.1') {
      const b = new Uint8Array(len + 15);
      b.set(out);
      optimizeNopsModern(b, len, rules.nopMax);
      out.set(b.subarray(0, len));
    } else optimizeNops(out, len, at);
    view.write('retpolines', s.addr, out, s, note);
  }
}
