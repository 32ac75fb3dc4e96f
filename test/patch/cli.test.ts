import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { main } from '../../src/cli/main.js';
import { corpus } from '../support/corpus.js';
import { tempDir } from '../support/build.js';
import { captureIo } from '../support/io.js';

test('apply refuses to write over its input (exit 2) and leaves it untouched', async () => {
  const dir = tempDir();
  const f = join(dir, 'm.ko');
  copyFileSync(corpus.module61('arch/x86/events/intel/intel-uncore.ko'), f);
  const before = readFileSync(f);
  const r = captureIo();
  assert.equal(await main(['apply', f, '--cpu', 'intel-server', '-o', f], r), 2);
  assert.match(r.e, /refusing to write the output over the input/);
  assert.ok(before.equals(readFileSync(f)));
});

test('apply writes a module objdump reads, with the patched bytes at the same offsets', async () => {
  const dir = tempDir();
  const src = corpus.module61('arch/x86/events/intel/intel-uncore.ko');
  const out = join(dir, 'out.ko');
  const r = captureIo();
  assert.equal(await main(['apply', src, '--cpu', 'intel-server', '-o', out], r), 0);
  assert.ok(existsSync(out));
  const a = readFileSync(src);
  const b = readFileSync(out);
  assert.equal(a.length, b.length);
  assert.match(r.o, /returns\s+392 sites/);
  const dis = execFileSync('objdump', ['-d', '--no-show-raw-insn', out]).toString();
  assert.ok(!/\(bad\)/.test(dis));
  assert.match(dis, /call\s+\*%rax/);
});

test('diff prints side-by-side sites and a per-feature summary; bad --cpu is exit 2', async () => {
  const src = corpus.module61('arch/x86/events/intel/intel-uncore.ko');
  const r = captureIo();
  assert.equal(await main(['diff', src, '--cpu', 'amd-server', '--function', 'uncore_pmu_hrtimer'], r), 0);
  assert.match(r.o, /callq \*0x[0-9a-f]+\(%rip\) {2}# pv_ops\+0xf0\s+\| pushf/);
  assert.match(r.o, /call __x86_indirect_thunk_rax\s+\| call \*%rax/);
  assert.match(r.o, /jmp __x86_return_thunk\s+\| jmp srso_alias_return_thunk/);
  const bad = captureIo();
  assert.equal(await main(['diff', src, '--cpu', 'pentium'], bad), 2);
  assert.match(bad.e, /unknown CPU preset 'pentium'/);
});

test('apply --load/--symbols: relocations and patched branches use the load addresses and System.map values', async () => {
  const dir = tempDir();
  const src = corpus.module61('arch/x86/events/intel/intel-uncore.ko');
  const load = join(dir, 'sections');
  const map = join(dir, 'System.map');
  writeFileSync(
    load,
    '/sys/module/intel_uncore/sections/.text:0xffffffffc0a00000\n.altinstr_replacement=0xffffffffc0a40000\n',
  );
  writeFileSync(
    map,
    'ffffffff82001000 T __x86_return_thunk\nffffffff82002000 T srso_alias_return_thunk\nffffffff81101000 T pv_native_irq_disable\n',
  );
  const out = join(dir, 'out.ko');
  const r = captureIo();
  assert.equal(
    await main(['apply', src, '--cpu', 'amd-server', '--load-file', load, '--symbols', map, '-o', out], r),
    0,
  );
  const dis = execFileSync('objdump', ['-d', out]).toString();
  // uncore_collect_events+0x3f: jmp __x86_return_thunk -> jmp srso_alias_return_thunk at its System.map address.
  assert.match(dis, /ffffffffc0a0003f:\s+e9 [0-9a-f ]+\s+jmp\s+ffffffff82002000/);
  assert.ok(!/\(bad\)/.test(dis));
  const bad = captureIo();
  assert.equal(
    await main(['apply', corpus.xenSyms, '--cpu', 'none', '--load', '.text=0x1000', '-o', join(dir, 'x')], bad),
    2,
  );
});
