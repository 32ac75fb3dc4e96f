/**
 * Disassembly text through iced-x86's formatter (AT&T syntax, as objdump and the kernel write it),
 * with real addresses and branch targets named by symbol, and relocations shown the way `objdump -dr`
 * shows them so `e8 00 00 00 00` in a module reads as `call __fentry__`.
 */
import iced from './iced.cjs';
const { Code, FlowControl, Formatter, FormatterSyntax, Instruction, OpKind } = iced;
type Formatter = InstanceType<typeof iced.Formatter>;
type Instruction = InstanceType<typeof iced.Instruction>;
import { Image, R_X86_64_PC32, R_X86_64_PLT32, Reloc, Section } from '../elf/image.js';
import { decoder, hex, type Decoder } from './insn.js';

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
  const dec = decoder(bytes);
  try {
    return place(decodeShapes(dec, 0, bytes.length, addr, ctx).shapes, addr, ctx);
  } finally {
    dec.free();
  }
}

/**
 * Formats instructions of an image's own bytes, reusing one decoder per section (no copy of the bytes
 * per call). Call `free()` when done: iced's decoders live in WebAssembly memory.
 *
 * The same few byte sequences recur at thousands of sites (`call __fentry__`, `jmp __x86_return_thunk`,
 * the same `lock` instruction): their decoding and formatting does not depend on where they sit once
 * relocations and branch targets are applied per place, so it is done once per byte sequence and shared.
 */
export class ImageDisassembler {
  private readonly sections = new Map<number, { bytes: Uint8Array; dec?: Decoder }>();
  constructor(private readonly ctx: Omit<FormatContext, 'relocs'>) {}

  /** `len` bytes at relative address `addr` as the file holds them (undefined when not in one section). */
  at(addr: number, len: number, relocs?: FormatContext['relocs']): FormattedInsn[] | undefined {
    const img = this.ctx.img;
    const sec = img.sectionAt(addr);
    if (!sec || sec.type === 8 || addr + len > sec.addr + sec.size) return undefined;
    if (len === 0) return [];
    const ctx: FormatContext = { img, syntax: this.ctx.syntax, relocs };
    const rel = img.kind === 'rel';
    const syntax = ctx.syntax ?? 'att';
    const pos = addr - sec.addr;
    let st = this.sections.get(sec.index);
    if (!st) {
      st = { bytes: img.sectionBytes(sec) };
      this.sections.set(sec.index, st);
    }
    let shapes = len <= 256 ? cachedShapes(st.bytes, pos, len, rel, syntax) : undefined;
    if (!shapes) {
      st.dec ??= decoder(st.bytes);
      const fresh = decodeShapes(st.dec, pos, len, addr, ctx);
      if (len <= 256 && fresh.placeFree) cacheShapes(st.bytes, pos, len, rel, syntax, fresh.shapes);
      shapes = fresh.shapes;
    }
    return place(shapes, addr, ctx);
  }

  free(): void {
    for (const st of this.sections.values()) st.dec?.free();
    this.sections.clear();
  }
}

/** One decoded, formatted instruction, before its address, relocations and branch target are applied. */
interface Shape {
  len: number;
  /** The formatter's text, or `(bad)`. */
  text: string;
  bad: boolean;
  /** A direct call/jmp/jcc: the relocation's symbol or the named target replaces the operand. */
  branch: boolean;
  /** Branch target minus the instruction's address. */
  delta: number;
  /** Non-relocatable images: RIP-relative memory address minus the instruction's address, or NaN. */
  ipRel: number;
}

/** Shapes by (relocatable?, syntax, bytes); bounded, shared by every image of a process. */
interface CachedShapes {
  bytes: Uint8Array;
  rel: boolean;
  syntax: Syntax;
  shapes: Shape[];
}
const shapeCache = new Map<number, CachedShapes[]>();
let shapeCount = 0;
const SHAPE_CACHE_MAX = 50_000;

/** FNV-1a over the bytes and the formatting variant. */
function shapeHash(b: Uint8Array, pos: number, len: number, rel: boolean, syntax: Syntax): number {
  let h = (0x811c9dc5 ^ (rel ? 1 : 2) ^ (syntax === 'att' ? 4 : 8)) >>> 0;
  for (let i = pos; i < pos + len; i++) h = Math.imul(h ^ b[i]!, 0x01000193);
  return (h ^ len) >>> 0;
}

function cachedShapes(b: Uint8Array, pos: number, len: number, rel: boolean, syntax: Syntax): Shape[] | undefined {
  const bucket = shapeCache.get(shapeHash(b, pos, len, rel, syntax));
  if (!bucket) return undefined;
  next: for (const e of bucket) {
    if (e.bytes.length !== len || e.rel !== rel || e.syntax !== syntax) continue;
    for (let i = 0; i < len; i++) if (e.bytes[i] !== b[pos + i]) continue next;
    return e.shapes;
  }
  return undefined;
}

