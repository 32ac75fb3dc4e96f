/**
 * The report's data and page assembly without a browser: analyse() on an assembled object (flags for
 * fences, sites and findings, blocks and edges), the before/after alignment, the DOT text, and the page's
 * chunked, escaped embedding.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { imageFromBytes } from '../../src/elf/load.js';
import { analyse, FnDetail, ReportData } from '../../src/report/html/data.js';
import { CHUNK, renderPage } from '../../src/report/html/page.js';
import { alignRows, functionDot } from '../../src/report/html/viewer.js';
import { applyChanges, parseLines } from '../../src/report/html/wire.js';
import { assemble } from '../support/build.js';

test('analyse: a one-sided fence gives a finding, a page with flags, blocks and a taken edge', async () => {
  const path = assemble('report/one-sided.S');
  const img = await imageFromBytes(readFileSync(path), path);
  const f = analyse(img, {});
  assert.equal(f.findings.length, 1);
  assert.equal(f.findings[0]!.check, 'nospec-branch');
  assert.equal(f.checks.find((c) => c.id === 'nospec-branch')!.count, 1);
  const entry = f.functions.find((e) => e[0] === 'one_sided')!;
  assert.equal(entry[4], 1);
  assert.ok(entry[5] >= 0, 'has a page');
  assert.equal(f.functions.find((e) => e[0] === 'plain')![5], -1, 'nothing to show: no page');
  const d = f.details[entry[5]]!;
  const lines = parseLines(d.before);
  assert.match(lines.find((l) => l.text.startsWith('jne'))!.flags, /X/);
  assert.match(lines.find((l) => l.text === 'lfence')!.flags, /F/);
  assert.equal(d.blocks.length / 2, 3);
  const kinds = new Set(d.edges.filter((_, k) => k % 3 === 2));
  assert.ok(kinds.has('taken') && kinds.has('fall'));
  const dot = functionDot(d, lines);
  assert.match(dot, /^digraph cfg \{/);
  assert.match(dot, /COLOR="#cc0000" BORDER="3"/, 'offending block drawn red');
  assert.match(dot, /BGCOLOR="#c9f0c9">[^<]*lfence/, 'fence row green');
});

test('alignRows and applyChanges: unchanged lines pair up, a rewritten range is one changed row', () => {
  const before = parseLines(
    ['0\t55\tpush %rbp\t', '1\te8 00 00 00 00\tcall __x86_indirect_thunk_rax\tS', '6\tc3\tret\t'].join('\n'),
  );
  const after = applyChanges(before, [[1, 6, ['1\tff d0\tcall *%rax\tSP', '3\t0f 1f 00\tnopl (%rax)\tP'].join('\n')]]);
  assert.deepEqual(
    after.map((l) => l.off),
    [0, 1, 3, 6],
  );
  const rows = alignRows(before, after);
  assert.equal(rows.length, 3);
  assert.deepEqual(
    rows.map((r) => r[2]),
    [false, true, false],
  );
  assert.deepEqual(
    rows[1]![0].map((l) => l.text),
    ['call __x86_indirect_thunk_rax'],
  );
  assert.deepEqual(
    rows[1]![1].map((l) => l.text),
    ['call *%rax', 'nopl (%rax)'],
  );
  assert.deepEqual(applyChanges(before, undefined), []);
});

test('renderPage: summary JSON escaped, function pages in gzip chunks, viewer as a classic script', () => {
  const detail = (i: number): FnDetail => ({
    name: `f${i}</script>`,
    addr: '0x1000',
    size: 1,
    section: '.text',
    before: '0\tc3\tret\t',
    blocks: [0, 1],
    edges: [],
    sites: [],
    findings: [],
    graphOf: 'bytes as built',
  });
  const n = CHUNK + 10;
  const data: ReportData = {
    generator: 'test',
    missing: [],
    files: [
      {
        path: '<b>x.o',
        target: { os: 'linux', version: null, profile: null },
        checked: 'bytes as built',
        patchedFor: 'not patched',
        counts: {},
        features: [],
        patchers: [],
        checks: [],
        findings: [],
        errors: [],
        functions: Array.from({ length: n }, (_, i) => [`f${i}</script>`, '0x1000', 1, 0, 0, i]),
        details: Array.from({ length: n }, (_, i) => detail(i)),
      },
    ],
  };
  const html = renderPage(data, {
    viewerJs: 'export function mount(a, b, c) {}\n//# sourceMappingURL=viewer.js.map\n',
    vizJs: 'globalThis.Viz = {};',
  });
  assert.ok(!html.includes('f0</script>') && !html.includes('<b>x.o'), 'no input string as markup');
  assert.ok(!/^export /m.test(html) && html.includes('function mount(a, b, c)') && !html.includes('sourceMappingURL'));
  const chunk = (c: number): FnDetail[] => {
    const m = new RegExp(`id="tp-details-0-${c}">([^<]*)<`).exec(html);
    assert.ok(m, `chunk ${c}`);
    return JSON.parse(gunzipSync(Buffer.from(m[1]!, 'base64')).toString('utf8')) as FnDetail[];
  };
  assert.equal(chunk(0).length, CHUNK);
  assert.equal(chunk(1).length, 10);
  assert.equal(chunk(1)[9]!.name, `f${n - 1}</script>`);
  assert.ok(!html.includes('id="tp-details-0-2"'));
  assert.throws(() => renderPage(data, { viewerJs: 'const s = "</script>";', vizJs: '' }), /cannot be inlined/);
});
