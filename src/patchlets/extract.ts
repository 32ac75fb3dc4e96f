/**
 * `patchlets extract`: the patchlets of an object assembled from a `.S` file (seed 003's proposal:
 * "global labels can be used to extract the patchlets and their length").
 *
 * A patchlet is bracketed by symbols in one section: `NAME` … `NAME_end` (also `NAME_start`/`NAME_end`
 * and `start_NAME`/`end_NAME`), or is a symbol with a size (`.size NAME, .-NAME`). Each is decoded with
 * iced-x86 and flagged when
 * - it does not decode to whole instructions (invalid bytes, or the last instruction runs past the end);
 * - it carries relocations: the bytes are not final until linked, so copying them elsewhere is wrong;
 * - it holds a pc-relative reference (branch or `(%rip)` operand) the assembler resolved to a place
 *   outside the patchlet: correct only at its assembled address.
 *
 * @example
 * ```ts
 * const ps = extractPatchlets(img); // img = Image.parse(bytes of patchlets.o, 'patchlets.o')
 * ps[0].name; ps[0].bytes; ps[0].insns[0].att; ps[0].problems
 * ```
 */
import { decoder, newInstruction, OpKind } from '../x86/insn.js';
import type { Image, Section, Sym } from '../elf/image.js';
import { STT_FILE, STT_SECTION, SHN_UNDEF, SHN_ABS, SHN_COMMON } from '../elf/image.js';
import { decodeAll, type Bits, type DecodedInsn } from './asmtext.js';

export interface Patchlet {
  name: string;
  section: string;
  /** Relative address of the first byte. */
  addr: number;
  bytes: Uint8Array;
  insns: DecodedInsn[];
  /** How the bounds were found: 'NAME_end' style label, or 'size'. */
  bounds: string;
  relocations: { offset: number; type: number; symbol: string; addend: number }[];
  problems: string[];
  bits: Bits;
}

const END_FORMS: ((n: string) => [string, string] | undefined)[] = [
  (n) => (n.endsWith('_end') ? [n.slice(0, -4), n.slice(0, -4)] : undefined),
  (n) => (n.endsWith('_end') ? [n.slice(0, -4) + '_start', n.slice(0, -4)] : undefined),
  (n) => (n.startsWith('end_') ? ['start_' + n.slice(4), n.slice(4)] : undefined),
];

const REL_NAMES: Record<number, string> = {
  1: 'R_X86_64_64',
  2: 'R_X86_64_PC32',
  4: 'R_X86_64_PLT32',
  9: 'R_X86_64_GOTPCREL',
  10: 'R_X86_64_32',
  11: 'R_X86_64_32S',
  24: 'R_X86_64_PC64',
  41: 'R_X86_64_GOTPCRELX',
  42: 'R_X86_64_REX_GOTPCRELX',
};

export function relocTypeName(t: number): string {
  return REL_NAMES[t] ?? `R_X86_64_${t}`;
}

function usable(s: Sym): boolean {
  return (
    !!s.name &&
    s.type !== STT_FILE &&
    s.type !== STT_SECTION &&
    s.shndx !== SHN_UNDEF &&
    s.shndx !== SHN_ABS &&
    s.shndx !== SHN_COMMON &&
    !Number.isNaN(s.addr)
  );
}

export function extractPatchlets(img: Image, bits: Bits = 64): Patchlet[] {
  const syms = img.symbols.filter(usable);
  const byName = new Map<string, Sym>();
  for (const s of syms) if (!byName.has(s.name)) byName.set(s.name, s);
  const found = new Map<string, { start: Sym; end: number; bounds: string }>();
  const enders = new Set<string>();
  for (const s of syms) {
    for (const form of END_FORMS) {
      const p = form(s.name);
      if (!p) continue;
      const start = byName.get(p[0]);
      if (!start || start.shndx !== s.shndx || s.addr < start.addr || found.has(p[1])) continue;
      found.set(p[1], { start, end: s.addr, bounds: `${p[0]} .. ${s.name}` });
      enders.add(s.name);
      if (p[0] !== p[1]) enders.add(p[0]);
      break;
    }
  }
  for (const s of syms) {
    if (found.has(s.name) || enders.has(s.name) || s.size <= 0) continue;
    const sec = img.sections[s.shndx];
    if (!sec?.alloc) continue;
    found.set(s.name, { start: s, end: s.addr + s.size, bounds: 'size' });
  }
  const out: Patchlet[] = [];
  for (const [name, f] of found) {
    const sec = img.sections[f.start.shndx];
    if (!sec) continue;
    out.push(analyse(img, sec, name, f.start.addr, f.end, f.bounds, bits));
  }
  return out.sort((a, b) => a.section.localeCompare(b.section) || a.addr - b.addr || a.name.localeCompare(b.name));
}

