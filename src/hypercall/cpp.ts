/**
 * The part of the C preprocessor that Xen's hypercall-defs.c needs: comments, `#ifdef`/`#ifndef`/
 * `#if`/`#elif`/`#else`/`#endif` with `defined`, `!`, `&&`, `||`, parentheses, integers and `==`/`!=`,
 * and object-like `#define`/`#undef` whose names are substituted in the surviving lines (the file's
 * `PREFIX_hvm` style macros). `#include` lines are dropped. The CLI can run the system `cpp` instead
 * (`--cpp`); both give the same table for the shipped file (tested).
 *
 * @example
 * ```ts
 * preprocess('#ifdef CONFIG_PV\npv\n#endif\n', new Map([['CONFIG_PV', '1']])); // 'pv\n'
 * ```
 */

export class CppError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CppError';
  }
}

function stripComments(text: string): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    if (text.startsWith('/*', i)) {
      const e = text.indexOf('*/', i + 2);
      if (e < 0) throw new CppError('unterminated comment');
      // Keep line structure.
      out += text.slice(i, e + 2).replace(/[^\n]/g, '') || ' ';
      i = e + 2;
    } else if (text.startsWith('//', i)) {
      const e = text.indexOf('\n', i);
      i = e < 0 ? text.length : e;
    } else out += text[i++];
  }
  return out;
}

type Tok = { k: 'num'; v: number } | { k: 'id'; v: string } | { k: 'op'; v: string };

function lex(expr: string): Tok[] {
  const out: Tok[] = [];
  const re = /\s*(?:(\d+)[uUlL]*|([A-Za-z_]\w*)|(&&|\|\||==|!=|<=|>=|[!()<>+-]))/y;
  let m: RegExpExecArray | null;
  let pos = 0;
  while (pos < expr.length) {
    if (/^\s*$/.test(expr.slice(pos))) break;
    re.lastIndex = pos;
    m = re.exec(expr);
    if (!m) throw new CppError(`cannot parse #if expression '${expr.trim()}'`);
    pos = re.lastIndex;
    if (m[1] !== undefined) out.push({ k: 'num', v: Number(m[1]) });
    else if (m[2] !== undefined) out.push({ k: 'id', v: m[2] });
    else out.push({ k: 'op', v: m[3] });
  }
  return out;
}

function evalExpr(expr: string, defs: ReadonlyMap<string, string>): boolean {
  const t = lex(expr);
  let i = 0;
  const peek = (): Tok | undefined => t[i];
  const isOp = (v: string): boolean => peek()?.k === 'op' && peek()!.v === v;
  const expect = (v: string): void => {
    if (!isOp(v)) throw new CppError(`expected '${v}' in #if expression '${expr.trim()}'`);
    i++;
  };
  const primary = (): number => {
    const tok = t[i++];
    if (!tok) throw new CppError(`truncated #if expression '${expr.trim()}'`);
    if (tok.k === 'num') return tok.v;
    if (tok.k === 'op' && tok.v === '!') return primary() ? 0 : 1;
    if (tok.k === 'op' && tok.v === '-') return -primary();
    if (tok.k === 'op' && tok.v === '(') {
      const v = or();
      expect(')');
      return v;
    }
    if (tok.k === 'id' && tok.v === 'defined') {
      const paren = isOp('(');
      if (paren) i++;
      const name = t[i++];
      if (name?.k !== 'id') throw new CppError(`defined needs a name in '${expr.trim()}'`);
      if (paren) expect(')');
      return defs.has(name.v) ? 1 : 0;
    }
    if (tok.k === 'id') {
      const v = defs.get(tok.v);
      if (v === undefined) return 0;
      const n = Number(v.trim() || '1');
      return Number.isFinite(n) ? n : 1;
    }
    throw new CppError(`unexpected '${tok.v}' in #if expression '${expr.trim()}'`);
  };
  const cmp = (): number => {
    let v = primary();
    while (isOp('==') || isOp('!=') || isOp('<') || isOp('>') || isOp('<=') || isOp('>=')) {
      const op = (t[i++] as { v: string }).v;
      const r = primary();
      v = Number(
        op === '=='
          ? v === r
          : op === '!='
            ? v !== r
            : op === '<'
              ? v < r
              : op === '>'
                ? v > r
                : op === '<='
                  ? v <= r
                  : v >= r,
      );
    }
    return v;
  };
  const and = (): number => {
    let v = cmp();
    while (isOp('&&')) {
      i++;
      const r = cmp();
      v = v && r ? 1 : 0;
    }
    return v;
  };
  const or = (): number => {
    let v = and();
    while (isOp('||')) {
      i++;
      const r = and();
      v = v || r ? 1 : 0;
    }
    return v;
  };
  const v = or();
  if (i !== t.length) throw new CppError(`trailing tokens in #if expression '${expr.trim()}'`);
  return v !== 0;
}

