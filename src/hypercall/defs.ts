/**
 * Reads a preprocessed hypercall-defs.c (Xen 4.17 `xen/include/hypercall-defs.c`) with the semantics
 * of Xen's `xen/scripts/gen_hypercall.awk`: `handle:`, `defhandle:`, `rettype:`, `prefix:`, `caller:`,
 * prototype lines and the final `table:`. The result is data: prototypes (one per hypercall and
 * prefix) and, per active caller, the handlers with their priorities, in table order.
 *
 * Awk details kept on purpose: a prototype's argument type is everything but its last word, with the
 * first `*` removed and the first run of spaces squeezed; a pointer type is translated through the
 * `handle:` table; a missing priority is 100 (lowest); a table row must have one column per caller;
 * `extern` lines (preprocessor artefacts) and blank lines are skipped.
 *
 * @example
 * ```ts
 * const d = parseDefs(preprocess(text, x86Defines()));
 * d.callers; // ['pv64', 'hvm64', 'hvm32']
 * d.calls.filter((c) => c.caller === 'pv64' && c.prio === 1).map((c) => c.name); // ['mmu_update', 'iret']
 * ```
 */

export class DefsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DefsError';
  }
}

export interface Arg {
  /** The C type as the generated code spells it (handle type name for pointers). */
  type: string;
  name: string;
  /** A guest pointer: passed as XEN_GUEST_HANDLE_PARAM(type). */
  ptr: boolean;
}

export interface Proto {
  /** Hypercall name without __HYPERVISOR_/do_. */
  name: string;
  prefix: string;
  ret: string;
  args: Arg[];
  /** 1-based line in the (preprocessed) input. */
  line: number;
}

export interface Call {
  caller: string;
  name: string;
  prefix: string;
  /** 1..99, or 100 for "no priority" (lowest). */
  prio: number;
  proto: Proto;
}

export interface Defs {
  /** Verbatim DEFINE_XEN_GUEST_HANDLE lines. */
  defhandles: string[];
  /** Pointer types translated by `handle:`/`defhandle:` lines: C type -> handle name. */
  xlate: Map<string, string>;
  protos: Proto[];
  /** Active callers, in the order of their `caller:` lines. */
  callers: string[];
  /** The table columns, including inactive callers. */
  columns: string[];
  /** Per active caller and table row, in table order. */
  calls: Call[];
  /** Table rows (hypercall names) in order, with the line each came from. */
  rows: { name: string; line: number }[];
}

