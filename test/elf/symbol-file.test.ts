/**
 * --symbols for a stripped linked image: a System.map (nm -n), a kallsyms dump moved by a KASLR offset, or
 * the unstripped file itself. The stripped image is made by objcopy -S (as the kernel's vmlinux.bin is) from
 * xen-syms, the corpus's linked x86 image that has symbols; names must come back exactly as in the original.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadImage } from '../../src/elf/load.js';
import { parseSymbolFile } from '../../src/elf/symbol-file.js';
import { tempDir } from '../support/build.js';
import { corpus, repoRoot } from '../support/corpus.js';

const bin = join(repoRoot, 'bin', 'textpoke.js');
function run(args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', maxBuffer: 1 << 28, timeout: 120_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

const dir = tempDir();
const orig = corpus.xenSyms;
const stripped = join(dir, 'xen-stripped');
const map = join(dir, 'System.map');
const kallsyms = join(dir, 'kallsyms');
const OFFSET = 0x3e000000n;
{
  const s = spawnSync('objcopy', ['-S', orig, stripped], { timeout: 60_000 });
  assert.equal(s.status, 0, String(s.stderr));
  const nm = spawnSync('nm', ['-n', orig], { encoding: 'utf8', maxBuffer: 1 << 28, timeout: 60_000 });
  assert.equal(nm.status, 0, nm.stderr);
  writeFileSync(map, nm.stdout);
  // kallsyms: no A/N/U lines, addresses moved, and a module's symbols at the end.
  const lines = nm.stdout.split('\n').filter((l) => /^[0-9a-f]{16} [TtDdBbRrWw] /.test(l));
  const moved = lines.map((l) => (BigInt('0x' + l.slice(0, 16)) + OFFSET).toString(16).padStart(16, '0') + l.slice(16));
  writeFileSync(kallsyms, moved.join('\n') + '\nffffffffc0a00000 t xfs_init_fs_context\t[xfs]\n');
}

function siteSymbols(args: string[]): string[] {
  const r = run(['sites', '--json', '--table', '.altinstructions', ...args]);
  assert.equal(r.code, 0, r.err);
  return JSON.parse(r.out).files[0].sites.map((s: { symbol: string; offset: number }) => `${s.symbol}+${s.offset}`);
}

test('a stripped image with --symbols (System.map, kallsyms with KASLR, the unstripped ELF) names sites as the original does', async () => {
  const want = siteSymbols([orig]);
  assert.ok(want.length > 100 && want.every((w) => !w.startsWith('.text')), 'original names sites by function');
  const bare = await loadImage(readFileSync(stripped), stripped);
  assert.equal(bare.symbols, 'none');
  for (const f of [map, kallsyms, orig]) assert.deepEqual(siteSymbols(['--symbols', f, stripped]), want, f);
  // Given explicitly, the offset must be the right one.
  assert.deepEqual(siteSymbols(['--symbols', kallsyms, '--kaslr-offset', '0x' + OFFSET.toString(16), stripped]), want);
  const wrong = run(['sites', '--summary', '--symbols', kallsyms, '--kaslr-offset', '0x200000', stripped]);
  assert.equal(wrong.code, 2);
  assert.match(wrong.err, /wrong --kaslr-offset/);
  const loaded = await loadImage(readFileSync(stripped), stripped, {
    symbolFile: { bytes: readFileSync(kallsyms), path: kallsyms },
  });
  assert.equal(loaded.symbols, 'kallsyms');
  assert.ok(
    loaded.notes.some((n) => /KASLR offset 0x3e000000 found from _stext/.test(n)),
    loaded.notes.join('\n'),
  );
});

test("bad symbol files are refused with one line: Debian's placeholder System.map, a non-root kallsyms, another build", () => {
  const bad = tempDir();
  const cases: Array<[string, string, RegExp]> = [
    [
      'placeholder',
      'ffffffffffffffff B The real System.map is in the linux-image-<version>-dbg package\n',
      /placeholder System\.map/,
    ],
    ['zeros', '0000000000000000 T _stext\n0000000000000000 t foo\n', /every address is 0/],
    ['garbage', 'hello world\n', /not a System\.map/],
    ['other', 'ffff82d040300001 T _stext\n', /not a 2 MiB-aligned move/],
  ];
  for (const [name, text, re] of cases) {
    const p = join(bad, name);
    writeFileSync(p, text);
    const r = run(['sites', '--summary', '--symbols', p, stripped]);
    assert.equal(r.code, 2, name);
    // check takes --symbols the same way: a symbol file that does not fit is bad usage there too.
    assert.equal(run(['check', '--checks', 'site-boundary', '--symbols', p, stripped]).code, 2, `check ${name}`);
    assert.equal(r.err.trim().split('\n').length, 1, r.err);
    assert.match(r.err, re, name);
  }
  assert.throws(() => parseSymbolFile(new TextEncoder().encode(cases[0]![1]), 'System.map'), /placeholder/);
});
