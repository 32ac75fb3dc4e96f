// textpoke report on xen-syms-4.17-amd64: time to write the report (next to `objdump -d` on the same file,
// the usual way to read its text), the report's size, and in headless chromium (Debian's package, through
// playwright-core) the time to first paint, the time until the summary is drawn, and the time to open a
// function page with its control-flow graph laid out by Graphviz (WebAssembly, loaded on first use).
// Goals: under 10 MB, painted in under 2 s.
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { exec, median, paths, root, table, textpoke } from './lib.mjs';

async function browserTimes(html, runs) {
  const { launchChromium } = await import(join(root, 'dist', 'test', 'e2e', 'browser.js'));
  /** @type {Record<'paint' | 'summary' | 'fcp' | 'load' | 'graph', number[]>} */
  const out = { paint: [], summary: [], fcp: [], load: [], graph: [] };
  for (let r = 0; r < runs; r++) {
    const b = await launchChromium();
    try {
      const page = await b.context.newPage();
      await page.goto(pathToFileURL(html).href, { waitUntil: 'load' });
      await page.waitForSelector('#tp-main section.file');
      await page.waitForFunction(() => performance.getEntriesByName('tp-painted').length > 0);
      const t = await page.evaluate(() => ({
        // The summary's first frame: the viewer marks tp-painted in the frame after it drew the summary.
        paint: performance.getEntriesByName('tp-painted')[0].startTime,
        summary: performance.getEntriesByName('tp-summary')[0].startTime,
        fcp: performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? NaN,
        load:
          /** @type {PerformanceNavigationTiming | undefined} */ (performance.getEntriesByType('navigation')[0])
            ?.loadEventEnd ?? NaN,
      }));
      out.fcp.push(t.fcp / 1000);
      out.load.push(t.load / 1000);
      out.paint.push(t.paint / 1000);
      out.summary.push(t.summary / 1000);
      await page.evaluate(() => {
        location.hash = '#/functions?q=pv_map_ldt_shadow_page';
      });
      await page.waitForSelector('#tp-functions a');
      const t0 = Date.now();
      await page.click('#tp-functions a >> nth=0');
      await page.waitForSelector('#tp-graph[data-ready="1"]', { timeout: 120000 });
      out.graph.push((Date.now() - t0) / 1000);
    } finally {
      await b.close();
    }
  }
  const stat = (xs) => {
    const s = [...xs].sort((a, b) => a - b);
    return { median: s[Math.floor(s.length / 2)], min: s[0], max: s[s.length - 1], runs: s.length };
  };
  return {
    summary: stat(out.summary),
    paint: stat(out.paint),
    fcp: stat(out.fcp),
    load: stat(out.load),
    graph: stat(out.graph),
  };
}

export async function run({ quick = false } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'textpoke-bench-report-'));
  try {
    const html = join(dir, 'xen-syms.html');
    const runs = quick ? 1 : 3;
    const gen = [
      {
        name: 'textpoke report xen-syms (default model bound)',
        ...(await median(runs, () => exec(process.execPath, [textpoke, 'report', paths.xenSyms, '-o', html]))),
      },
      {
        name: 'objdump -d xen-syms (peer: the text alone)',
        ...(await median(runs, () => exec('sh', ['-c', `objdump -d '${paths.xenSyms}' > /dev/null`]))),
      },
    ];
    table('report: writing the xen-syms-4.17-amd64 report (objdump time / textpoke time)', gen);
    const size = statSync(html).size;
    const b = await browserTimes(html, quick ? 1 : 3);
    process.stdout.write(`\nreport: xen-syms-4.17-amd64 in headless chromium (goals: < 10 MB, first paint < 2 s)\n`);
    process.stdout.write(
      `  ${'size'.padEnd(46)} ${(size / 1e6).toFixed(2).padStart(8)} MB  ${size < 10e6 ? 'ok' : 'OVER 10 MB'}\n`,
    );
    for (const [k, label] of [
      ['summary', 'summary drawn (from navigation start)'],
      ['paint', 'summary painted (next frame)'],
      ['fcp', 'first contentful paint'],
      ['load', 'whole page parsed and loaded'],
      ['graph', 'open pv_map_ldt_shadow_page: graph laid out'],
    ]) {
      const s = b[k];
      process.stdout.write(
        `  ${label.padEnd(46)} ${s.median.toFixed(3).padStart(8)} s  (min ${s.min.toFixed(3)}, max ${s.max.toFixed(3)}, ${s.runs} runs)${k === 'paint' ? (s.median < 2 ? '  ok' : '  OVER 2 s') : ''}\n`,
      );
    }
    return { generate: gen, sizeBytes: size, browser: b };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await run({ quick: process.argv.includes('--quick') });
