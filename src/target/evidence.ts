/**
 * What a build says about itself, independently of its version string: the word counts its own arrays are
 * dimensioned with, and the entry sizes its tables' relocations imply. Detection numbers features from this
 * evidence wherever there is any and falls back to the version tables only when there is none; a profile or a
 * numbering that contradicts it is a warning.
 *
 *  - Xen (xen-syms): `known_features` and `deep_features` are `uint32_t[FSCAPINTS]`; `forced_caps` and
 *    `cleared_caps` (cpu/common.c) are `unsigned int[NCAPINTS]`, NCAPINTS = FSCAPINTS + X86_NR_SYNTH + X86_NR_BUG.
 *  - Linux vmlinux: `x86_cap_flags` and `x86_bug_flags` are arrays of string pointers, NCAPINTS*32 and
 *    NBUGINTS*32 entries (the strings are the /proc/cpuinfo names).
 *  - Linux vmlinux with `.BTF` (also stripped, as inside a bzImage): `struct cpuinfo_x86`'s `x86_capability` is
 *    `__u32[NCAPINTS + NBUGINTS]`; `struct alt_instr`'s size is the alternatives entry size.
 *  - Linux relocatable objects (.ko): the self-relative fields of every `.altinstructions` entry carry a
 *    relocation at offsets 0 and 4, so the relocation offsets give the entry size (12 or 14 bytes).
 */
import { Image, STT_OBJECT } from '../elf/image.js';
import { Btf } from './btf.js';

export interface XenEvidence {
  /** FSCAPINTS from known_features / deep_features (words of 4 bytes). */
  readonly fscapints?: number;
  /** NCAPINTS from forced_caps / cleared_caps. */
  readonly ncapints?: number;
}

export interface LinuxEvidence {
  readonly ncapints?: number;
  readonly nbugints?: number;
  /** NCAPINTS + NBUGINTS from BTF: struct cpuinfo_x86's x86_capability[] (a vmlinux with .BTF). */
  readonly capWords?: number;
  /** Entry size of .altinstructions implied by its relocations (relocatable objects). */
  readonly altEntry?: number;
}

export interface Evidence {
  /** The kind of file the evidence came from. */
  readonly img: 'rel' | 'linked';
  readonly xen: XenEvidence;
  readonly linux: LinuxEvidence;
  /** Human-readable facts, e.g. 'known_features is 76 bytes (19 words)'. */
  readonly facts: string[];
  /** Evidence that contradicts itself (two arrays that should agree but do not). */
  readonly conflicts: string[];
}

function objectSize(img: Image, name: string): number | undefined {
  if (img.kind === 'rel') return undefined;
  const s = img.symbol(name);
  if (!s || s.type !== STT_OBJECT || !s.size) return undefined;
  return s.size;
}

/** Words of `unit` bytes in the arrays `names` (which must agree); undefined when none is present. */
function words(
  img: Image,
  names: readonly string[],
  unit: number,
  facts: string[],
  conflicts: string[],
): number | undefined {
  let got: number | undefined;
  let from = '';
  for (const n of names) {
    const size = objectSize(img, n);
    if (size === undefined) continue;
    if (size % unit !== 0) {
      conflicts.push(`${n} is ${size} bytes, not a whole number of ${unit}-byte words`);
      continue;
    }
    const w = size / unit;
    if (got === undefined) {
      got = w;
      from = n;
      facts.push(`${n} is ${size} bytes (${w} words)`);
    } else if (w !== got) {
      conflicts.push(`${n} is ${size} bytes (${w} words) but ${from} has ${got} words`);
    }
  }
  return got;
}

