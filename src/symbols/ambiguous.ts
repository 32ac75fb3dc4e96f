/**
 * Local symbols whose names repeat across translation units: outlined `static inline` copies and
 * compiler clones (`.isra`, `.part`, `.cold`, `.constprop`). A live patch names the function it replaces;
 * when a name repeats, the patch tool must tell the copies apart. Translation units come from the
 * STT_FILE symbols that precede each unit's locals in the symbol table (as kallsyms and kpatch use them).
 */
import { Image, STB_LOCAL, STT_FILE, STT_FUNC, STT_OBJECT, Sym } from '../elf/image.js';

export interface AmbiguousEntry {
  file: string | null;
  address: string;
  size: number;
  type: 'func' | 'object';
  /** 1-based position among the symbols of this name, in symbol-table order (livepatch's `sympos`). */
  sympos: number;
}

export interface AmbiguousGroup {
  name: string;
  /** Base name without compiler clone suffixes. */
  base: string;
  /** Clone kinds in the name (isra, part, cold, constprop, …). */
  clone: string[];
  entries: AmbiguousEntry[];
  /** Every entry has a distinct (name, file) pair. */
  byFile: boolean;
  /** Every entry has a distinct (name, size) pair. */
  bySize: boolean;
  /** Every entry has a distinct (name, file, size) triple. */
  byFileAndSize: boolean;
}

export interface AmbiguityReport {
  path: string;
  localSymbols: number;
  files: number;
  groups: AmbiguousGroup[];
}

const CLONE = /\.(isra|part|cold|constprop|lto_priv|localalias|llvm)(\.\d+)?/g;

export function baseName(name: string): { base: string; clone: string[] } {
  const clone = [...name.matchAll(CLONE)].map((m) => m[1]!);
  return { base: name.replace(CLONE, ''), clone };
}

export interface AmbiguityOptions {
  /** Include data objects (default: functions only, what live patches replace). */
  objects?: boolean;
}

export function findAmbiguous(img: Image, opts: AmbiguityOptions = {}): AmbiguityReport {
  let file: string | null = null;
  const files = new Set<string>();
  const byName = new Map<string, { sym: Sym; file: string | null }[]>();
  let locals = 0;
  for (const s of img.symbols) {
    if (s.type === STT_FILE) {
      file = s.name || null;
      if (file) files.add(file);
      continue;
    }
    if (s.bind !== STB_LOCAL || !s.name || Number.isNaN(s.addr)) continue;
    if (s.type !== STT_FUNC && !(opts.objects && s.type === STT_OBJECT)) continue;
    locals++;
    let list = byName.get(s.name);
    if (!list) byName.set(s.name, (list = []));
    list.push({ sym: s, file });
  }
  const groups: AmbiguousGroup[] = [];
  for (const [name, list] of byName) {
    if (list.length < 2) continue;
    const distinct = (key: (e: { sym: Sym; file: string | null }) => string): boolean =>
      new Set(list.map(key)).size === list.length;
    const { base, clone } = baseName(name);
    groups.push({
      name,
      base,
      clone,
      entries: list.map((e, i) => ({
        file: e.file,
        address: img.hex(e.sym.addr),
        size: e.sym.size,
        type: e.sym.type === STT_FUNC ? 'func' : 'object',
        sympos: i + 1,
      })),
      byFile: distinct((e) => e.file ?? ''),
      bySize: distinct((e) => String(e.sym.size)),
      byFileAndSize: distinct((e) => `${e.file}\0${e.sym.size}`),
    });
  }
  groups.sort((a, b) => b.entries.length - a.entries.length || (a.name < b.name ? -1 : 1));
  return { path: img.path, localSymbols: locals, files: files.size, groups };
}

/** How a live-patch tool can name one copy, in order of preference. */
export function verdict(g: AmbiguousGroup): string {
  if (g.byFile) return 'name + file';
  if (g.byFileAndSize) return 'name + file + size';
  if (g.bySize) return 'name + size';
  return 'position only (sympos): fragile';
}

export function renderAmbiguity(r: AmbiguityReport): string {
  const lines: string[] = [];
  const hard = r.groups.filter((g) => !g.byFile);
  const positional = r.groups.filter((g) => !g.byFile && !g.bySize && !g.byFileAndSize);
  lines.push(
    `${r.path}: ${r.groups.length} local names repeat (${r.groups.reduce((n, g) => n + g.entries.length, 0)} symbols, ${r.localSymbols} locals in ${r.files} files); ` +
      `${hard.length} not told apart by name + file, ${positional.length} only by position`,
  );
  for (const g of r.groups) {
    lines.push(
      `  ${g.name}  x${g.entries.length}${g.clone.length ? `  (clone of ${g.base}: ${g.clone.join(', ')})` : ''}  -> ${verdict(g)}`,
    );
    for (const e of g.entries)
      lines.push(
        `    ${String(e.sympos).padStart(3)}  ${e.address}  size 0x${e.size.toString(16).padEnd(6)} ${e.file ?? '(no file symbol)'}`,
      );
  }
  return lines.join('\n') + '\n';
}
