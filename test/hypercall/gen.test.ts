import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fixturesDir, tempDir } from '../support/build.js';
import { preprocess } from '../../src/hypercall/cpp.js';
import { defineMap, parseDefs, prioGroups, X86_DEFINES, type Defs } from '../../src/hypercall/defs.js';
import { generate, STYLES, type Style } from '../../src/hypercall/gen.js';
import { dispatchProgram, EDGE_NUMBERS, stubReturns } from '../../src/hypercall/harness.js';
import { XEN_417_NUMBERS } from '../../src/hypercall/numbers.js';
import { main } from '../../src/cli/main.js';
import { captureIo } from '../support/io.js';

export const defsPath = join(fixturesDir, 'hypercall/hypercall-defs-4.17.c');
const text = readFileSync(defsPath, 'utf8');
const defs = parseDefs(preprocess(text, defineMap(X86_DEFINES)));

/** The reference: Xen's own generator's call order and dispatch for the same configuration. */
const ref = readFileSync(join(fixturesDir, 'hypercall/xen-4.17-x86-awk.txt'), 'utf8')
  .split('\n')
  .filter((l) => l && !l.startsWith('#'));
const refOrder = new Map(
  ref
    .filter((l) => l.startsWith('order '))
    .map((l) => {
      const [, c, ...h] = l.split(' ');
      return [c, h];
    }),
);
const refDispatch = new Map<string, string>();
for (const l of ref.filter((x) => x.startsWith('dispatch '))) {
  const [, c, n, h] = l.split(' ');
  refDispatch.set(`${c} ${n}`, h);
}