export function gatherEvidence(img: Image): Evidence {
  const facts: string[] = [];
  const conflicts: string[] = [];
  const xen: { fscapints?: number; ncapints?: number } = {};
  const linux: { ncapints?: number; nbugints?: number; capWords?: number; altEntry?: number } = {};
  if (img.kind !== 'rel') {
    xen.fscapints = words(img, ['known_features', 'deep_features'], 4, facts, conflicts);
    xen.ncapints = words(img, ['forced_caps', 'cleared_caps'], 4, facts, conflicts);
    // NCAPINTS has at least one synthetic and one bug word beyond FSCAPINTS; anything else is not this layout.
    if (xen.fscapints !== undefined && xen.ncapints !== undefined && xen.ncapints < xen.fscapints + 2) {
      conflicts.push(
        `forced_caps is ${xen.ncapints} words, not more than known_features' ${xen.fscapints} + 1: ignored`,
      );
      xen.ncapints = undefined;
    }
    // String pointer arrays: 8 bytes per name, 32 names per word.
    linux.ncapints = words(img, ['x86_cap_flags'], 8 * 32, facts, conflicts);
    linux.nbugints = words(img, ['x86_bug_flags'], 8 * 32, facts, conflicts);
    // BTF (Debian's vmlinux has it, also when stripped, as inside a bzImage).
    const btf = Btf.of(img);
    if (btf)
      try {
        const cap = btf.arrayMemberLength('cpuinfo_x86', 'x86_capability');
        if (cap !== undefined) {
          linux.capWords = cap;
          facts.push(`BTF: cpuinfo_x86.x86_capability has ${cap} words (NCAPINTS + NBUGINTS)`);
          if (linux.ncapints !== undefined && linux.nbugints !== undefined && linux.ncapints + linux.nbugints !== cap) {
            conflicts.push(
              `x86_cap_flags/x86_bug_flags give ${linux.ncapints} + ${linux.nbugints} words but BTF's x86_capability has ${cap}`,
            );
          }
        }
        const alt = btf.structSize('alt_instr');
        if (alt !== undefined) {
          linux.altEntry = alt;
          facts.push(`BTF: struct alt_instr is ${alt} bytes`);
        }
      } catch (e) {
        if (!(e instanceof RangeError)) throw e;
        conflicts.push('.BTF is truncated or corrupt: not used');
      }
  } else {
    const e = relocEntrySize(img, '.altinstructions', [12, 14], [0, 4]);
    if (e.size !== undefined) {
      linux.altEntry = e.size;
      facts.push(`.altinstructions relocations fit ${e.size}-byte entries`);
    } else if (e.why) conflicts.push(e.why);
  }
  return { img: img.kind === 'rel' ? 'rel' : 'linked', xen, linux, facts, conflicts };
}

/**
 * The entry size among `sizes` for which every relocation of section `name` falls on one of `fields` of an
 * entry and the section holds a whole number of entries. Undefined when the section or its relocations are
 * absent, or when no (or more than one) size fits (then `why` says so).
 */
export function relocEntrySize(
  img: Image,
  name: string,
  sizes: readonly number[],
  fields: readonly number[],
): { size?: number; why?: string } {
  const sec = img.section(name);
  if (!sec || sec.size === 0) return {};
  const t = img.relocs(sec);
  if (!t.rela) return {};
  const offs = Array.from(t.offset.subarray(0, t.count));
  if (offs.length === 0) return {};
  const fit = sizes.filter(
    (e) =>
      sec.size % e === 0 && offs.every((o) => fields.includes(o % e)) && offs.length === (sec.size / e) * fields.length,
  );
  if (fit.length === 1) return { size: fit[0] };
  // A size no layout divides is the table reader's error already (one line per problem): no second line here.
  if (fit.length === 0 && sizes.every((e) => sec.size % e !== 0)) return {};
  if (fit.length === 0)
    return {
      why: `${name}: ${sec.size} bytes with ${offs.length} relocations fit none of the ${sizes.join('/')}-byte entry layouts`,
    };
  return {};
}

const LINUX_NOPS_1_TO_8 = Uint8Array.from([
  0x90, 0x66, 0x90, 0x0f, 0x1f, 0x00, 0x0f, 0x1f, 0x40, 0x00, 0x0f, 0x1f, 0x44, 0x00, 0x00, 0x66, 0x0f, 0x1f, 0x44,
  0x00, 0x00, 0x0f, 0x1f, 0x80, 0x00, 0x00, 0x00, 0x00, 0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00,
]);
const LINUX_NOPS_9_TO_11 = Uint8Array.from([
  0x2e, 0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00, 0x66, 0x2e, 0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00,
  0x66, 0x66, 0x2e, 0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00,
]);

/**
 * ASM_NOP_MAX of a linked Linux image, from its own `x86nops[]` (arch/x86/kernel/alternative.c): BYTES_NOP1..8 back
 * to back in the read-only data, followed by BYTES_NOP9..11 where the build has them (11) or by anything else (8).
 * Undefined when the array is not found exactly once (a relocatable object has none: its NOPs are the kernel's).
 */
export function linuxNopMax(img: Image): 8 | 11 | undefined {
  if (img.kind === 'rel') return undefined;
  const b = img.bytes;
  const at = find(b, LINUX_NOPS_1_TO_8, 0);
  if (at < 0 || find(b, LINUX_NOPS_1_TO_8, at + 1) >= 0) return undefined;
  const end = at + LINUX_NOPS_1_TO_8.length;
  return LINUX_NOPS_9_TO_11.every((x, k) => b[end + k] === x) ? 11 : 8;
}

/** First index of `needle` in `hay` at or after `from`, or -1. */
function find(hay: Uint8Array, needle: Uint8Array, from: number): number {
  const first = needle[0]!;
  for (let i = hay.indexOf(first, from); i >= 0 && i + needle.length <= hay.length; i = hay.indexOf(first, i + 1)) {
    let k = 1;
    while (k < needle.length && hay[i + k] === needle[k]) k++;
    if (k === needle.length) return i;
  }
  return -1;
}
