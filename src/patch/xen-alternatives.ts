/**
 * Xen 4.17 _apply_alternatives (xen/arch/x86/alternative.c), both boot passes:
 * alternative_instructions() (force = false) and alternative_branches() (force = true, after the
 * pre-SMP initcalls). Per entry, in table order:
 *  - BUG_ON(repl_len > orig_len + pad_len), BUG_ON(total > 254), BUG_ON(cpuid >= NCAPINTS * 32): reported, skipped;
 *  - `base` is the first entry of a run with the same origin; `priv` marks an origin/entry already handled;
 *  - feature absent: unless base->priv, set priv and (unless the toolchain's NOPs are already the ideal ones,
 *    or pad_len <= 1) rewrite the pad_len bytes after orig_len with ideal NOPs (P6, or K8 on old CPUs);
 *  - feature present: copy the replacement; a replacement starting with 0xe8/0xe9 and >= 5 bytes long gets its
 *    rel32 moved by (repl - orig), except the altcall case (feature ALWAYS, disp -5, origin `call/jmp *disp(%rip)`,
 *    orig_len >= 6): the direct branch then goes to the function pointer's value (+4 past an ENDBR64 when the
 *    build uses IBT); a NULL pointer defers the entry to the second pass, which writes `ud2; ud0` if still NULL;
 *    NOP-pad to orig_len + pad_len and write.
 *
 * Function pointers are read from the image as it is on disk. Pointers the hypervisor fills in during boot
 * (hvm_funcs, ...) are NULL there: by default such altcalls are left as they are and reported; pass
 * `altcallNull: 'ud'` to reproduce what the kernel would write if they were still NULL at the second pass.
 */
import { sitesOf } from '../sites/site.js';
import type { Site } from '../sites/site.js';
import type { XenRules } from '../target/profile.js';
import type { Cpu } from './cpu.js';
import { ud2 } from '../x86/encode.js';
import { readS32, writeS32 } from '../x86/insn.js';
import { addNops, NopTable, XEN_K8_NOPS, XEN_P6_NOPS } from './nops.js';
import type { PatchedView } from './view.js';

export interface XenOptions {
  /** What to do with an altcall whose function pointer is NULL in the image at the second pass. */
  altcallNull?: 'keep' | 'ud';
  /** Value a function pointer holds at a pass (real address), overriding the image (xen-altcall-targets.ts). */
  pointerValue?: (abs: bigint, secondPass: boolean) => bigint | undefined;
  /** The version's rules (profile.rules); default: 4.17.6-4.20 (ALT_FLAG_NOT, altcalls inside the alternatives). */
  rules?: XenRules;
}

const DEFAULT_RULES: XenRules = { os: 'xen', altFlagNot: true, altcall: 'alternatives', returnThunkTail: false };

const MAX_PATCH_LEN = 254;
const ALWAYS = 93; // X86_FEATURE_ALWAYS == X86_FEATURE_LM (3*32+29)

/** Does the image's `toolchain_nops` (.nops 9 as the assembler emitted it) equal the ideal 9-byte NOP? */
export function toolchainNopsAreIdeal(view: PatchedView, nops: NopTable): boolean {
  const sym = view.img.symbol('toolchain_nops');
  if (!sym || Number.isNaN(sym.addr)) return false;
  const b = view.read(sym.addr, nops.max);
  if (!b) return false;
  const ideal = nops.nops[nops.max]!;
  return ideal.every((x, k) => b[k] === x);
}

function isEndbr64(b: Uint8Array | undefined): boolean {
  return Boolean(b && b[0] === 0xf3 && b[1] === 0x0f && b[2] === 0x1e && b[3] === 0xfa);
}

