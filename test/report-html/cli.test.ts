/** `textpoke report` on the command line: output, exit codes, bad input as one line, never over an input. */
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assemble, tempDir } from '../support/build.js';
import { corpus, repoRoot } from '../support/corpus.js';

const cli = (...args: string[]) =>
  spawnSync(process.execPath, [join(repoRoot, 'bin', 'textpoke.js'), 'report', ...args], { encoding: 'utf8' });

const SRC = `
	.text
	.globl f
	.type f,@function
f:	xor %eax,%eax
	ret
	.size f, .-f
`;

test('report: one line per file that cannot be used, still written, exit 1; the good file is in it', () => {
  const dir = tempDir('textpoke-report-cli-');
  const good = assemble('f.S', { inline: SRC });
  const bad = join(dir, 'bad.o');
  writeFileSync(bad, 'not an ELF file at all');
  const out = join(dir, 'r.html');
  const r = cli(good, bad, '-o', out, '--model-states', '0');
  assert.equal(r.status, 1);
  assert.equal(r.stderr.trim(), `${bad}: not an ELF file`);
  assert.match(r.stdout, /r\.html: 2 files, 0 findings/);
  const html = readFileSync(out, 'utf8');
  assert.ok(html.startsWith('<!doctype html>') && html.includes('not an ELF file'));
  assert.deepEqual(
    readdirSync(dir).filter((n) => n.endsWith('.tmp')),
    [],
    'no temporary file left',
  );
});

test('report: refuses to write over an input; an unknown --cpu is a usage error', () => {
  const good = assemble('f.S', { inline: SRC });
  const before = readFileSync(good);
  const r = cli(good, '-o', good);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /refusing to write the report over an input/);
  assert.deepEqual(readFileSync(good), before);

  const out = join(tempDir('textpoke-report-cli-'), 'x.html');
  const k = cli(corpus.module61('fs/xfs/xfs.ko'), '-o', out, '--cpu', 'bogus', '--model-states', '0');
  assert.equal(k.status, 2);
  assert.match(k.stderr, /--cpu bogus: unknown CPU preset 'bogus'/);
  assert.ok(!existsSync(out), 'a usage error writes nothing');
  const u = cli(good, '-o', out, '--checks', 'nope');
  assert.equal(u.status, 2);
  assert.match(u.stderr, /unknown check 'nope'/);
});
