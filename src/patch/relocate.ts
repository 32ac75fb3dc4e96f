/**
 * What the module loader does before any patcher runs: apply the RELA relocations of every allocated
 * section (arch/x86/kernel/module.c __apply_relocate_add: R_X86_64_64, 32, 32S, PC32, PLT32, PC64),
 * with section addresses from the layout (or the given load addresses).
 *
 * Undefined symbols: the kernel resolves them against its own symbol table. textpoke takes them from a
 * System.map-style list when given (`symbols`), otherwise gives each one a synthetic address in a block
 * past the module (one per name, 16 bytes apart) and reports how many were synthetic. Relative branches to
 * the same undefined symbol then agree everywhere (the site, its replacement, the patched bytes), which
 * is all the patchers' arithmetic needs; the absolute values mean nothing.
 */
import { Image, SHN_ABS, SHN_COMMON, SHN_UNDEF, SHT_NOBITS, SHT_RELA } from '../elf/image.js';
import { copy, PatchedView } from './view.js';

export interface RelocateOptions {
  /** Undefined symbol name -> real address (System.map). */
  symbols?: ReadonlyMap<string, bigint>;
}

export interface RelocateResult {
  applied: number;
  /** Undefined symbols given synthetic addresses. */
  synthetic: number;
  /** Undefined symbols resolved from the symbol list. */
  resolved: number;
}

const R_64 = 1, R_PC32 = 2, R_PLT32 = 4, R_32 = 10, R_32S = 11, R_PC64 = 24, R_NONE = 0;
const MASK64 = (1n << 64n) - 1n;

export function relocate(view: PatchedView, opts: RelocateOptions = {}): RelocateResult {
  const img: Image = view.img;
  const res: RelocateResult = { applied: 0, synthetic: 0, resolved: 0 };
  if (img.kind !== 'rel') return res;
  const known = view.externAbs.size;
  // The block for synthetic extern addresses: past the highest section, 1 MiB aligned.
  let top = 0n;
  for (const s of img.sections) if (s.alloc && !Number.isNaN(s.addr)) {
    const end = view.abs(s.addr) + BigInt(s.size);
    if (end > top) top = end;
  }
  view.nextSynthetic ??= ((top + 0xfffffn) & ~0xfffffn) + 0x100000n;
  view.symbolList = opts.symbols;
  const syms = img.symbols;
  const symAbs = (i: number): bigint | undefined => {
    const s = syms[i]!;
    if (s.shndx === SHN_UNDEF) {
      if (!s.name) return 0n;
      return view.extern(s.name);
    }
    if (s.shndx === SHN_ABS) return BigInt(s.addr);
    if (s.shndx === SHN_COMMON || Number.isNaN(s.addr)) return undefined;
    return view.abs(s.addr);
  };
  for (const rs of img.sections) {
    if (rs.type !== SHT_RELA) continue;
    const target = img.sections[rs.info];
    if (!target || !target.alloc || target.type === SHT_NOBITS || target.size === 0) continue;
    const relocs = img.relocations(target);
    const buf = copy(view.loadedBytesOf(target));
    const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    const secAbs = view.abs(target.addr);
    let changed = false;
    for (const r of relocs) {
      if (r.type === R_NONE) continue;
      const S = symAbs(r.sym);
      if (S === undefined) {
        view.finding('relocate', target.addr + r.offset, `relocation type ${r.type} against ${img.relocSymbolName(r)}: symbol has no address`, 'model');
        continue;
      }
      const val = S + BigInt(r.addend);
      const P = secAbs + BigInt(r.offset);
      switch (r.type) {
        case R_64: if (r.offset + 8 <= buf.length) dv.setBigUint64(r.offset, val & MASK64, true); else continue; break;
        case R_32: case R_32S: if (r.offset + 4 <= buf.length) dv.setUint32(r.offset, Number(val & 0xffffffffn), true); else continue; break;
        case R_PC32: case R_PLT32: if (r.offset + 4 <= buf.length) dv.setUint32(r.offset, Number((val - P) & 0xffffffffn), true); else continue; break;
        case R_PC64: if (r.offset + 8 <= buf.length) dv.setBigUint64(r.offset, (val - P) & MASK64, true); else continue; break;
        default:
          view.finding('relocate', target.addr + r.offset, `unsupported relocation type ${r.type} against ${img.relocSymbolName(r)} (the module loader rejects it)`, 'bug');
          continue;
      }
      changed = true;
      res.applied++;
    }
    if (changed) view.load(target, 0, buf);
  }
  res.synthetic = view.syntheticCount;
  res.resolved = view.externAbs.size - known - view.syntheticCount;
  return res;
}
