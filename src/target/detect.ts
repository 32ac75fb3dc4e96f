/**
 * Which kernel is this, and which profile reads it? Linux from `.modinfo` vermagic or `linux_banner`,
 * Xen from its symbols and version string. Detection never guesses silently: an assumption is
 * recorded in `note`, and an undetectable file says so (the caller suggests `--profile`).
 */
import { Image, STT_OBJECT } from '../elf/image.js';
import { Evidence, gatherEvidence } from './evidence.js';
import {
  featureTable,
  linuxTableWithWords,
  xenReleases,
  xenReleaseWords,
  xenTableWithWords,
} from './features/index.js';
import { Os, Profile, profileById, PROFILES } from './profile.js';

export interface Target {
  readonly os: Os;
  /** Version as found in the binary (e.g. '6.1.0-47-amd64', '4.17.7+13-g2445b30a44-0+deb12u1'), or null. */
  readonly version: string | null;
  /**
   * The profile, with `features` naming the feature table detection chose: a version table, or a table numbered
   * from the file's own evidence (e.g. 'xen-4.17.7' for a 4.17.5+72 build whose known_features is 19 words).
   */
  readonly profile: Profile | null;
  /** What detection assumed, or why it failed. */
  readonly note?: string;
  /**
   * Disagreements detection found and could not settle: a profile or numbering that contradicts the file's
   * evidence, feature numbers the numbering cannot name, tables whose entries do not fit. Printed on stderr and
   * in JSON (`target.warnings`); never silent.
   */
  readonly warnings?: string[];
  /** The facts of the file that decided numbering and layout (e.g. 'known_features is 76 bytes (19 words)'). */
  readonly evidence?: string[];
}

export class ProfileError extends Error {}

/** Detects the target; `override` is a profile id from `--profile`. */
export function detectTarget(img: Image, override?: string): Target {
  const ev = gatherEvidence(img);
  if (override) {
    const p = profileById(override);
    if (!p) throw new ProfileError(`unknown profile '${override}' (known: ${PROFILES.map((q) => q.id).join(', ')})`);
    const found = sniff(img, ev);
    const warnings = [
      ...ev.conflicts.map((c) => `inconsistent evidence: ${c}`),
      ...contradictions(p, p.features, ev, found),
    ];
    return {
      os: p.os,
      version: found.version,
      profile: p,
      note: 'profile given with --profile',
      warnings,
      evidence: ev.facts,
    };
  }
  const t = sniff(img, ev);
  return {
    ...t,
    warnings: [...ev.conflicts.map((c) => `inconsistent evidence: ${c}`), ...(t.warnings ?? [])],
    evidence: ev.facts,
  };
}

/** Ways profile `p` (numbered with feature table `features`) contradicts the evidence of the file. */
function contradictions(p: Profile, features: string, ev: Evidence, found: Target): string[] {
  const out: string[] = [];
  if (found.os !== 'unknown' && found.os !== p.os)
    out.push(
      `profile ${p.id} is for ${p.os} but the file looks like ${found.os}${found.version ? ' ' + found.version : ''}`,
    );
  const t = featureTable(features);
  if (p.os === 'xen') {
    const w = xenReleaseWords(features) ?? xenReleaseWords(features.split('+')[0]!);
    if (ev.xen.fscapints !== undefined && t.words !== ev.xen.fscapints) {
      out.push(
        `profile ${p.id} numbers features with FSCAPINTS ${t.words} but this file's known_features is ${ev.xen.fscapints} words: synthetic features and bugs will be misnamed`,
      );
    }
    if (ev.xen.ncapints !== undefined && t.limit !== ev.xen.ncapints * 32) {
      out.push(
        `profile ${p.id} has NCAPINTS ${t.limit / 32}${w ? ` (FSCAPINTS ${w.fscapints} + ${w.nrSynth} synthetic + ${w.nrBug} bug words)` : ''} but this file's forced_caps/cleared_caps are ${ev.xen.ncapints} words`,
      );
    }
  } else if (p.os === 'linux') {
    if (ev.linux.ncapints !== undefined && t.words !== ev.linux.ncapints)
      out.push(`profile ${p.id} has NCAPINTS ${t.words} but this file's x86_cap_flags has ${ev.linux.ncapints} words`);
    if (ev.linux.capWords !== undefined && t.limit / 32 !== ev.linux.capWords)
      out.push(
        `profile ${p.id} has NCAPINTS + NBUGINTS = ${t.limit / 32} but this file's BTF x86_capability has ${ev.linux.capWords} words`,
      );
    const nb = t.limit / 32 - t.words;
    if (ev.linux.nbugints !== undefined && nb !== ev.linux.nbugints)
      out.push(`profile ${p.id} has NBUGINTS ${nb} but this file's x86_bug_flags has ${ev.linux.nbugints} words`);
    const altEntry = p.alt === 'linux-12' ? 12 : 14;
    if (ev.linux.altEntry !== undefined && ev.linux.altEntry !== altEntry)
      out.push(
        `profile ${p.id} reads ${altEntry}-byte .altinstructions entries but this file's ${ev.img === 'rel' ? 'relocations fit' : 'BTF struct alt_instr is'} ${ev.linux.altEntry}-byte entries`,
      );
  }
  return out;
}

