/**
 * `textpoke/x86`: the x86 layer on its own. Decoding (one iced decoder factory; whole sections into compact
 * per-instruction records), instruction helpers (prefixes, NOPs, branch kinds, conditions, rel32 fields, hex),
 * named encoders built on iced's Encoder, and AT&T/Intel formatting with symbols and relocations.
 */
export * from './insn.js';
export * from './encode.js';
export { decodeSection, Disassembly, SectionCode } from './code.js';
export { disassemble, hexBytes, ImageDisassembler } from './format.js';
export type { FormatContext, FormattedInsn, Syntax } from './format.js';
