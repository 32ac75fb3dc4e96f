import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fixturesDir, tempDir } from '../support/build.js';
import { preprocess } from '../../src/hypercall/cpp.js';
import { defineMap, parseDefs, X86_DEFINES } from '../../src/hypercall/defs.js';
import { benchBuilds, benchFiles, compareText, parseCsv, summarise } from '../../src/hypercall/bench.js';
import { XEN_417_NUMBERS } from '../../src/hypercall/numbers.js';
import { main } from '../../src/cli/main.js';
import { captureIo } from '../support/io.js';

const defsPath = join(fixturesDir, 'hypercall/hypercall-defs-4.17.c');
const defs = parseDefs(preprocess(readFileSync(defsPath, 'utf8'), defineMap(X86_DEFINES)));

test('the benchmark builds with and without thunks and prints one CSV row per handled number, plus the mix', () => {
  const dir = tempDir('textpoke-bench-');
  const files = benchFiles(defs, {
    numbers: XEN_417_NUMBERS,
    iterations: 5,
    repeats: 1,
    freq: [
      { name: 'mmu_update', weight: 3 },
      { name: 'iret', weight: 1 },
    ],
  });
  for (const [n, t] of files) writeFileSync(join(dir, n), t);
  assert.deepEqual([...files.keys()].sort(), [
    'Makefile',
    'bench.c',
    'build.sh',
    'dispatch-chain.h',
    'dispatch-switch.h',
    'dispatch-table.h',
    'prelude.h',
    'thunks.S',
  ]);
  // pv64's mix holds only the weighted numbers.
  assert.match(
    files.get('bench.c')!,
    /static const struct \{ unsigned short n; double w; \} weights_pv64\[2\] = \{ \{ 1, 3 \}, \{ 23, 1 \} \};/,
  );
  const builds = benchBuilds().filter((b) => b.style === 'table' || (b.style === 'chain' && b.codegen === 'thunks'));
  let csv = '';
  for (const b of builds) {
    execFileSync('gcc', b.args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
    if (b.codegen === 'thunks') {
      // Indirect calls and returns really go through the thunks.
      const dis = execFileSync('objdump', ['-d', '--no-show-raw-insn', join(dir, b.exe)], {
        encoding: 'utf8',
        maxBuffer: 64 << 20,
      });
      const fn = dis.slice(dis.indexOf('<dispatch_pv64>:'));
      assert.match(fn.slice(0, fn.indexOf('\n\n')), /jmp +[0-9a-f]+ <__x86_return_thunk>/);
      if (b.style === 'table') assert.match(dis, /(call|jmp) +[0-9a-f]+ <__x86_indirect_thunk_r\w+>/);
    }
    csv += execFileSync(join(dir, b.exe), { encoding: 'utf8' });
  }
  const rows = parseCsv(csv);
  for (const b of builds) {
    for (const caller of defs.callers) {
      const mine = rows.filter((r) => r.style === b.style && r.codegen === b.codegen && r.caller === caller);
      assert.equal(mine.length, defs.calls.filter((c) => c.caller === caller).length + 2, `${b.exe} ${caller}`);
      assert.ok(mine.every((r) => Number.isFinite(r.cycles) && r.cycles >= 0));
    }
  }
  const sums = summarise('a.csv', rows);
  assert.equal(sums.length, builds.length * defs.callers.length);
  assert.match(compareText(sums), /^pv64:$/m);
});

test('textpoke hypercalls bench writes the sources; --compare reads CSV; bad CSV exits 2', async () => {
  const io = captureIo();
  const dir = tempDir('textpoke-bench-');
  assert.equal(await main(['hypercalls', 'bench', defsPath, '-o', dir], io), 0);
  assert.match(
    readFileSync(join(dir, 'build.sh'), 'utf8'),
    /-mindirect-branch=thunk-extern -mindirect-branch-register -mfunction-return=thunk-extern -fno-jump-tables/,
  );
  const a = join(dir, 'a.csv');
  writeFileSync(
    a,
    'style,codegen,caller,number,name,cycles\nchain,plain,-,-,direct-call,5\nchain,plain,pv64,1,mmu_update,10\nchain,plain,pv64,23,iret,14\nchain,plain,pv64,mix,(mix),20\n',
  );
  assert.equal(await main(['hypercalls', 'bench', '--compare', a, a], io), 0);
  assert.match(io.o, /a\.csv +pv64 +chain +plain +12\.0 +14\.0 iret +20\.0 +5\.0 +7\.0 +15\.0/);
  const bad = join(dir, 'bad.csv');
  writeFileSync(bad, 'x,y\n');
  assert.equal(await main(['hypercalls', 'bench', '--compare', bad], io), 2);
  assert.match(io.e, /bad\.csv: line 1/);
});
