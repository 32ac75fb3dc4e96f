/**
 * Finds byte-table initialisers annotated with their assembly in C source, the way the Linux paravirt
 * patch tables are written (seed 003):
 *
 * ```c
 * .irq_save_fl = { 0x9c, 0x58 }, // pushf; pop %[re]ax
 * .cpu_usergs_sysret64 = { 0x0f, 0x01, 0xf8,
 *                          0x48, 0x0f, 0x07 }, // swapgs; sysretq
 * ```
 *
 * The assembly is the comment after the closing brace on the same line or, when there is none, the
 * comments inside the braces joined with `;` (one per line of bytes), or else a comment just above the
 * declaration whose first line reads `INSTRUCTIONS - description` (or ` -- `). Entries with no comment are
 * returned with `asm === undefined`.
 *
 * The instruction-set mode of each entry comes from the preprocessor conditional around it:
 * `#ifdef CONFIG_X86_64` / `#if defined(__x86_64__)` → 64-bit, its `#else` (or `#ifdef CONFIG_X86_32`,
 * `#ifndef CONFIG_X86_64`, `__i386__`) → 32-bit; otherwise the caller's default.
 *
 * @example
 * ```ts
 * const [e] = findByteTables('.x = { 0xfa }, // cli\n', 64);
 * // e.name === '.x', e.bytes = [0xfa], e.asm === 'cli', e.line === 1, e.bits === 64
 * ```
 */

export interface ByteTableEntry {
  /** The designator or variable name: `.irq_irq_disable`, `[3]`, `nop5`. */
  name: string;
  bytes: number[];
  /** The assembly the comment claims, trimmed; undefined when the entry has no comment. */
  asm?: string;
  /** 1-based line of the opening brace. */
  line: number;
  /** 1-based line of the closing brace. */
  endLine: number;
  bits: 16 | 32 | 64;
  /** Why the mode was chosen ('default' or the conditional's text). */
  modeFrom: string;
}

interface Cond {
  /** Mode this branch implies, or 0 when the condition says nothing about the mode. */
  thenMode: 0 | 32 | 64;
  inElse: boolean;
  text: string;
}

const MODE_64 = /\b(CONFIG_X86_64|__x86_64__|__amd64__|__LP64__)\b/;
const MODE_32 = /\b(CONFIG_X86_32|__i386__)\b/;

function condMode(kind: string, expr: string): 0 | 32 | 64 {
  const neg = kind === 'ifndef' || /^\s*!\s*defined/.test(expr);
  let m: 0 | 32 | 64 = 0;
  if (MODE_64.test(expr)) m = 64;
  else if (MODE_32.test(expr)) m = 32;
  if (m === 0) return 0;
  if (neg) return m === 64 ? 32 : 64;
  return m;
}

/** Line number (1-based) of each offset, via a table of line starts. */
function lineIndex(text: string): (off: number) => number {
  const starts = [0];
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) starts.push(i + 1);
  return (off) => {
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid] <= off) lo = mid;
      else hi = mid - 1;
    }
    return lo + 1;
  };
}

/** Mode in force on each line, from the preprocessor conditionals. */
function modesByLine(lines: string[], defaultBits: 16 | 32 | 64): { bits: 16 | 32 | 64; from: string }[] {
  const stack: Cond[] = [];
  const out: { bits: 16 | 32 | 64; from: string }[] = [];
  for (const raw of lines) {
    const m = /^\s*#\s*(ifdef|ifndef|if|elif|else|endif)\b(.*)$/.exec(raw);
    if (m) {
      const [, kind, rest] = m;
      if (kind === 'ifdef' || kind === 'ifndef' || kind === 'if')
        stack.push({ thenMode: condMode(kind, rest), inElse: false, text: `#${kind}${rest}`.trim() });
      else if (kind === 'elif' && stack.length)
        stack[stack.length - 1] = { thenMode: condMode('if', rest), inElse: false, text: `#elif${rest}`.trim() };
      else if (kind === 'else' && stack.length) stack[stack.length - 1].inElse = true;
      else if (kind === 'endif') stack.pop();
    }
    let bits: 16 | 32 | 64 = defaultBits;
    let from = 'default';
    for (let i = stack.length - 1; i >= 0; i--) {
      const c = stack[i];
      if (c.thenMode === 0) continue;
      bits = c.inElse ? (c.thenMode === 64 ? 32 : 64) : c.thenMode;
      from = c.inElse ? `#else of ${c.text}` : c.text;
      break;
    }
    out.push({ bits, from });
  }
  return out;
}

const NUM = /^(0[xX][0-9a-fA-F]+|[0-9]+)[uUlL]*$/;

