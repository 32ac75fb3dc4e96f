/**
 * `hypercalls gen`: the header Xen's gen_hypercall.awk emits (guest-handle definitions, one prototype
 * per hypercall and prefix, a `call_handlers_<caller>(num, ret, a1, a2, a3, a4, a5)` macro and a
 * `hypercall_args_<caller>` initialiser per caller), with the dispatch in one of three styles:
 *
 * - `chain`: Xen's priority groups in Xen's order (1 first, unprioritised last): a one-entry group is
 *   `if (n == X)`, a two-entry group an if/else inside a group test, a larger group a switch inside a
 *   group test, the last group a plain switch. Unlike Xen's output the number is converted once to
 *   `unsigned long long`, and a group test is `n >> 6 == W && (MASK_W >> (n & 63)) & 1` per 64-number
 *   word: defined for every value (negative, >= 64, >= 2^31) and for hypercall numbers past 63.
 * - `switch`: one switch over every hypercall of the caller; the compiler picks the shape.
 * - `table`: a bounds check, the index masked against speculation (Xen's `array_index_nospec` when
 *   defined, else the generic `~(n | (N - 1 - n)) >> 63` mask behind an optimisation barrier), and a call
 *   through a `const` table of per-caller thunks of one signature: no cast between function pointer
 *   types (each thunk calls its handler directly with the handler's own argument types).
 *
 * Every style returns `-ENOSYS` for a number with no handler. Numbers come from the Xen 4.17 table
 * unless given; `_Static_assert`s check them against the `__HYPERVISOR_*` values the code is compiled with.
 *
 * @example
 * ```ts
 * const defs = parseDefs(preprocess(text, defineMap(X86_DEFINES)));
 * const header = generate(defs, { style: 'chain' });
 * ```
 */
import type { Call, Defs, Proto } from './defs.js';
import { prioGroups } from './defs.js';
import { XEN_417_NUMBERS } from './numbers.js';

export type Style = 'chain' | 'switch' | 'table';
export const STYLES: readonly Style[] = ['chain', 'switch', 'table'];

export interface GenOptions {
  style: Style;
  numbers?: Readonly<Record<string, number>>;
}

export function numberOf(numbers: Readonly<Record<string, number>>, name: string): number {
  const n = numbers[name];
  if (n === undefined) throw new Error(`no hypercall number for ${name}`);
  return n;
}

/** Prototype text exactly as gen_hypercall.awk prints it. */
export function protoText(p: Proto): string {
  const args =
    p.args.length === 0
      ? 'void'
      : p.args.map((a) => `${a.ptr ? `XEN_GUEST_HANDLE_PARAM(${a.type})` : a.type} ${a.name}`).join(', ');
  return `${p.ret} ${p.prefix}_${p.name}(${args});`;
}

/** The handler call with the arguments converted as gen_hypercall.awk converts them. */
export function callExpr(p: Proto, arg: (i: number) => string = (i) => `a${i}`): string {
  const args = p.args.map((a, i) =>
    a.ptr ? `(XEN_GUEST_HANDLE_PARAM(${a.type})){ _p(${arg(i + 1)}) }` : `(${a.type})(${arg(i + 1)})`,
  );
  return `${p.prefix}_${p.name}(${args.join(', ')})`;
}

const N = 'hc_n_';

class Out {
  lines: string[] = [];
  /** A line of the macro body (a backslash is appended). */
  m(indent: number, text: string): void {
    this.lines.push(`${' '.repeat(indent * 4)}${text} \\`);
  }
  raw(text = ''): void {
    this.lines.push(text);
  }
}

