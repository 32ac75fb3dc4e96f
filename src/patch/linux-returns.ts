/**
 * Linux 6.1 apply_returns()/patch_return(): `jmp __x86_return_thunk` sites (.return_sites).
 *  - a static call trampoline (followed by `0f b9 cc`) becomes the RET form __static_call_transform writes
 *    (`ret; int3 x4`, or `jmp x86_return_thunk` when the return thunk is wanted there);
 *  - a site that is not a jmp to __x86_return_thunk: the kernel WARNs and skips it;
 *  - RETHUNK set (and not an ITS thunk at an upper-half address): `jmp x86_return_thunk` (the thunk bugs.c
 *    chose: srso_alias_return_thunk, retbleed_return_thunk, ...); otherwise `ret`; int3 padding.
 */
import type { Site } from '../sites/site.js';
import { featureNumber } from '../target/features/index.js';
import type { Cpu } from './cpu.js';
import { decodeOne } from './decode.js';
import { opcodeIndex } from '../x86/insn.js';
import { int3, ret } from '../x86/encode.js';
import type { PatchedView } from './view.js';

export function applyLinuxReturns(view: PatchedView, sites: readonly Site[], cpu: Cpu): void {
  const rh = featureNumber(cpu.table, 'RETHUNK');
  const rethunk = rh !== undefined && cpu.has(rh);
  const thunkAbs = view.symbolAbs('__x86_return_thunk');
  const chosen = cpu.returnThunk;
  let chosenAbs: bigint | undefined;
  let missing = false;
  const wantsAt = (abs: bigint): boolean => rethunk && (chosen !== 'its_return_thunk' || (abs & 0x20n) === 0n);
  for (const s of sites) {
    if (s.table !== '.return_sites' || Number.isNaN(s.addr)) continue;
    const cur = view.readUpTo(s.addr, 15);
    if (!cur) continue;
    const at = view.abs(s.addr);
    const d = decodeOne(cur, at);
    if (d.length === 0) {
      view.finding('returns', s.addr, 'return site does not decode: the kernel WARNs and skips it', 'warn', s);
      continue;
    }
    const op = cur[opcodeIndex(cur, d.length)]!;
    const dest = op === 0xe9 ? d.branchTarget : undefined;
    // __static_call_fixup: a trampoline is followed by the `0f b9 cc` signature.
    const sig = view.read(s.addr + 5, 3);
    if (sig && sig[0] === 0x0f && sig[1] === 0xb9 && sig[2] === 0xcc) {
      if (op === 0xc3 || (dest !== undefined && dest === thunkAbs)) {
        const code = retForm(view, at, wantsAt(at), chosen, () => (chosenAbs ??= view.symbolAbs(chosen)));
        if (code)
          view.write(
            'returns',
            s.addr,
            code,
            s,
            code[0] === 0xe9 ? `static call trampoline: jmp ${chosen}` : 'static call trampoline: ret',
          );
      }
      continue;
    }
    if (dest === undefined || thunkAbs === undefined || dest !== thunkAbs) {
      view.finding(
        'returns',
        s.addr,
        `missing return thunk: ${dest === undefined ? 'not a jmp rel32' : `jmp to ${view.nameOf(dest)}`}: the kernel WARNs and skips it`,
        'warn',
        s,
      );
      continue;
    }
    const len = d.length;
    const bytes = new Uint8Array(len).fill(int3()[0]!);
    let note: string;
    if (wantsAt(at)) {
      chosenAbs ??= view.symbolAbs(chosen);
      if (chosenAbs === undefined) {
        if (!missing)
          view.finding(
            'returns',
            s.addr,
            `no address for the return thunk ${chosen}; return sites left alone`,
            'model',
            s,
          );
        missing = true;
        continue;
      }
      bytes[0] = 0xe9;
      new DataView(bytes.buffer).setInt32(1, Number(BigInt.asIntN(32, chosenAbs - (at + 5n))), true);
      note = `jmp ${chosen}`;
    } else {
      bytes.set(ret());
      note = 'ret';
    }
    view.write('returns', s.addr, bytes, s, note);
  }
}

function retForm(
  view: PatchedView,
  at: bigint,
  wants: boolean,
  _chosen: string,
  thunk: () => bigint | undefined,
): Uint8Array | undefined {
  if (!wants) {
    // `ret; int3 x4`, the RET form __static_call_transform writes.
    const b = new Uint8Array(5).fill(int3()[0]!);
    b.set(ret());
    return b;
  }
  const t = thunk();
  if (t === undefined) return undefined;
  const b = new Uint8Array(5);
  b[0] = 0xe9;
  new DataView(b.buffer).setInt32(1, Number(BigInt.asIntN(32, t - (at + 5n))), true);
  void view;
  return b;
}
