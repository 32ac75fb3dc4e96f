import type { Command } from 'commander';
import type { Image } from '../elf/image.js';
import type { AppliedPatch, PatchedView } from '../patch/index.js';
import { featureName } from '../target/features/index.js';
import { disassemble } from '../x86/format.js';
import {
  addApplyOptions,
  ApplyCliOptions,
  checkOptionFiles,
  findingLines,
  openAndApply,
  singleFile,
  UnusableFile,
  unusable,
} from './apply.js';
import { expandInputs } from './files.js';
import { EXIT_FINDINGS, ExitStatus, fileErrorLine, Io } from './context.js';

interface SiteDiff {
  addr: number;
  len: number;
  label: string;
  before: Uint8Array;
  after: Uint8Array;
  changed: number;
}

/** Group writes by site address; the label is the controlling feature (alternatives) or the patcher. */
function siteDiffs(img: Image, view: PatchedView, fn?: string): SiteDiff[] {
  const bySite = new Map<number, { len: number; labels: string[] }>();
  const table = (p: AppliedPatch): string => {
    if (
      (p.patcher === 'alternatives' || p.patcher === 'xen-alternatives') &&
      p.site?.table === '.altinstructions' &&
      p.note !== 'optimize_nops' &&
      !p.note?.startsWith('pad NOPs')
    ) {
      return `${p.site.inverted ? '!' : ''}${featureName(viewTable(view), p.site.feature)}`;
    }
    return p.note === 'optimize_nops' || p.note?.startsWith('pad NOPs') ? `${p.patcher} (${p.note})` : p.patcher;
  };
  for (const p of view.patches) {
    let e = bySite.get(p.addr);
    if (!e) bySite.set(p.addr, (e = { len: 0, labels: [] }));
    e.len = Math.max(e.len, p.after.length);
    const l = table(p);
    if (!e.labels.includes(l)) e.labels.push(l);
  }
  const out: SiteDiff[] = [];
  for (const [addr, e] of [...bySite].sort((a, b) => a[0] - b[0])) {
    if (fn && img.symbolize(addr).name !== fn) continue;
    const before = view.readLoaded(addr, e.len)!;
    const after = view.read(addr, e.len)!;
    let changed = 0;
    for (let k = 0; k < e.len; k++) if (before[k] !== after[k]) changed++;
    if (!changed) continue;
    out.push({ addr, len: e.len, label: e.labels.join(', '), before, after, changed });
  }
  return out;
}

let currentTable: import('../target/features/index.js').FeatureTable | undefined;
function viewTable(_v: PatchedView): import('../target/features/index.js').FeatureTable {
  return currentTable!;
}

