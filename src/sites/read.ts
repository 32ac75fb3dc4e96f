/**
 * All patch sites of an image: one reader per table kind, driven by the profile, then every site is
 * placed on the decoded code (instruction boundaries checked, lengths of instruction-list sites filled in).
 */
import type { Image } from '../elf/image.js';
import type { Profile, TableId, TableSpec } from '../target/profile.js';
import { Boundaries, SectionCache } from '../x86/code.js';
import { readAlternatives } from './alternatives.js';
import { readInstructionList } from './instruction-lists.js';
import { readJumpLabels } from './jump-labels.js';
import { readParavirt } from './paravirt.js';
import { addProblem, Site } from './site.js';
import { readStaticCalls } from './static-calls.js';
import { locateTable, TableData, TableError } from './table.js';

export interface SiteSet {
  readonly sites: Site[];
  /** Entries per table id, as read (tables absent from the file are absent here). */
  readonly counts: Partial<Record<TableId, number>>;
  /** Problems that make the file's tables unreadable or inconsistent (reported as errors, exit 2). */
  readonly errors: string[];
}

function readTable(t: TableData, _img: Image, profile: Profile): Site[] {
  switch (t.spec.id) {
    case '.altinstructions':
      return readAlternatives(t, profile.alt);
    case '.parainstructions':
      return readParavirt(t);
    case '.static_call_sites':
      return readStaticCalls(t);
    case '__jump_table':
      return readJumpLabels(t);
    default:
      return readInstructionList(t, t.spec.id);
  }
}

export interface ReadOptions {
  /** Only these tables. */
  tables?: ReadonlySet<TableId>;
  /** Decode and check boundaries (default true). */
  decode?: boolean;
  /** Reuse a decoding. */
  disassembly?: SectionCache;
}

export function readSites(img: Image, profile: Profile, opts: ReadOptions = {}): SiteSet {
  const sites: Site[] = [];
  const counts: Partial<Record<TableId, number>> = {};
  const errors: string[] = [];
  for (const spec of profile.tables as TableSpec[]) {
    if (opts.tables && !opts.tables.has(spec.id)) continue;
    let t: TableData | undefined;
    try {
      t = locateTable(img, spec);
    } catch (e) {
      if (e instanceof TableError) {
        errors.push(e.message);
        continue;
      }
      throw e;
    }
    if (!t) continue;
    errors.push(...t.problems);
    const got = readTable(t, img, profile);
    counts[spec.id] = got.length;
    let outside = 0;
    let firstOutside = '';
    for (const s of got) {
      const sec = Number.isNaN(s.addr) ? undefined : img.sectionAt(s.addr);
      if (!sec) {
        if (outside++ === 0)
          firstOutside = `${spec.id} entry ${s.index}: site address ${img.hex(s.addr)} lies outside every section`;
        addProblem(s, 'address outside every section');
      } else if (
        s.table === '.altinstructions' &&
        s.repl.length > 0 &&
        (Number.isNaN(s.repl.addr) || !img.read(s.repl.addr, s.repl.length))
      ) {
        if (outside++ === 0)
          firstOutside = `${spec.id} entry ${s.index}: replacement ${img.hex(s.repl.addr)} (+${s.repl.length}) lies outside every section`;
        addProblem(s, 'replacement outside every section');
      }
      sites.push(s);
    }
    if (outside) errors.push(firstOutside + (outside > 1 ? ` (and ${outside - 1} more)` : ''));
  }
  if (opts.decode !== false) placeSites(img, sites, opts.disassembly ?? new Boundaries(img, sites));
  return { sites, counts, errors };
}

/** Fills in instruction-list lengths and records sites that do not start and end on instruction boundaries. */
export function placeSites(img: Image, sites: Site[], dis: SectionCache): void {
  for (const s of sites) {
    if (Number.isNaN(s.addr) || s.problems?.includes('address outside every section')) continue;
    const sc = dis.at(s.addr);
    if (!sc) {
      addProblem(s, `not in executable code (section ${img.sectionAt(s.addr)?.name ?? '?'})`);
      continue;
    }
    const o = s.addr - sc.section.addr;
    const i = sc.indexAt(o);
    if (i < 0) {
      const k = sc.indexContaining(o);
      const inside =
        k >= 0
          ? `inside the ${sc.len[k]}-byte instruction at ${img.where(sc.section.addr + sc.off[k]!)}`
          : 'before the first instruction';
      addProblem(s, `not on an instruction boundary (${inside})`);
      continue;
    }
    if (s.length === 0) {
      // smp_locks keep their 1-byte length (the lock prefix); others take the instruction's.
      s.length = sc.len[i]!;
    } else if (s.table !== '.smp_locks' && !sc.isBoundary(o + s.length)) {
      addProblem(s, `site end (+${s.length}) is not on an instruction boundary`);
    }
  }
}
