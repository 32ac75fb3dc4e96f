/**
 * Builds small fixtures at test time from sources in test/fixtures with the system `as`/`gcc`
 * (binaries are never committed). Outputs go to a fresh temporary directory per call.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { repoRoot } from './corpus.js';

export const fixturesDir = join(repoRoot, 'test', 'fixtures');

export function tempDir(prefix = 'textpoke-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Assembles test/fixtures/<name>.S (or an inline source) into an object file; returns its path. */
export function assemble(source: string, opts: { inline?: string; out?: string } = {}): string {
  const dir = tempDir();
  let src = join(fixturesDir, source);
  if (opts.inline !== undefined) {
    src = join(dir, basename(source));
    writeFileSync(src, opts.inline);
  }
  const out = opts.out ?? join(dir, basename(source).replace(/\.[Ss]$/, '') + '.o');
  execFileSync('gcc', ['-c', '-x', 'assembler-with-cpp', src, '-o', out], { stdio: ['ignore', 'ignore', 'pipe'] });
  return out;
}

/** Compiles a C fixture into an object file with the given flags (e.g. ['-O2']). */
export function compile(source: string, flags: string[] = ['-O2'], opts: { inline?: string } = {}): string {
  const dir = tempDir();
  let src = join(fixturesDir, source);
  if (opts.inline !== undefined) {
    src = join(dir, basename(source));
    writeFileSync(src, opts.inline);
  }
  const out = join(dir, basename(source).replace(/\.c$/, '') + '.o');
  execFileSync('gcc', ['-c', ...flags, src, '-o', out], { stdio: ['ignore', 'ignore', 'pipe'] });
  return out;
}
