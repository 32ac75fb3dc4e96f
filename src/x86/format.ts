/**
 * Disassembly text through iced-x86's formatter (AT&T syntax, as objdump and the kernel write it),
 * with real addresses and branch targets named by symbol, and relocations shown the way `objdump -dr`
 * shows them so `e8 00 00 00 00` in a module reads as `call __fentry__`.
 */
import iced from './iced.cjs';
const { Code, Decoder, DecoderOptions, FlowControl, Formatter, FormatterSyntax, Instruction, OpKind } = iced;
type Decoder = InstanceType<typeof iced.Decoder>;
type Formatter = InstanceType<typeof iced.Formatter>;
type Instruction = InstanceType<typeof iced.Instruction>;
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
  if (bytes.length === 0) return [];
  const dec = new Decoder(64, bytes, DecoderOptions.None);
  try {
    return formatRun(dec, 0, bytes.length, addr, ctx);
  } finally {
    dec.free();
  }
}

/**
 * Formats instructions of an image's own bytes, reusing one decoder per section (no copy of the bytes
 * per call). Call `free()` when done: iced's decoders live in WebAssembly memory.
 */
export class ImageDisassembler {
  private readonly decoders = new Map<number, Decoder>();
  constructor(private readonly ctx: Omit<FormatContext, 'relocs'>) {}

  /** `len` bytes at relative address `addr` as the file holds them (undefined when not in one section). */
  at(addr: number, len: number, relocs?: FormatContext['relocs']): FormattedInsn[] | undefined {
    const img = this.ctx.img;
    const sec = img.sectionAt(addr);
    if (!sec || sec.type === 8 || addr + len > sec.addr + sec.size) return undefined;
    if (len === 0) return [];
    let dec = this.decoders.get(sec.index);
    if (!dec) {
      dec = new Decoder(64, img.sectionBytes(sec), DecoderOptions.None);
      this.decoders.set(sec.index, dec);
    }
    return formatRun(dec, addr - sec.addr, len, addr, { ...this.ctx, relocs });
  }

  free(): void {
    for (const d of this.decoders.values()) d.free();
    this.decoders.clear();
  }
}

/** Formats the instructions in [pos, pos+len) of a decoder's data, which sits at relative address `addr`. */
function formatRun(dec: Decoder, pos: number, len: number, addr: number, ctx: FormatContext): FormattedInsn[] {
  const out: FormattedInsn[] = [];
  const img = ctx.img;
  const f = formatter(ctx.syntax ?? 'att', img.kind === 'rel');
  const ins = (insn ??= new Instruction());
  const rel = img.kind === 'rel';
  dec.position = pos;
  dec.ip = img.base + BigInt(addr);
  let o = 0;
  while (o < len) {
    dec.decodeOut(ins);
    let n = ins.length || 1;
    let text: string;
    const code = ins.code;
    if (code === Code.INVALID || o + n > len) {
      n = Math.min(n, len - o);
      text = `(bad)`;
    } else {
      text = f.format(ins);
      const fc = ins.flowControl;
      const isBranch = (fc === FlowControl.Call || fc === FlowControl.UnconditionalBranch || fc === FlowControl.ConditionalBranch) &&
        ins.op0Kind === OpKind.NearBranch64;
      const reloc = rel ? relocIn(ctx, addr + o, n) : undefined;
      if (reloc) {
        const name = img.relocSymbolName(reloc);
        // A pc-relative field holds S + A - P; the instruction adds its own end, so it refers to S + A + (end - P).
        const pcrel = reloc.type === R_X86_64_PC32 || reloc.type === R_X86_64_PLT32 || reloc.type === R_X86_64_GOTPCREL;
        const add = pcrel ? reloc.addend + (addr + o + n - (ctx.relocs!.secAddr + reloc.offset)) : reloc.addend;
        const sym = add === 0 ? name : `${name}${add < 0 ? '-' : '+'}0x${Math.abs(add).toString(16)}`;
        // For a pc-relative branch/call the relocation names the target; show it instead of the placeholder.
        text = isBranch ? `${mnemonicOf(text)} ${sym}` : `${text}  # ${sym}`;
      } else if (isBranch) {
        const t = Number(ins.nearBranchTarget - img.base);
        // In a relocatable object the numeric address is only our layout's: name the target instead.
        text = rel ? `${mnemonicOf(text)} ${img.where(t)}` : `${text} <${img.where(t)}>`;
      } else if (!rel && ins.isIpRelMemoryOperand) {
        text = `${text}  # ${img.where(Number(ins.ipRelMemoryAddress - img.base))}`;
      }
    }
    out.push({ addr: addr + o, len: n, text });
    o += n;
    if (dec.position !== pos + o) dec.position = pos + o;
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
