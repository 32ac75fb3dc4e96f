import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Image } from '../../src/elf/image.js';
import { baseName, findAmbiguous, verdict } from '../../src/symbols/ambiguous.js';
import { fixturesDir, tempDir } from '../support/build.js';
import { corpus } from '../support/corpus.js';

/** Three translation units linked into one image, the way vmlinux gathers them (FILE symbol per unit). */
function linkFixture(): string {
  const dir = tempDir();
  const objs = ['a/util.c', 'b/util.c', 'c/other.c'].map((src, i) => {
    const o = join(dir, `${i}.o`);
    // Compile from inside the source directory so the FILE symbol is the bare name, as kbuild's would repeat.
    const [sub, name] = src.split('/') as [string, string];
    execFileSync('gcc', ['-O2', '-fno-inline', '-c', name, '-o', o], { cwd: join(fixturesDir, 'symbols', sub) });
    return o;
  });
  const out = join(dir, 'vmlinux-like');
  execFileSync('ld', ['-o', out, '-e', '0', '--unresolved-symbols=ignore-all', ...objs]);
  return out;
}

test('symbols --ambiguous on a vmlinux-style link: groups, files, and what tells copies apart', () => {
  const path = linkFixture();
  const r = findAmbiguous(Image.parse(readFileSync(path), path));
  const byName = new Map(r.groups.map((g) => [g.name, g]));
  const ready = byName.get('is_ready')!;
  assert.equal(ready.entries.length, 3);
  assert.deepEqual(
    ready.entries.map((e) => e.file),
    ['util.c', 'util.c', 'other.c'],
  );
  assert.equal(ready.byFile, false, 'two copies come from files both named util.c');
  assert.equal(ready.bySize, false, 'identical bodies');
  assert.equal(verdict(ready), 'position only (sympos): fragile');
  assert.deepEqual(
    ready.entries.map((e) => e.sympos),
    [1, 2, 3],
  );
  const helper = byName.get('helper')!;
  assert.equal(helper.entries.length, 2);
  assert.equal(helper.byFile, false);
  assert.equal(helper.bySize, true);
  assert.equal(verdict(helper), 'name + file + size');
  assert.equal(byName.has('a_entry'), false, 'globals are not ambiguous locals');
});

test('xen-syms-4.17: repeated local names are all told apart by their (path-qualified) file symbols', () => {
  const img = Image.parse(readFileSync(corpus.xenSyms), corpus.xenSyms);
  const r = findAmbiguous(img);
  assert.ok(r.files > 300);
  const cb = r.groups.find((g) => g.name === 'cpu_callback')!;
  assert.equal(cb.entries.length, 17);
  assert.ok(cb.entries.some((e) => e.file === 'common/timer.c'));
  assert.equal(r.groups.filter((g) => !g.byFile).length, 0);
});

test('clone suffixes are recognised', () => {
  assert.deepEqual(baseName('xfs_buf_rele.part.0'), { base: 'xfs_buf_rele', clone: ['part'] });
  assert.deepEqual(baseName('foo.isra.0.cold'), { base: 'foo', clone: ['isra', 'cold'] });
  assert.deepEqual(baseName('bar.constprop.2'), { base: 'bar', clone: ['constprop'] });
  assert.deepEqual(baseName('plain'), { base: 'plain', clone: [] });
});
