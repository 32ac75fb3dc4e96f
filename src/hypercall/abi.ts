/**
 * `hypercalls abi-diff`: prototype changes between two hypercall-defs.c that alter what a guest sees.
 *
 * A guest passes each argument in a register: 64 bits wide for a 64-bit caller (pv64, hvm64, arm),
 * 32 bits for a compat caller (pv32, hvm32, whose dispatch reads `unsigned int` registers). The handler
 * sees that value converted to its parameter type, so what the guest can express through argument i is
 * - the parameter's width and signedness when the parameter is at most as wide as the register;
 * - the register, zero-extended (unsigned, register width) when the parameter is wider.
 * Two prototypes differ in ABI when that (width, signedness) differs for any argument under an ABI
 * that some caller of the handler uses, when the argument count differs, or when the return value the
 * guest gets back differs in width or signedness. Guest-handle arguments differ when the pointee type
 * changes (other than by `const`). The table is compared as a set of (caller, hypercall) -> prefix, so
 * reordering rows changes nothing; a hypercall gaining, losing or changing its handler for a caller is
 * reported. Priorities are not ABI.
 *
 * Types are sized for x86-64 (LP64); typedefs Xen uses in hypercall-defs.c are known, and an unknown
 * type name is compared by name.
 *
 * @example
 * ```ts
 * const changes = abiDiff(oldDefs, newDefs);
 * // [{ hypercall: 'kexec_op', prefix: 'do', abi: '64-bit', what: "argument 1 'op': unsigned long -> unsigned int: 64-bit unsigned -> 32-bit unsigned (narrowed)" }]
 * ```
 */
import type { Arg, Defs, Proto } from './defs.js';

export type Abi = '64-bit' | '32-bit compat';

export interface AbiChange {
  hypercall: string;
  prefix: string;
  /** The ABI under which the change shows, or undefined for changes that show under every ABI. */
  abi?: Abi;
  /** Callers affected (from either table). */
  callers: string[];
  what: string;
}

interface Scalar {
  bits: number;
  signed: boolean;
}

const SCALARS: Record<string, Scalar> = {
  char: { bits: 8, signed: true },
  'signed char': { bits: 8, signed: true },
  'unsigned char': { bits: 8, signed: false },
  short: { bits: 16, signed: true },
  'unsigned short': { bits: 16, signed: false },
  int: { bits: 32, signed: true },
  'signed int': { bits: 32, signed: true },
  signed: { bits: 32, signed: true },
  unsigned: { bits: 32, signed: false },
  'unsigned int': { bits: 32, signed: false },
  long: { bits: 64, signed: true },
  'long int': { bits: 64, signed: true },
  'unsigned long': { bits: 64, signed: false },
  'long long': { bits: 64, signed: true },
  'unsigned long long': { bits: 64, signed: false },
  bool: { bits: 8, signed: false },
  _Bool: { bits: 8, signed: false },
  int8_t: { bits: 8, signed: true },
  uint8_t: { bits: 8, signed: false },
  int16_t: { bits: 16, signed: true },
  uint16_t: { bits: 16, signed: false },
  int32_t: { bits: 32, signed: true },
  uint32_t: { bits: 32, signed: false },
  int64_t: { bits: 64, signed: true },
  uint64_t: { bits: 64, signed: false },
  s8: { bits: 8, signed: true },
  u8: { bits: 8, signed: false },
  s16: { bits: 16, signed: true },
  u16: { bits: 16, signed: false },
  s32: { bits: 32, signed: true },
  u32: { bits: 32, signed: false },
  s64: { bits: 64, signed: true },
  u64: { bits: 64, signed: false },
  domid_t: { bits: 16, signed: false },
  s_time_t: { bits: 64, signed: true },
  xen_ulong_t: { bits: 64, signed: false },
  xen_long_t: { bits: 64, signed: true },
  evtchn_port_t: { bits: 32, signed: false },
  seg_desc_t: { bits: 64, signed: false },
  uint: { bits: 32, signed: false },
  ulong: { bits: 64, signed: false },
};

export function scalarOf(type: string): Scalar | undefined {
  return SCALARS[
    type
      .replace(/\bconst\b|\bvolatile\b/g, '')
      .replace(/\s+/g, ' ')
      .trim()
  ];
}

function abiOfCaller(caller: string): Abi {
  return /32/.test(caller) ? '32-bit compat' : '64-bit';
}

const REG: Record<Abi, number> = { '64-bit': 64, '32-bit compat': 32 };

/** What a guest can express through a parameter of this type under an ABI. */
function seen(s: Scalar, abi: Abi): Scalar {
  const r = REG[abi];
  if (s.bits < r) return s;
  if (s.bits === r) return s;
  return { bits: r, signed: false };
}

/** The value a guest gets back: the return type widened into the 64- or 32-bit result register. */
function seenRet(s: Scalar, abi: Abi): Scalar {
  const r = REG[abi];
  return s.bits >= r ? { bits: r, signed: s.signed } : s;
}

const show = (s: Scalar): string => `${s.bits}-bit ${s.signed ? 'signed' : 'unsigned'}`;
const same = (a: Scalar, b: Scalar): boolean => a.bits === b.bits && a.signed === b.signed;

