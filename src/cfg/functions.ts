/**
 * Functions from the symbol table: every sized STT_FUNC in executable code, with compiler-split pieces
 * (`foo.cold`, `foo.part.0`, `foo.isra.0`, `foo.constprop.0`, `foo.cold.12`) tied to their parent `foo`
 * as objtool does, so a jump from a parent into its cold piece stays inside one function.
 */
import type { Sym } from '../elf/image.js';
import type { View } from './view.js';

export interface Func {
  readonly name: string;
  readonly addr: number;
  readonly size: number;
  readonly sym: Sym;
  /** Parent function name for a compiler-split piece. */
  readonly parent?: string;
  /** Kind of piece: 'cold', 'part', 'isra', 'constprop', ... */
  readonly piece?: string;
}

const PIECE = /^(.+?)\.(cold|part|isra|constprop|lto_priv|localalias|clone)(?:\.\d+)*(?:\..*)?$/;

/** Splits `foo.cold.3` into parent and piece kind; undefined for an ordinary name. */
export function pieceOf(name: string): { parent: string; piece: string } | undefined {
  const m = PIECE.exec(name);
  return m ? { parent: m[1]!, piece: m[2]! } : undefined;
}

const cache = new WeakMap<View, Func[]>();

/** Functions of a view, sorted by address (one per address: the first sized symbol). */
export function functions(view: View): Func[] {
  let fs = cache.get(view);
  if (fs) return fs;
  fs = [];
  let last = NaN;
  for (const s of view.img.functions()) {
    if (s.addr === last) continue;
    last = s.addr;
    const p = pieceOf(s.name);
    fs.push({ name: s.name, addr: s.addr, size: s.size, sym: s, parent: p?.parent, piece: p?.piece });
  }
  cache.set(view, fs);
  return fs;
}

/** The function containing `addr` (binary search), or undefined. */
export function functionAt(view: View, addr: number): Func | undefined {
  const fs = functions(view);
  let lo = 0;
  let hi = fs.length - 1;
  let k = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    if (fs[mid]!.addr <= addr) {
      k = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  const f = k >= 0 ? fs[k] : undefined;
  return f && addr < f.addr + f.size ? f : undefined;
}

/** Functions that never return (objtool's global_noreturns for Linux 6.1, plus Xen's). */
export const NORETURN = new Set([
  '__invalid_creds',
  '__module_put_and_kthread_exit',
  '__reiserfs_panic',
  '__stack_chk_fail',
  '__ubsan_handle_builtin_unreachable',
  'cpu_bringup_and_idle',
  'cpu_startup_entry',
  'do_exit',
  'do_group_exit',
  'do_task_dead',
  'ex_handler_msr_mce',
  'fortify_panic',
  'kthread_complete_and_exit',
  'kthread_exit',
  'kunit_try_catch_throw',
  'lbug_with_loc',
  'machine_real_restart',
  'make_task_dead',
  'panic',
  'rewind_stack_and_make_dead',
  'sev_es_terminate',
  'snp_abort',
  'stop_this_cpu',
  'usercopy_abort',
  'xen_cpu_bringup_again',
  'xen_start_kernel',
  'BUG_func',
  // Xen
  '__bug',
  '__warn_noreturn',
  'do_unexpected_trap',
  'fatal_trap',
  'machine_halt',
  'machine_restart',
  'reset_stack_and_jump',
  'noreturn_stub',
  'play_dead',
  'idle_loop',
  '__start_xen',
  // libc, for plain objects
  'abort',
  'exit',
  '_exit',
  '__assert_fail',
  '__chk_fail',
  'longjmp',
  '__longjmp_chk',
  'pthread_exit',
]);

/**
 * Is `addr` inside data placed in a text section (an STT_OBJECT symbol, e.g. Xen's multiboot headers), or
 * inside a thunk whose body is by definition the bare instruction (return thunks, retpoline thunks)?
 */
export function notOrdinaryCode(view: View, addr: number): 'data' | 'thunk' | undefined {
  const s = view.img.symbolize(addr);
  const sym = s.sym;
  if (!sym) return undefined;
  if (sym.type === 1 /* STT_OBJECT */ && s.offset < Math.max(1, sym.size)) return 'data';
  const n = sym.name;
  if (
    n.startsWith('__x86_return_thunk') ||
    n.startsWith('__x86_indirect_thunk_') ||
    n.startsWith('__x86_indirect_call_thunk_') ||
    n.startsWith('__x86_indirect_jump_thunk_') ||
    n === 'zen_untrain_ret' ||
    n === 'srso_untrain_ret' ||
    n === 'srso_alias_untrain_ret' ||
    n.endsWith('_return_thunk') ||
    n === 'srso_safe_ret' ||
    n === 'srso_alias_safe_ret' ||
    n === 'entry_untrain_ret' ||
    n === 'retbleed_untrain_ret'
  )
    return 'thunk';
  return undefined;
}
