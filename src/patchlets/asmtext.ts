/**
 * Compares instruction bytes with the assembly text a comment claims for them.
 *
 * The bytes are decoded with iced-x86 and each instruction is formatted six ways (GNU as AT&T with
 * and without operand-size suffixes and with signed immediates, Intel, MASM, NASM). The claimed text is split on `;` and each
 * instruction is normalised the same way as the formatted ones; an instruction matches when its
 * normal form equals one of the six. Normalisation: lower case; spaces removed except the one after
 * the mnemonic; numbers rewritten in one radix (`$16` = `$0x10`, `-8(%rdi)` = `-0x8(%rdi)`);
 * Intel size keywords (`qword ptr`, `short`, `near`) dropped; condition-code aliases unified
 * (`jz` = `je`, `setnae` = `setb`, ...); `sal` = `shl`; a zero displacement and a scale of 1
 * dropped (`0x0(%rax,%rax,1)` = `(%rax,%rax)`). In the claim, `%[re]ax` (or `[re]ax`) stands
 * for either `%rax` or `%eax`, as the kernel's comments write it. A branch operand that is a symbol name
 * matches any target: the bytes of a relocated branch say nothing about its symbol.
 *
 * Decoding never invents: an operand-size suffix in the claim (`sysretq`) must be what the bytes
 * encode, so `0f 07` (sysretl) does not match `sysretq`.
 */
import {
  decoder,
  DecoderError,
  FormatterSyntax,
  legacyPrefixes,
  newFormatter,
  newInstruction,
  type Bits,
  type Formatter,
} from '../x86/insn.js';

export type { Bits };

export interface DecodedInsn {
  offset: number;
  bytes: number[];
  /** AT&T (GNU as) text, suffixes only where needed. */
  att: string;
  intel: string;
  /** All accepted spellings, normalised. */
  forms: string[];
  invalid: boolean;
  /** The last instruction runs past the end of the bytes. */
  truncated: boolean;
  isBranch: boolean;
  /** Legacy prefix bytes in front of the opcode (segment, 66, 67, f0, f2, f3), in order. */
  prefixes: number[];
  /** The spellings without prefix words and segment overrides, for claims that spell prefixes out. */
  bare: string[];
}

let formatters:
  | { att: Formatter; attSuffix: Formatter; attSigned: Formatter; intel: Formatter; masm: Formatter; nasm: Formatter }
  | undefined;

function fmts(): NonNullable<typeof formatters> {
  if (formatters) return formatters;
  const mk = (s: FormatterSyntax, suffix = false, signed = false): Formatter => {
    const f = newFormatter(s);
    f.firstOperandCharIndex = 0;
    f.uppercaseHex = false;
    f.spaceAfterOperandSeparator = true;
    f.hexPrefix = '0x';
    f.hexSuffix = '';
    f.showBranchSize = false;
    f.signedImmediateOperands = signed;
    if (s === FormatterSyntax.Gas) f.gasShowMnemonicSizeSuffix = suffix;
    return f;
  };
  formatters = {
    att: mk(FormatterSyntax.Gas),
    attSuffix: mk(FormatterSyntax.Gas, true),
    attSigned: mk(FormatterSyntax.Gas, false, true),
    intel: mk(FormatterSyntax.Intel),
    masm: mk(FormatterSyntax.Masm),
    nasm: mk(FormatterSyntax.Nasm),
  };
  return formatters;
}

/** Decodes every instruction of `bytes` (at address `ip`) in the given mode. */
export function decodeAll(bytes: Uint8Array | number[], bits: Bits, ip = 0n): DecodedInsn[] {
  const buf = bytes instanceof Uint8Array ? bytes : Uint8Array.from(bytes);
  const out: DecodedInsn[] = [];
  if (buf.length === 0) return out;
  const f = fmts();
  const dec = decoder(buf, { bits, ip });
  const ins = newInstruction();
  try {
    let o = 0;
    while (o < buf.length) {
      dec.decodeOut(ins);
      const len = ins.length || 1;
      const truncated = o + len > buf.length || (ins.isInvalid && dec.lastError === DecoderError.NoMoreBytes);
      const invalid = ins.isInvalid;
      const b = Array.from(buf.subarray(o, Math.min(o + len, buf.length)));
      if (invalid || truncated) {
        out.push({
          offset: o,
          bytes: b,
          att: '(bad)',
          intel: '(bad)',
          forms: [],
          invalid,
          truncated,
          isBranch: false,
          prefixes: [],
          bare: [],
        });
        break;
      }
      const texts = [
        f.att.format(ins),
        f.attSuffix.format(ins),
        f.intel.format(ins),
        f.masm.format(ins),
        f.nasm.format(ins),
        f.attSigned.format(ins),
      ];
      out.push({
        offset: o,
        bytes: b,
        att: texts[0],
        intel: texts[2],
        forms: [...new Set(texts.map(normalise))],
        prefixes: legacyPrefixes(b),
        bare: [...new Set(texts.map((t) => stripPrefixes(normalise(t))))],
        invalid: false,
        truncated: false,
        isBranch:
          ins.isCallNear || ins.isJmpNear || ins.isJmpShort || ins.isJccShortOrNear || ins.isCallFar || ins.isJmpFar,
      });
      o += len;
    }
  } finally {
    ins.free();
    dec.free();
  }
  return out;
}