function build(d: Defs, header: string, flags: string[], from = -1, to = 128, numbers = XEN_417_NUMBERS): string {
  const dir = tempDir('textpoke-hc-');
  const src = join(dir, 'prog.c');
  writeFileSync(src, dispatchProgram(d, header, numbers, from, to));
  execFileSync('gcc', ['-O2', '-Wall', '-Werror', ...flags, src, '-o', join(dir, 'prog')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  return execFileSync(join(dir, 'prog'), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

test('the x86 configuration has the callers and handlers of Xen 4.17 x86', () => {
  assert.deepEqual(defs.callers, ['pv64', 'hvm64', 'hvm32']);
  assert.deepEqual(
    prioGroups(defs, 'pv64')
      .map((g) => [g.prio, g.calls.map((c) => c.name)])
      .slice(0, 2),
    [
      [1, ['mmu_update', 'iret']],
      [2, ['stack_switch', 'multicall', 'set_segment_base', 'mmuext_op']],
    ],
  );
  assert.deepEqual(
    prioGroups(defs, 'hvm64').map((g) => g.prio),
    [1, 100],
  );
  assert.equal(defs.calls.filter((c) => c.caller === 'pv64').length, 42);
});

test('the built-in preprocessor and the system cpp give the same table', () => {
  const viaCpp = execFileSync(
    'cpp',
    ['-P', '-undef', '-nostdinc', ...X86_DEFINES.map((d) => `-D${d}`), '-x', 'c', '-'],
    { input: text, encoding: 'utf8' },
  );
  const a = parseDefs(viaCpp);
  const strip = (d: Defs) => ({
    ...d,
    protos: d.protos.map((p) => ({ ...p, line: 0 })),
    calls: d.calls.map((c) => `${c.caller} ${c.prio} ${c.prefix}_${c.name}`),
    rows: d.rows.map((r) => r.name),
  });
  assert.deepEqual(strip(a), strip(defs));
  // Another configuration: PV32 adds the pv32 caller; no HVM drops both hvm callers.
  const pv32 = parseDefs(preprocess(text, defineMap([...X86_DEFINES, 'CONFIG_PV32'])));
  assert.deepEqual(pv32.callers, ['pv64', 'pv32', 'hvm64', 'hvm32']);
  const noHvm = parseDefs(preprocess(text, defineMap(X86_DEFINES.filter((d) => d !== 'CONFIG_HVM'))));
  assert.deepEqual(noHvm.callers, ['pv64']);
});

test("chain style calls the handlers in Xen's generator's order, per caller", () => {
  const h = generate(defs, { style: 'chain' });
  for (const caller of defs.callers) {
    const body = h.slice(h.indexOf(`#define call_handlers_${caller}(`));
    const macro = body.slice(0, body.indexOf('\n})'));
    const order = [...macro.matchAll(/ret = ([a-z_0-9]+)\(/g)].map((m) => m[1]);
    assert.deepEqual(order, refOrder.get(caller), caller);
  }
});

for (const style of STYLES) {
  test(`${style} style compiles with -Wall -Werror and dispatches every number from -1 to 128 (and past 2^31) like Xen`, () => {
    const out = build(defs, generate(defs, { style: style as Style }), []);
    const rets = stubReturns(defs);
    const lines = out.trim().split('\n');
    assert.equal(lines.length, defs.callers.length * (130 * 3 + EDGE_NUMBERS.length + 1));
    let handled = 0;
    for (const l of lines) {
      const [caller, type, num, handler, ret] = l.split(' ');
      const v = BigInt(num);
      const key = `${caller} ${type === 'unsigned_long' ? v.toString() : v < 0n ? 'neg' : v.toString()}`;
      const want = refDispatch.get(key) ?? '-';
      assert.equal(handler, want, `${style}: ${l}`);
      if (want === '-') assert.equal(ret, '-38', l);
      else {
        assert.equal(rets.get(Number(ret)), handler, l);
        handled++;
      }
    }
    assert.equal(handled, refDispatch.size * 3);
  });
}

test('no undefined behaviour for a negative int, INT_MIN or huge numbers (UBSan)', () => {
  for (const style of ['chain', 'table'] as Style[]) {
    const out = build(defs, generate(defs, { style }), ['-fsanitize=undefined', '-fno-sanitize-recover=all'], -3, 70);
    assert.match(out, /pv64 int -1 - -38/);
    assert.match(out, /pv64 int -2147483648 - -38/);
    assert.match(out, /hvm64 unsigned_long 4294967308 - -38/); // 2^32 + memory_op: not memory_op
  }
});

test('no 64-hypercall limit, and a last priority group of two dispatches correctly', () => {
  const src = [
    'prefix: do',
    'a(int x)',
    'b(int x)',
    'c(unsigned long y, void *p)',
    'd()',
    'caller: x',
    'table: x',
    'a do:1',
    'c do:1',
    'b do',
    'd do',
  ].join('\n');
  const d = parseDefs(src);
  const numbers = { a: 3, b: 64, c: 200, d: 127 };
  for (const style of STYLES) {
    const out = build(d, generate(d, { style, numbers }), [], -1, 260, numbers);
    const hit = out
      .split('\n')
      .filter((l) => l.startsWith('x unsigned_long') && !l.includes(' - '))
      .map((l) => l.split(' ').slice(2, 4).join(' '));
    assert.deepEqual(hit, ['3 do_a', '64 do_b', '127 do_d', '200 do_c'], style);
  }
});

test('textpoke hypercalls gen writes the header; -D selects the configuration; bad input exits 2', async () => {
  const io = captureIo();
  assert.equal(await main(['hypercalls', 'gen', defsPath, '--style', 'switch'], io), 0);
  assert.match(io.o, /#define call_handlers_hvm32\(num, ret, a1, a2, a3, a4, a5\)/);
  assert.match(io.o, /^long do_kexec_op\(unsigned long op, XEN_GUEST_HANDLE_PARAM\(void\) uarg\);$/m);
  io.o = '';
  assert.equal(
    await main(
      [
        'hypercalls',
        'gen',
        defsPath,
        '-D',
        'CONFIG_X86',
        '-D',
        'CONFIG_PV',
        '-D',
        'CONFIG_PV32',
        '-D',
        'CONFIG_COMPAT',
      ],
      io,
    ),
    0,
  );
  assert.match(io.o, /call_handlers_pv32/);
  assert.doesNotMatch(io.o, /call_handlers_hvm64/);
  const bad = join(tempDir(), 'bad.c');
  writeFileSync(bad, 'prefix: do\nfoo(int a)\ncaller: x\ntable: x\nfoo do\nbar do\n');
  assert.equal(await main(['hypercalls', 'gen', bad], io), 2);
  assert.match(io.e, /bad\.c: line 6: No prototype for prefix\/hypercall combination \(do_bar\)/);
});

test('with 32-bit PV (pv32 caller) every style dispatches each number to the handler its table row names', () => {
  const d = parseDefs(preprocess(text, defineMap([...X86_DEFINES, 'CONFIG_PV32'])));
  assert.deepEqual(d.callers, ['pv64', 'pv32', 'hvm64', 'hvm32']);
  const want = new Map(d.calls.map((c) => [`${c.caller} ${XEN_417_NUMBERS[c.name]}`, `${c.prefix}_${c.name}`]));
  // pv32 uses compat handlers where the table says so, and the 32-bit-only prototypes exist.
  assert.equal(want.get(`pv32 ${XEN_417_NUMBERS.set_trap_table}`), 'compat_set_trap_table');
  assert.equal(want.get(`pv32 ${XEN_417_NUMBERS.iret}`), 'compat_iret');
  for (const style of STYLES) {
    const out = build(d, generate(d, { style: style as Style }), [], -1, 70);
    for (const l of out.trim().split('\n')) {
      const [caller, type, num, handler] = l.split(' ');
      if (type !== 'unsigned_long') continue;
      assert.equal(handler, want.get(`${caller} ${num}`) ?? '-', `${style}: ${l}`);
    }
  }
});