export function parseDefs(text: string): Defs {
  const xlate = new Map<string, string>();
  const defhandles: string[] = [];
  const rettype = new Map<string, string>();
  const callers: string[] = [];
  let prefixes: string[] = [];
  const protos: Proto[] = [];
  const calls: Call[] = [];
  const rows: { name: string; line: number }[] = [];
  let columns: string[] | undefined;
  let comment = false;
  const lines = text.split('\n');
  for (const [idx, raw] of lines.entries()) {
    const lineNo = idx + 1;
    const f = raw.trim().split(/\s+/).filter(Boolean);
    const err = (msg: string): never => {
      throw new DefsError(`line ${lineNo}: ${msg}: ${raw.trim()}`);
    };
    if (f[0] === '/*') comment = true;
    if (comment) {
      if (f[f.length - 1] === '*/') comment = false;
      continue;
    }
    if (f[0] === 'extern' || /^#/.test(raw) || f.length === 0) continue;
    switch (f[0]) {
      case 'handle:':
        if (f.length < 3) err('"handle:" requires at least two parameters');
        xlate.set(f.slice(2).join(' '), f[1]);
        continue;
      case 'defhandle:':
        if (f.length < 2) err('"defhandle:" requires at least one parameter');
        if (f.length === 2) defhandles.push(`DEFINE_XEN_GUEST_HANDLE(${f[1]});`);
        else {
          const val = f.slice(2).join(' ');
          defhandles.push(`__DEFINE_XEN_GUEST_HANDLE(${f[1]}, ${val});`);
          xlate.set(val, f[1]);
        }
        continue;
      case 'rettype:':
        if (f.length < 3) err('"rettype:" requires at least two parameters');
        if (rettype.has(f[1])) err('rettype can be set only once for each prefix');
        rettype.set(f[1], f.slice(2).join(' '));
        continue;
      case 'caller:':
        if (f[1] && !callers.includes(f[1])) callers.push(f[1]);
        continue;
      case 'prefix:':
        prefixes = f.slice(1);
        for (const p of prefixes) if (!rettype.has(p)) rettype.set(p, 'long');
        continue;
      case 'table:':
        columns = f.slice(1);
        continue;
    }
    if (columns) {
      if (f.length !== columns.length + 1) err('Table definition line has wrong number of fields');
      rows.push({ name: f[0], line: lineNo });
      for (const [c, col] of columns.entries()) {
        if (!callers.includes(col)) continue;
        let pref = f[c + 1];
        if (pref === '-') continue;
        let prio = 100;
        const i = pref.indexOf(':');
        if (i >= 0) {
          prio = Number(pref.slice(i + 1)) || 0;
          pref = pref.slice(0, i);
          if (prio >= 100 || prio < 1) err('Priority must be in the range 1..99');
        }
        const proto = protos.find((p) => p.name === f[0] && p.prefix === pref);
        if (!proto) err(`No prototype for prefix/hypercall combination (${pref}_${f[0]})`);
        calls.push({ caller: col, name: f[0], prefix: pref, prio, proto: proto! });
      }
      continue;
    }
    // Prototype line.
    const bro = raw.indexOf('(');
    const brc = raw.indexOf(')');
    const lead = raw.length - raw.trimStart().length;
    if (bro - lead < 1 || brc < bro) err('No valid prototype line');
    const name = raw.slice(lead, bro).trim();
    const argText = raw.slice(bro + 1, brc);
    const args: Arg[] = [];
    const parts = argText.split(',');
    if (!(parts.length === 1 && parts[0].trim() === '')) {
      if (parts.length > 5) err('Too many parameters');
      for (let a of parts) {
        a = a.replace(/^ */, '').replace(/ +/, ' ').replace(/ *$/, '');
        const ptr = a.includes('*');
        a = a.replace('*', '');
        if (!a.includes(' ')) err('Parameter with no type or no name');
        let type = a.replace(/ [^ ]+$/, '');
        if (ptr && xlate.has(type)) type = xlate.get(type)!;
        const argName = a.replace(/^([^ ]+ )+/, '');
        args.push({ type, name: argName, ptr });
      }
    }
    for (const p of prefixes) protos.push({ name, prefix: p, ret: rettype.get(p) ?? 'long', args, line: lineNo });
  }
  return { defhandles, xlate, protos, callers, columns: columns ?? [], calls, rows };
}

/** One priority group of a caller: same priority, handlers in table order. */
export interface PrioGroup {
  prio: number;
  calls: Call[];
}

/** The caller's groups in ascending priority (1 first, 100 = "none" last), as gen_hypercall.awk orders them. */
export function prioGroups(defs: Defs, caller: string): PrioGroup[] {
  const by = new Map<number, Call[]>();
  for (const c of defs.calls) if (c.caller === caller) by.set(c.prio, [...(by.get(c.prio) ?? []), c]);
  return [...by.keys()].sort((a, b) => a - b).map((prio) => ({ prio, calls: by.get(prio)! }));
}

/**
 * The -D set of Xen 4.17's default x86_64 build (Kconfig defaults without EXPERT, XEN_GUEST or
 * UNSUPPORTED): PV, HVM (which selects COMPAT and IOREQ_SERVER), GRANT_TABLE, HYPFS, KEXEC, XENOPROF;
 * not PV32 (its default is PV_SHIM, which needs XEN_GUEST), ARGO, PV_SHIM, PV_SHIM_EXCLUSIVE.
 * Debian's xen-syms-4.17-amd64 matches it: it has do_hypfs_op, do_kexec_op, compat_kexec_op,
 * do_xenoprof_op, do_dm_op and no do_argo_op, compat_iret or do_entry_int82 (no 32-bit PV).
 */
export const X86_DEFINES = [
  'CONFIG_X86',
  'CONFIG_X86_64',
  'CONFIG_PV',
  'CONFIG_HVM',
  'CONFIG_COMPAT',
  'CONFIG_GRANT_TABLE',
  'CONFIG_HYPFS',
  'CONFIG_IOREQ_SERVER',
  'CONFIG_KEXEC',
  'CONFIG_XENOPROF',
] as const;

/** Parses -D arguments (`NAME` or `NAME=VALUE`) into a macro map. */
export function defineMap(ds: readonly string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (const d of ds) {
    const i = d.indexOf('=');
    if (i < 0) m.set(d, '1');
    else m.set(d.slice(0, i), d.slice(i + 1));
  }
  return m;
}
