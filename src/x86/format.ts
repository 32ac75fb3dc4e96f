/**
 * Disassembly text through iced-x86's formatter (AT&T syntax, as objdump and the kernel write it),
 * with real addresses and branch targets named by symbol, and relocations shown the way `objdump -dr`
 * shows them so `e8 00 00 00 00` in a module reads as `call __fentry__`.
 */
import { Decoder, DecoderOptions, Formatter, FormatterSyntax, Instruction } from 'iced-x86';
import type { Image, Reloc } from '../elf/image.js';

let fmtGas: Formatter | undefined;
let fmtIntel: Formatter | undefined;
let insn: Instruction | undefined;

export type Syntax = 'att' | 'intel';

function formatter(syntax: Syntax): Formatter {
  if (syntax === 'intel') {
    if (!fmtIntel) {
      fmtIntel = new Formatter(FormatterSyntax.Intel);
      fmtIntel.firstOperandCharIndex = 0;
      fmtIntel.uppercaseHex = false;
    }
    return fmtIntel;
  }
  if (!fmtGas) {
    fmtGas = new Formatter(FormatterSyntax.Gas);
    fmtGas.firstOperandCharIndex = 0;
    fmtGas.uppercaseHex = false;
  }
  return fmtGas;
}

export interface FormatContext {
  img: Image;
  /** Relocations of the section the bytes come from, by section offset, and the section's relative address. */
  relocs?: { bySecOff: Map<number, Reloc>; secAddr: number };
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
  const f = formatter(ctx.syntax ?? 'att');
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
          const add = isBranch ? reloc.addend + (addr + o + n - (ctx.relocs!.secAddr + reloc.offset)) : reloc.addend;
          const sym = add === 0 ? name : `${name}${add < 0 ? '-' : '+'}0x${Math.abs(add).toString(16)}`;
          text = isBranch ? `${mnemonicOf(text)} ${sym}` : `${text}  # ${sym}`;
        } else if (ins.isCallNear || ins.isJmpNear || ins.isJccShortOrNear || ins.isJmpShort) {
          const t = Number(ins.nearBranchTarget - img.base);
          text = `${text} <${img.where(t)}>`;
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

function relocIn(ctx: FormatContext, at: number, n: number): Reloc | undefined {
  if (!ctx.relocs) return undefined;
  const base = at - ctx.relocs.secAddr;
  for (let k = 1; k < n; k++) {
    const r = ctx.relocs.bySecOff.get(base + k);
    if (r) return r;
  }
  return undefined;
}

/** Hex bytes separated by spaces. */
export function hexBytes(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) s += (i ? ' ' : '') + (b[i]! < 16 ? '0' : '') + b[i]!.toString(16);
  return s;
}