export function applyXenAlternatives(view: PatchedView, sites: readonly Site[], cpu: Cpu, opts: XenOptions = {}): void {
  const rules = opts.rules ?? DEFAULT_RULES;
  const alts = sitesOf(sites, '.altinstructions');
  const returnThunk = rules.returnThunkTail ? view.symbolAbs('__x86_return_thunk') : undefined;
  const nops = cpu.nops === 'k8' ? XEN_K8_NOPS : XEN_P6_NOPS;
  const ideal = toolchainNopsAreIdeal(view, nops);
  // CONFIG_XEN_IBT: the build put an ENDBR64 at the start of (most) functions.
  // CONFIG_XEN_IBT builds start functions with ENDBR64; without it is_endbr64(dest) is never true anyway.
  const ibtBuild = true;
  const priv = new Uint8Array(alts.length);
  // Xen NCAPINTS = FSCAPINTS + X86_NR_SYNTH + X86_NR_BUG: the table limit.
  const limit = cpu.table.limit;
  const bad = new Uint8Array(alts.length);
  for (let pass = 0; pass < 2; pass++) {
    const force = pass === 1;
    let base = 0;
    for (let k = 0; k < alts.length; k++) {
      const a = alts[k]!;
      if (bad[k]) continue;
      const origLen = a.origLen ?? 0;
      const padLen = a.padLen ?? 0;
      const total = origLen + padLen;
      const replLen = a.repl.length;
      if (!force) {
        let why: string | undefined;
        if (replLen > total) why = `repl_len ${replLen} > orig_len + pad_len ${total}`;
        else if (total > MAX_PATCH_LEN) why = `orig_len + pad_len ${total} > ${MAX_PATCH_LEN}`;
        else if (a.inverted && !rules.altFlagNot)
          why = `cpuid 0x${(a.feature | 0x8000).toString(16)} >= NCAPINTS * 32 (${limit}) (bit 15 set, and this version has no ALT_FLAG_NOT)`;
        else if (a.feature >= limit) why = `cpuid ${a.feature} >= NCAPINTS * 32 (${limit})`;
        else if (Number.isNaN(a.addr)) why = 'site outside the image';
        if (why) {
          bad[k] = 1;
          view.finding(
            'xen-alternatives',
            a.addr,
            `alt_instr ${a.index}: ${why}: the hypervisor would BUG(); skipped`,
            why.startsWith('site') ? 'model' : 'bug',
            a,
          );
          continue;
        }
      }
      if (alts[base]!.addr !== a.addr) base = k;
      if (priv[k]) continue;
      // replace = boot_cpu_has(feat) ^ inv (ALT_FLAG_NOT, bit 15 of cpuid).
      if (cpu.has(a.feature) === a.inverted) {
        if (priv[base]) continue;
        priv[k] = 1;
        if (ideal || padLen <= 1) continue;
        const buf = new Uint8Array(padLen);
        addNops(nops, buf, 0, padLen);
        writeIfChanged(view, a.addr + origLen, buf, a, `pad NOPs (${nops.name})`);
        continue;
      }
      const replBytes = replLen ? view.read(a.repl.addr, replLen) : new Uint8Array(0);
      if (!replBytes) {
        bad[k] = 1;
        view.finding(
          'xen-alternatives',
          a.addr,
          `alt_instr ${a.index}: replacement outside the image; skipped`,
          'model',
          a,
        );
        continue;
      }
      const buf = new Uint8Array(total);
      buf.set(replBytes);
      let note: string | undefined;
      if (replLen >= 5 && (buf[0]! & 0xfe) === 0xe8) {
        const orig = view.read(a.addr, Math.max(origLen, 6));
        if (
          rules.altcall === 'alternatives' &&
          a.feature === ALWAYS &&
          !a.inverted &&
          readS32(buf, 1) === -5 &&
          origLen >= 6 &&
          orig &&
          orig[0] === 0xff &&
          orig[1] === (buf[0]! & 1 ? 0x25 : 0x15)
        ) {
          const slot = view.abs(a.addr) + 6n + BigInt(readS32(orig, 2));
          let dest = readPointer(view, slot);
          if (opts.pointerValue) dest = opts.pointerValue(slot, force) ?? dest;
          if (dest) {
            if (ibtBuild) {
              const dr = view.rel(dest);
              if (!Number.isNaN(dr) && isEndbr64(view.read(dr, 4))) dest += 4n;
            }
            writeS32(buf, 1, Number(BigInt.asIntN(32, dest - (view.abs(a.addr) + 5n))));
            note = `altcall -> ${view.nameOf(dest)}`;
          } else if (force) {
            if (opts.altcallNull === 'ud') {
              buf.set([0x0f, 0x0b, 0x0f, 0xff, 0xff]);
              note = 'altcall: NULL pointer at the second pass: ud2; ud0';
              view.finding(
                'xen-alternatives',
                a.addr,
                `altcall through ${view.nameOf(slot)}: pointer NULL at the second pass; the hypervisor writes ud2; ud0`,
                'warn',
                a,
              );
            } else {
              priv[k] = 1;
              view.finding(
                'xen-alternatives',
                a.addr,
                `altcall through ${view.nameOf(slot)}: pointer is NULL in the image (filled in during boot); left indirect`,
                'model',
                a,
              );
              continue;
            }
          } else continue; // deferred to the second pass
        } else {
          writeS32(
            buf,
            1,
            Number(BigInt.asIntN(32, BigInt(readS32(buf, 1)) + (view.abs(a.repl.addr) - view.abs(a.addr)))),
          );
          note = 'rel32 fixed up';
        }
      } else if (
        returnThunk !== undefined &&
        replLen > 5 &&
        buf[replLen - 5] === 0xe9 &&
        view.abs(a.repl.addr) + BigInt(replLen) + BigInt(readS32(buf, replLen - 4)) === returnThunk
      ) {
        // 4.21+ with CONFIG_RETURN_THUNK: a trailing `jmp __x86_return_thunk` is moved too.
        writeS32(
          buf,
          replLen - 4,
          Number(BigInt.asIntN(32, BigInt(readS32(buf, replLen - 4)) + (view.abs(a.repl.addr) - view.abs(a.addr)))),
        );
        note = 'jmp __x86_return_thunk fixed up';
      }
      priv[k] = 1;
      addNops(nops, buf, replLen, total - replLen);
      writeIfChanged(view, a.addr, buf, a, note);
    }
  }
}

