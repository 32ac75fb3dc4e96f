/**
 * Recovers, from compiled dispatch code (Xen's `pv_hypercall` / `hvm_hypercall` in xen-syms), how many
 * compares and conditional branches on the hypercall number run before each handler is called.
 *
 * Method: for each hypercall number, the function is executed abstractly from its entry with one
 * concrete input, the number stored at `regs + numberOffset` (`regs` = the first argument, `%rdi`),
 * and everything else unknown. Values carry a taint bit (derived from the number). Instructions are
 * decoded by iced-x86; a small evaluator covers the data movement, arithmetic, compares and flags the
 * dispatch uses (mov/movzx/movsx/lea, add/sub/and/or/xor/shl/shr/sar, cmp/test/bt, sbb/setcc/cmovcc,
 * push/pop with a symbolic stack); any other instruction makes the registers it writes unknown.
 * A conditional branch whose flags are known is followed one way; an unknown one (a test of guest state,
 * a tracing flag) is followed both ways, best path first (fewest number compares). A compare is counted
 * when an operand is tainted, a conditional branch when its flags are. The walk stops at a direct call
 * to a known handler name, at a call through `__x86_indirect_thunk_*` or a table whose target is known,
 * or at a return; every path is explored (within a budget). Calls to other functions clobber the caller-saved registers; their return value can be
 * pinned (`returns`, e.g. the altcall `hvm_funcs+0x70` = hvm_guest_x86_mode() = 8 for the 64-bit path).
 *
 * @example
 * ```ts
 * const r = recoverDispatch(img, { fn: 'pv_hypercall', handlers, numberOffset: 0x50 }, [1, 23, 12]);
 * // r[0] = { number: 1, handler: 'do_mmu_update', compares: 3, branches: 3, ... }
 * ```
 */
import TinyQueue from 'tinyqueue';
import {
  ConditionCode,
  decoder,
  FlowControl,
  Mnemonic,
  newInstructionInfoFactory,
  OpKind,
  Register,
  RegisterExt,
  type Instruction,
} from '../x86/insn.js';
import type { Image } from '../elf/image.js';
import { SHF_WRITE } from '../elf/image.js';

export interface RecoverOptions {
  /** Function symbol to start from. */
  fn: string;
  /** Names of handler functions: a direct call to one ends the walk. */
  handlers: ReadonlySet<string>;
  /** Offset of the hypercall number in the structure %rdi points to at entry (cpu_user_regs.rax = 0x50). */
  numberOffset?: number;
  /** Return values of called functions or call-through-memory slots, by symbol (`hvm_funcs+0x70`). */
  returns?: Readonly<Record<string, bigint>>;
  /** Instruction budget per number. */
  maxSteps?: number;
}

export interface Arrival {
  handler: string;
  callAt: number;
  compares: number;
  branches: number;
  indirect: number;
  trail: number[];
}

export interface RawResult {
  number: number;
  /** Every way the walk reached a handler call (one per call site and cost). */
  arrivals: Arrival[];
  note?: string;
}

export interface PathResult {
  number: number;
  /** The handler called, or undefined when every path returns without calling one (-ENOSYS). */
  handler?: string;
  compares: number;
  branches: number;
  /** Indirect jumps/calls taken on the way (jump tables, thunks). */
  indirect: number;
  /** Relative address of the call instruction. */
  callAt?: number;
  /** Other handlers reachable for the same number along paths that depend on unknown state. */
  alsoReaches: string[];
  /** Cheaper call sites of the same handler (paths that depend on guest state), cost each. */
  shortcuts: { callAt: number; compares: number; branches: number }[];
  note?: string;
}

interface Val {
  c?: bigint;
  sym?: string;
  off?: bigint;
  t: boolean;
}

const U: Val = { t: false };
const M64 = (1n << 64n) - 1n;

function mask(bits: number): bigint {
  return (1n << BigInt(bits)) - 1n;
}

function signed(v: bigint, bits: number): bigint {
  const m = mask(bits);
  v &= m;
  return v >> BigInt(bits - 1) ? v - (m + 1n) : v;
}

interface Flags {
  ok: boolean;
  t: boolean;
  zf?: boolean;
  cf?: boolean;
  sf?: boolean;
  of?: boolean;
}

interface State {
  pc: number;
  regs: Map<Register, Val>;
  mem: Map<string, Val>;
  flags: Flags;
  cmp: number;
  br: number;
  ind: number;
  steps: number;
  /** Addresses of the number compares on this path (first one identifies where dispatch starts). */
  trail: number[];
}

