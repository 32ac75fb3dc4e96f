import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { assemble, tempDir } from '../support/build.js';
import { Image } from '../../src/elf/image.js';
import { extractPatchlets, patchletsToC } from '../../src/patchlets/extract.js';
import { verifyText } from '../../src/patchlets/verify.js';
import { main } from '../../src/cli/main.js';
import { captureIo } from '../support/io.js';

const obj = assemble('patchlets/patchlets.S');
const img = Image.parse(readFileSync(obj), obj);
const ps = extractPatchlets(img);
const by = Object.fromEntries(ps.map((p) => [p.name, p]));

test('patchlets are found by NAME/NAME_end, NAME_start/NAME_end and sized symbols', () => {
  assert.deepEqual(
    ps.map((p) => p.name),
    ['irq_disable', 'save_fl', 'usergs_sysret64', 'mov64', 'call_thunk', 'torn', 'load_flag', 'skip'],
  );
  assert.deepEqual(Array.from(by.save_fl.bytes), [0x9c, 0x58]);
  assert.deepEqual(
    by.save_fl.insns.map((i) => i.att),
    ['pushf', 'pop %rax'],
  );
  assert.deepEqual(Array.from(by.usergs_sysret64.bytes), [0x0f, 0x01, 0xf8, 0x48, 0x0f, 0x07]);
  assert.equal(by.mov64.bounds, 'size');
  assert.deepEqual(Array.from(by.mov64.bytes), [0x48, 0x89, 0xf8]);
  for (const n of ['irq_disable', 'save_fl', 'usergs_sysret64', 'mov64', 'skip'])
    assert.deepEqual(by[n].problems, [], n);
});

test('relocations, torn instructions and pc-relative references out of the patchlet are flagged', () => {
  assert.equal(by.call_thunk.relocations.length, 1);
  assert.equal(by.call_thunk.relocations[0].symbol, '__x86_return_thunk');
  assert.match(
    by.call_thunk.problems[0],
    /position-dependent: 1 relocation \(R_X86_64_PLT32 __x86_return_thunk-4 at \+1\)/,
  );
  assert.match(by.torn.problems[0], /does not end on an instruction boundary/);
  assert.match(by.load_flag.problems[0], /pc-relative reference at \+0/);
});

test('--c emits a table of the copyable patchlets that patchlets verify accepts', async () => {
  const c = patchletsToC(ps, 'patchlets.o');
  assert.match(c, /\{ "usergs_sysret64", patchlet_usergs_sysret64, 6 \}/);
  assert.doesNotMatch(c, /patchlet_call_thunk\[\]/);
  const r = verifyText(c);
  assert.equal(r.entries.length, 5);
  assert.ok(r.entries.every((e) => e.ok));
  // It is valid C.
  const { compile } = await import('../support/build.js');
  compile('table.c', ['-Wall', '-Werror', '-Wno-unused-const-variable', '-O2'], {
    inline: c + 'const void *use = patchlets;\n',
  });
});

test('textpoke patchlets extract: exit 1 when a patchlet cannot be copied or a file cannot be used, 2 on a missing one', async () => {
  const io = captureIo();
  assert.equal(await main(['patchlets', 'extract', obj], io), 1);
  assert.match(io.o, /call_thunk .* len 5/);
  assert.match(io.o, /call __x86_return_thunk/);
  const o = join(tempDir(), 'p.c');
  assert.equal(await main(['patchlets', 'extract', '--c', '-o', o, obj], io), 1);
  assert.match(readFileSync(o, 'utf8'), /patchlet_mov64/);
  const bad = join(tempDir(), 'x.o');
  (await import('node:fs')).writeFileSync(bad, 'not elf');
  io.e = '';
  io.o = '';
  assert.equal(await main(['patchlets', 'extract', bad, obj], io), 1);
  assert.match(io.e, /x\.o: not an ELF file/);
  assert.match(io.o, /call_thunk .* len 5/, 'the good file is still extracted');
  io.e = '';
  assert.equal(await main(['patchlets', 'extract', join(tempDir(), 'missing.o')], io), 2);
  assert.match(io.e, /missing\.o: no such file/);
});