function analyse(
  img: Image,
  sec: Section,
  name: string,
  start: number,
  end: number,
  bounds: string,
  bits: Bits,
): Patchlet {
  const all = img.sectionBytes(sec);
  const bytes = all.subarray(start - sec.addr, end - sec.addr);
  const insns = decodeAll(bytes, bits, img.base + BigInt(start));
  const problems: string[] = [];
  const last = insns[insns.length - 1];
  if (bytes.length === 0) problems.push('empty');
  if (last && (last.invalid || last.truncated)) {
    problems.push(
      last.truncated
        ? `does not end on an instruction boundary (the instruction at +${last.offset} runs past the end)`
        : `invalid instruction at +${last.offset}`,
    );
  }
  const relocations = img
    .relocs(sec)
    .all()
    .filter((r) => sec.addr + r.offset >= start && sec.addr + r.offset < end)
    .map((r) => ({
      offset: sec.addr + r.offset - start,
      type: r.type,
      symbol: img.relocSymbolName(r),
      addend: r.addend,
    }));
  if (relocations.length) {
    problems.push(
      `position-dependent: ${relocations.length} relocation${relocations.length === 1 ? '' : 's'} (${relocations.map((r) => `${relocTypeName(r.type)} ${r.symbol}${r.addend ? (r.addend < 0 ? r.addend : '+' + r.addend) : ''} at +${r.offset}`).join(', ')}); cannot be copied`,
    );
  }
  // pc-relative references the assembler resolved (no relocation) to a place outside the patchlet.
  const relocOffsets = new Set(relocations.map((r) => r.offset));
  const dec = decoder(bytes, { bits, ip: img.base + BigInt(start) });
  const ins = newInstruction();
  try {
    let o = 0;
    while (o < bytes.length) {
      dec.decodeOut(ins);
      if (ins.isInvalid || o + ins.length > bytes.length) break;
      let hasReloc = false;
      for (let k = o; k < o + ins.length; k++) if (relocOffsets.has(k)) hasReloc = true;
      if (!hasReloc) {
        let target: bigint | undefined;
        const isNear = ins.isCallNear || ins.isJmpNear || ins.isJmpShort || ins.isJccShortOrNear;
        if (isNear && ins.op0Kind !== OpKind.Register && ins.op0Kind !== OpKind.Memory) target = ins.nearBranchTarget;
        else if (ins.isIpRelMemoryOperand) target = ins.ipRelMemoryAddress;
        if (target !== undefined) {
          const t = Number(target - img.base);
          if (t < start || t > end)
            problems.push(`position-dependent: pc-relative reference at +${o} to ${img.where(t)} outside the patchlet`);
        }
      }
      o += ins.length;
    }
  } finally {
    ins.free();
    dec.free();
  }
  return { name, section: sec.name, addr: start, bytes, insns, bounds, relocations, problems, bits };
}

/** A C table of the clean patchlets, one annotated byte array each (readable by `patchlets verify`). */
export function patchletsToC(ps: Patchlet[], source: string): string {
  const lines: string[] = [];
  lines.push(`/* Generated by textpoke patchlets extract from ${source}; do not edit. */`);
  lines.push('');
  const ok = ps.filter((p) => p.problems.length === 0);
  for (const p of ps.filter((q) => q.problems.length))
    lines.push(`/* ${p.name}: left out: ${p.problems.join('; ')} */`);
  if (ok.length !== ps.length) lines.push('');
  for (const p of ok) {
    lines.push(`static const unsigned char patchlet_${cIdent(p.name)}[] = {`);
    // Decoded again at address 0 so branch targets read as offsets into the patchlet.
    for (const i of decodeAll(p.bytes, p.bits, 0n))
      lines.push(`\t${i.bytes.map((b) => '0x' + b.toString(16).padStart(2, '0')).join(', ')}, // ${i.att}`);
    lines.push('};');
  }
  lines.push('');
  lines.push('static const struct patchlet {');
  lines.push('\tconst char *name;');
  lines.push('\tconst unsigned char *bytes;');
  lines.push('\tunsigned int len;');
  lines.push('} patchlets[] = {');
  for (const p of ok) lines.push(`\t{ "${p.name}", patchlet_${cIdent(p.name)}, ${p.bytes.length} },`);
  lines.push('};');
  return lines.join('\n') + '\n';
}

function cIdent(s: string): string {
  return s.replace(/[^A-Za-z0-9_]/g, '_');
}
