/**
 * Which kernel is this, and which profile reads it? Linux from `.modinfo` vermagic or `linux_banner`,
 * Xen from its symbols and version string. Detection never guesses silently: an assumption is
 * recorded in `note`, and an undetectable file says so (the caller suggests `--profile`).
 */
import { featureTable } from './features/index.js';
import { Image, STT_OBJECT } from '../elf/image.js';
import { Os, Profile, profileById, PROFILES } from './profile.js';

export interface Target {
  readonly os: Os;
  /** Version as found in the binary (e.g. '6.1.0-47-amd64', '4.17.7+13-g2445b30a44-0+deb12u1'), or null. */
  readonly version: string | null;
  readonly profile: Profile | null;
  /** What detection assumed, or why it failed. */
  readonly note?: string;
}

export class ProfileError extends Error {}

/** Detects the target; `override` is a profile id from `--profile`. */
export function detectTarget(img: Image, override?: string): Target {
  if (override) {
    const p = profileById(override);
    if (!p) throw new ProfileError(`unknown profile '${override}' (known: ${PROFILES.map((q) => q.id).join(', ')})`);
    const found = sniff(img);
    return { os: p.os, version: found.version, profile: p, note: 'profile given with --profile' };
  }
  return sniff(img);
}

function sniff(img: Image): Target {
  // A module's vermagic first: it is cheap, and looking Xen's symbols up indexes every symbol name.
  const vermagic = img.modinfo().find((s) => s.startsWith('vermagic='));
  if (vermagic) return linuxTarget(vermagic.slice('vermagic='.length).split(' ')[0]!, null);
  if (isXen(img)) return xenTarget(img);
  const banner = linuxBanner(img);
  if (banner) {
    const m = /Linux version (\S+)/.exec(banner);
    const deb = /Debian (\d+\.\d+\.\d+)/.exec(banner);
    if (m) return linuxTarget(m[1]!, deb ? deb[1]! : null);
  }
  const hasLinuxTables = ['.altinstructions', '__jump_table', '.return_sites', '__mcount_loc', '.static_call_sites'].some((n) => img.section(n));
  return {
    os: hasLinuxTables ? 'linux' : 'unknown',
    version: null,
    profile: null,
    note: hasLinuxTables
      ? 'kernel tables found but no version (no .modinfo vermagic, no linux_banner): pass --profile'
      : 'not a recognised kernel binary (no vermagic, linux_banner or Xen symbols); pass --profile to read it as one',
  };
}

function isXen(img: Image): boolean {
  return Boolean(img.symbol('__alt_instructions') && (img.symbol('__start_xen') || img.symbol('start_xen') || img.symbol('do_multicall')));
}

function xenTarget(img: Image): Target {
  const version = xenVersion(img);
  const m = version ? /^(\d+)\.(\d+)\.(\d+)/.exec(version) : null;
  if (!m) return { os: 'xen', version, profile: profileById('xen-4.17')!, note: 'Xen version string not found; assuming 4.17.6+ (use --profile xen-4.17.0/.1/.2 for older point releases)' };
  const [maj, min, pt] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (maj !== 4 || min !== 17) {
    return { os: 'xen', version, profile: profileById('xen-4.17')!, note: `Xen ${maj}.${min} has no profile of its own; reading it with xen-4.17 (check with --profile)` };
  }
  const id = pt >= 6 ? 'xen-4.17' : pt >= 2 ? 'xen-4.17.2' : pt === 1 ? 'xen-4.17.1' : 'xen-4.17.0';
  // Distribution builds carry stable-branch backports past their point release (Debian bookworm's 4.17.5+72 has
  // 4.17.6's 19th featureset word): when the alternatives name features beyond the release's NCAPINTS * 32,
  // take the first newer table that holds them.
  const ids = ['xen-4.17.0', 'xen-4.17.1', 'xen-4.17.2', 'xen-4.17'];
  const max = maxXenAltFeature(img);
  for (let k = ids.indexOf(id); k < ids.length; k++) {
    const p = profileById(ids[k]!)!;
    if (max === undefined || max < featureTable(p.features).limit) {
      if (k === ids.indexOf(id)) return { os: 'xen', version, profile: p };
      return { os: 'xen', version, profile: p, note: `Xen ${version}: its alternatives use feature ${Math.floor(max! / 32)}*32+${max! % 32}, beyond ${id}'s table (backported featureset words); reading it with ${p.id}` };
    }
  }
  return { os: 'xen', version, profile: profileById(id)! };
}

