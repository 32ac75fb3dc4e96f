import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fixturesDir, tempDir } from '../support/build.js';
import { corpus } from '../support/corpus.js';
import { Image } from '../../src/elf/image.js';
import { preprocess } from '../../src/hypercall/cpp.js';
import { defineMap, parseDefs, X86_DEFINES } from '../../src/hypercall/defs.js';
import { generate, type Style } from '../../src/hypercall/gen.js';
import { walkProgram } from '../../src/hypercall/harness.js';
import { modelCosts, parseFreq, treeCost, weighted } from '../../src/hypercall/cost.js';
import { recoverDispatch } from '../../src/hypercall/binary.js';
import { XEN_417_BINARY_CALLERS } from '../../src/hypercall/xen417.js';
import { XEN_417_NUMBERS } from '../../src/hypercall/numbers.js';
import { main } from '../../src/cli/main.js';
import { captureIo } from '../support/io.js';

const defsPath = join(fixturesDir, 'hypercall/hypercall-defs-4.17.c');
const defs = parseDefs(preprocess(readFileSync(defsPath, 'utf8'), defineMap(X86_DEFINES)));
const handlers = new Set(defs.protos.map((p) => `${p.prefix}_${p.name}`));
const model = modelCosts(defs, XEN_417_NUMBERS);
const row = (caller: string, name: string) => model.find((r) => r.caller === caller && r.name === name)!;

test('GCC-style decision trees: pivot at floor(n/2), lists of two tested in order', () => {
  // pv64's priority-2 switch in Xen 4.17: cmp $0x19; je; ja -> cmp $0x1a; jne | cmp $0x3; je; cmp $0xd; jne
  assert.deepEqual(treeCost([3, 13, 25, 26], 25), { compares: 1, branches: 1, indirect: 0 });
  assert.deepEqual(treeCost([3, 13, 25, 26], 26), { compares: 2, branches: 3, indirect: 0 });
  assert.deepEqual(treeCost([3, 13, 25, 26], 3), { compares: 2, branches: 3, indirect: 0 });
  assert.deepEqual(treeCost([3, 13, 25, 26], 13), { compares: 3, branches: 4, indirect: 0 });
  assert.equal(treeCost([3, 13], 4), undefined);
});

test('the model of the x86 table: priorities first, the unprioritised switch last', () => {
  assert.deepEqual(row('pv64', 'mmu_update').cost.chain, { compares: 3, branches: 3, indirect: 0 });
  assert.deepEqual(row('pv64', 'iret').cost.chain, { compares: 3, branches: 3, indirect: 0 });
  assert.deepEqual(row('pv64', 'stack_switch').cost.chain, { compares: 5, branches: 6, indirect: 0 });
  assert.deepEqual(row('hvm64', 'vcpu_op').cost.chain, { compares: 3, branches: 3, indirect: 0 });
  assert.deepEqual(row('pv64', 'set_trap_table').cost.table, { compares: 2, branches: 2, indirect: 1 });
  assert.deepEqual(
    modelCosts(defs, XEN_417_NUMBERS, { jumpTables: true }).find((r) => r.caller === 'pv64' && r.name === 'xsm_op')!
      .cost.switch,
    { compares: 1, branches: 1, indirect: 1 },
  );
  const freq = parseFreq('# hot\nmmu_update 90\npv64 set_trap_table 10\n');
  const w = weighted(model, freq, (r) => r.cost.chain).get('pv64')!;
  assert.equal(w.compares, 0.9 * 3 + 0.1 * 8);
});