/** A state waiting in the search queue, with its place in queueing order. */
interface Queued {
  s: State;
  seq: number;
}

/** Search order: fewest number compares, then branches, then steps; equal costs first-queued first. */
function byCost(a: Queued, b: Queued): number {
  return a.s.cmp - b.s.cmp || a.s.br - b.s.br || a.s.steps - b.s.steps || a.seq - b.seq;
}

interface Decoded {
  ins: Instruction;
  len: number;
}

/** The walker's handler for each data instruction it models, by family. */
type DataFamily = 'move' | 'compare' | 'arithmetic' | 'logic' | 'shift' | 'unary' | 'inert';
const DATA_FAMILY = new Map<Mnemonic, DataFamily>([
  ...[Mnemonic.Nop, Mnemonic.Lfence, Mnemonic.Mfence, Mnemonic.Sfence, Mnemonic.Endbr64, Mnemonic.Pause].map(
    (m) => [m, 'inert'] as const,
  ),
  ...[Mnemonic.Mov, Mnemonic.Movzx, Mnemonic.Movsx, Mnemonic.Movsxd, Mnemonic.Lea, Mnemonic.Push, Mnemonic.Pop].map(
    (m) => [m, 'move'] as const,
  ),
  ...[Mnemonic.Cmp, Mnemonic.Test, Mnemonic.Bt].map((m) => [m, 'compare'] as const),
  ...[Mnemonic.Add, Mnemonic.Adc, Mnemonic.Sub, Mnemonic.Sbb].map((m) => [m, 'arithmetic'] as const),
  ...[Mnemonic.And, Mnemonic.Or, Mnemonic.Xor].map((m) => [m, 'logic'] as const),
  ...[Mnemonic.Shl, Mnemonic.Sal, Mnemonic.Shr, Mnemonic.Sar].map((m) => [m, 'shift'] as const),
  ...[Mnemonic.Neg, Mnemonic.Not, Mnemonic.Inc, Mnemonic.Dec].map((m) => [m, 'unary'] as const),
]);

function clone(s: State): State {
  return { ...s, regs: new Map(s.regs), mem: new Map(s.mem), flags: { ...s.flags }, trail: [...s.trail] };
}

const CALLER_SAVED = [
  Register.RAX,
  Register.RCX,
  Register.RDX,
  Register.RSI,
  Register.RDI,
  Register.R8,
  Register.R9,
  Register.R10,
  Register.R11,
];

function condition(cc: ConditionCode, f: Flags): boolean | undefined {
  const { zf, cf, sf, of } = f;
  if (!f.ok || zf === undefined || cf === undefined || sf === undefined || of === undefined) return undefined;
  switch (cc) {
    case ConditionCode.o:
      return of;
    case ConditionCode.no:
      return !of;
    case ConditionCode.b:
      return cf;
    case ConditionCode.ae:
      return !cf;
    case ConditionCode.e:
      return zf;
    case ConditionCode.ne:
      return !zf;
    case ConditionCode.be:
      return cf || zf;
    case ConditionCode.a:
      return !cf && !zf;
    case ConditionCode.s:
      return sf;
    case ConditionCode.ns:
      return !sf;
    case ConditionCode.l:
      return sf !== of;
    case ConditionCode.ge:
      return sf === of;
    case ConditionCode.le:
      return zf || sf !== of;
    case ConditionCode.g:
      return !zf && sf === of;
    default:
      return undefined;
  }
}

export class DispatchWalker {
  private cache = new Map<number, Decoded>();
  private readonly info = newInstructionInfoFactory();

  constructor(private readonly img: Image) {}

  free(): void {
    for (const d of this.cache.values()) d.ins.free();
    this.cache.clear();
    this.info.free();
  }

  private decode(addr: number): Decoded | undefined {
    const hit = this.cache.get(addr);
    if (hit) return hit;
    const sec = this.img.sectionAt(addr);
    if (!sec) return undefined;
    const bytes = this.img.read(addr, Math.min(15, sec.addr + sec.size - addr));
    if (!bytes) return undefined;
    const dec = decoder(bytes, { ip: this.img.base + BigInt(addr) });
    const ins = dec.decode();
    dec.free();
    if (ins.isInvalid) {
      ins.free();
      return undefined;
    }
    const d = { ins, len: ins.length };
    this.cache.set(addr, d);
    return d;
  }

