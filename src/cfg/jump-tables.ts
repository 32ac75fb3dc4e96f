/**
 * Switch jump tables behind an indirect jump, as objtool finds them: in a relocatable object through
 * the `.rodata` relocation of the table load (the `jmp *table(,%reg,8)` itself, or the `mov table(,%reg,8),%reg`
 * before a retpoline thunk jump), whose entries are R_X86_64_64 relocations into the same function; in a
 * linked image by recognising `jmp *abs32(,%reg,8)` / `mov abs32(,%reg,8),%reg` and reading 8-byte entries
 * while they point into the function.
 */
import { OpKind, Register } from '../x86/insn.js';
import { R_X86_64_64, STT_SECTION } from '../elf/image.js';
import type { SectionCode } from '../x86/code.js';
import type { Func } from './functions.js';
import { relocsOf } from './targets.js';
import type { View } from './view.js';

/** Destinations of the jump table used by the indirect jump at instruction `i`, or [] when none is recognised. */
export function jumpTable(view: View, sc: SectionCode, i: number, fn: Func): number[] {
  const first = Math.max(0, i - 6);
  for (let k = i; k >= first; k--) {
    if (k < i && sc.flow[k] !== 0 /* Next */) break;
    const d = view.img.kind === 'rel' ? relTable(view, sc, k, fn) : linkedTable(view, sc, k, fn);
    if (d.length) return d;
  }
  return [];
}

function relTable(view: View, sc: SectionCode, k: number, fn: Func): number[] {
  const img = view.img;
  const rels = relocsOf(view, sc.section);
  const o = sc.off[k]!;
  for (let f = o + 1; f + 4 <= o + sc.len[k]!; f++) {
    const r = rels.get(f);
    if (!r) continue;
    const s = img.symbols[r.sym];
    const sec = s ? img.sections[s.shndx] : undefined;
    if (!sec || sec.exec || !sec.alloc || !sec.name.startsWith('.rodata')) return [];
    const start = (s!.type === STT_SECTION ? 0 : s!.addr - sec.addr) + r.addend;
    const trels = relocsOf(view, sec);
    const out: number[] = [];
    for (let e = start; ; e += 8) {
      const er = trels.get(e);
      if (!er || er.type !== R_X86_64_64) break;
      const t = img.relocTarget(er);
      if (!(t >= fn.addr && t < fn.addr + fn.size)) break;
      out.push(t);
    }
    return out;
  }
  return [];
}

function linkedTable(view: View, sc: SectionCode, k: number, fn: Func): number[] {
  const insn = view.reader.at(sc, k);
  let mem = -1;
  for (let n = 0; n < insn.opCount; n++) if (insn.opKind(n) === OpKind.Memory) mem = n;
  if (mem < 0 || insn.memoryBase !== Register.None || insn.memoryIndexScale !== 8 || insn.memoryIndex === Register.None)
    return [];
  const table = view.img.rel(insn.memoryDisplacement);
  if (Number.isNaN(table)) return [];
  const out: number[] = [];
  for (let e = table; out.length < 4096; e += 8) {
    const b = view.img.read(e, 8);
    if (!b) break;
    const v = new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true);
    const t = view.img.rel(v);
    if (!(t >= fn.addr && t < fn.addr + fn.size)) break;
    out.push(t);
  }
  return out;
}