function buildWalk(style: Style, flags: string[]): Image {
  const dir = tempDir('textpoke-walk-');
  const src = join(dir, 'walk.c');
  writeFileSync(src, walkProgram(defs, generate(defs, { style }), XEN_417_NUMBERS));
  const out = join(dir, 'walk');
  execFileSync('gcc', ['-O2', '-Wall', '-Werror', '-no-pie', '-fno-pic', ...flags, src, '-o', out], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  return Image.parse(readFileSync(out), out);
}

for (const [style, flags] of [
  ['chain', ['-fno-jump-tables']],
  ['switch', []],
  ['table', []],
] as [Style, string[]][]) {
  test(`the walker recovers every handler of the compiled ${style} dispatch (gcc -O2 ${flags.join(' ')})`, () => {
    const img = buildWalk(style, flags);
    for (const caller of defs.callers) {
      const rows = model.filter((r) => r.caller === caller);
      const res = recoverDispatch(img, { fn: `dispatch_${caller}`, handlers }, [
        -1,
        ...rows.map((r) => r.number),
        11,
        63,
        64,
        100,
      ]);
      for (const p of res) {
        const r = rows.find((x) => x.number === p.number);
        assert.equal(p.handler, r?.handler, `${style} ${caller} ${p.number}`);
        if (style === 'table' && r)
          assert.deepEqual([p.compares, p.branches, p.indirect], [2, 2, 1], `${caller} ${r.name}`);
        if (style === 'switch' && r)
          assert.deepEqual([p.compares, p.branches, p.indirect], [1, 1, 1], `jump table: ${caller} ${r.name}`);
      }
      if (style === 'chain') {
        // The model is GCC's own tree for most numbers; never off by more than one compare.
        const off = res
          .filter((p) => p.handler)
          .map((p) => Math.abs(p.compares - rows.find((x) => x.number === p.number)!.cost.chain.compares));
        assert.ok(Math.max(...off) <= 1, `${caller}: ${off}`);
        assert.ok(off.filter((d) => d === 0).length >= rows.length * 0.75, `${caller}: ${off}`);
      }
    }
  });
}

test("Xen 4.17's compiled pv_hypercall and hvm_hypercall dispatch as the table says, at the depth the priorities predict", () => {
  const img = Image.parse(readFileSync(corpus.xenSyms), corpus.xenSyms);
  for (const caller of defs.callers) {
    const how = XEN_417_BINARY_CALLERS[caller];
    const rows = model.filter((r) => r.caller === caller);
    const res = recoverDispatch(img, { fn: how.fn, handlers, returns: how.returns, numberOffset: how.numberOffset }, [
      -1,
      ...rows.map((r) => r.number),
      11,
      64,
    ]);
    const got = new Map(res.map((p) => [p.number, p]));
    for (const r of rows) assert.equal(got.get(r.number)?.handler, r.handler, `${caller} ${r.name}`);
    for (const n of [-1, 11, 64]) assert.equal(got.get(n)?.handler, undefined, `${caller} ${n}`);
    if (caller === 'pv64') {
      const fig = (n: string) => {
        const p = got.get(XEN_417_NUMBERS[n])!;
        return [p.compares, p.branches];
      };
      assert.deepEqual(fig('mmu_update'), [3, 3]); // cmp $0x3f; ja | test $0x800002; je | cmp $1; je
      assert.deepEqual(fig('iret'), [3, 3]);
      assert.deepEqual(fig('stack_switch'), [5, 6]);
      assert.deepEqual(fig('set_trap_table'), [9, 12]);
      const exact = rows.filter((r) => got.get(r.number)!.compares === r.cost.chain.compares).length;
      assert.ok(exact >= 32, `pv64 exact ${exact}/${rows.length}`);
    } else {
      // hvm_hypercall tests bit 31 (Viridian) first: one more compare than the macro alone.
      assert.deepEqual(
        [got.get(XEN_417_NUMBERS.vcpu_op)!.compares, got.get(XEN_417_NUMBERS.vcpu_op)!.branches],
        [4, 4],
      );
      // ... and calls do_hvm_op directly for a monitor guest request: a shortcut before the dispatch.
      const hvmOp = got.get(XEN_417_NUMBERS.hvm_op)!;
      assert.deepEqual(
        hvmOp.shortcuts.map((s) => [s.compares, s.branches]),
        [[1, 1]],
      );
    }
  }
});

test('textpoke hypercalls cost --binary prints model and binary side by side', async () => {
  const io = captureIo();
  const freq = join(tempDir(), 'freq.txt');
  writeFileSync(freq, 'mmu_update 50\niret 30\nmemory_op 20\n');
  assert.equal(await main(['hypercalls', 'cost', defsPath, '--binary', corpus.xenSyms, '--freq', freq], io), 0);
  assert.match(io.o, /^ {2}mmu_update +1 +1 +3\/3 +6\/10 +2\/2\+1i +3\/3 *$/m);
  assert.match(io.o, /^ {2}hvm_op +34 +- +5\/7 .* shortcut 1\/1$/m);
  assert.match(io.o, /mean \(weighted by --freq\) +3\.40\/3\.60 .* 3\.40\/3\.60 \(binary\)/);
  assert.equal(io.e, '');
  assert.equal(await main(['hypercalls', 'cost', defsPath, '--binary', join(tempDir(), 'nope')], io), 2);
});