  /** Symbol name at an address; GCC clone suffixes (`.constprop.0`, `.isra.0`, `.part.0`) dropped. */
  private symAt(addr: number): string | undefined {
    const s = this.img.symbolize(addr);
    if (!s.name) return undefined;
    const name = s.name.replace(/(\.(constprop|isra|part|cold|lto_priv)\.\d+)+$/, '');
    return s.offset ? `${name}+0x${s.offset.toString(16)}` : name;
  }

  run(opts: RecoverOptions, number: number): RawResult {
    const img = this.img;
    const fn = img.symbol(opts.fn);
    if (!fn || Number.isNaN(fn.addr)) throw new Error(`no symbol ${opts.fn}`);
    const off = BigInt(opts.numberOffset ?? 0x50);
    const maxSteps = opts.maxSteps ?? 20000;
    const init: State = {
      pc: fn.addr,
      regs: new Map([
        [Register.RDI, { sym: 'regs', off: 0n, t: false }],
        [Register.RSP, { sym: 'stack', off: 0n, t: false }],
      ]),
      mem: new Map([[`regs:${off}`, { c: BigInt.asUintN(64, BigInt(number)), t: true }]]),
      flags: { ok: false, t: false },
      cmp: 0,
      br: 0,
      ind: 0,
      steps: 0,
      trail: [],
    };
    // Best-first (Dijkstra-like): always advance the state with the fewest number compares, then branches,
    // then steps, one instruction at a time, so the first arrival at an instruction is the cheapest. Equal
    // costs go in the order they were queued.
    let seq = 0;
    const queue = new TinyQueue<Queued>([], byCost);
    const enqueue = (st: State): void => queue.push({ s: st, seq: seq++ });
    enqueue(init);
    const seen = new Set<string>();
    const found: { handler: string; s: State; at: number }[] = [];
    let budget = maxSteps;
    let note: string | undefined;
    while (queue.length && budget-- > 0) {
      const s = queue.pop()!.s;
      // A place is explored once per cost: a dearer path that shares code with a cheaper one (tail-merged
      // call sequences) still reaches its handler call.
      const key = `${s.pc}:${s.cmp}:${s.br}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const d = this.decode(s.pc);
      if (!d) {
        note ??= `undecodable code at ${img.where(s.pc)}`;
        continue;
      }
      const at = s.pc;
      const r = this.step(s, d.ins, d.len, opts);
      if (r.kind === 'next') {
        s.steps++;
        enqueue(s);
      } else if (r.kind === 'fork') {
        for (const b of r.states) {
          b.steps++;
          enqueue(b);
        }
      } else if (r.kind === 'handler') found.push({ handler: r.name, s, at });
      else if (r.note) note ??= r.note;
    }
    if (budget <= 0) note ??= 'instruction budget exhausted';
    return {
      number,
      arrivals: found.map((f) => ({
        handler: f.handler,
        callAt: f.at,
        compares: f.s.cmp,
        branches: f.s.br,
        indirect: f.s.ind,
        trail: f.s.trail,
      })),
      note: found.length ? undefined : note,
    };
  }

  // ---- evaluation ----

  private reg(s: State, r: Register): Val {
    if (r === Register.None) return { c: 0n, t: false };
    if (r === Register.RIP || r === Register.EIP) return U;
    const full = RegisterExt.fullRegister(r);
    const v = s.regs.get(full) ?? U;
    const size = RegisterExt.size(r) * 8;
    if (size >= 64) return v;
    // High-byte registers (ah, ch, ...).
    const hi = r === Register.AH || r === Register.BH || r === Register.CH || r === Register.DH;
    if (v.c !== undefined) return { c: (hi ? v.c >> 8n : v.c) & mask(hi ? 8 : size), t: v.t };
    return { t: v.t };
  }

  private setReg(s: State, r: Register, v: Val): void {
    const full = RegisterExt.fullRegister(r);
    const size = RegisterExt.size(r) * 8;
    if (size === 64) s.regs.set(full, v);
    else if (size === 32) s.regs.set(full, v.c !== undefined ? { c: v.c & mask(32), t: v.t } : { t: v.t });
    else {
      const old = s.regs.get(full) ?? U;
      if (
        old.c !== undefined &&
        v.c !== undefined &&
        r !== Register.AH &&
        r !== Register.BH &&
        r !== Register.CH &&
        r !== Register.DH
      ) {
        s.regs.set(full, { c: (old.c & ~mask(size) & M64) | (v.c & mask(size)), t: old.t || v.t });
      } else s.regs.set(full, { t: old.t || v.t });
    }
  }

  /** Address of a memory operand: concrete, symbolic (base+off) or unknown. */
  private addr(s: State, ins: Instruction): Val {
    if (ins.isIpRelMemoryOperand) return { c: ins.ipRelMemoryAddress, t: false };
    const base = this.reg(s, ins.memoryBase);
    const index = this.reg(s, ins.memoryIndex);
    const disp = BigInt.asUintN(64, ins.memoryDisplacementU64);
    const scale = BigInt(ins.memoryIndexScale);
    const t = base.t || index.t;
    if (ins.memoryIndex !== Register.None && index.c === undefined) return { t };
    const idx = ins.memoryIndex === Register.None ? 0n : index.c! * scale;
    if (base.sym !== undefined) return { sym: base.sym, off: BigInt.asIntN(64, (base.off ?? 0n) + idx + disp), t };
    if (base.c !== undefined) return { c: (base.c + idx + disp) & M64, t };
    return { t };
  }

  private load(s: State, a: Val, bytes: number): Val {
    if (a.sym !== undefined) {
      const v = s.mem.get(`${a.sym}:${a.off}`);
      if (!v) return { t: a.t };
      if (v.c !== undefined) return { c: v.c & mask(bytes * 8), t: v.t };
      return bytes === 8 ? v : { t: v.t };
    }
    if (a.c !== undefined) {
      const rel = this.img.rel(a.c);
      const sec = Number.isNaN(rel) ? undefined : this.img.sectionAt(rel);
      if (sec && !(sec.flags & SHF_WRITE) && bytes <= 8) {
        const b = this.img.read(rel, bytes);
        if (b) {
          let v = 0n;
          for (let i = bytes - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
          return { c: v, t: a.t };
        }
      }
    }
    return { t: a.t };
  }

  private store(s: State, a: Val, v: Val, bytes: number): void {
    if (a.sym === undefined) return;
    s.mem.set(
      `${a.sym}:${a.off}`,
      bytes === 8 ? v : v.c !== undefined ? { c: v.c & mask(bytes * 8), t: v.t } : { t: v.t },
    );
  }

  private operand(s: State, ins: Instruction, i: number): Val {
    const k = ins.opKind(i);
    switch (k) {
      case OpKind.Register:
        return this.reg(s, ins.opRegister(i));
      case OpKind.Memory:
        return this.load(s, this.addr(s, ins), this.memBytes(ins));
      case OpKind.Immediate8:
      case OpKind.Immediate16:
      case OpKind.Immediate32:
      case OpKind.Immediate64:
      case OpKind.Immediate8to16:
      case OpKind.Immediate8to32:
      case OpKind.Immediate8to64:
      case OpKind.Immediate32to64:
        return { c: BigInt.asUintN(64, ins.immediate(i)), t: false };
      default:
        return U;
    }
  }

  private memBytes(ins: Instruction): number {
    // Operand width of the instruction, from the register operand when there is one.
    for (let i = 0; i < ins.opCount; i++)
      if (ins.opKind(i) === OpKind.Register) return RegisterExt.size(ins.opRegister(i));
    for (let i = 0; i < ins.opCount; i++) {
      const k = ins.opKind(i);
      if (k === OpKind.Immediate8) return 1;
      if (k === OpKind.Immediate16 || k === OpKind.Immediate8to16) return 2;
      if (k === OpKind.Immediate32 || k === OpKind.Immediate8to32) return 4;
      if (k === OpKind.Immediate8to64 || k === OpKind.Immediate32to64) return 8;
    }
    return 8;
  }

  private width(ins: Instruction): number {
    const k = ins.opKind(0);
    if (k === OpKind.Register) return RegisterExt.size(ins.op0Register) * 8;
    return this.memBytes(ins) * 8;
  }

  private write(s: State, ins: Instruction, v: Val): void {
    const k = ins.opKind(0);
    if (k === OpKind.Register) this.setReg(s, ins.op0Register, v);
    else if (k === OpKind.Memory) this.store(s, this.addr(s, ins), v, this.memBytes(ins));
  }

  private setFlagsSub(s: State, a: Val, b: Val, bits: number, carryIn = 0n): bigint | undefined {
    const t = a.t || b.t;
    if (a.c === undefined || b.c === undefined) {
      s.flags = { ok: false, t };
      return undefined;
    }
    const m = mask(bits);
    const x = a.c & m;
    const y = b.c & m;
    const r = (x - y - carryIn) & m;
    const sx = signed(x, bits);
    const sy = signed(y, bits);
    const sr = sx - sy - carryIn;
    s.flags = {
      ok: true,
      t,
      zf: r === 0n,
      cf: x < y + carryIn,
      sf: r >> BigInt(bits - 1) === 1n,
      of: sr !== signed(r, bits),
    };
    return r;
  }

  private setFlagsLogic(s: State, r: bigint | undefined, bits: number, t: boolean): void {
    if (r === undefined) {
      s.flags = { ok: false, t };
      return;
    }
    const m = mask(bits);
    s.flags = { ok: true, t, zf: (r & m) === 0n, cf: false, of: false, sf: (r & m) >> BigInt(bits - 1) === 1n };
  }

  private step(
    s: State,
    ins: Instruction,
    len: number,
    opts: RecoverOptions,
  ):
    | { kind: 'next' }
    | { kind: 'fork'; states: State[] }
    | { kind: 'handler'; name: string }
    | { kind: 'stop'; note?: string } {
    const next = s.pc + len;
    const mn = ins.mnemonic;
    const fc = ins.flowControl;
    // ---- control flow ----
    if (fc === FlowControl.Return || fc === FlowControl.Interrupt || fc === FlowControl.Exception)
      return { kind: 'stop' };
    if (fc === FlowControl.ConditionalBranch) {
      const target = Number(ins.nearBranchTarget - this.img.base);
      const c = condition(ins.conditionCode, s.flags);
      if (s.flags.t) s.br++;
      if (c === undefined) {
        const a = clone(s);
        a.pc = target;
        const b = s;
        b.pc = next;
        return { kind: 'fork', states: [b, a] };
      }
      s.pc = c ? target : next;
      return { kind: 'next' };
    }
    if (fc === FlowControl.UnconditionalBranch || fc === FlowControl.IndirectBranch) {
      let target: number | undefined;
      if (fc === FlowControl.UnconditionalBranch) {
        target = Number(ins.nearBranchTarget - this.img.base);
        const name = this.symAt(target);
        if (name === '__x86_return_thunk' || name?.startsWith('__x86_return_thunk')) return { kind: 'stop' };
        const thunk = /^__x86_indirect_thunk_(\w+)$/.exec(name ?? '');
        if (thunk) {
          const v = this.thunkReg(s, thunk[1]);
          if (v?.c === undefined)
            return { kind: 'stop', note: `indirect jump through ${thunk[1]} with an unknown target` };
          s.ind++;
          target = this.img.rel(v.c);
          const tn = this.symAt(target);
          if (tn && opts.handlers.has(tn)) return { kind: 'handler', name: tn };
        } else if (name && opts.handlers.has(name)) return { kind: 'handler', name };
      } else {
        const v = this.operand(s, ins, 0);
        if (v.c === undefined)
          return { kind: 'stop', note: `indirect jump with an unknown target at ${this.img.where(s.pc)}` };
        s.ind++;
        target = this.img.rel(v.c);
      }
      s.pc = target;
      return { kind: 'next' };
    }
    if (fc === FlowControl.Call || fc === FlowControl.IndirectCall) {
      let name: string | undefined;
      let slot: string | undefined;
      if (fc === FlowControl.Call) {
        const target = Number(ins.nearBranchTarget - this.img.base);
        name = this.symAt(target);
        const thunk = /^__x86_indirect_thunk_(\w+)$/.exec(name ?? '');
        if (thunk) {
          const v = this.thunkReg(s, thunk[1]);
          if (v?.c !== undefined) {
            s.ind++;
            name = this.symAt(this.img.rel(v.c));
          }
        }
      } else {
        if (ins.opKind(0) === OpKind.Memory) {
          const a = this.addr(s, ins);
          if (a.c !== undefined) slot = this.symAt(this.img.rel(a.c));
        }
        const v = this.operand(s, ins, 0);
        if (v.c !== undefined) {
          s.ind++;
          name = this.symAt(this.img.rel(v.c));
        }
      }
      if (name && opts.handlers.has(name)) return { kind: 'handler', name };
      // A call whose target came out of a table or register (a handler table's thunk) is part of the
      // dispatch: follow it, with the return address on the symbolic stack.
      if (
        fc === FlowControl.IndirectCall ||
        /^__x86_indirect_thunk_/.test(this.symAt(Number(ins.nearBranchTarget - this.img.base)) ?? '')
      ) {
        const v = fc === FlowControl.IndirectCall ? this.operand(s, ins, 0) : undefined;
        const tgt = v?.c !== undefined ? this.img.rel(v.c) : name ? this.img.symbol(name)?.addr : undefined;
        if (tgt !== undefined && !Number.isNaN(tgt) && !slot) {
          const sp = this.reg(s, Register.RSP);
          const nsp: Val = sp.sym !== undefined ? { ...sp, off: (sp.off ?? 0n) - 8n } : U;
          s.regs.set(Register.RSP, nsp);
          this.store(s, nsp, { c: this.img.base + BigInt(next), t: false }, 8);
          s.pc = tgt;
          return { kind: 'next' };
        }
      }
      for (const r of CALLER_SAVED) s.regs.set(r, U);
      const ret =
        (name !== undefined ? opts.returns?.[name] : undefined) ??
        (slot !== undefined ? opts.returns?.[slot] : undefined);
      if (ret !== undefined) s.regs.set(Register.RAX, { c: BigInt.asUintN(64, ret), t: false });
      s.flags = { ok: false, t: false };
      s.pc = next;
      return { kind: 'next' };
    }
    // ---- data ----
    s.pc = next;
    const bits = ins.opCount ? this.width(ins) : 64;
    const family = DATA_FAMILY.get(mn);
    if (family) this[family](s, ins, mn, bits);
    else if (ins.conditionCode !== ConditionCode.None && (ins.opCount === 1 || ins.opCount === 2))
      this.conditional(s, ins);
    else this.other(s, ins);
    return { kind: 'next' };
  }

  // ---- data instructions, one handler per family (DATA_FAMILY maps mnemonics to them) ----

  /** mov, movzx, movsx/movsxd, lea, push, pop. */
  private move(s: State, ins: Instruction, mn: Mnemonic): void {
    switch (mn) {
      case Mnemonic.Mov:
      case Mnemonic.Movzx:
        this.write(s, ins, this.operand(s, ins, 1));
        return;
      case Mnemonic.Movsx:
      case Mnemonic.Movsxd: {
        const v = this.operand(s, ins, 1);
        const srcBits =
          ins.opKind(1) === OpKind.Register ? RegisterExt.size(ins.op1Register) * 8 : mn === Mnemonic.Movsxd ? 32 : 8;
        this.write(s, ins, v.c !== undefined ? { c: BigInt.asUintN(64, signed(v.c, srcBits)), t: v.t } : v);
        return;
      }
      case Mnemonic.Lea:
        this.setReg(s, ins.op0Register, this.addr(s, ins));
        return;
      case Mnemonic.Push: {
        const v = this.operand(s, ins, 0);
        const sp = this.reg(s, Register.RSP);
        const nsp: Val = sp.sym !== undefined ? { ...sp, off: (sp.off ?? 0n) - 8n } : U;
        s.regs.set(Register.RSP, nsp);
        this.store(s, nsp, v, 8);
        return;
      }
      default: {
        // pop
        const sp = this.reg(s, Register.RSP);
        const v = this.load(s, sp, 8);
        s.regs.set(Register.RSP, sp.sym !== undefined ? { ...sp, off: (sp.off ?? 0n) + 8n } : U);
        this.write(s, ins, v);
      }
    }
  }

  /** cmp, test, bt: flags only; a compare of the hypercall number is counted on the path. */
  private compare(s: State, ins: Instruction, mn: Mnemonic, bits: number): void {
    const a = this.operand(s, ins, 0);
    const b = this.operand(s, ins, 1);
    if (a.t || b.t) {
      s.cmp++;
      s.trail.push(s.pc - ins.length);
    }
    if (mn === Mnemonic.Cmp) this.setFlagsSub(s, a, b, bits);
    else if (mn === Mnemonic.Test)
      this.setFlagsLogic(s, a.c !== undefined && b.c !== undefined ? a.c & b.c : undefined, bits, a.t || b.t);
    else {
      const t = a.t || b.t;
      if (a.c === undefined || b.c === undefined) s.flags = { ok: false, t };
      else {
        const cf = ((a.c >> (b.c % BigInt(bits))) & 1n) === 1n;
        // bt leaves ZF/SF/OF undefined; only CF-based conditions follow it.
        s.flags = { ok: true, t, cf, zf: false, sf: false, of: false };
      }
    }
  }

  /** add, adc, sub, sbb (stack pointer arithmetic keeps the symbolic stack). */
  private arithmetic(s: State, ins: Instruction, mn: Mnemonic, bits: number): void {
    const a = this.operand(s, ins, 0);
    const b = this.operand(s, ins, 1);
    const t = a.t || b.t || ((mn === Mnemonic.Sbb || mn === Mnemonic.Adc) && s.flags.t);
    const same =
      ins.opKind(0) === OpKind.Register && ins.opKind(1) === OpKind.Register && ins.op0Register === ins.op1Register;
    if ((mn === Mnemonic.Sub || mn === Mnemonic.Add) && a.sym !== undefined && b.c !== undefined) {
      this.write(s, ins, { ...a, off: (a.off ?? 0n) + (mn === Mnemonic.Add ? b.c : -b.c) });
      s.flags = { ok: false, t: false };
      return;
    }
    if (mn === Mnemonic.Sub) {
      const r = same ? 0n : this.setFlagsSub(s, a, b, bits);
      if (same) this.setFlagsLogic(s, 0n, bits, false);
      this.write(s, ins, r !== undefined ? { c: r, t: same ? false : t } : { t });
    } else if (mn === Mnemonic.Sbb) {
      const cf = s.flags.ok ? s.flags.cf : undefined;
      if (cf === undefined) {
        this.write(s, ins, { t });
        s.flags = { ok: false, t };
      } else {
        const r = same ? (cf ? mask(bits) : 0n) : this.setFlagsSub(s, a, b, bits, cf ? 1n : 0n);
        this.write(s, ins, r !== undefined ? { c: r, t } : { t });
      }
    } else {
      const cin =
        mn === Mnemonic.Adc ? (s.flags.ok && s.flags.cf !== undefined ? (s.flags.cf ? 1n : 0n) : undefined) : 0n;
      if (a.c === undefined || b.c === undefined || cin === undefined) {
        this.write(s, ins, { t });
        s.flags = { ok: false, t };
      } else {
        const full = a.c + b.c + cin;
        const r = full & mask(bits);
        this.write(s, ins, { c: r, t });
        s.flags = {
          ok: true,
          t,
          zf: r === 0n,
          cf: full > mask(bits),
          sf: r >> BigInt(bits - 1) === 1n,
          of: signed(a.c, bits) + signed(b.c, bits) + cin !== signed(r, bits),
        };
      }
    }
  }

  /** and, or, xor (xor of a register with itself is a known 0). */
  private logic(s: State, ins: Instruction, mn: Mnemonic, bits: number): void {
    const a = this.operand(s, ins, 0);
    const b = this.operand(s, ins, 1);
    const same =
      ins.opKind(0) === OpKind.Register && ins.opKind(1) === OpKind.Register && ins.op0Register === ins.op1Register;
    if (mn === Mnemonic.Xor && same) {
      this.write(s, ins, { c: 0n, t: false });
      this.setFlagsLogic(s, 0n, bits, false);
      return;
    }
    const t = a.t || b.t;
    let r: bigint | undefined;
    if (a.c !== undefined && b.c !== undefined)
      r = (mn === Mnemonic.And ? a.c & b.c : mn === Mnemonic.Or ? a.c | b.c : a.c ^ b.c) & mask(bits);
    // x & 0 is known whatever x is.
    else if (mn === Mnemonic.And && (a.c === 0n || b.c === 0n)) r = 0n;
    this.write(s, ins, r !== undefined ? { c: r, t } : { t });
    this.setFlagsLogic(s, r, bits, t);
  }

  /** shl/sal, shr, sar. */
  private shift(s: State, ins: Instruction, mn: Mnemonic, bits: number): void {
    const a = this.operand(s, ins, 0);
    const b = ins.opCount > 1 ? this.operand(s, ins, 1) : { c: 1n, t: false };
    const t = a.t || b.t;
    if (a.c === undefined || b.c === undefined) {
      this.write(s, ins, { t });
      s.flags = { ok: false, t };
      return;
    }
    const n = b.c & (bits === 64 ? 63n : 31n);
    const m = mask(bits);
    const r =
      mn === Mnemonic.Shr
        ? (a.c & m) >> n
        : mn === Mnemonic.Sar
          ? BigInt.asUintN(bits, signed(a.c, bits) >> n)
          : (a.c << n) & m;
    this.write(s, ins, { c: r, t });
    if (n !== 0n) this.setFlagsLogic(s, r, bits, t);
  }

  /** neg, not, inc, dec. */
  private unary(s: State, ins: Instruction, mn: Mnemonic, bits: number): void {
    const a = this.operand(s, ins, 0);
    if (a.c === undefined) {
      this.write(s, ins, { t: a.t });
      s.flags = { ok: false, t: a.t };
      return;
    }
    const m = mask(bits);
    const r =
      mn === Mnemonic.Neg
        ? -a.c & m
        : mn === Mnemonic.Not
          ? ~a.c & m
          : mn === Mnemonic.Inc
            ? (a.c + 1n) & m
            : (a.c - 1n) & m;
    this.write(s, ins, { c: r, t: a.t });
    if (mn !== Mnemonic.Not) this.setFlagsLogic(s, r, bits, a.t);
  }

  /** Instructions that change nothing the walker tracks (fences, NOPs, endbr64, pause). */
  private inert(): void {}

  /** setcc (one operand) and cmovcc (two). */
  private conditional(s: State, ins: Instruction): void {
    const c = condition(ins.conditionCode, s.flags);
    if (ins.opCount === 1) {
      this.write(s, ins, c === undefined ? { t: s.flags.t } : { c: c ? 1n : 0n, t: s.flags.t });
      return;
    }
    const src = this.operand(s, ins, 1);
    const dst = this.operand(s, ins, 0);
    if (c === undefined) this.write(s, ins, { t: src.t || dst.t || s.flags.t });
    else this.write(s, ins, c ? src : dst);
  }

  /** Anything else: the registers it writes become unknown, its flags too. */
  private other(s: State, ins: Instruction): void {
    const info = this.info.info(ins);
    for (const u of info.usedRegisters() as { register: Register; access: number }[]) {
      // OpAccess: Write = 2, CondWrite = 3, ReadWrite = 4, ReadCondWrite = 5
      if (
        u.access >= 2 &&
        u.access <= 5 &&
        RegisterExt.isGPR(u.register) &&
        RegisterExt.fullRegister(u.register) !== Register.RSP
      )
        this.setReg(s, u.register, { t: false });
    }
    info.free();
    if (ins.rflagsModified !== 0) s.flags = { ok: false, t: false };
  }

  private thunkReg(s: State, name: string): Val | undefined {
    const map: Record<string, Register> = {
      rax: Register.RAX,
      rbx: Register.RBX,
      rcx: Register.RCX,
      rdx: Register.RDX,
      rsi: Register.RSI,
      rdi: Register.RDI,
      rbp: Register.RBP,
      r8: Register.R8,
      r9: Register.R9,
      r10: Register.R10,
      r11: Register.R11,
      r12: Register.R12,
      r13: Register.R13,
      r14: Register.R14,
      r15: Register.R15,
    };
    const r = map[name];
    return r === undefined ? undefined : this.reg(s, r);
  }
}

/**
 * Runs the walker for each number and picks, per number, the path through the dispatch: the cheapest
 * arrival at a handler call whose path passes the dispatch entry, the instruction where most numbers'
 * cheapest paths make their first number compare. Cheaper arrivals that skip it are shortcuts that
 * depend on guest state (Xen's hvm_hypercall calls do_hvm_op for a monitor guest request before the
 * dispatch).
 */
export function recoverDispatch(img: Image, opts: RecoverOptions, numbers: readonly number[]): PathResult[] {
  const w = new DispatchWalker(img);
  let raws: RawResult[];
  try {
    raws = numbers.map((n) => w.run(opts, n));
  } finally {
    w.free();
  }
  const cheapest = (as: Arrival[]): Arrival | undefined =>
    as.reduce<Arrival | undefined>(
      (m, a) => (!m || a.compares < m.compares || (a.compares === m.compares && a.branches < m.branches) ? a : m),
      undefined,
    );
  const firsts = new Map<number, number>();
  for (const r of raws) {
    const c = cheapest(r.arrivals);
    if (c?.trail.length) firsts.set(c.trail[0], (firsts.get(c.trail[0]) ?? 0) + 1);
  }
  const entry = [...firsts.entries()].sort((a, b) => b[1] - a[1])[0]?.[0];
  return raws.map((r) => {
    const via = r.arrivals.filter((a) => entry === undefined || a.trail.includes(entry));
    const best = cheapest(via) ?? cheapest(r.arrivals);
    const others = r.arrivals.filter((a) => a !== best);
    return {
      number: r.number,
      handler: best?.handler,
      compares: best?.compares ?? 0,
      branches: best?.branches ?? 0,
      indirect: best?.indirect ?? 0,
      callAt: best?.callAt,
      alsoReaches: [...new Set(others.map((a) => a.handler).filter((h) => h !== best?.handler))],
      shortcuts: others
        .filter(
          (a) =>
            a.handler === best?.handler &&
            (a.compares < best.compares || (a.compares === best.compares && a.branches < best.branches)),
        )
        .map((a) => ({ callAt: a.callAt, compares: a.compares, branches: a.branches })),
      note: r.note,
    };
  });
}
