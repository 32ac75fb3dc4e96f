/**
 * Indirect-branch inventory (seed 001: "removing indirect calls removes them as a speculative attack
 * surface"): in the text a given CPU runs (a PatchedView), every indirect call and jump, split into
 * bare ones, ones that go through a retpoline-style thunk, and the ones the boot-time patchers turned
 * into direct calls (Xen altcall, Linux paravirt) or that static calls keep direct.
 */
import type { Image } from '../elf/image.js';
import type { PatchedView } from '../patch/view.js';
import type { Site } from '../sites/site.js';
import { Disassembly, FlowControl } from '../x86/code.js';

export type Kind = 'bareCall' | 'bareJump' | 'thunkCall' | 'thunkJump' | 'altcall' | 'paravirt' | 'staticCall';
export const KINDS: readonly Kind[] = [
  'bareCall',
  'bareJump',
  'thunkCall',
  'thunkJump',
  'altcall',
  'paravirt',
  'staticCall',
];
export type Counts = Record<Kind, number>;

export interface FunctionSurface {
  name: string;
  address: string;
  counts: Counts;
}

export interface Surface {
  path: string;
  cpu: string;
  totals: Counts;
  functions: FunctionSurface[];
  /** Indirect branches inside the thunks themselves (not counted above). */
  thunkInternal: number;
}

/** Retpoline, ITS and Xen indirect thunks. */
export const THUNK = /^(__x86_indirect_(call_|jump_)?thunk_|__x86_indirect_its_thunk_|__x86_indirect_thunk_array$)/;

const zero = (): Counts => ({
  bareCall: 0,
  bareJump: 0,
  thunkCall: 0,
  thunkJump: 0,
  altcall: 0,
  paravirt: 0,
  staticCall: 0,
});

export function indirectSurface(img: Image, view: PatchedView, sites: readonly Site[], cpu: string): Surface {
  const dis = new Disassembly(img, view.bytesOf);
  const perFn = new Map<string, FunctionSurface>();
  const totals = zero();
  let thunkInternal = 0;
  const bump = (addr: number, kind: Kind): void => {
    const w = img.symbolize(addr);
    let f = perFn.get(w.name);
    if (!f) perFn.set(w.name, (f = { name: w.name, address: img.hex(addr - w.offset), counts: zero() }));
    f.counts[kind]++;
    totals[kind]++;
  };
  // Undefined symbols (module calls into the kernel) have System.map or synthetic addresses in the view.
  const externs = new Map<number, string>();
  for (const [name, abs] of view.externAbs) externs.set(Number(abs - img.base), name);
  for (const [a, name] of view.externs) externs.set(a, name);
  const nameAt = (a: number): string | undefined => {
    if (Number.isNaN(a)) return undefined;
    const ext = externs.get(a);
    if (ext) return ext;
    const w = img.symbolize(a);
    return w.offset === 0 ? w.name : undefined;
  };
  // Xen altcall sites (feature ALWAYS, `call/jmp *ptr(%rip)` with a `call .` placeholder replacement) become
  // direct calls at boot even when the pointer is only known at run time; replacement templates never run.
  const altcalls = new Set<number>();
  const templates: Array<[number, number]> = [];
  for (const s of sites) {
    if (s.table !== '.altinstructions' || !s.repl || Number.isNaN(s.addr)) continue;
    if (s.repl.length) templates.push([s.repl.addr, s.repl.addr + s.repl.length]);
    if (s.origLen === undefined || s.feature !== 93) continue;
    const orig = img.read(s.addr, 2);
    const repl = img.read(s.repl.addr, 5);
    if (
      orig &&
      repl &&
      orig[0] === 0xff &&
      (orig[1] === 0x15 || orig[1] === 0x25) &&
      repl[0] === 0xe8 &&
      (repl[1]! | (repl[2]! << 8) | (repl[3]! << 16) | (repl[4]! << 24)) === -5
    )
      altcalls.add(s.addr);
  }
  templates.sort((a, b) => a[0] - b[0]);
  const inTemplate = (a: number): boolean => {
    let lo = 0;
    let hi = templates.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const [st, en] = templates[mid]!;
      if (a < st) hi = mid - 1;
      else if (a >= en) lo = mid + 1;
      else return true;
    }
    return false;
  };
  for (const a of altcalls) bump(a, 'altcall');
  for (const sec of img.sections) {
    if (!sec.exec || !sec.alloc || sec.size === 0 || Number.isNaN(sec.addr) || sec.name === '.altinstr_replacement')
      continue;
    const sc = dis.of(sec);
    for (let i = 0; i < sc.count; i++) {
      const fc = sc.flow[i]!;
      if (
        fc !== FlowControl.IndirectCall &&
        fc !== FlowControl.IndirectBranch &&
        fc !== FlowControl.Call &&
        fc !== FlowControl.UnconditionalBranch &&
        fc !== FlowControl.ConditionalBranch
      )
        continue;
      const addr = sec.addr + sc.off[i]!;
      if (altcalls.has(addr) || inTemplate(addr)) continue;
      if (fc === FlowControl.IndirectCall || fc === FlowControl.IndirectBranch) {
        if (THUNK.test(img.symbolize(addr).name)) {
          thunkInternal++;
          continue;
        }
        bump(addr, fc === FlowControl.IndirectCall ? 'bareCall' : 'bareJump');
        continue;
      }
      const t = nameAt(sc.target[i]!);
      if (t && THUNK.test(t) && !THUNK.test(img.symbolize(addr).name))
        bump(addr, fc === FlowControl.Call ? 'thunkCall' : 'thunkJump');
    }
  }
  // Turned direct at boot.
  for (const p of view.patches) {
    const b0 = p.before[0];
    const b1 = p.before[1];
    const wasIndirect = b0 === 0xff && (b1 === 0x15 || b1 === 0x25);
    if (p.patcher === 'paravirt' && wasIndirect) bump(p.addr, 'paravirt');
  }
  for (const s of sites) if (s.table === '.static_call_sites' && !Number.isNaN(s.addr)) bump(s.addr, 'staticCall');
  const functions = [...perFn.values()].sort(
    (a, b) => weight(b.counts) - weight(a.counts) || (a.name < b.name ? -1 : 1),
  );
  return { path: img.path, cpu, totals, functions, thunkInternal };
}

const weight = (c: Counts): number => c.bareCall + c.bareJump + c.thunkCall + c.thunkJump;

export function addCounts(into: Counts, c: Counts): void {
  for (const k of KINDS) into[k] += c[k];
}

export function emptyCounts(): Counts {
  return zero();
}

export const HEAD = ['bare call', 'bare jmp', 'thunk call', 'thunk jmp', 'altcall', 'paravirt', 'static call'];

export function countsLine(c: Counts): string {
  return KINDS.map((k) => String(c[k]).padStart(12)).join('');
}

export function renderSurface(s: Surface, top: number): string {
  const lines = [`${s.path} (cpu ${s.cpu}): indirect branches in the text this CPU runs`];
  lines.push(`  ${'FUNCTION'.padEnd(40)}${HEAD.map((h) => h.padStart(12)).join('')}`);
  for (const f of s.functions.slice(0, top))
    if (weight(f.counts) || top === Infinity) lines.push(`  ${f.name.slice(0, 39).padEnd(40)}${countsLine(f.counts)}`);
  const remaining = s.functions.length - Math.min(top, s.functions.length);
  if (remaining > 0) lines.push(`  … ${remaining} more functions (--all lists them)`);
  lines.push(`  ${'TOTAL'.padEnd(40)}${countsLine(s.totals)}`);
  return lines.join('\n') + '\n';
}
