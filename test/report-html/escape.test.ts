/**
 * Every string that comes from an input (symbol, section and file names, disassembly) must stay text in
 * the HTML report. Unit tests pin the escaping helpers; the end-to-end test assembles an object whose
 * symbol, section and file names hold HTML and script, reports it, opens the report in headless chromium
 * on every view (summary, findings, search, function page with its Graphviz graph) and asserts that no
 * markup was created from the names, nothing ran, and the names read back as the literal text.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { escapeHtml, jsonForScript } from '../../src/report/html/page.js';
import { dotHtml, dotString } from '../../src/report/html/viewer.js';
import { assemble, tempDir } from '../support/build.js';
import { repoRoot } from '../support/corpus.js';
import { launchChromium } from '../e2e/browser.js';

test('jsonForScript leaves no <, > or & and round-trips', () => {
  const v = { s: '</script><script>alert(1)</script>&\u2028\u2029' };
  const j = jsonForScript(v);
  assert.ok(!/[<>&\u2028\u2029]/.test(j), j);
  assert.deepEqual(JSON.parse(j), v);
});

test('escapeHtml, dotHtml and dotString escape markup and quoting', () => {
  assert.equal(escapeHtml(`<a href="x" title='y'>&`), '&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;');
  assert.equal(dotHtml('<b>&"</b>'), '&lt;b&gt;&amp;&quot;&lt;/b&gt;');
  assert.equal(dotString('a"b\\c\n'), '"a\\"b\\\\c "');
});

const SCRIPT = '<script>window.__pwned=2</script>';
const IMG = `<img src=x onerror=window.__pwned=3>&amp;'`;
const SRC = `
	.section ".text.<img src=x onerror=window.__pwned=1>","ax",@progbits
	.globl "${SCRIPT}"
	.type "${SCRIPT}",@function
"${SCRIPT}":
	call "${IMG}"
	test %eax,%eax
	jne 1f
	lfence
	ret
1:	mov (%rdi),%eax
	ret
	.size "${SCRIPT}", .-"${SCRIPT}"
`;

test('hostile symbol, section and file names stay text in the report', async () => {
  const obj = assemble('hostile.S', { inline: SRC });
  const dir = tempDir('textpoke-hostile-');
  const input = join(dir, '<svg onload=window.__pwned=4>.o');
  copyFileSync(obj, input);
  const html = join(dir, 'r.html');
  execFileSync(
    process.execPath,
    [join(repoRoot, 'bin', 'textpoke.js'), 'report', input, '-o', html, '--model-states', '0'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const text = readFileSync(html, 'utf8');
  assert.ok(!text.includes('<script>window'), 'no raw script tag from a symbol name in the file');
  assert.ok(!text.includes('<img src=x'), 'no raw img tag from a symbol name in the file');
  assert.ok(!text.includes('<svg onload'), 'no raw svg tag from the file name');

  const b = await launchChromium();
  try {
    const page = await b.context.newPage();
    const dialogs: string[] = [];
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    await page.goto(pathToFileURL(html).href);
    await page.waitForSelector('#tp-main section.file');
    const injected = async (): Promise<void> => {
      const r = await page.evaluate(() => ({
        pwned: (window as unknown as { __pwned?: number }).__pwned,
        imgs: document.querySelectorAll('#app img').length,
        scripts: document.querySelectorAll('#app script, #app iframe, #app foreignObject').length,
        handlers: Array.from(document.querySelectorAll('#app *')).filter((e) =>
          Array.from(e.attributes).some((a) => /^on/i.test(a.name)),
        ).length,
      }));
      assert.deepEqual(r, { pwned: undefined, imgs: 0, scripts: 0, handlers: 0 });
    };
    await injected();
    assert.ok(
      (await page.textContent('#tp-main h2'))!.includes('<svg onload=window.__pwned=4>.o'),
      'file name shown as text',
    );

    await page.click('#tp-nav-findings');
    await page.waitForSelector('#tp-findings tr.finding');
    assert.ok((await page.textContent('#tp-findings'))!.includes(`${SCRIPT}+0x`), 'symbol shown as text in findings');
    await injected();

    await page.fill('#tp-search', '<script>');
    await page.waitForSelector('#tp-functions a');
    assert.equal(await page.textContent('#tp-functions a'), SCRIPT);
    await page.click('#tp-functions a');
    await page.waitForSelector('#tp-graph[data-ready="1"]', { timeout: 60_000 });
    assert.equal(await page.textContent('#tp-fn h2'), SCRIPT);
    assert.equal(await page.textContent('#tp-fn-section'), 'section .text.<img src=x onerror=window.__pwned=1>');
    assert.ok(
      (await page.textContent('#tp-graph svg'))!.includes(`call ${IMG}`),
      'call target named as text inside the graph',
    );
    assert.ok(
      (await page.textContent('#tp-dis'))!.includes(`call ${IMG}`),
      'call target named as text in the disassembly',
    );
    await injected();
    await page.screenshot({ path: join(repoRoot, 'test-output', 'e2e', 'report-hostile-names.png'), fullPage: true });
    assert.deepEqual(dialogs, []);
  } finally {
    await b.close();
  }
});