function cacheShapes(b: Uint8Array, pos: number, len: number, rel: boolean, syntax: Syntax, shapes: Shape[]): void {
  if (shapeCount >= SHAPE_CACHE_MAX) {
    shapeCache.clear();
    shapeCount = 0;
  }
  const h = shapeHash(b, pos, len, rel, syntax);
  const e = { bytes: b.slice(pos, pos + len), rel, syntax, shapes };
  const bucket = shapeCache.get(h);
  if (bucket) bucket.push(e);
  else shapeCache.set(h, [e]);
  shapeCount++;
}

/**
 * Decodes and formats the instructions in [pos, pos+len) of a decoder's data (at relative address `addr`).
 * `placeFree`: the texts do not depend on the address (everything address-dependent is in `delta`/`ipRel`),
 * so the shapes may be reused for the same bytes elsewhere.
 */
function decodeShapes(
  dec: Decoder,
  pos: number,
  len: number,
  addr: number,
  ctx: FormatContext,
): { shapes: Shape[]; placeFree: boolean } {
  const shapes: Shape[] = [];
  const img = ctx.img;
  const rel = img.kind === 'rel';
  const f = formatter(ctx.syntax ?? 'att', rel);
  const ins = (insn ??= new Instruction());
  let placeFree = true;
  dec.position = pos;
  dec.ip = img.base + BigInt(addr);
  let o = 0;
  while (o < len) {
    dec.decodeOut(ins);
    let n = ins.length || 1;
    if (ins.code === Code.INVALID || o + n > len) {
      n = Math.min(n, len - o);
      // How much a bad decoding swallows can depend on what follows the bytes (or the section's end).
      placeFree = false;
      shapes.push({ len: n, text: '(bad)', bad: true, branch: false, delta: 0, ipRel: NaN });
    } else {
      const text = f.format(ins);
      const fc = ins.flowControl;
      const op0 = ins.op0Kind;
      const near = op0 === OpKind.NearBranch64 || op0 === OpKind.NearBranch32 || op0 === OpKind.NearBranch16;
      const branch =
        (fc === FlowControl.Call || fc === FlowControl.UnconditionalBranch || fc === FlowControl.ConditionalBranch) &&
        op0 === OpKind.NearBranch64;
      const here = img.base + BigInt(addr + o);
      const delta = branch ? Number(BigInt.asIntN(64, ins.nearBranchTarget - here)) : 0;
      const ipRel = !rel && ins.isIpRelMemoryOperand ? Number(BigInt.asIntN(64, ins.ipRelMemoryAddress - here)) : NaN;
      // Absolute addresses in the formatter's own text tie it to this place.
      if ((near && !(branch && rel)) || !Number.isNaN(ipRel)) placeFree = false;
      shapes.push({ len: n, text, bad: false, branch, delta, ipRel });
    }
    o += n;
    if (dec.position !== pos + o) dec.position = pos + o;
  }
  return { shapes, placeFree };
}

/** The shapes at relative address `addr`: relocations named as `objdump -dr` would, branch targets by symbol. */
function place(shapes: Shape[], addr: number, ctx: FormatContext): FormattedInsn[] {
  const img = ctx.img;
  const rel = img.kind === 'rel';
  const out: FormattedInsn[] = new Array(shapes.length);
  let o = 0;
  for (let k = 0; k < shapes.length; k++) {
    const sh = shapes[k]!;
    const n = sh.len;
    let text = sh.text;
    if (!sh.bad) {
      const reloc = rel ? relocIn(ctx, addr + o, n) : undefined;
      if (reloc) {
        const name = img.relocSymbolName(reloc);
        // A pc-relative field holds S + A - P; the instruction adds its own end, so it refers to S + A + (end - P).
        const pcrel = reloc.type === R_X86_64_PC32 || reloc.type === R_X86_64_PLT32 || reloc.type === R_X86_64_GOTPCREL;
        const add = pcrel ? reloc.addend + (addr + o + n - (ctx.relocs!.secAddr + reloc.offset)) : reloc.addend;
        const sym = add === 0 ? name : `${name}${add < 0 ? '-' : '+'}0x${Math.abs(add).toString(16)}`;
        // For a pc-relative branch/call the relocation names the target; show it instead of the placeholder.
        text = sh.branch ? `${mnemonicOf(text)} ${sym}` : `${text}  # ${sym}`;
      } else if (sh.branch) {
        const t = addr + o + sh.delta;
        // In a relocatable object the numeric address is only our layout's: name the target instead.
        text = rel ? `${mnemonicOf(text)} ${img.where(t)}` : `${text} <${img.where(t)}>`;
      } else if (!Number.isNaN(sh.ipRel)) {
        text = `${text}  # ${img.where(addr + o + sh.ipRel)}`;
      }
    }
    out[k] = { addr: addr + o, len: n, text };
    o += n;
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
  const t = img.relocs(ctx.relocs.section);
  const i = t.indexFrom(o + 1);
  if (i >= t.count || t.offset[i]! >= o + n) return undefined;
  return t.entry(i);
}

/** Hex bytes separated by spaces (insn.ts's hex, under the name the listings use). */
export function hexBytes(b: Uint8Array): string {
  return hex(b);
}
