/**
 * Symbols for a kernel image that has none (a bzImage's vmlinux is stripped): a System.map, a
 * /proc/kallsyms dump (read as root: otherwise every address is 0), or the unstripped vmlinux of the
 * same build (Debian's linux-image-*-dbg). Addresses in a kallsyms dump are where the running kernel
 * is, KASLR included: `kaslrOffset` is subtracted, and when it is not given it is found from `_text`
 * (the start of .text in every x86-64 vmlinux). Before the symbols are used, `linux_banner` must
 * point at the image's "Linux version" string: symbols of another build are refused, not misapplied.
 */
import {
  ElfError,
  ExternalSymbol,
  Image,
  STB_GLOBAL,
  STB_LOCAL,
  STB_WEAK,
  STT_FUNC,
  STT_NOTYPE,
  STT_OBJECT,
} from './image.js';

export type SymbolFormat = 'system.map' | 'kallsyms' | 'elf';

export interface SymbolFile {
  format: SymbolFormat;
  symbols: ExternalSymbol[];
}

export class SymbolFileError extends ElfError {}

const LINE = /^([0-9a-fA-F]{1,16})\s+([A-Za-z?])\s+(\S+)(\s+\[(\S+)\])?\s*$/;

/** Parses a symbol file; throws {@link SymbolFileError} with a one-line reason. */
export function parseSymbolFile(bytes: Uint8Array, path: string): SymbolFile {
  if (bytes.length >= 4 && bytes[0] === 0x7f && bytes[1] === 0x45 && bytes[2] === 0x4c && bytes[3] === 0x46) {
    let img: Image;
    try {
      img = Image.parse(bytes, path);
    } catch (e) {
      throw new SymbolFileError(`${path}: ${e instanceof Error ? e.message : String(e)}`);
    }
    if (img.kind === 'rel') throw new SymbolFileError(`${path}: a relocatable object, not a linked vmlinux`);
    const symbols: ExternalSymbol[] = [];
    for (const s of img.symbols) {
      if (!s.name || Number.isNaN(s.addr) || s.shndx === 0 || s.shndx === 0xfff1) continue;
      if (s.type !== STT_FUNC && s.type !== STT_OBJECT && s.type !== STT_NOTYPE) continue;
      symbols.push({ name: s.name, addr: img.base + BigInt(s.addr), size: s.size, type: s.type, bind: s.bind });
    }
    if (symbols.length === 0) throw new SymbolFileError(`${path}: ELF file without symbols (stripped?)`);
    return { format: 'elf', symbols };
  }
  const text = new TextDecoder('utf-8', { fatal: false }).decode(bytes);
  const symbols: ExternalSymbol[] = [];
  let modules = 0;
  let zero = 0;
  let bad = 0;
  let lines = 0;
  for (const raw of text.split('\n')) {
    if (!raw.trim()) continue;
    lines++;
    const m = LINE.exec(raw);
    if (!m) {
      bad++;
      continue;
    }
    if (m[5] !== undefined) {
      modules++;
      continue; // a module's symbol in a kallsyms dump
    }
    const t = m[2]!;
    const addr = BigInt('0x' + m[1]!);
    if (addr === 0n) zero++;
    const lower = t.toLowerCase();
    if (lower === 'a' || lower === 'u' || lower === 'n' || lower === '?') continue;
    const type = lower === 't' ? STT_FUNC : lower === 'w' ? STT_NOTYPE : STT_OBJECT;
    const bind = t === 'W' || t === 'w' || t === 'V' || t === 'v' ? STB_WEAK : t === lower ? STB_LOCAL : STB_GLOBAL;
    symbols.push({ name: m[3]!, addr, type, bind });
  }
  if (lines === 1 && /real System\.map is in/.test(text)) {
    throw new SymbolFileError(
      `${path}: a placeholder System.map (the real one is in the linux-image-*-dbg package; or pass a root-read /proc/kallsyms)`,
    );
  }
  if (bad > lines / 10 || symbols.length === 0)
    throw new SymbolFileError(`${path}: not a System.map, a kallsyms dump or an ELF file with symbols`);
  if (zero === lines - modules)
    throw new SymbolFileError(`${path}: every address is 0 (a /proc/kallsyms read without root)`);
  return {
    format:
      modules > 0 || symbols.some((s) => s.name === '__key.0' || s.name.includes('\t'))
        ? 'kallsyms'
        : guessKallsyms(text)
          ? 'kallsyms'
          : 'system.map',
    symbols,
  };
}

/** kallsyms lists symbols in address order with lowercase types for statics but without the `A` and `N` lines a System.map has. */
function guessKallsyms(text: string): boolean {
  return !/^[0-9a-f]+ [Aa] /m.test(text);
}

/**
 * Returns the symbols at link-time addresses for `img` (subtracting the KASLR offset, given or found from
 * `_text`), checked against the image's banner. `notes` gets what was assumed.
 */
export function symbolsForImage(
  img: Image,
  file: SymbolFile,
  path: string,
  kaslrOffset: bigint | undefined,
  notes: string[],
): { symbols: ExternalSymbol[]; offset: bigint } {
  const text = img.section('.text');
  let offset = kaslrOffset ?? 0n;
  const textSym = file.symbols.find((s) => s.name === '_text') ?? file.symbols.find((s) => s.name === '_stext');
  if (kaslrOffset === undefined && text && textSym) {
    const linked = img.base + BigInt(text.addr);
    const d = (textSym.addr - linked) & 0xffffffffffffffffn;
    if (d !== 0n) {
      const signed = d >= 1n << 63n ? d - (1n << 64n) : d;
      if (signed % 0x200000n !== 0n)
        throw new SymbolFileError(
          `${path}: ${textSym.name} at 0x${textSym.addr.toString(16)} is not a 2 MiB-aligned move of .text (0x${linked.toString(16)}): symbols of another build?`,
        );
      offset = signed;
      notes.push(
        `${path}: KASLR offset 0x${(signed < 0n ? -signed : signed).toString(16)}${signed < 0n ? ' (negative)' : ''} found from ${textSym.name}; subtracted from every address`,
      );
    }
  }
  const syms =
    offset === 0n ? file.symbols : file.symbols.map((s) => ({ ...s, addr: (s.addr - offset) & 0xffffffffffffffffn }));
  const banner = syms.find((s) => s.name === 'linux_banner');
  if (banner) {
    const at = img.rel(banner.addr);
    const b = Number.isNaN(at) ? undefined : img.read(at, 14);
    if (!b || String.fromCharCode(...b) !== 'Linux version ') {
      throw new SymbolFileError(
        `${path}: linux_banner does not point at this image's banner${kaslrOffset !== undefined ? ' (wrong --kaslr-offset?)' : ''}: symbols of another build?`,
      );
    }
  } else if (text && textSym) {
    const linked = img.base + BigInt(text.addr);
    if (((textSym.addr - offset) & 0xffffffffffffffffn) !== linked)
      throw new SymbolFileError(
        `${path}: ${textSym.name} does not match .text after the KASLR offset: wrong --kaslr-offset?`,
      );
  } else {
    notes.push(`${path}: no linux_banner or _text symbol to check the symbols against this image with`);
  }
  return { symbols: syms, offset };
}
