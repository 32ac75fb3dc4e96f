/**
 * The report's user interface, shared by the self-contained HTML report (`textpoke report`) and the
 * browser playground (web/). It draws from a {@link ReportData}: a summary with bar charts, the findings,
 * a searchable function list, a page per function (disassembly before and after patching side by side,
 * the control-flow graph laid out by Graphviz with fences, sites and findings highlighted) and the model
 * checker's traces.
 *
 * This file has no runtime imports (types only), so `textpoke report` inlines its compiled JavaScript
 * into the page as one module. Every string that comes from an input (symbol, section and file names,
 * disassembly text) reaches the page through `textContent` or an escaped Graphviz label, never as
 * markup. Pages are drawn when opened (lazily), so a hypervisor's report paints at once.
 *
 * @example
 * ```ts
 * mount(document.getElementById('app')!, data, { viz: () => instance(), detail: async (f, i) => data.files[f]!.details[i]! });
 * ```
 */
import type { FileData, FnDetail, ReportData } from './data.js';
import { applyChanges, blocksOf, edgesOf, fnEntry, parseLines } from './wire.js';
import type { FnSummary, Line } from './wire.js';

/** Graphviz instance (the subset used here). */
export interface VizLike {
  renderSVGElement(dot: string): SVGSVGElement;
}

export interface Host {
  /** Loads Graphviz (lazily: only when a graph is first shown). */
  viz(): Promise<VizLike>;
  /** Detail page `idx` of file `file` (may be decompressed on first use). */
  detail(file: number, idx: number): Promise<FnDetail>;
}

/** Blocks above which a graph waits for a click before layout. */
export const GRAPH_AUTO_LIMIT = 250;
const MAX_ROWS = 3000;
const MAX_LIST = 300;

const CSS = `
.tp{font:14px/1.4 system-ui,sans-serif;color:#1d1d1f;margin:0}
.tp header{display:flex;gap:12px;align-items:center;padding:8px 16px;background:#20242c;color:#fff;position:sticky;top:0;z-index:2}
.tp header h1{font-size:16px;margin:0 12px 0 0}
.tp header a{color:#cfe3ff;text-decoration:none;padding:4px 8px;border-radius:4px}
.tp header a.on{background:#3b4252;color:#fff}
.tp header input{margin-left:auto;padding:4px 8px;width:260px;border-radius:4px;border:0}
.tp header select{padding:3px}
.tp main{padding:12px 16px}
.tp h2{font-size:18px;margin:16px 0 8px}
.tp h3{font-size:15px;margin:14px 0 6px}
.tp table{border-collapse:collapse}
.tp td,.tp th{padding:2px 8px;text-align:left;vertical-align:top}
.tp th{background:#f0f1f4}
.tp tr.hl td{background:#fff0f0}
.tp .mono,.tp .dis td{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px}
.tp .dis td{padding:0 6px;white-space:pre}
.tp .dis td.b{color:#777}
.tp .dis tr.chg td.l,.tp .dis tr.chg td.lb{background:#fff4d6}
.tp .dis tr.chg td.r,.tp .dis tr.chg td.rb{background:#e3f6e3}
.tp .dis td.gap{border-left:2px solid #ccc}
.tp .F{background:#c9f0c9!important;font-weight:bold}
.tp .S{box-shadow:inset 3px 0 0 #3a7bd5}
.tp .X{background:#ffc9c9!important;font-weight:bold}
.tp .R{background:#ffe6bf!important}
.tp .chart{margin:4px 0 12px}
.tp .chart text{font-size:12px;font-family:ui-monospace,Menlo,Consolas,monospace}
.tp .cards{display:flex;gap:12px;flex-wrap:wrap}
.tp .card{border:1px solid #dde;border-radius:6px;padding:8px 12px;min-width:140px}
.tp .card b{font-size:22px;display:block}
.tp .sev-error{color:#b00;font-weight:bold}
.tp .sev-warning{color:#a60}
.tp .note{color:#666}
.tp .graph{border:1px solid #dde;overflow:auto;max-height:70vh;background:#fff}
.tp .graph svg{display:block}
.tp .legend span{display:inline-block;padding:0 6px;margin-right:8px;border-radius:3px;font-size:12px}
.tp button{padding:3px 10px}
.tp .trace img{max-width:100%;border:1px solid #dde}
.tp #tp-findings-filter a{text-decoration:none;padding:1px 6px;border-radius:3px}
.tp #tp-findings-filter a.on{background:#20242c;color:#fff}
.tp .missing{background:#fff8e0;border:1px solid #eed27a;padding:6px 10px;border-radius:4px;margin:6px 0}
`;