/** Finds every `NAME = { byte, ... }` initialiser whose braces hold only integer literals and comments. */
export function findByteTables(text: string, defaultBits: 16 | 32 | 64 = 64): ByteTableEntry[] {
  const lineOf = lineIndex(text);
  const lines = text.split('\n');
  const modes = modesByLine(lines, defaultBits);
  const out: ByteTableEntry[] = [];
  const head = /(\.[A-Za-z_]\w*|\[[^\]\n]*\]|[A-Za-z_]\w*(?:\s*\[[^\]\n]*\])*)\s*=\s*\{/g;
  let m: RegExpExecArray | null;
  while ((m = head.exec(text))) {
    const open = m.index + m[0].length - 1;
    const parsed = parseBraces(text, open);
    if (!parsed) continue;
    const { bytes, inner, close } = parsed;
    if (bytes.length === 0) continue;
    head.lastIndex = close + 1;
    // The comment after the closing brace (and an optional ',' or ';') on the same line.
    const eol = text.indexOf('\n', close);
    const tail = text.slice(close + 1, eol < 0 ? text.length : eol);
    const after = /^\s*[,;]?\s*(?:\/\/(.*)|\/\*(.*?)\*\/)/.exec(tail);
    let asm = after ? (after[1] ?? after[2]).trim() : undefined;
    if (!asm && inner.length) asm = inner.join('; ');
    if (!asm) asm = commentAbove(text, m.index);
    const line = lineOf(m.index);
    const mode = modes[line - 1];
    out.push({
      name: m[1].replace(/\s+/g, ''),
      bytes,
      asm: asm || undefined,
      line,
      endLine: lineOf(close),
      bits: mode.bits,
      modeFrom: mode.from,
    });
  }
  return out;
}

/**
 * The comment block ending on the line above a declaration, when its first line reads
 * `INSTRUCTIONS - description` (Linux's arch/x86/kernel/static_call.c:
 * `* cs cs cs xorl %eax, %eax - a single 5 byte instruction that clears %[er]ax`). Only the part before
 * ` - ` is a claim; a prose comment without it is not.
 */
function commentAbove(text: string, at: number): string | undefined {
  const lineStart = text.lastIndexOf('\n', at - 1) + 1;
  // Only for a declaration at the start of its line (not a designator in the middle of a table).
  if (text.slice(lineStart, at).trim() && !/^\s*(static\s+)?(const\s+)?[\w\s]*$/.test(text.slice(lineStart, at)))
    return undefined;
  const before = text.slice(0, lineStart).replace(/[ \t]*\n$/, '');
  let body: string | undefined;
  if (before.endsWith('*/')) {
    const open = before.lastIndexOf('/*');
    if (open < 0) return undefined;
    body = before.slice(open + 2, -2);
  } else {
    const lines = before.split('\n');
    const run: string[] = [];
    while (lines.length && /^\s*\/\//.test(lines[lines.length - 1]))
      run.unshift(lines.pop()!.replace(/^\s*\/\/\s?/, ''));
    if (!run.length) return undefined;
    body = run.join('\n');
  }
  const first = body
    .split('\n')
    .map((l) => l.replace(/^\s*\*?\s?/, '').trim())
    .find((l) => l.length > 0);
  if (!first) return undefined;
  const dash = /\s--?\s/.exec(first);
  return dash && dash.index > 0 ? first.slice(0, dash.index).trim() : undefined;
}

function parseBraces(text: string, open: number): { bytes: number[]; inner: string[]; close: number } | undefined {
  const bytes: number[] = [];
  const inner: string[] = [];
  let i = open + 1;
  let tok = '';
  const flush = (): boolean => {
    const t = tok.trim();
    tok = '';
    if (!t) return true;
    if (!NUM.test(t)) return false;
    const v = parseInt(t.replace(/[uUlL]+$/, ''), t.startsWith('0x') || t.startsWith('0X') ? 16 : 10);
    if (!(v >= 0 && v <= 255)) return false;
    bytes.push(v);
    return true;
  };
  while (i < text.length) {
    const c = text[i];
    if (c === '/' && text[i + 1] === '/') {
      const e = text.indexOf('\n', i);
      const s = text.slice(i + 2, e < 0 ? text.length : e).trim();
      if (s) inner.push(s);
      i = e < 0 ? text.length : e;
      continue;
    }
    if (c === '/' && text[i + 1] === '*') {
      const e = text.indexOf('*/', i + 2);
      if (e < 0) return undefined;
      const s = text.slice(i + 2, e).trim();
      if (s) inner.push(s);
      i = e + 2;
      continue;
    }
    if (c === ',') {
      if (!flush()) return undefined;
    } else if (c === '}') {
      if (!flush()) return undefined;
      return { bytes, inner, close: i };
    } else if (c === '{' || c === ';' || c === '=') return undefined;
    else tok += c;
    i++;
  }
  return undefined;
}
