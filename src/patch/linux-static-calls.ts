/**
 * Static call sites at their keys' initial functions: __static_call_init() (kernel/static_call_inline.c)
 * calls arch_static_call_transform(site, NULL, key->func, tail) for every `.static_call_sites` entry, for
 * vmlinux at boot and for a module when it is loaded (after module_finalize's patchers). x86
 * __static_call_transform (arch/x86/kernel/static_call.c), per site:
 *  - validate: a tail site must be JMP rel32, RET or Jcc rel32; a call site CALL, NOP5 or `cs cs cs xor %eax,%eax`
 *    (else the kernel BUGs: reported, skipped);
 *  - call: `call func`, `xor5rax` for __static_call_return0, NOP5 for NULL, and in 7.x one inline instruction
 *    for the functions in LinuxRules.staticCallInline (`ud1` for __WARN_trap, the native unlock's `movb`);
 *    tail: `jmp func`, for NULL the RET form
 *    (`jmp x86_return_thunk` where the return thunk is wanted, else `ret; int3 x4`); a Jcc tail site keeps its
 *    condition (NULL: __static_call_return, or with RETHUNK __x86_return_thunk (6.1) / x86_return_thunk (6.12)).
 * 6.12 also routes calls through callthunks_translate_call_dest() (call depth tracking only; not modelled).
 * key->func is read from the key in the file (relocated for modules). A module's sites whose key lives in
 * vmlinux cannot be resolved from the module alone, except the PREEMPT_DYNAMIC keys, whose value follows the
 * boot-time preemption mode (sched_dynamic_update() in kernel/sched/core.c; Debian's default is voluntary up to
 * 6.x, lazy in 7.x: LinuxRules.preemptDefault), and the keys no one updates (LinuxRules.staticCallConstKeys):
 * those take the mode's or the definition's function; the others keep calling the trampoline and are counted
 * in a note.
 */
import { LinuxRules, RULES_61 } from '../target/profile.js';
import type { Site } from '../sites/site.js';
import { featureNumber } from '../target/features/index.js';
import type { Cpu } from './cpu.js';
import { LINUX_NOPS } from './nops.js';
import { int3, ret } from '../x86/encode.js';
import type { PatchedView } from './view.js';

const XOR5RAX = [0x2e, 0x2e, 0x2e, 0x31, 0xc0];

export type PreemptMode = 'none' | 'voluntary' | 'full' | 'lazy';

/**
 * What sched_dynamic_update() stores in each PREEMPT_DYNAMIC key per mode (null: NULL, a NOP5 call site). On x86
 * the enabled preempt_schedule[_notrace] is the asm thunk (arch/x86/include/asm/preempt.h:
 * preempt_schedule_dynamic_enabled = preempt_schedule_thunk); lazy sets the same static calls as full (it differs
 * in the preempt_lazy static key only).
 */
export const PREEMPT_DYNAMIC: Readonly<Record<PreemptMode, Readonly<Record<string, string | null>>>> = {
  none: {
    cond_resched: '__cond_resched',
    might_resched: '__static_call_return0',
    preempt_schedule: null,
    preempt_schedule_notrace: null,
    irqentry_exit_cond_resched: null,
  },
  voluntary: {
    cond_resched: '__cond_resched',
    might_resched: '__cond_resched',
    preempt_schedule: null,
    preempt_schedule_notrace: null,
    irqentry_exit_cond_resched: null,
  },
  full: {
    cond_resched: '__static_call_return0',
    might_resched: '__static_call_return0',
    preempt_schedule: 'preempt_schedule_thunk',
    preempt_schedule_notrace: 'preempt_schedule_notrace_thunk',
    irqentry_exit_cond_resched: 'raw_irqentry_exit_cond_resched',
  },
  lazy: {
    cond_resched: '__static_call_return0',
    might_resched: '__static_call_return0',
    preempt_schedule: 'preempt_schedule_thunk',
    preempt_schedule_notrace: 'preempt_schedule_notrace_thunk',
    irqentry_exit_cond_resched: 'raw_irqentry_exit_cond_resched',
  },
};

/**
 * The function a vmlinux key holds when the file cannot tell: a PREEMPT_DYNAMIC key under the boot's mode, or a
 * key no one updates. null for NULL; undefined when the key is neither.
 */
function knownKey(keyName: string | undefined, mode: PreemptMode | null, rules: LinuxRules): string | null | undefined {
  if (!keyName) return undefined;
  const base = keyName.replace(/^__SC[KT]__/, '');
  if (base === keyName) return undefined;
  const c = rules.staticCallConstKeys.find(([k]) => k === base);
  if (c) return c[1];
  if (!mode) return undefined;
  return PREEMPT_DYNAMIC[mode][base];
}

function rel(code: number[], op: number, at: bigint, size: number, target: bigint): void {
  code.length = 0;
  code.push(op);
  const v = Number(BigInt.asIntN(32, target - (at + BigInt(size))));
  code.push(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff);
}