function readPointer(view: PatchedView, abs: bigint): bigint {
  const r = view.rel(abs);
  if (Number.isNaN(r)) return 0n;
  const b = view.read(r, 8);
  if (!b) return 0n;
  return new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true);
}

function writeIfChanged(view: PatchedView, addr: number, buf: Uint8Array, site: Site, note?: string): void {
  view.write('xen-alternatives', addr, buf, site, note);
}

/**
 * Xen 4.21+ apply_alt_calls() over `.alt_call_sites` (after the alternatives, before seal_endbr64): each site must
 * be `call *disp32(%rip)` (`ff 15`, 6 bytes, else the hypervisor fails to boot: reported); with a non-NULL
 * function pointer it becomes `2e e8 rel32` (a CS-prefixed direct call, past the target's ENDBR64 in IBT builds),
 * with a NULL one `0f 0b` x3 (ud2 x3). Pointers are read from the image as on disk; pointers filled in during
 * boot are NULL there: `altcallNull: 'ud'` writes what the hypervisor would if they stayed NULL, the default
 * leaves such sites as they are and reports them.
 */
export function applyXenAltCalls(view: PatchedView, sites: readonly Site[], opts: XenOptions = {}): void {
  for (const a of sites) {
    if (a.table !== '.alt_call_sites') continue;
    const orig = Number.isNaN(a.addr) ? undefined : view.read(a.addr, 6);
    if (!orig) {
      view.finding('xen-altcalls', a.addr, `alt_call ${a.index}: site outside the image; skipped`, 'model', a);
      continue;
    }
    if (orig[0] !== 0xff || orig[1] !== 0x15) {
      view.finding(
        'xen-altcalls',
        a.addr,
        `alt_call ${a.index}: not call *disp32(%rip) (${[...orig].map((x) => x.toString(16).padStart(2, '0')).join(' ')}): the hypervisor panics`,
        'bug',
        a,
      );
      continue;
    }
    const slot = view.abs(a.addr) + 6n + BigInt(readS32(orig, 2));
    let dest = readPointer(view, slot);
    if (opts.pointerValue) dest = opts.pointerValue(slot, true) ?? dest;
    const buf = new Uint8Array(6);
    let note: string;
    if (dest) {
      const dr = view.rel(dest);
      if (!Number.isNaN(dr) && isEndbr64(view.read(dr, 4))) dest += 4n;
      buf[0] = 0x2e;
      buf[1] = 0xe8;
      writeS32(buf, 2, Number(BigInt.asIntN(32, dest - (view.abs(a.addr) + 6n))));
      note = `altcall -> ${view.nameOf(dest)}`;
    } else if (opts.altcallNull === 'ud') {
      buf.set([...ud2(), ...ud2(), ...ud2()]);
      note = 'altcall: NULL pointer: ud2 x3';
      view.finding(
        'xen-altcalls',
        a.addr,
        `altcall through ${view.nameOf(slot)}: pointer NULL; the hypervisor writes ud2 x3`,
        'warn',
        a,
      );
    } else {
      view.finding(
        'xen-altcalls',
        a.addr,
        `altcall through ${view.nameOf(slot)}: pointer is NULL in the image (filled in during boot); left indirect`,
        'model',
        a,
      );
      continue;
    }
    writeIfChanged(view, a.addr, buf, a, note);
  }
}
