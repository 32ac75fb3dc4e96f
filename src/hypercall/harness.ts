/**
 * A self-contained C program around a generated hypercall header: stand-ins for the Xen definitions
 * the header uses (guest handles, `_p`, `likely`, `ENOSYS`, argument types, `__HYPERVISOR_*` numbers),
 * one stub per prototype that records its own name, and a `main` that dispatches numbers through
 * every caller's `call_handlers_*` macro and prints `caller type number handler ret` lines.
 * Used by the tests (compiled with gcc -Wall -Werror, and with UBSan) and by the benchmark.
 */
import type { Defs } from './defs.js';

/** Argument types the stand-ins map to fixed-width integers; any other non-pointer type becomes unsigned long. */
const SCALAR: Record<string, string> = {
  domid_t: 'uint16_t',
  s_time_t: 'int64_t',
  xen_ulong_t: 'unsigned long',
  seg_desc_t: 'uint64_t',
  evtchn_port_t: 'uint32_t',
};

const BUILTIN =
  /^(?:(?:const\s+)?(?:unsigned\s+|signed\s+)?(?:char|short|int|long|long long|long int)|unsigned|u?int(8|16|32|64)_t|void|_Bool|bool)$/;

/** Declarations the generated header needs before it is included. */
export function prelude(defs: Defs, numbers: Readonly<Record<string, number>>): string {
  const L: string[] = [];
  L.push('#include <stdint.h>');
  L.push('#include <stdio.h>');
  L.push('#include <limits.h>');
  L.push('#define ENOSYS 38');
  L.push('#define likely(x) __builtin_expect(!!(x), 1)');
  L.push('#define XEN_GUEST_HANDLE_PARAM(t) __guest_handle_##t');
  L.push('#define _p(x) ((void *)(unsigned long)(x))');
  L.push(
    '#define __DEFINE_XEN_GUEST_HANDLE(name, type) typedef struct { type *p; } __guest_handle_##name; typedef struct { const type *p; } __guest_handle_const_##name',
  );
  L.push('#define DEFINE_XEN_GUEST_HANDLE(name) __DEFINE_XEN_GUEST_HANDLE(name, name)');
  const defined = new Set<string>();
  for (const d of defs.defhandles) {
    const m = /^(?:__)?DEFINE_XEN_GUEST_HANDLE\((\w+)/.exec(d);
    if (m) {
      defined.add(m[1]);
      defined.add(`const_${m[1]}`);
      if (!d.includes(',')) L.push(`typedef struct hc_opaque_${m[1]} ${m[1]};`);
    }
  }
  const handles = new Set<string>();
  const scalars = new Set<string>();
  for (const p of defs.protos) for (const a of p.args) (a.ptr ? handles : scalars).add(a.type);
  for (const h of [...handles].sort()) if (!defined.has(h)) L.push(`typedef struct { void *p; } __guest_handle_${h};`);
  for (const s of [...scalars].sort()) if (!BUILTIN.test(s)) L.push(`typedef ${SCALAR[s] ?? 'unsigned long'} ${s};`);
  const names = new Set(defs.calls.map((c) => c.name));
  for (const p of defs.protos) names.add(p.name);
  for (const n of [...names].sort()) if (numbers[n] !== undefined) L.push(`#define __HYPERVISOR_${n} ${numbers[n]}`);
  return L.join('\n') + '\n';
}

/** One stub per prototype; each records its name in hc_last and returns its index + 1000. */
export function stubs(defs: Defs, opts: { noinline?: boolean } = {}): string {
  const L: string[] = ['static const char *volatile hc_last;'];
  const attr = opts.noinline ? '__attribute__((noinline)) ' : '';
  for (const [i, p] of defs.protos.entries()) {
    const args = p.args.length
      ? p.args.map((a) => `${a.ptr ? `__guest_handle_${a.type}` : a.type} ${a.name}`).join(', ')
      : 'void';
    L.push(`${attr}${p.ret} ${p.prefix}_${p.name}(${args}) { hc_last = "${p.prefix}_${p.name}"; return ${1000 + i}; }`);
  }
  return L.join('\n') + '\n';
}

/** The handler each stub returns, by its return value. */
export function stubReturns(defs: Defs): Map<number, string> {
  return new Map(defs.protos.map((p, i) => [1000 + i, `${p.prefix}_${p.name}`]));
}

/** Numbers every test run dispatches besides from..to: values a truncating or shifting dispatcher gets wrong. */
export const EDGE_NUMBERS = [
  '0x7fffffffUL',
  '0x80000000UL',
  '0x80000001UL',
  '0xffffffffUL',
  '0x100000001UL',
  '0x10000000cUL' /* 2^32 + memory_op (12) */,
  'ULONG_MAX',
];

/**
 * A program printing `caller type number handler ret` for every number in from..to through each
 * caller, with the number held in an `int`, a `long long` and an `unsigned long` (Xen's type), then
 * the EDGE_NUMBERS as unsigned long and INT_MIN as int.
 */
export function dispatchProgram(
  defs: Defs,
  header: string,
  numbers: Readonly<Record<string, number>>,
  from = -1,
  to = 128,
): string {
  const L: string[] = [prelude(defs, numbers), header, stubs(defs)];
  L.push('int main(void)');
  L.push('{');
  L.push('    long ret;');
  for (const caller of defs.callers) {
    L.push(`    for (long long v = ${from}; v <= ${to}; v++) {`);
    for (const [t, fmt] of [
      ['int', '%d'],
      ['long long', '%lld'],
      ['unsigned long', '%lu'],
    ] as const) {
      L.push(
        `        { ${t} n = (${t})v; hc_last = "-"; ret = 0; call_handlers_${caller}(n, ret, 1, 2, 3, 4, 5); printf("${caller} ${t.replace(' ', '_')} ${fmt} %s %ld\\n", n, hc_last, ret); }`,
      );
    }
    L.push('    }');
    for (const e of EDGE_NUMBERS)
      L.push(
        `    { unsigned long n = ${e}; hc_last = "-"; ret = 0; call_handlers_${caller}(n, ret, 1, 2, 3, 4, 5); printf("${caller} unsigned_long %lu %s %ld\\n", n, hc_last, ret); }`,
      );
    L.push(
      `    { int n = INT_MIN; hc_last = "-"; ret = 0; call_handlers_${caller}(n, ret, 1, 2, 3, 4, 5); printf("${caller} int %d %s %ld\\n", n, hc_last, ret); }`,
    );
  }
  L.push('    return 0;');
  L.push('}');
  return L.join('\n') + '\n';
}

/**
 * A program with one out-of-line `dispatch_<caller>(struct regs *)` per caller, the number at offset
 * 0x50 like Xen's cpu_user_regs.rax, for recovering the compiled dispatch with `recoverDispatch`.
 */
export function walkProgram(defs: Defs, header: string, numbers: Readonly<Record<string, number>>): string {
  const L: string[] = [prelude(defs, numbers), header, stubs(defs, { noinline: true })];
  L.push('struct regs { unsigned long pad[10]; unsigned long rax, rdi, rsi, rdx, r10, r8; };');
  for (const caller of defs.callers) {
    L.push(`__attribute__((noinline)) void dispatch_${caller}(struct regs *r)`);
    L.push('{');
    L.push('    long ret;');
    L.push(`    call_handlers_${caller}(r->rax, ret, r->rdi, r->rsi, r->rdx, r->r10, r->r8);`);
    L.push('    r->rax = ret;');
    L.push('}');
  }
  L.push('int main(int argc, char **argv)');
  L.push('{');
  L.push('    struct regs r = { .rax = (unsigned long)argc };');
  L.push('    (void)argv;');
  for (const caller of defs.callers) L.push(`    dispatch_${caller}(&r);`);
  L.push('    return (int)r.rax;');
  L.push('}');
  return L.join('\n') + '\n';
}