function sniff(img: Image, ev: Evidence): Target {
  // A module's vermagic first: it is cheap, and looking Xen's symbols up indexes every symbol name.
  const vermagic = img.modinfo().find((s) => s.startsWith('vermagic='));
  if (vermagic) return withLinuxEvidence(linuxTarget(vermagic.slice('vermagic='.length).split(' ')[0]!, null), ev);
  if (isXen(img)) return xenTarget(img, ev);
  const banner = linuxBanner(img);
  if (banner) {
    const m = /Linux version (\S+)/.exec(banner);
    // Debian's package version follows the build number ('#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-3'); the
    // compiler's ('gcc-14 (Debian 14.2.0-19)') comes before it.
    const hash = banner.indexOf('#');
    const deb = /Debian (\d+\.\d+\.\d+)/.exec(hash >= 0 ? banner.slice(hash) : banner);
    if (m) return withLinuxEvidence(linuxTarget(m[1]!, deb ? deb[1]! : null), ev);
  }
  const hasLinuxTables = [
    '.altinstructions',
    '__jump_table',
    '.return_sites',
    '__mcount_loc',
    '.static_call_sites',
  ].some((n) => img.section(n));
  return {
    os: hasLinuxTables ? 'linux' : 'unknown',
    version: null,
    profile: null,
    note: hasLinuxTables
      ? 'kernel tables found but no version (no .modinfo vermagic, no linux_banner): pass --profile'
      : 'not a recognised kernel binary (no vermagic, linux_banner or Xen symbols); pass --profile to read it as one',
  };
}

/** Linux: the version's profile, renumbered when the file's x86_cap_flags/x86_bug_flags say otherwise. */
function withLinuxEvidence(t: Target, ev: Evidence): Target {
  const p = t.profile;
  if (!p) return t;
  const warnings = [...(t.warnings ?? [])];
  let features = p.features;
  const base = featureTable(features);
  let nc = ev.linux.ncapints ?? base.words;
  const nb = ev.linux.nbugints ?? base.limit / 32 - base.words;
  // BTF gives only the sum: NBUGINTS from the names (or the table), NCAPINTS the rest.
  if (ev.linux.ncapints === undefined && ev.linux.capWords !== undefined) nc = ev.linux.capWords - nb;
  if (nc !== base.words || nb !== base.limit / 32 - base.words) {
    features = linuxTableWithWords(features, nc, nb);
    const from =
      ev.linux.ncapints !== undefined
        ? 'x86_cap_flags/x86_bug_flags give'
        : `BTF's x86_capability (${ev.linux.capWords} words) gives, with NBUGINTS ${nb},`;
    warnings.push(
      `numbering from the file: ${from} NCAPINTS ${nc}, NBUGINTS ${nb}; the version table ${base.id} has ${base.words}/${base.limit / 32 - base.words} (names of ${base.id}, renumbered)`,
    );
  }
  const altEntry = p.alt === 'linux-12' ? 12 : 14;
  if (ev.linux.altEntry !== undefined && ev.linux.altEntry !== altEntry) {
    warnings.push(
      `profile ${p.id} (chosen from version ${t.version}) reads ${altEntry}-byte .altinstructions entries but this file's ${ev.img === 'rel' ? 'relocations fit' : 'BTF struct alt_instr is'} ${ev.linux.altEntry}-byte entries: pass --profile`,
    );
  }
  return { ...t, profile: features === p.features ? p : { ...p, features }, warnings };
}

