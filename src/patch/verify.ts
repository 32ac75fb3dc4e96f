/**
 * Checks a PatchedView the way a reviewer would: every patched site decodes to whole instructions that
 * fill it exactly, and every relative branch in it goes where the patch rules say: inside the site (a
 * Jncc over an inlined indirect branch), to the destination the branch had before (in the site or in the
 * replacement it came from, re-aimed), or to the function the patcher targets (native pv_ops function,
 * return thunk, ITS thunk, altcall destination).
 */
import { decoder, newInstruction } from '../x86/insn.js';
import type { PatchedView } from './view.js';

export interface SiteCheck {
  addr: number;
  patcher: string;
  problem: string;
}

function branches(bytes: Uint8Array, ip: bigint): { ok: boolean; end: number; targets: bigint[] } {
  const dec = decoder(bytes, { ip });
  const insn = newInstruction();
  const targets: bigint[] = [];
  let o = 0;
  try {
    while (o < bytes.length) {
      dec.decodeOut(insn);
      if (insn.isInvalid || insn.length === 0 || o + insn.length > bytes.length) return { ok: false, end: o, targets };
      if (insn.isCallNear || insn.isJmpShortOrNear || insn.isJccShortOrNear)
        targets.push(BigInt.asUintN(64, insn.nearBranchTarget));
      o += insn.length;
    }
  } finally {
    dec.free();
    insn.free();
  }
  return { ok: true, end: o, targets };
}

export function verifyView(view: PatchedView): SiteCheck[] {
  const out: SiteCheck[] = [];
  let byName: Map<string, bigint[]> | undefined;
  // Final extent of each patched site: the longest write at that address.
  const sites = new Map<number, { len: number; patchers: Set<string>; allowed: Set<bigint> }>();
  for (const p of view.patches) {
    let e = sites.get(p.addr);
    if (!e) sites.set(p.addr, (e = { len: 0, patchers: new Set(), allowed: new Set() }));
    e.len = Math.max(e.len, p.after.length);
    e.patchers.add(p.patcher);
    const ip = view.abs(p.addr);
    // Destinations the site had before this write.
    const b = branches(p.before, ip);
    for (const t of b.targets) e.allowed.add(t);
    const s = p.site;
    if (s?.table === '.altinstructions' && s.repl.length > 0) {
      const r = view.read(s.repl.addr, s.repl.length);
      if (r) for (const t of branches(r, view.abs(s.repl.addr)).targets) e.allowed.add(t);
    }
    // The patcher's own target, as its note names it.
    const m = /(?:call|jmp|thunk|altcall ->) ([A-Za-z_][\w.]*)(\+0x[0-9a-f]+)?$/.exec(p.note ?? '');
    if (m) {
      // Local functions may share a name (Xen's intel and amd collect_cpu_info): any of them is the one named.
      const off = m[2] ? BigInt(m[2].slice(1)) : 0n;
      const a = view.symbolAbs(m[1]!);
      if (a !== undefined) e.allowed.add(a + off);
      for (const x of (byName ??= symbolsByName(view)).get(m[1]!) ?? []) e.allowed.add(x + off);
    }
  }
  for (const [addr, e] of sites) {
    const bytes = view.read(addr, e.len);
    const who = [...e.patchers].join('+');
    if (!bytes) {
      out.push({ addr, patcher: who, problem: 'patched bytes unreadable' });
      continue;
    }
    const ip = view.abs(addr);
    const d = branches(bytes, ip);
    if (!d.ok) {
      out.push({
        addr,
        patcher: who,
        problem: `patched bytes do not decode to whole instructions (stop at +${d.end} of ${e.len})`,
      });
      continue;
    }
    for (const t of d.targets) {
      if (t >= ip && t <= ip + BigInt(e.len)) continue;
      if (e.allowed.has(t)) continue;
      out.push({ addr, patcher: who, problem: `branch to ${view.nameOf(t)} is not a destination the rules give` });
    }
  }
  return out;
}

function symbolsByName(view: PatchedView): Map<string, bigint[]> {
  const m = new Map<string, bigint[]>();
  for (const s of view.img.symbols) {
    if (!s.name || s.shndx === 0 || Number.isNaN(s.addr)) continue;
    const l = m.get(s.name);
    if (l) l.push(view.abs(s.addr));
    else m.set(s.name, [view.abs(s.addr)]);
  }
  return m;
}