const CC_ALIAS: Record<string, string> = {
  z: 'e',
  nz: 'ne',
  c: 'b',
  nae: 'b',
  nc: 'ae',
  nb: 'ae',
  na: 'be',
  nbe: 'a',
  pe: 'p',
  po: 'np',
  nge: 'l',
  nl: 'ge',
  ng: 'le',
  nle: 'g',
};

function normMnemonic(m: string): string {
  if (m === 'sal') return 'shl';
  if (m === 'sall' || m === 'salq' || m === 'salw' || m === 'salb') return 'shl' + m[3];
  for (const p of ['j', 'set', 'cmov']) {
    if (m.startsWith(p)) {
      const cc = m.slice(p.length);
      if (CC_ALIAS[cc]) return p + CC_ALIAS[cc];
    }
  }
  return m;
}

/** One instruction's text in canonical form: `mnemonic op1,op2`. Prefixes (`lock`, `rep`) stay words. */
export function normalise(text: string): string {
  let t = text.trim().toLowerCase().replace(/\s+/g, ' ');
  t = t.replace(/\b(byte|word|dword|qword|tword|tbyte|xmmword|ymmword|zmmword|fword|oword)( ptr)?\s+/g, '');
  t = t.replace(/\b(short|near|far)\s+/g, '');
  // Split the leading words (prefixes + mnemonic) from the operands.
  const words = t.split(' ');
  const lead: string[] = [];
  while (words.length && /^[a-z][a-z0-9.]*$/.test(words[0]) && (lead.length === 0 || isPrefix(lead[lead.length - 1])))
    lead.push(words.shift()!);
  if (lead.length) lead[lead.length - 1] = normMnemonic(lead[lead.length - 1]);
  let ops = words.join('').replace(/\s+/g, '');
  ops = ops.replace(/(-?)(0x[0-9a-f]+|\b[0-9]+\b)(h?)/g, (_all, sign: string, n: string) => {
    const v = BigInt(n);
    return `${sign}${v.toString(10)}`;
  });
  // Zero displacement and scale 1 are spelling, not meaning (objdump writes 0x0(%rax,%rax,1)).
  ops = ops
    .replace(/(^|[,:])0\(/g, '$1(')
    .replace(/,1\)/g, ')')
    .replace(/\*1\b/g, '')
    .replace(/\+0\]/g, ']');
  return ops ? `${lead.join(' ')} ${ops}` : lead.join(' ');
}

function isPrefix(w: string): boolean {
  return /^(lock|rep|repe|repz|repne|repnz|xacquire|xrelease|notrack|bnd|data16|data32|addr32|rex\.?w?|cs|ds|es|ss|fs|gs)$/.test(
    w,
  );
}

/** Splits a claim into instructions (`;` or newline separated, blank pieces dropped). */
export function splitClaim(asm: string): string[] {
  return asm
    .split(/[;\n]/)
    .map((s) => s.trim())
    .filter(Boolean);
}

/** Prefix words a claim may spell out, and the byte each stands for. */
const PREFIX_BYTE: Record<string, number> = {
  es: 0x26,
  cs: 0x2e,
  ss: 0x36,
  ds: 0x3e,
  fs: 0x64,
  gs: 0x65,
  data16: 0x66,
  addr32: 0x67,
  lock: 0xf0,
  rep: 0xf3,
  repe: 0xf3,
  repz: 0xf3,
  xrelease: 0xf3,
  repne: 0xf2,
  repnz: 0xf2,
  xacquire: 0xf2,
  bnd: 0xf2,
  notrack: 0x3e,
};
/** A normal form without its leading prefix words and with segment overrides removed. */
function stripPrefixes(n: string): string {
  const words = n.split(' ');
  while (words.length > 1 && (PREFIX_BYTE[words[0]] !== undefined || isPrefix(words[0]))) words.shift();
  return words.join(' ').replace(/%?\b[cdefgs]s:/g, '');
}

/**
 * Does the claimed instruction text match the decoded instruction? A claim that spells its prefixes
 * out (`cs cs cs xorl %eax, %eax`, `data16 data16 xorq %rax, %rax`, `ds ds movb $0, (%rdi)`) must name
 * exactly the legacy prefix bytes in front of the opcode, in any order, and the rest must match.
 */