export function applyLinuxStaticCalls(
  view: PatchedView,
  sites: readonly Site[],
  cpu: Cpu,
  rules: LinuxRules = RULES_61,
  preempt: PreemptMode | null = 'voluntary',
): void {
  const rh = featureNumber(cpu.table, 'RETHUNK');
  const rethunk = rh !== undefined && cpu.has(rh);
  const wantsAt = (abs: bigint): boolean => rethunk && (cpu.returnThunk !== 'its_return_thunk' || (abs & 0x20n) === 0n);
  let unknown = 0;
  let firstUnknown = '';
  for (const s of sites) {
    if (s.table !== '.static_call_sites' || Number.isNaN(s.addr)) continue;
    const keyAddr = s.key?.addr ?? NaN;
    // objtool points a module's site at the trampoline when the key is not exported; the loader looks the key
    // up in vmlinux then. Only a key in a data section of this file can be read.
    const keySec = Number.isNaN(keyAddr) ? undefined : view.img.sectionAt(keyAddr);
    const kb = !keySec || keySec.exec ? undefined : view.read(keyAddr, 8);
    const known = kb ? undefined : knownKey(s.key?.name, preempt, rules);
    // A known function without an address (a module read without --symbols) is still known by name: enough for
    // the forms that do not encode it (NULL, an inline instruction).
    const knownAbs = known ? view.symbolAbs(known) : known === null ? 0n : undefined;
    const knownInline = known ? rules.staticCallInline.find(([f]) => f === known) : undefined;
    if (!kb && knownAbs === undefined && !knownInline) {
      if (!unknown++) firstUnknown = s.key?.name ?? '?';
      continue;
    }
    const func = kb ? new DataView(kb.buffer, kb.byteOffset, 8).getBigUint64(0, true) : (knownAbs ?? 0n);
    const inline =
      knownInline ?? (func ? rules.staticCallInline.find(([f]) => view.symbolAbs(f) === func) : undefined) ?? undefined;
    const cur = view.read(s.addr, 6) ?? view.read(s.addr, 5);
    if (!cur) continue;
    const at = view.abs(s.addr);
    const tail = Boolean(s.tail);
    const jcc = cur[0] === 0x0f && (cur[1]! & 0xf0) === 0x80;
    const ok = tail
      ? cur[0] === 0xe9 || cur[0] === 0xc3 || jcc
      : cur[0] === 0xe8 ||
        LINUX_NOPS.nops[5]!.every((x, k) => cur[k] === x) ||
        XOR5RAX.every((x, k) => cur[k] === x) ||
        rules.staticCallInline.some(([, b]) => b.every((x, k) => cur[k] === x));
    if (!ok) {
      view.finding(
        'static-calls',
        s.addr,
        `unexpected static_call insn opcode 0x${cur[0]!.toString(16)}: the kernel would BUG()`,
        'bug',
        s,
      );
      continue;
    }
    const code: number[] = [];
    let note: string;
    // A tail call to a function with an inline form is a plain jmp (__static_call_transform(): the inline forms
    // are CALL forms), which needs the function's address.
    if (inline && tail && !func) {
      view.finding('static-calls', s.addr, `tail call to ${inline[0]}: no address for it; skipped`, 'model', s);
      continue;
    }
    if (inline && !tail) {
      code.push(...inline[1]);
      note = `${inline[0]}: inline ${inline[1].map((x) => x.toString(16).padStart(2, '0')).join(' ')}`;
    } else if (tail && jcc) {
      let target = func;
      let name = view.nameOf(func);
      if (!func) {
        // 6.1: __x86_return_thunk; 6.12: x86_return_thunk (the chosen one).
        name = rethunk ? (rules.cpuReturnThunk ? cpu.returnThunk : '__x86_return_thunk') : '__static_call_return';
        const t = view.symbolAbs(name);
        if (t === undefined) {
          view.finding('static-calls', s.addr, `no address for ${name}; skipped`, 'model', s);
          continue;
        }
        target = t;
      }
      code.push(0x0f);
      const tmp: number[] = [];
      rel(tmp, cur[1]!, at + 1n, 5, target);
      code.push(...tmp);
      note = `jcc ${name}`;
    } else if (tail) {
      if (func) {
        rel(code, 0xe9, at, 5, func);
        note = `jmp ${view.nameOf(func)}`;
      } else if (wantsAt(at)) {
        const t = view.symbolAbs(cpu.returnThunk);
        if (t === undefined) {
          view.finding('static-calls', s.addr, `no address for ${cpu.returnThunk}; skipped`, 'model', s);
          continue;
        }
        rel(code, 0xe9, at, 5, t);
        note = `jmp ${cpu.returnThunk}`;
      } else {
        const pad = int3()[0]!;
        code.push(...ret(), pad, pad, pad, pad);
        note = 'ret';
      }
    } else if (!func) {
      code.push(...LINUX_NOPS.nops[5]!);
      note = 'NULL: NOP5';
    } else if (func === view.symbolAbs('__static_call_return0')) {
      code.push(...XOR5RAX);
      note = '__static_call_return0: xor %eax,%eax';
    } else {
      rel(code, 0xe8, at, 5, func);
      note = `call ${view.nameOf(func)}`;
    }
    if (code.every((x, k) => cur[k] === x)) continue;
    view.write('static-calls', s.addr, Uint8Array.from(code), s, note);
  }
  if (unknown)
    view.notes.push(
      `${unknown} static call site(s) keep calling their trampolines: their keys (${firstUnknown}, ...) are not defined in this file, so the function they hold is unknown`,
    );
}