/** Highest cpuid field of Xen's 14-byte alt_instr entries (u16 at offset 8), or undefined without a table. */
function maxXenAltFeature(img: Image): number | undefined {
  const a = img.symbol('__alt_instructions');
  const b = img.symbol('__alt_instructions_end');
  if (!a || !b || Number.isNaN(a.addr) || Number.isNaN(b.addr) || b.addr <= a.addr) return undefined;
  const bytes = img.read(a.addr, b.addr - a.addr);
  if (!bytes) return undefined;
  let max = 0;
  for (let o = 0; o + 14 <= bytes.length; o += 14) max = Math.max(max, bytes[o + 8]! | (bytes[o + 9]! << 8));
  return max;
}

/** Xen keeps its full version as a string in .rodata (e.g. "4.17.7+13-g2445b30a44-0+deb12u1"). */
function xenVersion(img: Image): string | null {
  const ro = img.section('.rodata');
  if (!ro) return null;
  const b = img.sectionBytes(ro);
  // Find NUL-delimited strings that look like a Xen version.
  for (let i = 0; i + 6 < b.length; i++) {
    if (b[i] !== 0x34 || b[i + 1] !== 0x2e || (i > 0 && b[i - 1] !== 0)) continue; // "4." at a string start
    let j = i;
    while (j < b.length && b[j] !== 0 && j - i < 80) j++;
    if (b[j] !== 0) continue;
    const s = String.fromCharCode(...b.subarray(i, j));
    if (/^4\.\d+\.\d+([+~-][\w.+~-]*)?$/.test(s)) return s;
  }
  return null;
}

function linuxBanner(img: Image): string | null {
  const s = img.symbol('linux_banner');
  if (!s || s.type !== STT_OBJECT || Number.isNaN(s.addr)) return null;
  const b = img.read(s.addr, Math.min(s.size || 256, 512));
  if (!b) return null;
  let end = b.indexOf(0);
  if (end < 0) end = b.length;
  return String.fromCharCode(...b.subarray(0, end));
}

/** Picks the Linux profile for a version string such as '6.1.0-47-amd64' or '6.12.107+deb12-amd64'. */
export function linuxTarget(version: string, debianUpstream: string | null): Target {
  const m = /^(\d+)\.(\d+)(?:\.(\d+))?/.exec(debianUpstream ?? version);
  if (!m) return { os: 'linux', version, profile: null, note: `unrecognised Linux version '${version}': pass --profile` };
  const maj = Number(m[1]);
  const min = Number(m[2]);
  const sub = m[3] === undefined ? 0 : Number(m[3]);
  // Debian names its ABI 6.1.0-N: the sublevel is not in the vermagic.
  const abiOnly = !debianUpstream && /^\d+\.\d+\.0-\d+-/.test(version);
  const v = maj * 1000 + min;
  let id: string;
  let note: string | undefined;
  if (v < 6001) {
    id = 'linux-6.1.0';
    note = `Linux ${maj}.${min} is older than 6.1; reading it with the 6.1.0 layout`;
  } else if (v <= 6002) {
    if (v === 6002) id = 'linux-6.1.0';
    else if (abiOnly) {
      id = 'linux-6.1';
      note = `sublevel not recorded in '${version}' (Debian ABI name); assuming 6.1.85 or later (NCAPINTS 22): use --profile linux-6.1.0 or linux-6.1.38 for older 6.1.y`;
    } else id = sub >= 85 ? 'linux-6.1' : sub >= 38 ? 'linux-6.1.38' : 'linux-6.1.0';
  } else if (v <= 6007) id = 'linux-6.3';
  else {
    id = 'linux-6.8';
    if (v > 6012) note = `Linux ${maj}.${min} is newer than the 6.12 profile; reading it with linux-6.8 (6.8 to 6.12 layout)`;
  }
  return { os: 'linux', version, profile: profileById(id)!, note };
}
