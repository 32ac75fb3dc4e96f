/**
 * End to end: the built playground (web/, `npm run build:web`) served from 127.0.0.1, driven in headless
 * chromium. A file is chosen through the page's file input and analysed in the browser's worker; the test
 * sees the expected sites and findings, opens a function, waits for its graph, and saves screenshots under
 * test-output/e2e/. The page must make no request beyond the local server.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { readFileSync } from 'node:fs';
import { imageFromBytes } from '../../src/elf/load.js';
import { readSites } from '../../src/sites/read.js';
import { detectTarget } from '../../src/target/detect.js';
import { LINUX61_ENTRY, nmXenAltCount, readelfTableCounts } from '../support/readelf.js';
import { corpus, repoRoot } from '../support/corpus.js';
import { assemble } from '../support/build.js';
import { launchChromium } from './browser.js';
import { serve } from './serve.js';

const shots = join(repoRoot, 'test-output', 'e2e');
mkdirSync(shots, { recursive: true });
const webDist = join(repoRoot, 'dist', 'web');

/** Builds the playground once per run (vite, a few seconds). */
function buildWeb(): void {
  execFileSync(
    process.execPath,
    [
      join(repoRoot, 'node_modules', 'vite', 'bin', 'vite.js'),
      'build',
      '--config',
      join(repoRoot, 'web', 'vite.config.ts'),
      '--logLevel',
      'error',
    ],
    { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  assert.ok(existsSync(join(webDist, 'index.html')));
}

async function load(page: Page, url: string, file: string, errors: string[]): Promise<void> {
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('request', (r) => {
    if (!r.url().startsWith(url) && !/^(data|blob):/.test(r.url())) errors.push(`request: ${r.url()}`);
  });
  await page.goto(url);
  await page.waitForSelector('body[data-state="ready"]');
  await page.setInputFiles('#file', file);
  await page.waitForSelector('body[data-state="done"], body[data-state="error"]', { timeout: 120_000 });
  assert.equal(await page.getAttribute('body', 'data-state'), 'done', (await page.textContent('#status')) ?? '');
  await page.waitForSelector('#tp-main section.file');
}

async function openFunction(page: Page, name: string): Promise<void> {
  await page.fill('#tp-search', name);
  await page.click(`#tp-functions a:text-is("${name}")`);
  await page.waitForSelector(`#tp-fn[data-name="${name}"]`);
  await page.waitForSelector('#tp-graph[data-ready="1"]', { timeout: 60_000 });
}

test('playground: xen-syms, xfs.ko, a 6.12 xfs.ko.xz (chosen) and an object (dropped) analysed in the browser', async () => {
  const b = await launchChromium(); // first: a browser that cannot start fails the test before anything is built or served
  let server: Awaited<ReturnType<typeof serve>> | undefined;
  try {
    buildWeb();
    server = await serve(webDist);
    const errors: string[] = [];
    const page = await b.context.newPage();
    await load(page, server.url, corpus.xenSyms, errors);
    assert.equal(await page.textContent('#tp-count-sites-0'), String(nmXenAltCount(corpus.xenSyms)));
    assert.ok(Number(await page.textContent('#tp-count-findings-0')) > 20);
    assert.match((await page.textContent('#status'))!, /analysed in this browser/);
    await page.screenshot({ path: join(shots, 'playground-xen-summary.png') });
    await page.click('#tp-nav-findings');
    // The page renders on a hash change: wait for the rows before reading them (allTextContents does not wait).
    await page.waitForSelector('#tp-findings tr.finding');
    const rows = await page.locator('#tp-findings tr.finding').allTextContents();
    assert.ok(rows.some((r) => r.includes('nospec-outlined') && r.includes('xatp_permission_check+0x')));
    await openFunction(page, 'xatp_permission_check');
    assert.match(
      (await page.locator(`#tp-graph g#${await page.getAttribute('#tp-graph', 'data-hot')}`).textContent())!,
      /lfence/,
    );
    await page.screenshot({ path: join(shots, 'playground-xen-function.png') });

    const page2 = await b.context.newPage();
    await load(page2, server.url, corpus.module61('fs/xfs/xfs.ko'), errors);
    assert.equal(
      await page2.textContent('#tp-count-sites-0'),
      String(
        Object.values(readelfTableCounts(corpus.module61('fs/xfs/xfs.ko'), LINUX61_ENTRY)).reduce((a, n) => a + n, 0),
      ),
    );
    assert.equal(await page2.textContent('#tp-count-findings-0'), '0');
    await openFunction(page2, '__traceiter_xfs_attr_leaf_list');
    assert.match((await page2.locator('#tp-dis tr.chg td.r').allTextContents()).join(' '), /call \*%rax/);
    await page2.screenshot({ path: join(shots, 'playground-xfs-function.png'), fullPage: true });

    // A compressed 6.12 module: unpacked by the xz WebAssembly decoder in the browser.
    const xz = join(corpus.modules612, 'fs', 'xfs', 'xfs.ko.xz');
    const img = await imageFromBytes(readFileSync(xz), xz);
    const expected = readSites(img, detectTarget(img).profile!).sites.length;
    const page3 = await b.context.newPage();
    await load(page3, server.url, xz, errors);
    assert.equal(await page3.textContent('#tp-count-sites-0'), String(expected));
    assert.match((await page3.textContent('#tp-main section.file p'))!, /linux 6\.12/);
    await page3.screenshot({ path: join(shots, 'playground-xfs-612-xz-summary.png') });

    // Drag and drop: a small object with a fence on one side of a branch.
    const obj = assemble('report/one-sided.S');
    const page4 = await b.context.newPage();
    page4.on('pageerror', (e) => errors.push(e.message));
    await page4.goto(server.url);
    await page4.waitForSelector('body[data-state="ready"]');
    await page4.evaluate(
      ({ b64, name }) => {
        const bin = atob(b64);
        const u = new Uint8Array(bin.length);
        for (let i = 0; i < bin.length; i++) u[i] = bin.charCodeAt(i);
        const dt = new DataTransfer();
        dt.items.add(new File([u], name));
        const drop = document.getElementById('drop')!;
        drop.dispatchEvent(new DragEvent('dragover', { dataTransfer: dt, bubbles: true, cancelable: true }));
        drop.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
      },
      { b64: readFileSync(obj).toString('base64'), name: 'one-sided.o' },
    );
    await page4.waitForSelector('body[data-state="done"]', { timeout: 60_000 });
    assert.equal(await page4.textContent('#tp-count-findings-0'), '1');
    await page4.click('#tp-nav-findings');
    assert.match((await page4.textContent('#tp-findings tr.finding'))!, /nospec-branch.*one_sided\+0x2/);
    assert.deepEqual(errors, []);
  } finally {
    try {
      await b.close();
    } finally {
      await server?.close();
    }
  }
});
