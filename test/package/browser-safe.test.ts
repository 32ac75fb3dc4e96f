/**
 * The public entry points run in a browser: nothing they load, statically or dynamically, is a Node
 * built-in or the command line (src/cli). Walks the compiled import graph from each entry point of
 * package.json's `exports` and lists every module it reaches.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { repoRoot } from '../support/corpus.js';

const IMPORT =
  /\b(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)|\bimport\s*['"]([^'"]+)['"]|\brequire\(\s*['"]([^'"]+)['"]\s*\)/g;

/** Every compiled module reachable from `entry`, and the packages they import. */
function graph(entry: string): { files: Set<string>; packages: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const todo = [entry];
  while (todo.length) {
    const f = todo.pop()!;
    if (files.has(f)) continue;
    files.add(f);
    // Doc comments hold example imports: drop block comments and whole-line comments first.
    const text = readFileSync(f, 'utf8')
      .replace(/\/\*[\s\S]*?\*\//g, '')
      .replace(/^\s*\/\/.*$/gm, '');
    for (const m of text.matchAll(IMPORT)) {
      const spec = m[1] ?? m[2] ?? m[3] ?? m[4]!;
      if (spec.startsWith('.')) todo.push(resolve(dirname(f), spec));
      else packages.add(spec);
    }
  }
  return { files, packages };
}

test('every exported entry point loads no Node built-in and nothing of src/cli', () => {
  const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as {
    exports: Record<string, string | { default: string }>;
  };
  const builtins = new Set(builtinModules.flatMap((b) => [b, `node:${b}`]));
  let entries = 0;
  for (const [sub, target] of Object.entries(pkg.exports)) {
    if (typeof target === 'string') continue; // ./package.json
    entries++;
    const { files, packages } = graph(join(repoRoot, target.default));
    const cli = [...files].map((f) => relative(repoRoot, f)).filter((f) => f.startsWith('dist/src/cli/'));
    assert.deepEqual(cli, [], `${sub} reaches the command line`);
    const node = [...packages].filter((p) => builtins.has(p));
    assert.deepEqual(node, [], `${sub} imports Node built-ins`);
    if (sub === '.') {
      // The main entry reaches the whole pipeline; the walk must have followed it there.
      assert.ok(files.size > 50, `only ${files.size} modules reached from ${target.default}`);
      for (const p of ['iced-x86', 'fflate', 'fzstd', 'xz-decompress']) assert.ok(packages.has(p), `${p} reached`);
    }
  }
  assert.ok(entries >= 5);
});

test('the walk sees what the command line imports (it would catch a Node built-in)', () => {
  const { packages } = graph(join(repoRoot, 'dist/src/cli/main.js'));
  assert.ok(
    [...packages].some((p) => p.startsWith('node:')),
    [...packages].join(' '),
  );
});