function isXen(img: Image): boolean {
  return Boolean(
    img.symbol('__alt_instructions') &&
      (img.symbol('__start_xen') || img.symbol('start_xen') || img.symbol('do_multicall')),
  );
}

const XEN_SERIES_PROFILES: Record<string, string> = {
  '4.18': 'xen-4.18',
  '4.19': 'xen-4.19',
  '4.20': 'xen-4.20',
  '4.21': 'xen-4.21',
  '4.22': 'xen-4.22',
};

/**
 * Xen: the series' profile from the version string, then the numbering from the file: FSCAPINTS from
 * known_features, NCAPINTS from forced_caps. Names come from the release of the series with that numbering
 * nearest the version (the exact release when it matches); when no release matches, the version's release
 * names are renumbered with the file's word counts.
 */
function xenTarget(img: Image, ev: Evidence): Target {
  const version = xenVersion(img);
  const m = version ? /^(\d+)\.(\d+)\.(\d+)/.exec(version) : null;
  const notes: string[] = [];
  const warnings: string[] = [];
  let profile: Profile;
  let series: string;
  let pt: number;
  if (!m) {
    const newest = XEN_PROFILES_NEWEST;
    profile = profileById(newest.id)!;
    series = newest.series;
    pt = Infinity;
    notes.push(`Xen version string not found; reading it with ${profile.id}'s rules`);
  } else {
    const [maj, min] = [Number(m[1]), Number(m[2])];
    pt = Number(m[3]);
    series = `${maj}.${min}`;
    if (maj === 4 && min === 17)
      profile = profileById(pt >= 6 ? 'xen-4.17' : pt >= 2 ? 'xen-4.17.2' : pt === 1 ? 'xen-4.17.1' : 'xen-4.17.0')!;
    else if (XEN_SERIES_PROFILES[series]) profile = profileById(XEN_SERIES_PROFILES[series]!)!;
    else {
      const older = maj < 4 || (maj === 4 && min < 17);
      const p = older ? profileById('xen-4.17.0')! : profileById(XEN_PROFILES_NEWEST.id)!;
      profile = p;
      notes.push(
        older
          ? `Xen ${series} is older than every profile; reading it with ${p.id}'s rules (${p.describe})`
          : `Xen ${series} is newer than every profile; reading it with ${p.id}'s rules (${p.describe}) and numbering from the file's evidence`,
      );
      series = p.versions[0];
      pt = older ? 0 : Infinity;
    }
  }
  // Names: the release of the series with the file's FSCAPINTS (and NCAPINTS) nearest the version.
  const rels = xenReleases(series);
  const fits = (r: { fscapints: number; nrSynth: number; nrBug: number }): boolean =>
    (ev.xen.fscapints === undefined || r.fscapints === ev.xen.fscapints) &&
    (ev.xen.ncapints === undefined || r.fscapints + r.nrSynth + r.nrBug === ev.xen.ncapints);
  const point = (v: string): number => Number(v.split('.')[2]);
  const exact = rels.find((r) => point(r.version) === pt);
  const fromVersion =
    profile.features.startsWith(`xen-${series}.`) && pt !== Infinity && exact
      ? `xen-${exact.version}`
      : profile.features;
  let features = fromVersion;
  const versionWords = xenReleaseWords(fromVersion)!;
  if (ev.xen.fscapints === undefined && ev.xen.ncapints === undefined) {
    notes.push('no known_features/forced_caps symbols: numbering from the version table only');
  } else if (!fits(versionWords)) {
    const candidates = rels.filter(fits);
    // Nearest release with the file's numbering: the first at or after the version, else the last before it.
    const pick = candidates.find((r) => point(r.version) >= pt) ?? candidates[candidates.length - 1];
    const fs = ev.xen.fscapints ?? versionWords.fscapints;
    const nc = ev.xen.ncapints;
    const why = `the file's ${ev.xen.fscapints !== undefined ? `known_features is ${fs} words` : ''}${ev.xen.fscapints !== undefined && nc !== undefined ? ' and ' : ''}${nc !== undefined ? `forced_caps is ${nc} words` : ''}`;
    if (pick) {
      features = `xen-${pick.version}`;
      // 4.17's profiles differ by point release (ALT_FLAG_NOT from 4.17.6): follow the release the numbering is from.
      if (series === '4.17')
        profile = profileById(
          point(pick.version) >= 6
            ? 'xen-4.17'
            : point(pick.version) >= 2
              ? 'xen-4.17.2'
              : point(pick.version) === 1
                ? 'xen-4.17.1'
                : 'xen-4.17.0',
        )!;
      notes.push(
        `numbered from the file: ${why}, as in Xen ${pick.version}, not ${versionWords.version} (FSCAPINTS ${versionWords.fscapints}); names of ${pick.version}`,
      );
    } else {
      const ncap = nc ?? fs + versionWords.nrSynth + versionWords.nrBug;
      const nrBug = Math.min(versionWords.nrBug, Math.max(1, ncap - fs - 1));
      features = xenTableWithWords(fromVersion, { fscapints: fs, nrSynth: ncap - fs - nrBug, nrBug });
      warnings.push(
        `numbered from the file: ${why}; no Xen ${series} release numbers so (${versionWords.version} has FSCAPINTS ${versionWords.fscapints}): names of ${versionWords.version} renumbered with FSCAPINTS ${fs}, ${ncap - fs - nrBug} synthetic and ${nrBug} bug words`,
      );
    }
  }
  return {
    os: 'xen',
    version,
    profile: features === profile.features ? profile : { ...profile, features },
    note: notes.length ? notes.join('; ') : undefined,
    warnings,
  };
}