function groupTest(calls: Call[], numbers: Readonly<Record<string, number>>): string {
  const words = new Map<number, bigint>();
  for (const c of calls) {
    const n = numberOf(numbers, c.name);
    const w = Math.floor(n / 64);
    words.set(w, (words.get(w) ?? 0n) | (1n << BigInt(n % 64)));
  }
  const parts = [...words.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([w, mask]) => {
      const m = `0x${mask.toString(16)}ULL`;
      return w === 0 ? `(${N} < 64 && ((${m} >> ${N}) & 1))` : `((${N} >> 6) == ${w} && ((${m} >> (${N} & 63)) & 1))`;
    });
  const names = calls.map((c) => c.name).join(', ');
  return `${parts.join(' || ')} /* ${names} */`;
}

function emitCall(o: Out, indent: number, c: Call): void {
  o.m(indent, `ret = ${callExpr(c.proto)};`);
}

function emitSwitch(o: Out, indent: number, calls: Call[]): void {
  o.m(indent, `switch ( ${N} ) `.trimEnd());
  o.m(indent, '{');
  for (const c of calls) {
    o.m(indent, `case __HYPERVISOR_${c.name}:`);
    emitCall(o, indent + 1, c);
    o.m(indent + 1, 'break;');
  }
  o.m(indent, 'default:');
  o.m(indent + 1, 'ret = -ENOSYS;');
  o.m(indent + 1, 'break;');
  o.m(indent, '}');
}

function emitChain(o: Out, defs: Defs, caller: string, numbers: Readonly<Record<string, number>>): void {
  const groups = prioGroups(defs, caller);
  if (groups.length === 0) {
    o.m(1, 'ret = -ENOSYS;');
    return;
  }
  for (const [gi, g] of groups.entries()) {
    const last = gi === groups.length - 1;
    const kw = gi === 0 ? 'if' : 'else if';
    if (g.calls.length === 1) {
      o.m(1, `${kw} ( likely(${N} == __HYPERVISOR_${g.calls[0].name}) ) /* prio ${g.prio} */`);
      emitCall(o, 2, g.calls[0]);
      if (last) {
        o.m(1, 'else');
        o.m(2, 'ret = -ENOSYS;');
      }
      continue;
    }
    if (!last) {
      o.m(1, `${kw} ( likely(${groupTest(g.calls, numbers)}) ) /* prio ${g.prio} */`);
    } else if (gi > 0) o.m(1, `else /* prio ${g.prio} */`);
    o.m(1, '{');
    if (g.calls.length === 2) {
      const [a, b] = g.calls;
      o.m(2, `if ( ${N} == __HYPERVISOR_${a.name} )`);
      emitCall(o, 3, a);
      // Inside a group test the other member is the only possibility; Xen's last group has no test
      // (and gen_hypercall.awk would emit an `else` too many for a last group of two), so check it here.
      o.m(2, last ? `else if ( ${N} == __HYPERVISOR_${b.name} )` : 'else');
      emitCall(o, 3, b);
      if (last) {
        o.m(2, 'else');
        o.m(3, 'ret = -ENOSYS;');
      }
    } else emitSwitch(o, 2, g.calls);
    o.m(1, '}');
  }
}

function emitSwitchStyle(o: Out, defs: Defs, caller: string): void {
  const calls = defs.calls.filter((c) => c.caller === caller);
  emitSwitch(o, 1, calls);
}

function thunkName(caller: string, c: Call): string {
  return `hc_thunk_${caller}_${c.prefix}_${c.name}`;
}

function emitTableStyle(o: Out, defs: Defs, caller: string, numbers: Readonly<Record<string, number>>): void {
  const calls = defs.calls.filter((c) => c.caller === caller);
  const size = calls.length ? Math.max(...calls.map((c) => numberOf(numbers, c.name))) + 1 : 0;
  if (size === 0) {
    o.m(1, 'ret = -ENOSYS;');
    return;
  }
  o.m(1, `static const hc_handler_t hc_tbl_[${size}] = {`);
  for (const c of [...calls].sort((x, y) => numberOf(numbers, x.name) - numberOf(numbers, y.name)))
    o.m(2, `[__HYPERVISOR_${c.name}] = ${thunkName(caller, c)},`);
  o.m(1, '};');
  o.m(1, `if ( likely(${N} < ${size}) )`);
  o.m(1, '{');
  o.m(2, `hc_handler_t hc_f_ = hc_tbl_[hc_array_index_nospec(${N}, ${size})];`);
  o.m(
    2,
    'ret = hc_f_ ? hc_f_((unsigned long)(a1), (unsigned long)(a2), (unsigned long)(a3), (unsigned long)(a4), (unsigned long)(a5)) : -ENOSYS;',
  );
  o.m(1, '}');
  o.m(1, 'else');
  o.m(2, 'ret = -ENOSYS;');
}

