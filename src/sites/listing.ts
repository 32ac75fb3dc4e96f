/**
 * The per-file result of `textpoke sites`: a JSON-ready object (the documented schema) and its
 * terminal rendering. Pure: no node APIs, so the playground and worker threads share it.
 */
import { Image, SHT_RELA } from '../elf/image.js';
import { featureName, featureTable, FeatureTable } from '../target/features/index.js';
import type { Target } from '../target/detect.js';
import type { TableId } from '../target/profile.js';
import { FormatContext, hexBytes, ImageDisassembler } from '../x86/format.js';
import type { Site } from './site.js';
import type { SiteSet } from './read.js';
import { crossCheckSites } from './crosscheck.js';

export interface SiteJson {
  table: TableId;
  index: number;
  address: string;
  symbol: string;
  offset: number;
  length: number;
  feature?: string | null;
  featureNumber?: number;
  inverted?: boolean;
  bytes?: string;
  insns?: string[];
  replacement?: { address: string; symbol: string; length: number; bytes: string; insns: string[] };
  origLen?: number;
  padLen?: number;
  pvSlot?: number;
  clobbers?: number;
  key?: string;
  tail?: boolean;
  init?: boolean;
  target?: { address: string; symbol: string };
  branchDefault?: boolean;
  initNop?: boolean;
  problems?: string[];
}

export interface FileJson {
  path: string;
  target: {
    os: string;
    version: string | null;
    profile: string | null;
    features?: string;
    note?: string;
    warnings?: string[];
    evidence?: string[];
  };
  counts: Partial<Record<TableId, number>>;
  sites?: SiteJson[];
  errors: string[];
}

export function targetJson(t: Target): FileJson['target'] {
  const o: FileJson['target'] = { os: t.os, version: t.version, profile: t.profile?.id ?? null };
  if (t.profile) o.features = t.profile.features;
  if (t.note) o.note = t.note;
  o.warnings = [...(t.warnings ?? [])];
  if (t.evidence?.length) o.evidence = [...t.evidence];
  return o;
}

/** Relocation lookups for formatting, per section (only relocatable files have them). */
export class RelocIndex {
  private readonly cache = new Map<number, FormatContext['relocs']>();
  constructor(private readonly img: Image) {}
  at(addr: number): FormatContext['relocs'] {
    if (this.img.kind !== 'rel') return undefined;
    const sec = this.img.sectionAt(addr);
    if (!sec || this.img.relocs(sec).rela?.type !== SHT_RELA) return undefined;
    let r = this.cache.get(sec.index);
    if (!r) {
      r = { section: sec, secAddr: sec.addr };
      this.cache.set(sec.index, r);
    }
    return r;
  }
}

export function siteJson(
  img: Image,
  s: Site,
  features: FeatureTable | undefined,
  relocs: RelocIndex,
  detail: boolean,
  dis: ImageDisassembler,
): SiteJson {
  const w = Number.isNaN(s.addr) ? { name: '?', offset: 0 } : img.symbolize(s.addr);
  const j: SiteJson = {
    table: s.table,
    index: s.index,
    address: img.hex(s.addr),
    symbol: w.name,
    offset: w.offset,
    length: s.length,
  };
  if (s.table === '.altinstructions') {
    j.feature = features ? featureName(features, s.feature) : null;
    j.featureNumber = s.feature;
    j.inverted = s.inverted;
  }
  if (detail && !Number.isNaN(s.addr)) {
    let len = s.length;
    if (s.table === '.smp_locks') {
      // The site is the lock prefix; show the whole locked instruction.
      const sec = img.sectionAt(s.addr);
      const first = sec ? dis.at(s.addr, Math.min(15, sec.addr + sec.size - s.addr))?.[0] : undefined;
      if (first) len = first.len;
    }
    const b = img.read(s.addr, len);
    if (b) {
      j.bytes = hexBytes(b);
      j.insns = (dis.at(s.addr, len, relocs.at(s.addr)) ?? []).map((i) => i.text);
    }
  }
  switch (s.table) {
    case '.altinstructions': {
      const repl = s.repl;
      const rb = repl.length && !Number.isNaN(repl.addr) ? img.read(repl.addr, repl.length) : new Uint8Array(0);
      j.replacement = {
        address: img.hex(repl.addr),
        symbol: Number.isNaN(repl.addr) ? '?' : img.where(repl.addr),
        length: repl.length,
        bytes: rb ? hexBytes(rb) : '',
        insns: detail && rb ? (dis.at(repl.addr, repl.length, relocs.at(repl.addr)) ?? []).map((i) => i.text) : [],
      };
      if (s.origLen !== undefined) j.origLen = s.origLen;
      if (s.padLen !== undefined) j.padLen = s.padLen;
      break;
    }
    case '.parainstructions':
      j.pvSlot = s.paraType;
      j.clobbers = s.clobbers;
      break;
    case '.static_call_sites':
      j.key = s.key.name ?? img.hex(s.key.addr);
      j.tail = s.tail;
      j.init = s.init;
      break;
    case '__jump_table':
      j.key = s.key.name ?? img.hex(s.key.addr);
      if (s.target)
        j.target = {
          address: img.hex(s.target.addr),
          symbol: s.target.name ?? (Number.isNaN(s.target.addr) ? '?' : img.where(s.target.addr)),
        };
      j.branchDefault = s.branchDefault;
      j.initNop = s.initNop;
      break;
  }
  if (s.problems) j.problems = s.problems;
  return j;
}