/** Preprocesses `text` with the given macro definitions (name -> replacement; '1' for -DNAME). */
export function preprocess(text: string, defines: ReadonlyMap<string, string>): string {
  const defs = new Map(defines);
  const lines = stripComments(text).split('\n');
  // Each frame: is this branch live, has any branch of this #if been taken, was the enclosing context live.
  const stack: { live: boolean; taken: boolean; outer: boolean }[] = [];
  const live = (): boolean => (stack.length ? stack[stack.length - 1].live : true);
  const out: string[] = [];
  for (const [n, raw] of lines.entries()) {
    const d = /^\s*#\s*(\w+)\s*(.*)$/.exec(raw);
    if (d) {
      const [, kw, rest] = d;
      try {
        if (kw === 'ifdef' || kw === 'ifndef') {
          const name = rest.trim().split(/\s+/)[0];
          const v = defs.has(name) === (kw === 'ifdef');
          const outer = live();
          stack.push({ live: outer && v, taken: v, outer });
        } else if (kw === 'if') {
          const outer = live();
          const v = outer ? evalExpr(rest, defs) : false;
          stack.push({ live: outer && v, taken: v, outer });
        } else if (kw === 'elif') {
          const f = stack[stack.length - 1];
          if (!f) throw new CppError('#elif without #if');
          const v = !f.taken && f.outer && evalExpr(rest, defs);
          f.live = f.outer && v;
          f.taken ||= v;
        } else if (kw === 'else') {
          const f = stack[stack.length - 1];
          if (!f) throw new CppError('#else without #if');
          f.live = f.outer && !f.taken;
          f.taken = true;
        } else if (kw === 'endif') {
          if (!stack.pop()) throw new CppError('#endif without #if');
        } else if (!live()) {
          // skipped
        } else if (kw === 'define') {
          const m = /^([A-Za-z_]\w*)(\(.*?\))?\s*(.*)$/.exec(rest);
          if (!m) throw new CppError(`bad #define '${rest}'`);
          if (m[2]) throw new CppError(`function-like macro ${m[1]} is not supported; use --cpp`);
          defs.set(m[1], m[3].trim());
        } else if (kw === 'undef') defs.delete(rest.trim());
        else if (kw === 'error') throw new CppError(`#error ${rest}`);
        // #include, #pragma, #line: dropped
      } catch (e) {
        if (e instanceof CppError) throw new CppError(`line ${n + 1}: ${e.message}`);
        throw e;
      }
      out.push('');
      continue;
    }
    out.push(live() ? substitute(raw, defs) : '');
  }
  if (stack.length) throw new CppError('unterminated #if');
  return out.join('\n');
}

function substitute(line: string, defs: ReadonlyMap<string, string>, depth = 0): string {
  if (depth > 16) return line;
  let changed = false;
  const r = line.replace(/[A-Za-z_]\w*/g, (id) => {
    const v = defs.get(id);
    if (v === undefined) return id;
    changed = true;
    return v;
  });
  return changed ? substitute(r, defs, depth + 1) : r;
}