export function claimMatches(claim: string, insn: DecodedInsn): boolean {
  if (insn.invalid || insn.truncated) return false;
  const n = normalise(claim);
  const words = n.split(' ');
  const spelled: number[] = [];
  while (words.length > 1 && PREFIX_BYTE[words[0]] !== undefined) spelled.push(PREFIX_BYTE[words.shift()!]);
  if (spelled.length) {
    const a = [...spelled].sort().join(',');
    const b = [...insn.prefixes].sort().join(',');
    if (a === b) {
      const rest = words.join(' ');
      for (const r of expandEitherWidth(rest)) if (insn.bare.includes(r)) return true;
    }
  }
  // %[re]ax / [re]ax: either width.
  const alternatives = expandEitherWidth(n);
  for (const a of alternatives) {
    if (insn.forms.includes(a)) return true;
    if (insn.isBranch && symbolicBranch(a, insn)) return true;
  }
  return false;
}

function expandEitherWidth(n: string): string[] {
  if (!n.includes('[re]') && !n.includes('[er]')) return [n];
  const out = new Set<string>();
  out.add(n.replace(/\[(re|er)\]/g, 'r'));
  out.add(n.replace(/\[(re|er)\]/g, 'e'));
  // Mixed widths in one instruction are unusual but allowed.
  return [...out];
}

function symbolicBranch(claim: string, insn: DecodedInsn): boolean {
  const sp = claim.indexOf(' ');
  if (sp < 0) return false;
  const mn = claim.slice(0, sp);
  const op = claim.slice(sp + 1);
  if (!/^[a-z_.$][\w.$@]*([+-]\d+)?$/.test(op) || /^%/.test(op)) return false;
  return insn.forms.some((f) => f.startsWith(mn + ' ') || f.startsWith(mn + 'q ') || f.startsWith(mn + 'l '));
}

export type MismatchKind =
  | 'count'
  | 'prefixes'
  | 'swapped-operands'
  | 'operand-width'
  | 'operands'
  | 'mnemonic'
  | 'undecodable';

/** Names the likely slip when a claim and an instruction differ. */
export function classify(claim: string, insn: DecodedInsn): MismatchKind {
  if (insn.invalid || insn.truncated) return 'undecodable';
  const words = normalise(claim).split(' ');
  const spelled: number[] = [];
  while (words.length > 1 && PREFIX_BYTE[words[0]] !== undefined) spelled.push(PREFIX_BYTE[words.shift()!]);
  if (spelled.length && [...spelled].sort().join(',') !== [...insn.prefixes].sort().join(',')) return 'prefixes';
  const c = splitOps(normalise(claim));
  const d = splitOps(normalise(insn.att));
  const di = splitOps(normalise(insn.intel));
  const sameMn = (a: string, b: string): boolean =>
    a === b || a.replace(/[bwlq]$/, '') === b || b.replace(/[bwlq]$/, '') === a;
  const attLike = /[%$]/.test(claim);
  for (const x of attLike ? [d, di] : [di, d]) {
    if (!sameMn(c.mn, x.mn)) continue;
    if (c.ops.length === x.ops.length && c.ops.length >= 2 && [...c.ops].reverse().join(',') === x.ops.join(','))
      return 'swapped-operands';
    if (c.ops.length === x.ops.length && c.ops.map(widthless).join(',') === x.ops.map(widthless).join(','))
      return 'operand-width';
    return 'operands';
  }
  if (d.ops.length && c.ops.length === d.ops.length && c.mn.replace(/[bwlq]$/, '') === d.mn.replace(/[bwlq]$/, ''))
    return 'operand-width';
  if (c.mn.replace(/[bwlq]$/, '') === d.mn.replace(/[bwlq]$/, '') || c.mn.replace(/[bwlq]$/, '') === di.mn)
    return 'operand-width';
  return 'mnemonic';
}

function splitOps(n: string): { mn: string; ops: string[] } {
  const sp = n.lastIndexOf(' ');
  if (sp < 0) return { mn: n, ops: [] };
  const mn = n.slice(0, sp).split(' ').pop()!;
  // Split on commas outside parentheses/brackets.
  const ops: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of n.slice(sp + 1)) {
    if (ch === '(' || ch === '[') depth++;
    if (ch === ')' || ch === ']') depth--;
    if (ch === ',' && depth === 0) {
      ops.push(cur);
      cur = '';
    } else cur += ch;
  }
  ops.push(cur);
  return { mn, ops };
}

/** A register operand with its width removed: %rax/%eax/%ax → %Xax, %r8/%r8d → %r8. */
function widthless(op: string): string {
  return op
    .replace(/\[(re|er)\]/g, '')
    .replace(/%?\b[re]?(ax|bx|cx|dx|si|di|sp|bp)\b/g, (_m, r: string) => `%${r}`)
    .replace(/%?\b(r(?:8|9|1[0-5]))[dwb]?\b/g, (_m, r: string) => `%${r}`)
    .replace(/%%/g, '%');
}