function handleBase(t: string): string {
  return t
    .replace(/^const_/, '')
    .replace(/\bconst\b/g, '')
    .trim();
}

function argName(a: Arg, i: number): string {
  return `argument ${i + 1} '${a.name}'`;
}

function callersOf(defs: Defs, name: string, prefix: string): string[] {
  return defs.calls.filter((c) => c.name === name && c.prefix === prefix).map((c) => c.caller);
}

function compareProto(o: Proto, n: Proto, abis: Abi[], callers: string[]): AbiChange[] {
  const out: AbiChange[] = [];
  const base = { hypercall: n.name, prefix: n.prefix, callers };
  if (o.args.length !== n.args.length) {
    const lost = o.args.slice(n.args.length).map((a) => `'${a.name}'`);
    const gained = n.args.slice(o.args.length).map((a) => `'${a.name}'`);
    out.push({
      ...base,
      what: `argument count ${o.args.length} -> ${n.args.length}${lost.length ? ` (dropped ${lost.join(', ')})` : ''}${gained.length ? ` (added ${gained.join(', ')})` : ''}`,
    });
  }
  const k = Math.min(o.args.length, n.args.length);
  for (let i = 0; i < k; i++) {
    const a = o.args[i];
    const b = n.args[i];
    if (a.ptr !== b.ptr) {
      out.push({
        ...base,
        what: `${argName(b, i)}: ${a.ptr ? 'guest handle' : 'scalar'} ${a.type} -> ${b.ptr ? 'guest handle' : 'scalar'} ${b.type}`,
      });
      continue;
    }
    if (a.ptr) {
      if (handleBase(a.type) !== handleBase(b.type))
        out.push({
          ...base,
          what: `${argName(b, i)}: guest handle to ${a.type} -> ${b.type} (pointee layout may differ)`,
        });
      continue;
    }
    const sa = scalarOf(a.type);
    const sb = scalarOf(b.type);
    if (!sa || !sb) {
      if (a.type !== b.type)
        out.push({ ...base, what: `${argName(b, i)}: ${a.type} -> ${b.type} (unknown type; compared by name)` });
      continue;
    }
    for (const abi of abis) {
      const va = seen(sa, abi);
      const vb = seen(sb, abi);
      if (same(va, vb)) continue;
      const how = vb.bits < va.bits ? 'narrowed' : vb.bits > va.bits ? 'widened' : 'signedness changed';
      out.push({ ...base, abi, what: `${argName(b, i)}: ${a.type} -> ${b.type}: ${show(va)} -> ${show(vb)} (${how})` });
    }
  }
  if (o.ret !== n.ret) {
    const ra = scalarOf(o.ret);
    const rb = scalarOf(n.ret);
    if (!ra || !rb) out.push({ ...base, what: `return type ${o.ret} -> ${n.ret}` });
    else
      for (const abi of abis) {
        const va = seenRet(ra, abi);
        const vb = seenRet(rb, abi);
        if (!same(va, vb))
          out.push({ ...base, abi, what: `return type ${o.ret} -> ${n.ret}: ${show(va)} -> ${show(vb)}` });
      }
  }
  return out;
}

export function abiDiff(oldDefs: Defs, newDefs: Defs): AbiChange[] {
  const out: AbiChange[] = [];
  const key = (p: { name: string; prefix: string }): string => `${p.prefix}_${p.name}`;
  const oldP = new Map(oldDefs.protos.map((p) => [key(p), p]));
  const newP = new Map(newDefs.protos.map((p) => [key(p), p]));
  // The table as a set: (caller, hypercall) -> prefix.
  const tbl = (d: Defs): Map<string, string> => new Map(d.calls.map((c) => [`${c.caller} ${c.name}`, c.prefix]));
  const ot = tbl(oldDefs);
  const nt = tbl(newDefs);
  for (const [k, pre] of nt) {
    const [caller, name] = k.split(' ');
    const was = ot.get(k);
    if (was === undefined)
      out.push({
        hypercall: name,
        prefix: pre,
        callers: [caller],
        what: `${caller} gains ${name} (handler ${pre}_${name})`,
      });
    else if (was !== pre)
      out.push({
        hypercall: name,
        prefix: pre,
        callers: [caller],
        what: `${caller} ${name}: handler ${was}_${name} -> ${pre}_${name}`,
      });
  }
  for (const [k, pre] of ot) {
    if (nt.has(k)) continue;
    const [caller, name] = k.split(' ');
    out.push({
      hypercall: name,
      prefix: pre,
      callers: [caller],
      what: `${caller} loses ${name} (was ${pre}_${name}; now -ENOSYS)`,
    });
  }
  for (const [k, n] of newP) {
    const o = oldP.get(k);
    if (!o) continue;
    const callers = [...new Set([...callersOf(oldDefs, o.name, o.prefix), ...callersOf(newDefs, n.name, n.prefix)])];
    // With no caller in this configuration: compat_ handlers serve 32-bit guests; others either.
    const abis: Abi[] = callers.length
      ? [...new Set(callers.map(abiOfCaller))]
      : n.prefix === 'compat'
        ? ['32-bit compat']
        : ['64-bit', '32-bit compat'];
    out.push(...compareProto(o, n, abis, callers));
  }
  return out;
}