export function fileJson(img: Image, target: Target, set: SiteSet, opts: { summary?: boolean } = {}): FileJson {
  const features = target.profile ? safeFeatures(target.profile.features) : undefined;
  const relocs = new RelocIndex(img);
  const out: FileJson = { path: img.path, target: targetJson(target), counts: set.counts, errors: set.errors };
  out.target.warnings = [...(out.target.warnings ?? []), ...crossCheckSites(target, set.sites)];
  if (!opts.summary) {
    const dis = new ImageDisassembler({ img });
    try {
      out.sites = set.sites.map((s) => siteJson(img, s, features, relocs, true, dis));
    } finally {
      dis.free();
    }
  }
  return out;
}

function safeFeatures(id: string): FeatureTable | undefined {
  try {
    return featureTable(id);
  } catch {
    return undefined;
  }
}

/** One line describing what a site does, for the terminal table. */
function info(j: SiteJson): string {
  const parts: string[] = [];
  if (j.feature !== undefined) parts.push(`${j.inverted ? '!' : ''}${j.feature ?? `feature ${j.featureNumber}`}`);
  if (j.replacement) {
    const r = j.replacement.insns.length
      ? j.replacement.insns.join('; ')
      : j.replacement.length
        ? j.replacement.bytes
        : '(nothing)';
    parts.push(`-> ${r}`);
  }
  if (j.padLen !== undefined) parts.push(`orig ${j.origLen} pad ${j.padLen}`);
  if (j.pvSlot !== undefined) parts.push(`pv_ops[${j.pvSlot}] clobbers 0x${(j.clobbers ?? 0).toString(16)}`);
  if (j.key !== undefined) parts.push(`key ${j.key}`);
  if (j.tail) parts.push('tail');
  if (j.init) parts.push('init');
  if (j.target) parts.push(`target ${j.target.symbol}`);
  if (j.branchDefault !== undefined) parts.push(j.branchDefault ? 'default:branch' : 'default:nop');
  if (j.initNop) parts.push('nop-at-build');
  if (j.problems) parts.push(`PROBLEM: ${j.problems.join('; ')}`);
  return parts.join('  ');
}

const pad = (s: string, n: number): string => (s.length >= n ? s + ' ' : s + ' '.repeat(n - s.length));

/** Terminal rendering of one file: header, one row per site, totals per table. */
export function renderText(f: FileJson): string {
  const lines: string[] = [];
  const t = f.target;
  lines.push(`${f.path}: ${t.os}${t.version ? ' ' + t.version : ''}${t.profile ? ` (profile ${t.profile})` : ''}`);
  if (t.note) lines.push(`  note: ${t.note}`);
  for (const w of t.warnings ?? []) lines.push(`  warning: ${w}`);
  if (f.sites?.length) {
    lines.push(
      `  ${pad('TABLE', 19)}${pad('LOCATION', 44)}${pad('BYTES', 30)}${pad('INSTRUCTIONS', 36)}FEATURE / DETAILS`,
    );
    for (const s of f.sites) {
      const loc = `${s.symbol}+0x${s.offset.toString(16)}`;
      const bytes = s.bytes ?? '';
      lines.push(
        `  ${pad(s.table, 19)}${pad(loc, 44)}${pad(bytes.length > 29 ? bytes.slice(0, 26) + '...' : bytes, 30)}${pad((s.insns ?? []).join('; '), 36)}${info(s)}`,
      );
    }
  }
  const ids = Object.keys(f.counts) as TableId[];
  if (ids.length) lines.push(`  totals: ${ids.map((id) => `${id} ${f.counts[id]}`).join(', ')}`);
  else lines.push('  no patch tables');
  return lines.join('\n') + '\n';
}
