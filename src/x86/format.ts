/**
 * Disassembly text through iced-x86's formatter (AT&T syntax, as objdump and the kernel write it),
 * with real addresses and branch targets named by symbol, and relocations shown the way `objdump -dr`
 * shows them so `e8 00 00 00 00` in a module reads as `call __fentry__`.
 */
import { Decoder, DecoderOptions, Formatter, FormatterSyntax, Instruction } from 'iced-x86';
import { Image, R_X86_64_PC32, R_X86_64_PLT32, Reloc, Section } from '../elf/image.js';

const R_X86_64_GOTPCREL = 9;

let insn: Instruction | undefined;
const formatters = new Map<string, Formatter>();

export type Syntax = 'att' | 'intel';

/**
 * One iced formatter per (syntax, relocatable): objdump-like output, lower-case hex, short branch
 * targets; in relocatable objects RIP-relative operands stay `disp(%rip)` (the final address is not known).
 */
function formatter(syntax: Syntax, relocatable: boolean): Formatter {
  const key = `${syntax}/${relocatable}`;
  let f = formatters.get(key);
  if (!f) {
    f = new Formatter(syntax === 'intel' ? FormatterSyntax.Intel : FormatterSyntax.Gas);
    f.firstOperandCharIndex = 0;
    f.uppercaseHex = false;
    f.branchLeadingZeros = false;
    f.ripRelativeAddresses = relocatable;
    formatters.set(key, f);
  }
  return f;
}

export interface FormatContext {
  img: Image;
  /** The section the bytes come from, when its relocations should be shown (relocatable files). */
  relocs?: { section: Section; secAddr: number } | { bySecOff: Map<number, Reloc>; secAddr: number };
  syntax?: Syntax;
}

export interface FormattedInsn {
  /** Relative address. */
  addr: number;
  len: number;
  text: string;
}

/** Decodes `bytes` (found at relative address `addr`) and formats each instruction. */
export function disassemble(bytes: Uint8Array, addr: number, ctx: FormatContext): FormattedInsn[] {
  const out: FormattedInsn[] = [];
  if (bytes.length === 0) return out;
  const img = ctx.img;
  const dec = new Decoder(64, bytes, DecoderOptions.None);
  const f = formatter(ctx.syntax ?? 'att', img.kind === 'rel');
  const ins = (insn ??= new Instruction());
  try {
    dec.ip = img.base + BigInt(addr);
    let o = 0;
    while (o < bytes.length) {
      dec.decodeOut(ins);
      let n = ins.length || 1;
      let text: string;
      if (ins.isInvalid || o + n > bytes.length) {
        n = Math.min(n, bytes.length - o);
        text = `(bad)`;
      } else {
        text = f.format(ins);
        const reloc = relocIn(ctx, addr + o, n);
        if (reloc) {
          const name = img.relocSymbolName(reloc);
          // For a pc-relative branch/call the relocation names the target; show it instead of the placeholder.
          const isBranch = ins.isCallNear || ins.isJmpNear || ins.isJccShortOrNear;
          // A pc-relative field holds S + A - P; the instruction adds its own end, so it refers to S + A + (end - P).
          const pcrel = reloc.type === R_X86_64_PC32 || reloc.type === R_X86_64_PLT32 || reloc.type === R_X86_64_GOTPCREL;
          const add = pcrel ? reloc.addend + (addr + o + n - (ctx.relocs!.secAddr + reloc.offset)) : reloc.addend;
          const sym = add === 0 ? name : `${name}${add < 0 ? '-' : '+'}0x${Math.abs(add).toString(16)}`;
          text = isBranch ? `${mnemonicOf(text)} ${sym}` : `${text}  # ${sym}`;
        } else if (ins.isCallNear || ins.isJmpNear || ins.isJccShortOrNear || ins.isJmpShort) {
          const t = Number(ins.nearBranchTarget - img.base);
          // In a relocatable object the numeric address is only our layout's: name the target instead.
          text = img.kind === 'rel' ? `${mnemonicOf(text)} ${img.where(t)}` : `${text} <${img.where(t)}>`;
        } else if (img.kind !== 'rel' && ins.isIpRelMemoryOperand) {
          text = `${text}  # ${img.where(Number(ins.ipRelMemoryAddress - img.base))}`;
        }
      }
      out.push({ addr: addr + o, len: n, text });
      o += n;
      if (dec.position !== o) dec.position = o;
    }
  } finally {
    dec.free();
  }
  return out;
}

function mnemonicOf(text: string): string {
  const i = text.indexOf(' ');
  return i < 0 ? text : text.slice(0, i);
}

/** The first relocation inside the instruction at `at` (after its first byte), if any. */
function relocIn(ctx: FormatContext, at: number, n: number): Reloc | undefined {
  if (!ctx.relocs) return undefined;
  const img = ctx.img;
  const o = at - ctx.relocs.secAddr;
  if ('bySecOff' in ctx.relocs) {
    for (let k = 1; k < n; k++) {
      const r = ctx.relocs.bySecOff.get(o + k);
      if (r) return r;
    }
    return undefined;
  }
  const t = img.relocTable(ctx.relocs.section);
  const i = img.relocIndexFrom(t, o + 1);
  if (i >= t.count || t.offset[i]! >= o + n) return undefined;
  return { offset: t.offset[i]!, type: t.type[i]!, sym: t.sym[i]!, addend: t.addend[i]! };
}

/** Hex bytes separated by spaces. */
export function hexBytes(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) s += (i ? ' ' : '') + (b[i]! < 16 ? '0' : '') + b[i]!.toString(16);
  return s;
}