const XEN_PROFILES_NEWEST = { id: 'xen-4.22', series: '4.22' };

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
  if (!s || s.type !== STT_OBJECT || Number.isNaN(s.addr)) return img.kind === 'rel' ? null : bannerInRodata(img);
  const b = img.read(s.addr, Math.min(s.size || 256, 512));
  if (!b) return null;
  let end = b.indexOf(0);
  if (end < 0) end = b.length;
  return String.fromCharCode(...b.subarray(0, end));
}

/**
 * A stripped vmlinux (e.g. the one inside a bzImage) has no linux_banner symbol: the banner is the first
 * NUL-delimited string in .rodata that starts with "Linux version " and names a build (`#`).
 */
function bannerInRodata(img: Image): string | null {
  const ro = img.section('.rodata');
  if (!ro || ro.type === 8) return null;
  const b = img.sectionBytes(ro);
  const pat = [0x4c, 0x69, 0x6e, 0x75, 0x78, 0x20, 0x76, 0x65, 0x72, 0x73, 0x69, 0x6f, 0x6e, 0x20]; // "Linux version "
  for (let i = b.indexOf(0x4c); i >= 0 && i + pat.length < b.length; i = b.indexOf(0x4c, i + 1)) {
    if (i > 0 && b[i - 1] !== 0) continue;
    let k = 0;
    while (k < pat.length && b[i + k] === pat[k]) k++;
    if (k < pat.length) continue;
    let e = i;
    while (e < b.length && b[e] !== 0 && e - i < 512) e++;
    const str = String.fromCharCode(...b.subarray(i, e));
    if (str.includes('#')) return str;
  }
  return null;
}

/** Picks the Linux profile for a version string such as '6.1.0-47-amd64' or '6.12.107+deb12-amd64'. */
export function linuxTarget(version: string, debianUpstream: string | null): Target {
  const m = /^(\d+)\.(\d+)(?:\.(\d+))?/.exec(debianUpstream ?? version);
  if (!m)
    return { os: 'linux', version, profile: null, note: `unrecognised Linux version '${version}': pass --profile` };
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
  } else if (v <= 6004) id = 'linux-6.3';
  else if (v <= 6007) id = 'linux-6.5';
  else if (v <= 6012) id = 'linux-6.8';
  else if (v < 7000) {
    id = 'linux-6.8';
    note = `Linux ${maj}.${min} has no profile of its own (profiles: 6.8-6.12, 7.0-7.3); reading it with linux-6.8's rules and 6.12.118's feature names: check with --profile linux-7`;
  } else if (v <= 7003) id = 'linux-7';
  else {
    id = 'linux-7';
    note = `Linux ${maj}.${min} is newer than every profile; assuming linux-7's rules (${profileById('linux-7')!.describe}) and Debian 7.3.4's feature names`;
  }
  return { os: 'linux', version, profile: profileById(id)!, note };
}
