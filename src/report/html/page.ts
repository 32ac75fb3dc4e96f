/**
 * Assembles the self-contained HTML report: the summary data as JSON (every `<`, `>`, `&` written as a
 * \u escape so no input string can close the script element), each file's function pages gzip-compressed
 * and base64-encoded (unpacked by the browser's DecompressionStream when the first page is opened),
 * Graphviz's WebAssembly build as inert text (evaluated when the first graph is drawn) and the viewer.
 * Nothing is fetched at view time. Browser-safe: the caller passes the viewer's and Graphviz's
 * JavaScript in (the CLI reads them from disk).
 */
import { gzipSync, strToU8 } from 'fflate';
import type { ReportData } from './data.js';

export interface PageParts {
  /** Compiled viewer module (src/report/html/viewer.ts). */
  readonly viewerJs: string;
  /** Graphviz for the browser, defining a global `Viz` (@viz-js/viz's dist/viz-global.js). */
  readonly vizJs: string;
}

/** JSON text safe inside a <script> element: no '<', '>', '&' or line separators survive literally. */
export function jsonForScript(v: unknown): string {
  return JSON.stringify(v).replace(/[<>&\u2028\u2029]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'));
}

/** Escapes text for HTML element content and attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

function base64(b: Uint8Array): string {
  let s = '';
  const CH = 0x8000;
  for (let i = 0; i < b.length; i += CH) s += String.fromCharCode(...b.subarray(i, i + CH));
  return btoa(s);
}

/** Text placed raw inside a <script> element must not contain a closing tag. */
function rawScript(js: string, what: string): string {
  if (/<\/script/i.test(js) || /<!--/.test(js))
    throw new Error(`${what} contains '</script' or '<!--' and cannot be inlined`);
  return js;
}

/** Function pages per compressed chunk. */
export const CHUNK = 256;

const BOOT = `
const CHUNK = ${CHUNK};
const data = JSON.parse(document.getElementById('tp-data').textContent);
// The function pages and Graphviz come later in the document: wait for them when first needed.
const parsed = new Promise((ok) => document.readyState === 'loading' ? document.addEventListener('DOMContentLoaded', () => ok(), { once: true }) : ok());
async function inflate(id) {
  await parsed;
  const b64 = document.getElementById(id).textContent;
  const bin = atob(b64);
  const u = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) u[i] = bin.charCodeAt(i);
  const stream = new Blob([u]).stream().pipeThrough(new DecompressionStream('gzip'));
  return JSON.parse(await new Response(stream).text());
}
let vizP;
const cache = new Map();
const host = {
  viz() {
    return vizP ??= (async () => {
      await parsed;
      if (!globalThis.Viz) {
        const s = document.createElement('script');
        s.textContent = document.getElementById('tp-viz').textContent;
        document.head.append(s);
      }
      return globalThis.Viz.instance();
    })();
  },
  async detail(f, i) {
    const key = f + '-' + Math.floor(i / CHUNK);
    let p = cache.get(key);
    if (!p) { p = inflate('tp-details-' + key); cache.set(key, p); }
    return (await p)[i % CHUNK];
  },
};
mount(document.getElementById('app'), data, host);
performance.mark('tp-summary');
requestAnimationFrame(() => setTimeout(() => performance.mark('tp-painted'), 0));
`;

/** The whole report page. */
export function renderPage(data: ReportData, parts: PageParts): string {
  const summary: ReportData = { ...data, files: data.files.map((f) => ({ ...f, details: [] })) };
  const title = `textpoke report: ${data.files.map((f) => f.path.split('/').pop()).join(', ')}`.slice(0, 200);
  // The viewer is compiled as a module with no imports; its `export` keywords go, so it runs as a classic script.
  const viewer = rawScript(
    parts.viewerJs
      .replace(/^\/\/# sourceMappingURL=.*$/m, '')
      .replace(/^export (?=(async )?function|const|let|class)/gm, ''),
    'viewer',
  );
  if (/^\s*(import|export)\b/m.test(viewer))
    throw new Error('the viewer must have no imports or exports left to run as a classic script');
  const out: string[] = [];
  out.push('<!doctype html>');
  out.push('<html lang="en"><head><meta charset="utf-8">');
  out.push('<meta name="viewport" content="width=device-width, initial-scale=1">');
  out.push(`<meta name="generator" content="${escapeHtml(data.generator)}">`);
  out.push(`<title>${escapeHtml(title)}</title>`);
  out.push('<style>body{margin:0}</style></head><body>');
  out.push(
    '<div id="app"><p style="font:14px system-ui;padding:12px">Loading the report… (JavaScript is needed to view it)</p></div>',
  );
  out.push(`<script type="application/json" id="tp-data">${jsonForScript(summary)}</script>`);
  // A classic script right after the summary data runs while the rest of the page (function pages,
  // Graphviz: megabytes) is still being parsed, so the summary paints at once.
  out.push(`<script>(function () {\n${viewer}\n${BOOT}\n})();</script>`);
  // Function pages in chunks: opening one page unpacks only its chunk.
  data.files.forEach((f, i) => {
    for (let c = 0; c * CHUNK < f.details.length; c++) {
      const part = JSON.stringify(f.details.slice(c * CHUNK, (c + 1) * CHUNK));
      out.push(
        `<script type="application/octet-stream" id="tp-details-${i}-${c}">${base64(gzipSync(strToU8(part), { level: 9 }))}</script>`,
      );
    }
  });
  out.push(`<script type="text/plain" id="tp-viz">${rawScript(parts.vizJs, 'Graphviz')}</script>`);
  out.push('</body></html>');
  return out.join('\n');
}
