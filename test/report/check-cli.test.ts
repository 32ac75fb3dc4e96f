import test from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assemble, compile, tempDir } from '../support/build.js';
import { repoRoot } from '../support/corpus.js';

const bin = join(repoRoot, 'bin', 'textpoke.js');
function run(args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', maxBuffer: 1 << 28 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

const bug = compile('check/nospec-pred.c', ['-O2', '-DPRED_INLINE=0']);
const fixed = compile('check/nospec-pred.c', ['-O2', '-DPRED_INLINE=1']);

test('check: objtool-shaped text, counts per check, exit 0 for warnings and 1 with --werror', () => {
  // Seed 000's shape: two predicates built out of line; no guest input reaches their callers, so info level.
  const r = run(['check', '--checks', 'nospec-branch,nospec-outlined', bug]);
  assert.equal(r.code, 0, r.err);
  const lines = r.out.split('\n').filter((l) => / (warning|error|info): textpoke: /.test(l));
  assert.equal(lines.length, 2);
  for (const l of lines) assert.match(l, /^\S+\.o: info: textpoke: [\w.]+\+0x[0-9a-f]+: .+ \[nospec-outlined\]$/);
  assert.ok(
    lines.some((l) => l.startsWith(`${bug}: info: textpoke: is_hvm_domain.isra.0+0x`) && l.includes('escapes')),
    lines.join('\n'),
  );
  // Related locations follow their finding, indented: the caller's branch on the result.
  assert.match(r.out, /\n\S+\.o: {3}read_hvm\+0xc \(0x[0-9a-f]+\): branch on the result/);
  assert.match(r.out, /1 file checked, 2 findings\n\s+nospec-branch\s+0\n\s+nospec-outlined\s+2\n/);
  // --werror: warnings become errors (exit 1); info stays info.
  const one = assemble('report/one-sided.S');
  assert.equal(run(['check', '--checks', 'nospec-branch', one]).code, 0);
  const w = run(['check', '--werror', '--checks', 'nospec-branch', one]);
  assert.equal(w.code, 1);
  assert.match(w.out, /: error: textpoke: one_sided\+0x2: .+\[nospec-branch\]/);
  assert.equal(run(['check', '--werror', '--checks', 'nospec-outlined', bug]).code, 0);
  assert.equal(run(['check', '--werror', fixed]).code, 0);
});

test('check --json keeps the documented keys', () => {
  const r = run(['check', '--json', '--checks', 'nospec-outlined', bug, fixed]);
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out) as { files: { path: string; findings: Record<string, unknown>[] }[] };
  assert.equal(j.files.length, 2);
  assert.equal(j.files[0]!.path, bug);
  assert.equal(j.files[1]!.findings.length, 0);
  const f = j.files[0]!.findings.find((x) => x.symbol === 'is_hvm_domain.isra.0')!;
  for (const k of ['check', 'severity', 'address', 'symbol', 'offset', 'message', 'related']) assert.ok(k in f, k);
  assert.equal(f.check, 'nospec-outlined');
  assert.equal(f.severity, 'info');
  assert.match(String(f.address), /^0x[0-9a-f]+$/);
  const rel = f.related as Record<string, unknown>[];
  assert.deepEqual(Object.keys(rel[0]!).sort(), ['address', 'message', 'symbol']);
  assert.ok(
    rel.some((x) => x.symbol === 'read_hvm+0xc'),
    JSON.stringify(rel),
  );
});

test('check: a file that cannot be used is one line naming it, exit 1, other files still checked', () => {
  const dir = tempDir();
  const junk = join(dir, 'junk.o');
  writeFileSync(junk, 'not an elf at all');
  const r = run(['check', '--checks', 'nospec-outlined', junk, bug]);
  assert.equal(r.code, 1);
  assert.equal(r.err.trim().split('\n').length, 1);
  assert.match(r.err, /junk\.o: /);
  assert.doesNotMatch(r.err, /\n\s+at /);
  assert.match(r.out, /read_hvm\+0xc/);
  assert.match(r.out, /2 files checked \(1 unreadable\)/);
  assert.equal(run(['check', '--checks', 'no-such-check', bug]).code, 2);
});
