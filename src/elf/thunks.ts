/**
 * The thunk names a stripped vmlinux (the one inside a vmlinuz) lacks, taken from its own tables. The
 * patchers and checks recognise a return site or retpoline site by the thunk it branches to; without
 * symbols every such site would read as "not a thunk". The tables say where the thunks are:
 *  - every `.return_sites` entry of a return-thunk build is, as built, `jmp __x86_return_thunk` (objtool
 *    lists exactly those jumps), and the thunk's first instruction is a `ret`;
 *  - every `.retpoline_sites` entry is a call/jmp/jcc to `__x86_indirect_thunk_REG`, whose body as built is
 *    the retpoline for REG (`call 1f; ...; 1: mov %REG, (%rsp); ...`) or `jmp *%REG`, and the thunks are
 *    32 bytes apart from `__x86_indirect_thunk_array` in register order.
 * Nothing is named unless the evidence is unanimous enough and the destination's body is what the name
 * says; what was named, and from how many entries, goes into the load notes. The bytes are taken to be as
 * built: in the output of `apply` for a CPU with another return thunk, the thunk the sites jump to is that one.
 */
import {
  branchRegister,
  Decoder,
  decoder,
  FlowControl,
  GPR64_NAMES,
  Instruction,
  newInstruction,
  storedToStackTop,
} from '../x86/insn.js';
import { ExternalSymbol, Image, STB_GLOBAL, STT_FUNC, Section } from './image.js';

/** Share of a table's entries that must branch to the one destination before it is named. */
const QUORUM = 0.9;
/** Bytes between consecutive per-register retpoline thunks. */
const THUNK_STRIDE = 32;

export interface InferredThunks {
  readonly symbols: ExternalSymbol[];
  readonly notes: string[];
}

/** Decodes single instructions anywhere in a linked image (one decoder per section). */
class Probe {
  private readonly decoders = new Map<Section, Decoder>();
  private readonly ins: Instruction = newInstruction();
  constructor(private readonly img: Image) {}

  /** The instruction at a relative address, or undefined where nothing valid decodes. */
  at(addr: number): Instruction | undefined {
    const sec = this.img.sectionAt(addr);
    if (!sec?.exec) return undefined;
    let dec = this.decoders.get(sec);
    if (!dec) {
      dec = decoder(this.img.sectionBytes(sec));
      this.decoders.set(sec, dec);
    }
    const off = addr - sec.addr;
    if (off < 0 || off >= dec.maxPosition) return undefined;
    dec.position = off;
    dec.ip = this.img.base + BigInt(addr);
    dec.decodeOut(this.ins);
    return this.ins.isInvalid ? undefined : this.ins;
  }

  free(): void {
    for (const d of this.decoders.values()) d.free();
    this.ins.free();
  }
}

/**
 * Destinations of the direct branches at the entries of a site list (`.return_sites`, `.retpoline_sites`: s32
 * offsets from the entry to the site, alike in every Linux version read; zero words are padding): destination ->
 * entry count; and how many entries.
 */
function branchTargets(img: Image, probe: Probe, list: string): { targets: Map<number, number>; entries: number } {
  const targets = new Map<number, number>();
  const sec = img.section(list);
  let entries = 0;
  if (!sec || img.sectionBytes(sec).length !== sec.size) return { targets, entries };
  for (let o = 0; o + 4 <= sec.size; o += 4) {
    const v = img.i32(sec.offset + o);
    if (v === 0) continue;
    entries++;
    const ins = probe.at(sec.addr + o + v);
    if (!ins || !(ins.isCallNear || ins.isJmpShortOrNear || ins.isJccShortOrNear)) continue;
    const d = img.rel(ins.nearBranchTarget);
    targets.set(d, (targets.get(d) ?? 0) + 1);
  }
  return { targets, entries };
}

function fn(img: Image, name: string, addr: number, size: number): ExternalSymbol {
  return { name, addr: img.base + BigInt(addr), size, type: STT_FUNC, bind: STB_GLOBAL };
}

/** The register a retpoline thunk at `addr` branches through, from its body as built. */
function thunkRegister(img: Image, probe: Probe, addr: number): number | undefined {
  const first = probe.at(addr);
  if (!first) return undefined;
  if (first.flowControl === FlowControl.IndirectBranch) return branchRegister(first);
  if (!first.isCallNear) return undefined;
  const body = probe.at(img.rel(first.nearBranchTarget));
  return body ? storedToStackTop(body) : undefined;
}

function returnThunk(img: Image, probe: Probe, out: ExternalSymbol[], notes: string[]): void {
  const { targets, entries } = branchTargets(img, probe, '.return_sites');
  if (entries === 0) return;
  const [best, n] = [...targets].reduce((a, b) => (b[1] > a[1] ? b : a), [NaN, 0]);
  const where = Number.isNaN(best) ? '' : ` (${n} of ${entries} branch to ${img.where(best)})`;
  const body = Number.isNaN(best) ? undefined : probe.at(best);
  if (n < QUORUM * entries || body?.flowControl !== FlowControl.Return) {
    notes.push(
      `${img.path}: __x86_return_thunk not inferred: the .return_sites jumps do not agree on a thunk that returns${where}; return sites are read without it`,
    );
    return;
  }
  out.push(fn(img, '__x86_return_thunk', best, body.length));
  notes.push(
    `${img.path}: __x86_return_thunk inferred at ${img.hex(best)}: ${n} of ${entries} .return_sites jump there, to a ret`,
  );
}

function indirectThunks(img: Image, probe: Probe, out: ExternalSymbol[], notes: string[]): void {
  const { targets, entries } = branchTargets(img, probe, '.retpoline_sites');
  if (entries === 0) return;
  const named = new Map<number, number>(); // destination -> register
  let covered = 0;
  for (const [d, n] of targets) {
    const r = thunkRegister(img, probe, d);
    if (r === undefined) continue;
    named.set(d, r);
    covered += n;
  }
  const bases = new Set([...named].map(([d, r]) => d - r * THUNK_STRIDE));
  if (named.size === 0 || covered < QUORUM * entries || bases.size !== 1) {
    const why =
      bases.size > 1
        ? 'the thunks found are not 32 bytes apart in register order'
        : `only ${covered} of ${entries} .retpoline_sites branch to a retpoline thunk body`;
    notes.push(`${img.path}: __x86_indirect_thunk_* not inferred: ${why}; retpoline sites are read without them`);
    return;
  }
  const base = [...bases][0]!;
  out.push(fn(img, '__x86_indirect_thunk_array', base, 0));
  for (const [d, r] of [...named].sort((a, b) => a[1] - b[1]))
    out.push(fn(img, `__x86_indirect_thunk_${GPR64_NAMES[r]}`, d, THUNK_STRIDE));
  notes.push(
    `${img.path}: ${named.size} __x86_indirect_thunk_* inferred from ${entries} .retpoline_sites (array at ${img.hex(base)}; each body a retpoline for its register)`,
  );
}

/**
 * Thunk symbols for a linked image without symbols (none for other images or where the evidence is short).
 * Each is named over its own extent only (load.ts parses them with `partialSymbols`).
 */
export function inferThunkSymbols(img: Image): InferredThunks {
  const symbols: ExternalSymbol[] = [];
  const notes: string[] = [];
  if (img.kind === 'rel' || img.symbols.length > 0) return { symbols, notes };
  const probe = new Probe(img);
  try {
    returnThunk(img, probe, symbols, notes);
    indirectThunks(img, probe, symbols, notes);
  } finally {
    probe.free();
  }
  return { symbols, notes };
}