type Child = Node | string | null | undefined | false;

/** Creates an element; strings become text nodes (never markup). */
function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> | null,
  ...kids: Child[]
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (attrs)
    for (const k in attrs) {
      if (/^on/i.test(k)) continue;
      e.setAttribute(k, attrs[k]!);
    }
  for (const c of kids)
    if (c !== null && c !== undefined && c !== false) e.append(typeof c === 'string' ? document.createTextNode(c) : c);
  return e;
}

const SVGNS = 'http://www.w3.org/2000/svg';
function s(tag: string, attrs: Record<string, string | number>, text?: string): SVGElement {
  const e = document.createElementNS(SVGNS, tag);
  for (const k in attrs) e.setAttribute(k, String(attrs[k]));
  if (text !== undefined) e.textContent = text;
  return e;
}

/** A horizontal bar chart (drawn by hand: a few rectangles need no charting library). */
export function barChart(rows: Array<[string, number]>, color = '#4a78c2'): SVGElement {
  const max = Math.max(1, ...rows.map((r) => r[1]));
  const labelW = Math.min(300, 8 + 7.2 * Math.max(4, ...rows.map((r) => r[0].length)));
  const barW = 360;
  const rowH = 18;
  const svg = s('svg', { class: 'chart', width: labelW + barW + 70, height: rows.length * rowH + 4, role: 'img' });
  rows.forEach(([name, n], i) => {
    const y = i * rowH + 2;
    svg.append(s('text', { x: labelW - 6, y: y + 12, 'text-anchor': 'end' }, name));
    svg.append(
      s('rect', {
        x: labelW,
        y: y + 2,
        width: Math.max(n > 0 ? 1 : 0, (barW * n) / max),
        height: rowH - 5,
        fill: color,
      }),
    );
    svg.append(s('text', { x: labelW + (barW * n) / max + 6, y: y + 12 }, String(n)));
  });
  return svg;
}

/** Rows of a side-by-side view: instructions grouped between offsets where both sides start an instruction. */
export function alignRows(before: Line[], after: Line[]): Array<[Line[], Line[], boolean]> {
  const aStarts = new Set(after.map((l) => l.off));
  const bStarts = new Set(before.map((l) => l.off));
  const out: Array<[Line[], Line[], boolean]> = [];
  let i = 0;
  let j = 0;
  while (i < before.length || j < after.length) {
    const bi = before[i];
    const aj = after[j];
    if (bi && aj && bi.off === aj.off && bi.bytes === aj.bytes) {
      out.push([[bi], [aj], false]);
      i++;
      j++;
      continue;
    }
    // Next offset past this one where both sides start an instruction.
    const from = Math.min(bi?.off ?? Infinity, aj?.off ?? Infinity);
    let stop = Infinity;
    for (let k = i + 1; k < before.length; k++)
      if (before[k]!.off > from && aStarts.has(before[k]!.off)) {
        stop = before[k]!.off;
        break;
      }
    const L: Line[] = [];
    const R: Line[] = [];
    while (i < before.length && before[i]!.off < stop) L.push(before[i++]!);
    while (j < after.length && after[j]!.off < stop) R.push(after[j++]!);
    if (!L.length && !R.length) break;
    out.push([L, R, true]);
    void bStarts;
  }
  return out;
}

function hexAdd(base: string, off: number): string {
  return '0x' + (BigInt(base) + BigInt(off)).toString(16);
}

/** Escapes text for a Graphviz HTML-like label. */
export function dotHtml(t: string): string {
  let o = '';
  for (const ch of t) {
    const c = ch.codePointAt(0)!;
    if (ch === '&') o += '&amp;';
    else if (ch === '<') o += '&lt;';
    else if (ch === '>') o += '&gt;';
    else if (ch === '"') o += '&quot;';
    else if (ch === ']' || ch === '[' || ch === '{' || ch === '}' || ch === '|' || ch === '\\') o += `&#${c};`;
    else if (c < 0x20 || c === 0x7f) o += ' ';
    else o += ch;
  }
  return o;
}

