/**
 * End to end: `textpoke report` on Debian's xen-syms 4.17 and Linux 6.1 xfs.ko, opened in headless
 * chromium (Debian's package, driven by playwright-core). Each test loads the page from disk (nothing
 * else is reachable: the page must be self-contained), checks the expected sites and findings, opens a
 * function, waits for Graphviz to lay out its graph, and saves screenshots under test-output/e2e/.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Page } from 'playwright-core';
import { corpus, repoRoot } from '../support/corpus.js';
import { tempDir } from '../support/build.js';
import { LINUX61_ENTRY, nmXenAltCount, readelfTableCounts } from '../support/readelf.js';
import { launchChromium } from './browser.js';

export const shots = join(repoRoot, 'test-output', 'e2e');
mkdirSync(shots, { recursive: true });

function report(input: string, name: string, extra: string[] = []): string {
  const out = join(tempDir('textpoke-report-'), name);
  execFileSync(
    process.execPath,
    [join(repoRoot, 'bin', 'textpoke.js'), 'report', input, '-o', out, '--model-states', '3000', ...extra],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  return out;
}

/** Opens a page, failing on any script error or any request that leaves the file. */
async function open(page: Page, file: string, errors: string[]): Promise<void> {
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('request', (r) => {
    if (!/^(file|data|blob):/.test(r.url())) errors.push(`network request: ${r.url()}`);
  });
  await page.goto(pathToFileURL(file).href);
  await page.waitForSelector('#tp-main section.file');
}

async function openFunction(page: Page, name: string): Promise<void> {
  await page.fill('#tp-search', name);
  await page.waitForSelector(`#tp-functions a:text-is("${name}")`);
  await page.click(`#tp-functions a:text-is("${name}")`);
  await page.waitForSelector(`#tp-fn[data-name="${name}"]`);
  await page.waitForSelector('#tp-graph[data-ready="1"]', { timeout: 60_000 });
}

test('report on xen-syms: sites, the outlined-predicate findings, a function graph with the offending branch, a model trace', async () => {
  const b = await launchChromium(); // first: a browser that cannot start fails at once
  const errors: string[] = [];
  try {
    const html = report(corpus.xenSyms, 'xen-syms.html');
    const size = statSync(html).size;
    assert.ok(size < 10e6, `report is ${size} bytes`);
    const text = readFileSync(html, 'utf8');
    const json = text.slice(
      text.indexOf('id="tp-data">') + 13,
      text.indexOf('</script>', text.indexOf('id="tp-data">')),
    );
    assert.ok(json.length > 1000 && !json.includes('<'), 'embedded JSON holds no raw <');

    const page = await b.context.newPage();
    await open(page, html, errors);
    assert.equal(await page.textContent('#tp-count-sites-0'), String(nmXenAltCount(corpus.xenSyms)));
    const nFindings = Number(await page.textContent('#tp-count-findings-0'));
    assert.ok(nFindings > 20, `findings: ${nFindings}`);
    await page.screenshot({ path: join(shots, 'report-xen-summary.png') });

    await page.click('#tp-nav-findings');
    await page.waitForSelector('#tp-findings');
    assert.equal(await page.locator('#tp-findings tr.finding').count(), Math.min(nFindings, 500));
    const rows = await page.locator('#tp-findings tr.finding').allTextContents();
    assert.ok(
      rows.some(
        (r) => r.includes('nospec-outlined') && r.includes('xatp_permission_check+0x') && r.includes('escapes'),
      ),
      'do_memory_op branches on xatp_permission_check() unfenced',
    );
    assert.ok(rows.some((r) => r.includes('nospec-branch')));
    await page.click('#tp-findings-filter a:has-text("nospec-branch")');
    await page.waitForSelector('#tp-findings-filter a.on:has-text("nospec-branch")');
    const only = await page.locator('#tp-findings tr.finding td:first-child').allTextContents();
    assert.ok(only.length > 0 && only.every((c) => c === 'nospec-branch'), 'filtered by check');

    await openFunction(page, 'xatp_permission_check');
    assert.match((await page.textContent('#tp-fn-findings'))!, /nospec-outlined.*escapes/);
    assert.match((await page.textContent('#tp-fn-findings'))!, /do_memory_op\+0x[0-9a-f]+.*branch on the result/);
    const hot = await page.getAttribute('#tp-graph', 'data-hot');
    assert.ok(hot && /^b\d+$/.test(hot), 'the fenced arm is a red block');
    const hotText = await page.locator(`#tp-graph g#${hot}`).textContent();
    assert.match(hotText!, /lfence/);
    assert.ok((await page.locator('#tp-graph svg g.node').count()) >= 3);
    assert.ok((await page.locator('#tp-dis td.X').count()) >= 1, 'the finding is marked in the disassembly');
    await page.screenshot({ path: join(shots, 'report-xen-function.png') });

    await page.click('#tp-nav-model');
    await page.waitForSelector('#tp-model');
    const heads = await page.locator('#tp-model th').allTextContents();
    assert.ok(heads.includes('multi-insn-alternative'), 'built-in scenarios');
    assert.ok(
      heads.some((x) => /^xen-syms-4\.17-amd64: .+\+0x[0-9a-f]+ \(xen-alternatives\)$/.test(x)),
      `a real write of the file is a scenario: ${heads.join(', ')}`,
    );
    await page.click('#tp-model a:has-text("UNSAFE")');
    await page.waitForSelector('#tp-trace');
    await page.waitForFunction(() => (document.getElementById('tp-trace') as HTMLImageElement).naturalWidth > 100);
    await page.screenshot({ path: join(shots, 'report-xen-model-trace.png') });
    assert.deepEqual(errors, []);
  } finally {
    await b.close();
  }
});

test('report on xfs.ko: sites per table, no findings, a retpoline and a return thunk patched side by side', async () => {
  const b = await launchChromium(); // first: a browser that cannot start fails at once
  const errors: string[] = [];
  try {
    const html = report(corpus.module61('fs/xfs/xfs.ko'), 'xfs.html');
    const page = await b.context.newPage();
    await open(page, html, errors);
    // Every entry of every table section, as readelf sizes them.
    const expected = Object.values(readelfTableCounts(corpus.module61('fs/xfs/xfs.ko'), LINUX61_ENTRY)).reduce(
      (a, n) => a + n,
      0,
    );
    assert.ok(expected > 5000);
    assert.equal(await page.textContent('#tp-count-sites-0'), String(expected));
    assert.equal(await page.textContent('#tp-count-findings-0'), '0');
    await page.screenshot({ path: join(shots, 'report-xfs-summary.png') });

    await openFunction(page, '__traceiter_xfs_attr_leaf_list');
    const left = (await page.locator('#tp-dis tr.chg td.l').allTextContents()).join(' ');
    const right = (await page.locator('#tp-dis tr.chg td.r').allTextContents()).join(' ');
    assert.match(left, /call __x86_indirect_thunk_rax/);
    assert.match(left, /jmp __x86_return_thunk/);
    assert.match(right, /call \*%rax/);
    assert.match(right, /\bret\b/);
    assert.ok((await page.locator('#tp-graph svg g.node').count()) >= 3);
    await page.screenshot({ path: join(shots, 'report-xfs-function.png'), fullPage: true });
    assert.deepEqual(errors, []);
  } finally {
    await b.close();
  }
});