/** The generated header for one style. */
export function generate(defs: Defs, opts: GenOptions): string {
  const numbers = opts.numbers ?? XEN_417_NUMBERS;
  const o = new Out();
  o.raw('#ifndef XEN_HYPERCALL_DEFS_H');
  o.raw('#define XEN_HYPERCALL_DEFS_H');
  o.raw('');
  o.raw(`/* Generated file, do not edit! (textpoke hypercalls gen --style ${opts.style}) */`);
  o.raw('');
  for (const d of defs.defhandles) o.raw(d);
  o.raw('');
  for (const p of defs.protos) o.raw(protoText(p));
  // The numbers the dispatch was built for must be the ones it is compiled with.
  const used = [...new Set(defs.calls.map((c) => c.name))];
  if (opts.style !== 'switch' && used.length) {
    o.raw('');
    for (const n of used)
      o.raw(`_Static_assert(__HYPERVISOR_${n} == ${numberOf(numbers, n)}, "hypercall number of ${n}");`);
  }
  if (opts.style === 'table') {
    o.raw('');
    o.raw('typedef long (*hc_handler_t)(unsigned long, unsigned long, unsigned long, unsigned long, unsigned long);');
    o.raw('');
    o.raw('#ifdef array_index_nospec');
    o.raw('#define hc_array_index_nospec(n, size) array_index_nospec(n, size)');
    o.raw('#else');
    o.raw("/* n when n < size, else 0, without a branch the CPU could mispredict (as Linux's generic version). */");
    o.raw('static inline unsigned long long hc_array_index_nospec(unsigned long long n, unsigned long long size)');
    o.raw('{');
    o.raw('    __asm__ ( "" : "+r" (n) ); /* the compiler must not prove the mask all-ones */');
    o.raw('    return n & (unsigned long long)(~(long long)(n | (size - 1 - n)) >> 63);');
    o.raw('}');
    o.raw('#endif');
    for (const caller of defs.callers) {
      o.raw('');
      for (const c of defs.calls.filter((x) => x.caller === caller)) {
        o.raw(
          `static inline long ${thunkName(caller, c)}(unsigned long a1, unsigned long a2, unsigned long a3, unsigned long a4, unsigned long a5)`,
        );
        o.raw('{');
        o.raw('    (void)a1; (void)a2; (void)a3; (void)a4; (void)a5;');
        o.raw(`    return ${callExpr(c.proto)};`);
        o.raw('}');
      }
    }
  }
  for (const caller of defs.callers) {
    o.raw('');
    o.raw(`#define call_handlers_${caller}(num, ret, a1, a2, a3, a4, a5) \\`);
    o.raw('({ \\');
    o.m(1, `unsigned long long ${N} = (unsigned long long)(num);`);
    if (opts.style === 'chain') emitChain(o, defs, caller, numbers);
    else if (opts.style === 'switch') emitSwitchStyle(o, defs, caller);
    else emitTableStyle(o, defs, caller, numbers);
    o.raw('})');
    o.raw('');
    o.raw(`#define hypercall_args_${caller} \\`);
    o.raw('{ \\');
    for (const c of defs.calls.filter((x) => x.caller === caller))
      o.raw(`[__HYPERVISOR_${c.name}] = ${c.proto.args.length}, \\`);
    o.raw('}');
  }
  o.raw('');
  o.raw('#endif /* XEN_HYPERCALL_DEFS_H */');
  return o.lines.join('\n') + '\n';
}