function lines(
  img: Image,
  view: PatchedView,
  bytes: Uint8Array,
  addr: number,
  externNames: Map<string, string>,
  withRelocs = false,
): string[] {
  const sec = img.sectionAt(addr);
  const relocs =
    withRelocs && img.kind === 'rel' && sec ? { bySecOff: img.relocs(sec).byOffset(), secAddr: sec.addr } : undefined;
  void view;
  return disassemble(bytes, addr, { img, relocs }).map((i) => {
    let t = i.text;
    for (const [w, name] of externNames)
      if (t.includes(w))
        t = t.replace(new RegExp(w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&') + '(?![0-9a-f])', 'g'), name); // symbol names from the file may hold any character
    return t;
  });
}

type DiffOptions = ApplyCliOptions & { function?: string; summary?: boolean; width: number; json?: boolean };

/** One file in `diff --json` (a file that cannot be used: its path and errors only). */
interface DiffJson {
  path: string;
  cpu?: string;
  sites?: { addr: string; where: string; len: number; label: string; before: string[]; after: string[] }[];
  summary?: { label: string; sites: number; bytes: number }[];
  notes?: string[];
  errors: string[];
}

/** One file's report: its sites before and after, the per-feature summary and notes; returns true on a finding. */
function report(
  file: string,
  o: DiffOptions,
  done: Awaited<ReturnType<typeof openAndApply>>,
  put: (s: string) => void,
  warn: (s: string) => void,
  json?: DiffJson[],
): boolean {
  const { img, cpu, result, warnings, cpuNotes } = done;
  let finding = false;
  const raise = (): void => {
    finding = true;
  };
  for (const w of warnings) warn(w + '\n');
  currentTable = cpu.table;
  const view = result.view;
  const externNames = new Map<string, string>();
  for (const [name, abs] of view.externAbs) {
    const rel = view.rel(abs);
    if (!Number.isNaN(rel) && !img.sectionAt(rel)) externNames.set(img.where(rel), name);
  }
  const diffs = siteDiffs(img, view, o.function);
  const cpuLabel = o.cpuFrom ? `from ${o.cpuFrom}` : /^host/.test(o.cpu ?? '') ? o.cpu : cpu.spec;
  const sum = new Map<string, { sites: number; bytes: number }>();
  for (const d of diffs) {
    const e = sum.get(d.label) ?? { sites: 0, bytes: 0 };
    e.sites++;
    e.bytes += d.changed;
    sum.set(d.label, e);
  }
  const sorted = [...sum].sort((x, y) => y[1].sites - x[1].sites);
  const notes = [...cpuNotes, ...cpu.notes, ...view.notes];
  if (json) {
    json.push({
      path: file,
      cpu: cpu.spec,
      sites: o.summary
        ? undefined
        : diffs.map((d) => ({
            addr: img.hex(d.addr),
            where: img.where(d.addr),
            len: d.len,
            label: d.label,
            before: lines(img, view, d.before, d.addr, externNames, true),
            after: lines(img, view, d.after, d.addr, externNames),
          })),
      summary: sorted.map(([label, e]) => ({ label, sites: e.sites, bytes: e.bytes })),
      notes,
      errors: result.errors.map((m) => (m.startsWith(`${file}: `) ? m.slice(file.length + 2) : m)),
    });
  } else {
    put(`${file}: --cpu ${cpuLabel}: ${diffs.length} sites changed${o.function ? ` in ${o.function}` : ''}\n`);
    if (!o.summary) {
      const w = o.width;
      for (const d of diffs) {
        put(`\n${img.where(d.addr)} (${img.hex(d.addr)}, ${d.len} bytes) [${d.label}]\n`);
        const b = lines(img, view, d.before, d.addr, externNames, true);
        const a = lines(img, view, d.after, d.addr, externNames);
        for (let k = 0; k < Math.max(a.length, b.length); k++) {
          const l = b[k] ?? '';
          put(`  ${l.length > w - 1 ? l.slice(0, w - 2) + '…' : l.padEnd(w)}| ${a[k] ?? ''}\n`);
        }
      }
    }
    put(`\nsummary (sites changed, bytes changed):\n`);
    for (const [k, e] of sorted) put(`  ${String(e.sites).padStart(6)} ${String(e.bytes).padStart(7)}  ${k}\n`);
    for (const n of notes) put(`note: ${n}\n`);
  }
  if (result.errors.length) warn(fileErrorLine(file, result.errors));
  for (const l of findingLines(file, img, result)) warn(l + '\n');
  if (result.errors.length) raise(); // entries that cannot be used, as in apply
  return finding;
}

export function register(program: Command, io: Io, status: ExitStatus): void {
  addApplyOptions(
    program
      .command('diff')
      .description(
        'per patch site, the disassembly before and after the boot-time patchers for a CPU, side by side, and a summary per feature; for each input in turn',
      )
      .argument(
        '<paths...>',
        'ELF files (vmlinux, vmlinuz/bzImage, xen-syms, .o, .ko, .ko.xz/.zst/.gz) or directories searched for them',
      ),
  )
    .option('--function <name>', 'only sites inside this function')
    .option('--summary', 'the per-feature summary only')
    .option('--width <n>', 'column width of the "before" side', (v) => Number(v), 48)
    .option('--json', 'JSON output: {"files": [one object per file]} (schema in docs/apply.md)')
    .action(async (paths: string[], o: DiffOptions) => {
      const put = (t: string): void => io.out(t);
      const warn = (t: string): void => io.err(t);
      const json: DiffJson[] | undefined = o.json ? [] : undefined;
      if (singleFile(paths)) {
        if (report(paths[0]!, o, await openAndApply(paths[0]!, o), put, warn, json)) status.raise(EXIT_FINDINGS);
        if (json) io.out(`${JSON.stringify({ files: json })}\n`);
        return;
      }
      // Several files: the reports are kept until every file is through, so a usage error (exit 2) prints nothing else.
      const inputs = expandInputs(paths);
      checkOptionFiles(o);
      let out = '';
      let err = '';
      for (const [k, i] of inputs.entries()) {
        let done;
        try {
          done = await openAndApply(i.path, o);
        } catch (e) {
          if (!(e instanceof UnusableFile)) throw e;
          err += `${e.message}\n`;
          json?.push({ path: i.path, errors: [e.message.slice(i.path.length + 2)] });
          status.raise(EXIT_FINDINGS);
          continue;
        }
        // A file whose damage shows only while disassembling is skipped whole: no half report.
        let fileOut = '';
        let fileErr = '';
        const fileJson: DiffJson[] | undefined = json ? [] : undefined;
        let finding: boolean;
        try {
          finding = report(
            i.path,
            o,
            done,
            (t) => {
              fileOut += t;
            },
            (t) => {
              fileErr += t;
            },
            fileJson,
          );
        } catch (e) {
          const u = unusable(i.path, e);
          if (!(u instanceof UnusableFile)) throw u;
          err += `${u.message}\n`;
          json?.push({ path: i.path, errors: [u.message.slice(i.path.length + 2)] });
          status.raise(EXIT_FINDINGS);
          continue;
        }
        if (fileJson) json!.push(...fileJson);
        out += (k > 0 && out ? '\n' : '') + fileOut;
        err += fileErr;
        if (finding) status.raise(EXIT_FINDINGS);
      }
      io.err(err);
      io.out(json ? `${JSON.stringify({ files: json })}\n` : out);
    });
}