/** Escapes text for a double-quoted Graphviz string. */
export function dotString(t: string): string {
  return '"' + t.replace(/[\\"]/g, (m) => '\\' + m).replace(/[\x00-\x1f\x7f]/g, ' ') + '"';
}

const EDGE_STYLE: Record<string, string> = {
  fall: 'color="#555555"',
  jump: 'color="#333333"',
  taken: 'color="#1f8f3a" fontcolor="#1f8f3a" label="taken"',
  table: 'color="#888888" style=dashed',
  alternative: 'color="#3a7bd5" style=dashed fontcolor="#3a7bd5" label="alternative"',
  'jump-label': 'color="#8a3ad5" style=dashed fontcolor="#8a3ad5" label="jump label"',
};

/** Graphviz DOT for a function's graph: fences green, site starts blue, finding lines and blocks red. */
export function functionDot(d: FnDetail, lines: Line[]): string {
  const out: string[] = [];
  out.push('digraph cfg {');
  // Courier: a font Graphviz has metrics for, so boxes fit the monospace text the browser draws.
  out.push('graph [fontname="Courier" ranksep=0.3 nodesep=0.3];');
  out.push('node [shape=plaintext fontname="Courier" fontsize=10 margin=0];');
  out.push('edge [fontname="Courier" fontsize=9 arrowsize=0.6];');
  const blocks = blocksOf(d.blocks);
  const edges = edgesOf(d.edges);
  const nb = blocks.length;
  const byOff = new Map<number, number>();
  for (let i = 0; i < lines.length; i++) byOff.set(lines[i]!.off, i);
  const hot = new Set<number>();
  // Padding after a return (int3/nop blocks nothing jumps to) is left out of the picture.
  const entered = new Set<number>();
  for (const e of edges) if (typeof e.to === 'number') entered.add(e.to);
  const skip = new Set<number>();
  for (let b = 0; b < nb; b++) {
    const { start, end } = blocks[b]!;
    const first = byOff.get(start);
    const ls: Line[] = [];
    if (first !== undefined) for (let k = first; k < lines.length && lines[k]!.off < end; k++) ls.push(lines[k]!);
    if (
      b > 0 &&
      !entered.has(start) &&
      ls.length > 0 &&
      ls.every((l) => /^(int3|nop[lw]?\b|xchg %ax,%ax)/.test(l.text) && !/[XSR]/.test(l.flags))
    ) {
      skip.add(b);
      continue;
    }
    const bad = ls.some((l) => l.flags.includes('X'));
    if (bad) hot.add(b);
    const shown: Array<Line | number> = [];
    if (ls.length <= 20) shown.push(...ls);
    else {
      let skipped = 0;
      ls.forEach((l, k) => {
        if (k < 8 || k >= ls.length - 6 || /[FSXR]/.test(l.flags)) {
          if (skipped) {
            shown.push(skipped);
            skipped = 0;
          }
          shown.push(l);
        } else skipped++;
      });
    }
    const rows = shown.map((l) => {
      if (typeof l === 'number') return `<TR><TD ALIGN="LEFT"><FONT COLOR="#888888">… ${l} more …</FONT></TD></TR>`;
      const bg = l.flags.includes('X')
        ? ' BGCOLOR="#ffc9c9"'
        : l.flags.includes('F')
          ? ' BGCOLOR="#c9f0c9"'
          : l.flags.includes('R')
            ? ' BGCOLOR="#ffe6bf"'
            : l.flags.includes('S')
              ? ' BGCOLOR="#dbe8fb"'
              : '';
      const text = l.text.replace(/0x[0-9a-f]+ <([^>]+)>/, '$1');
      return `<TR><TD ALIGN="LEFT"${bg}>${dotHtml(`${l.off.toString(16).padStart(4)}  ${text}`)}</TD></TR>`;
    });
    if (!rows.length) rows.push(`<TR><TD>${dotHtml(`+0x${start.toString(16)}`)}</TD></TR>`);
    const border = bad ? ' COLOR="#cc0000" BORDER="3"' : ' COLOR="#888888" BORDER="1"';
    out.push(
      `b${b} [id="b${b}" label=<<TABLE CELLBORDER="0" CELLSPACING="0" CELLPADDING="1"${border}>${rows.join('')}</TABLE>>];`,
    );
  }
  const ext = new Map<string, number>();
  const blockAt = new Map<number, number>();
  blocks.forEach((b, k) => blockAt.set(b.start, k));
  for (const { from, to, kind } of edges) {
    if (skip.has(from)) continue;
    let dst: string;
    if (typeof to === 'number' && blockAt.has(to)) dst = `b${blockAt.get(to)}`;
    else {
      const name = typeof to === 'number' ? `+0x${to.toString(16)}` : to;
      let e = ext.get(name);
      if (e === undefined) {
        e = ext.size;
        ext.set(name, e);
        out.push(`x${e} [shape=box style="dashed,rounded" fontsize=9 label=${dotString(name)}];`);
      }
      dst = `x${e}`;
    }
    const style = hot.has(from) ? 'color="#cc0000" penwidth=2' : (EDGE_STYLE[kind] ?? '');
    out.push(
      `b${from} -> ${dst} [${style}${hot.has(from) && kind !== 'fall' ? ` label=${dotString(kind)} fontcolor="#cc0000"` : ''}];`,
    );
  }
  out.push('}');
  return out.join('\n');
}

/** Removes anything active from a rendered SVG (Graphviz escapes labels; this is a second guard). */
function inert(el: Element): void {
  for (const x of Array.from(el.querySelectorAll('script,foreignObject,iframe'))) x.remove();
  const all = [el, ...Array.from(el.querySelectorAll('*'))];
  for (const e of all)
    for (const a of Array.from(e.attributes)) {
      if (/^on/i.test(a.name) || (/href$/i.test(a.name) && /^\s*javascript:/i.test(a.value))) e.removeAttribute(a.name);
    }
}

interface State {
  file: number;
}

/** Draws the report into `root` and follows location.hash; returns a function that stops following it. */
export function mount(root: HTMLElement, data: ReportData, host: Host): () => void {
  const style = document.createElement('style');
  style.textContent = CSS;
  document.head.append(style);
  root.classList.add('tp');
  root.textContent = '';
  const st: State = { file: 0 };
  const nav: Record<string, HTMLAnchorElement> = {};
  const search = h('input', {
    type: 'search',
    placeholder: 'search symbol… ( / )',
    id: 'tp-search',
    'aria-label': 'search by symbol',
  });
  const header = h('header', null, h('h1', null, 'textpoke'));
  for (const [id, label] of [
    ['summary', 'Summary'],
    ['findings', 'Findings'],
    ['functions', 'Functions'],
    ['model', 'Model'],
  ] as const) {
    nav[id] = h('a', { href: `#/${id}`, id: `tp-nav-${id}` }, label);
    header.append(nav[id]!);
  }
  let sel: HTMLSelectElement | undefined;
  if (data.files.length > 1) {
    sel = h('select', { id: 'tp-file', 'aria-label': 'file' });
    data.files.forEach((f, i) => sel!.append(h('option', { value: String(i) }, f.path)));
    sel.addEventListener('change', () => {
      st.file = Number(sel!.value);
      route();
    });
    header.append(sel);
  }
  header.append(search);
  const main = h('main', { id: 'tp-main' });
  root.append(header, main);

  const onKey = (e: KeyboardEvent): void => {
    if (e.key === '/' && document.activeElement !== search && !(document.activeElement instanceof HTMLInputElement)) {
      e.preventDefault();
      search.focus();
    }
  };
  document.addEventListener('keydown', onKey);
  let searchTimer: ReturnType<typeof setTimeout> | undefined;
  search.addEventListener('input', () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => {
      const q = search.value;
      const want = `#/functions?q=${encodeURIComponent(q)}`;
      if (location.hash !== want) history.replaceState(null, '', want);
      route();
    }, 120);
  });

  const file = (): FileData => data.files[st.file]!;
  const fnLink = (fi: number, idx: number, label: string): HTMLAnchorElement =>
    h('a', { href: `#/fn/${fi}/${idx}`, class: 'mono' }, label);

  function setNav(id: string): void {
    for (const k in nav) nav[k]!.classList.toggle('on', k === id);
  }

  function summary(): void {
    setNav('summary');
    main.textContent = '';
    for (const m of data.missing) main.append(h('div', { class: 'missing' }, m));
    data.files.forEach((f, fi) => {
      const sec = h('section', { class: 'file', 'data-file': String(fi) });
      sec.append(h('h2', null, f.path));
      const t = f.target;
      sec.append(
        h(
          'p',
          null,
          `${t.os}${t.version ? ' ' + t.version : ''}${t.profile ? ` (profile ${t.profile})` : ''}. Checked: ${f.checked}. The “after” disassembly: ${f.patchedFor.startsWith('--cpu') ? `patched for ${f.patchedFor}` : f.patchedFor}.`,
        ),
      );
      if (t.note) sec.append(h('p', { class: 'note' }, t.note));
      const nSites = Object.values(f.counts).reduce((a, b) => a + b, 0);
      const withDetail = f.details.length || f.functions.filter((x) => fnEntry(x).detail >= 0).length;
      sec.append(
        h(
          'div',
          { class: 'cards' },
          h('div', { class: 'card' }, h('b', { id: `tp-count-sites-${fi}` }, String(nSites)), 'patch sites'),
          h('div', { class: 'card' }, h('b', { id: `tp-count-findings-${fi}` }, String(f.findings.length)), 'findings'),
          h('div', { class: 'card' }, h('b', null, String(f.functions.length)), 'functions'),
          h('div', { class: 'card' }, h('b', null, String(withDetail)), 'with a page'),
          h('div', { class: 'card' }, h('b', null, String(f.patchers.reduce((a, p) => a + p[1], 0))), 'patcher writes'),
        ),
      );
      if (f.errors.length) {
        sec.append(h('h3', null, 'Errors'));
        const ul = h('ul', null);
        for (const e of f.errors.slice(0, 50)) ul.append(h('li', { class: 'mono' }, e));
        sec.append(ul);
      }
      sec.append(h('h3', null, 'Findings per check'));
      sec.append(
        barChart(
          f.checks.map((c) => [c.id, c.count]),
          '#c24a4a',
        ),
      );
      sec.append(h('h3', null, 'Sites per table'));
      const tables = Object.entries(f.counts).sort((a, b) => b[1] - a[1]);
      sec.append(tables.length ? barChart(tables) : h('p', { class: 'note' }, 'No patch tables.'));
      if (f.features.length) {
        sec.append(h('h3', null, `Alternatives per feature${f.features.length > 25 ? ' (top 25)' : ''}`));
        sec.append(barChart(f.features.slice(0, 25), '#4aa07a'));
      }
      if (f.patchers.length) {
        sec.append(h('h3', null, `Patchers (${f.patchedFor})`));
        const tb = h(
          'table',
          null,
          h('tr', null, h('th', null, 'patcher'), h('th', null, 'writes'), h('th', null, 'bytes changed')),
        );
        for (const [p, n, b] of f.patchers)
          tb.append(h('tr', null, h('td', null, p), h('td', null, String(n)), h('td', null, String(b))));
        sec.append(tb);
      }
      const top = f.functions
        .map((x, i) => [fnEntry(x), i] as const)
        .filter(([x]) => x.findings > 0)
        .sort((a, b) => b[0].findings - a[0].findings)
        .slice(0, 15);
      if (top.length) {
        sec.append(h('h3', null, 'Functions with the most findings'));
        const ul = h('ul', null);
        for (const [x, i] of top)
          ul.append(
            h(
              'li',
              null,
              fnLink(fi, i, x.name),
              ` ${x.findings} finding${x.findings === 1 ? '' : 's'}, ${x.sites} site${x.sites === 1 ? '' : 's'}`,
            ),
          );
        sec.append(ul);
      }
      main.append(sec);
    });
  }

  function findingsPage(check = '', limit = 500): void {
    setNav('findings');
    main.textContent = '';
    const f = file();
    const shown = check ? f.findings.filter((x) => x.check === check) : f.findings;
    main.append(h('h2', null, `Findings in ${f.path}: ${shown.length}${check ? ` (${check})` : ''}`));
    const filters = h(
      'p',
      { id: 'tp-findings-filter' },
      h('a', { href: '#/findings', class: check ? '' : 'on' }, `all ${f.findings.length}`),
    );
    for (const c of f.checks)
      if (c.count)
        filters.append(
          ' · ',
          h(
            'a',
            {
              href: `#/findings?check=${encodeURIComponent(c.id)}`,
              class: c.id === check ? 'on' : '',
              title: c.describe,
            },
            `${c.id} ${c.count}`,
          ),
        );
    main.append(filters);
    const tb = h(
      'table',
      { id: 'tp-findings' },
      h(
        'tr',
        null,
        h('th', null, 'check'),
        h('th', null, 'severity'),
        h('th', null, 'where'),
        h('th', null, 'message'),
      ),
    );
    for (const x of shown.slice(0, limit)) {
      const where = `${x.symbol}+0x${x.offset.toString(16)}`;
      const rel = x.related.length
        ? h('div', { class: 'note mono' }, ...x.related.map((r) => `${r.symbol}: ${r.message}\n`))
        : null;
      tb.append(
        h(
          'tr',
          { class: 'finding' },
          h('td', { class: 'mono' }, x.check),
          h('td', { class: `sev-${x.severity}` }, x.severity),
          h('td', null, x.fn >= 0 ? fnLink(st.file, x.fn, where) : h('span', { class: 'mono' }, where)),
          h('td', null, x.message, rel),
        ),
      );
    }
    main.append(tb);
    if (shown.length > limit) {
      const b = h('button', null, `show all ${shown.length}`);
      b.addEventListener('click', () => findingsPage(check, Infinity));
      main.append(b);
    }
  }

  function functionsPage(q: string): void {
    setNav('functions');
    main.textContent = '';
    const f = file();
    const ql = q.toLowerCase();
    const multi = data.files.length > 1;
    // A search covers every file of the report; the list without a query is the current file's.
    let rows: Array<readonly [FnSummary, number, number]> = [];
    if (ql)
      data.files.forEach((g, fi) =>
        g.functions.forEach((x, i) => {
          const e = fnEntry(x);
          if (e.name.toLowerCase().includes(ql)) rows.push([e, i, fi]);
        }),
      );
    else
      rows = f.functions
        .map((x, i) => [fnEntry(x), i, st.file] as const)
        .filter(([x]) => x.detail >= 0)
        .sort((a, b) => b[0].findings - a[0].findings || b[0].sites - a[0].sites);
    main.append(
      h(
        'h2',
        null,
        ql
          ? `Functions matching “${q}”: ${rows.length}`
          : `Functions with sites or findings: ${rows.length} of ${f.functions.length}`,
      ),
    );
    const tb = h(
      'table',
      { id: 'tp-functions' },
      h(
        'tr',
        null,
        h('th', null, 'function'),
        h('th', null, 'address'),
        h('th', null, 'size'),
        h('th', null, 'sites'),
        h('th', null, 'findings'),
        multi ? h('th', null, 'file') : null,
      ),
    );
    for (const [x, i, fi] of rows.slice(0, MAX_LIST)) {
      tb.append(
        h(
          'tr',
          { class: x.findings ? 'hl' : '' },
          h('td', null, fnLink(fi, i, x.name)),
          h('td', { class: 'mono' }, x.addr),
          h('td', null, String(x.size)),
          h('td', null, String(x.sites)),
          h('td', null, String(x.findings)),
          multi ? h('td', { class: 'mono' }, data.files[fi]!.path) : null,
        ),
      );
    }
    main.append(tb);
    if (rows.length > MAX_LIST)
      main.append(h('p', { class: 'note' }, `${rows.length - MAX_LIST} more: refine the search.`));
  }

  async function fnPage(fi: number, idx: number): Promise<void> {
    setNav('functions');
    st.file = fi;
    if (sel) sel.value = String(fi);
    main.textContent = '';
    const f = data.files[fi];
    const packed = f?.functions[idx];
    if (!f || !packed) {
      main.append(h('p', null, 'No such function.'));
      return;
    }
    const e = fnEntry(packed);
    const page = h('section', { id: 'tp-fn', 'data-name': e.name });
    main.append(page);
    page.append(h('h2', { class: 'mono' }, e.name));
    page.append(
      h(
        'p',
        { class: 'mono' },
        `${e.addr}, ${e.size} bytes, ${e.sites} site${e.sites === 1 ? '' : 's'}, ${e.findings} finding${e.findings === 1 ? '' : 's'} — ${f.path}`,
      ),
    );
    if (e.detail < 0) {
      page.append(
        h(
          'p',
          { class: 'note' },
          'No patch site, finding or patcher write in this function, so its disassembly is not in this report (textpoke report --all-functions puts every function in).',
        ),
      );
      return;
    }
    const loading = h('p', { class: 'note' }, 'loading…');
    page.append(loading);
    const d = await host.detail(fi, e.detail);
    if (location.hash !== `#/fn/${fi}/${idx}`) return;
    loading.remove();
    page.append(h('p', { class: 'mono', id: 'tp-fn-section' }, `section ${d.section}`));
    const fs = d.findings.map((k) => f.findings[k]!).filter(Boolean);
    if (fs.length) {
      page.append(h('h3', null, 'Findings'));
      const ul = h('ul', { id: 'tp-fn-findings' });
      for (const x of fs)
        ul.append(
          h(
            'li',
            null,
            h('span', { class: `sev-${x.severity}` }, `[${x.check}] `),
            h('span', { class: 'mono' }, `${x.symbol}+0x${x.offset.toString(16)}: `),
            x.message,
            ...x.related.map((r) => h('div', { class: 'note mono' }, `${r.symbol} (${r.address}): ${r.message}`)),
          ),
        );
      page.append(ul);
    }
    if (d.sites.length) {
      page.append(h('h3', null, `Patch sites (${d.sites.length})`));
      const ul = h('ul', { class: 'mono' });
      for (const [off, len, , desc] of d.sites.slice(0, 200))
        ul.append(h('li', null, `+0x${off.toString(16)} (${len} bytes) ${desc}`));
      page.append(ul);
    }
    const before = parseLines(d.before);
    const after = applyChanges(before, d.changes);
    const graphLines = d.graphOf !== 'bytes as built' && after.length ? after : before;

    const nb = blocksOf(d.blocks).length;
    page.append(h('h3', null, `Control-flow graph (${nb} blocks, ${d.graphOf})`));
    page.append(
      h(
        'div',
        { class: 'legend' },
        h('span', { class: 'F' }, 'fence'),
        h('span', { class: 'S' }, 'patch site'),
        h('span', { class: 'X' }, 'finding (red block: the offending branch)'),
        h('span', { class: 'R' }, 'related location'),
        h('span', { style: 'color:#1f8f3a' }, '→ taken'),
        h('span', { style: 'color:#3a7bd5' }, '⇢ alternative'),
        h('span', { style: 'color:#8a3ad5' }, '⇢ jump label'),
      ),
    );
    const g = h('div', { class: 'graph', id: 'tp-graph' });
    page.append(g);
    const draw = async (): Promise<void> => {
      g.textContent = 'laying out…';
      try {
        const viz = await host.viz();
        const svg = viz.renderSVGElement(functionDot(d, graphLines));
        inert(svg);
        g.textContent = '';
        g.append(svg);
        g.setAttribute('data-ready', '1');
        // Bring the offending branch (the first red block) into view.
        const hot = svg.querySelector('g.node polygon[stroke="#cc0000"]')?.closest('g.node');
        if (hot) {
          g.setAttribute('data-hot', hot.id);
          hot.scrollIntoView({ block: 'center', inline: 'center' });
          window.scrollTo(0, 0);
        }
      } catch (err) {
        g.textContent = `graph failed: ${err instanceof Error ? err.message : String(err)}`;
      }
    };
    if (nb === 0) g.textContent = 'no graph (not decodable as code)';
    else if (nb <= GRAPH_AUTO_LIMIT) void draw();
    else {
      const b = h('button', null, `lay out ${nb} blocks`);
      b.addEventListener('click', () => void draw());
      g.append(h('p', { class: 'note' }, `Large graph (${nb} blocks): `), b);
    }

    page.append(
      h(
        'h3',
        null,
        after.length
          ? `Disassembly: as built | ${f.patchedFor.startsWith('--cpu') ? `patched for ${f.patchedFor}` : 'patched'}`
          : `Disassembly (no patcher writes inside this function${f.patchedFor.startsWith('--cpu') ? ` for ${f.patchedFor}` : ''})`,
      ),
    );
    const tb = h('table', { class: 'dis', id: 'tp-dis' });
    const cell = (l: Line | undefined, side: 'l' | 'r'): Node[] =>
      l
        ? [
            h(
              'td',
              {
                class: `${side} ${l.flags
                  .replace(/[^FSXRP]/g, '')
                  .split('')
                  .join(' ')}`,
              },
              hexAdd(d.addr, l.off).slice(-8),
            ),
            h('td', { class: `${side}b b` }, l.bytes),
            h(
              'td',
              {
                class: `${side} ${l.flags
                  .replace(/[^FSXR]/g, '')
                  .split('')
                  .join(' ')}`,
              },
              l.text,
            ),
          ]
        : [h('td', { class: side }), h('td', { class: `${side}b` }), h('td', { class: side })];
    let n = 0;
    const rows = after.length
      ? alignRows(before, after)
      : before.map((l) => [[l], [], false] as [Line[], Line[], boolean]);
    outer: for (const [L, R, chg] of rows) {
      const k = Math.max(L.length, R.length);
      for (let i = 0; i < k; i++) {
        if (n++ >= MAX_ROWS) break outer;
        const tr = h('tr', { class: chg ? 'chg' : '' }, ...cell(L[i], 'l'));
        if (after.length) tr.append(h('td', { class: 'gap' }), ...cell(R[i], 'r'));
        tb.append(tr);
      }
    }
    page.append(tb);
    if (n > MAX_ROWS) page.append(h('p', { class: 'note' }, `Only the first ${MAX_ROWS} rows are shown.`));
  }

  function modelPage(): void {
    setNav('model');
    main.textContent = '';
    main.append(h('h2', null, 'Live-patching protocols (model checker)'));
    if (!data.model?.length) {
      main.append(h('p', { class: 'note' }, 'No model-checker results in this report.'));
      return;
    }
    main.append(
      h(
        'p',
        null,
        'Each protocol for rewriting live code is explored exhaustively against each scenario (concurrent CPUs, NMI and #MC). Unsafe cells carry the shortest counterexample as a sequence diagram.',
      ),
    );
    const prot = [...new Set(data.model.map((m) => m.protocol))];
    const scen = [...new Set(data.model.map((m) => m.scenario))];
    const tb = h(
      'table',
      { id: 'tp-model' },
      h('tr', null, h('th', null, 'protocol'), ...scen.map((x) => h('th', { class: 'mono' }, x))),
    );
    for (const p of prot) {
      const tr = h('tr', null, h('td', { class: 'mono' }, p));
      for (const sc of scen) {
        const m = data.model.find((x) => x.protocol === p && x.scenario === sc);
        if (!m) {
          tr.append(h('td', null, ''));
          continue;
        }
        const label = m.verdict === 'unsafe' ? `UNSAFE: ${m.property ?? ''}` : m.verdict;
        tr.append(
          h(
            'td',
            { class: m.verdict === 'unsafe' ? 'sev-error' : '', title: `${m.states} states` },
            m.svg ? h('a', { href: `#/model/${data.model.indexOf(m)}` }, label) : label,
          ),
        );
      }
      tb.append(tr);
    }
    main.append(tb);
    main.append(
      h(
        'p',
        { class: 'note' },
        'incomplete: the state bound was reached before the search finished (textpoke report --model-states N raises it; textpoke model explores one cell without a bound). The last columns, when present, are real writes of the reported files, rewritten while CPUs run.',
      ),
    );
  }

  function tracePage(i: number): void {
    setNav('model');
    main.textContent = '';
    const m = data.model?.[i];
    if (!m) {
      main.append(h('p', null, 'No such trace.'));
      return;
    }
    main.append(
      h('h2', { class: 'mono' }, `${m.protocol} on ${m.scenario}: ${m.verdict}${m.property ? ` (${m.property})` : ''}`),
    );
    if (m.svg) {
      // As an image: an SVG shown through <img> can never run script.
      const url = URL.createObjectURL(new Blob([m.svg], { type: 'image/svg+xml' }));
      main.append(
        h(
          'div',
          { class: 'trace' },
          h('img', { src: url, alt: `sequence diagram: ${m.protocol} on ${m.scenario}`, id: 'tp-trace' }),
        ),
      );
    }
    if (m.text) main.append(h('pre', { class: 'mono' }, m.text));
  }

  function route(): void {
    const hsh = location.hash || '#/summary';
    let m: RegExpExecArray | null;
    if ((m = /^#\/fn\/(\d+)\/(\d+)$/.exec(hsh))) void fnPage(Number(m[1]), Number(m[2]));
    else if ((m = /^#\/functions(?:\?q=(.*))?$/.exec(hsh))) {
      const q = decodeURIComponent(m[1] ?? '');
      if (search.value !== q && document.activeElement !== search) search.value = q;
      functionsPage(q);
    } else if ((m = /^#\/findings(?:\?check=(.*))?$/.exec(hsh))) findingsPage(decodeURIComponent(m[1] ?? ''));
    else if (hsh === '#/model') modelPage();
    else if ((m = /^#\/model\/(\d+)$/.exec(hsh))) tracePage(Number(m[1]));
    else summary();
    root.setAttribute('data-route', hsh);
  }
  window.addEventListener('hashchange', route);
  route();
  return () => {
    window.removeEventListener('hashchange', route);
    document.removeEventListener('keydown', onKey);
    style.remove();
  };
}
