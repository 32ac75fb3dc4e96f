import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Image } from '../../src/elf/image.js';
import { prepare, runChecks } from '../../src/checks/run.js';
import { checkById } from '../../src/checks/index.js';
import { fenceInfo } from '../../src/cfg/fences.js';
import type { Finding } from '../../src/checks/finding.js';
import { assemble, compile } from '../support/build.js';
import { corpus } from '../support/corpus.js';

function check(path: string, ids = ['nospec-branch', 'nospec-outlined']): Finding[] {
  const img = Image.parse(readFileSync(path), path);
  const { view } = prepare(img);
  try {
    return runChecks(view, ids.map((id) => checkById(id)!));
  } finally {
    view.dispose();
  }
}

for (const opt of ['-O2', '-Os']) {
  test(`nospec-outlined: out-of-line evaluate_nospec predicates and every unprotected caller branch (gcc ${opt})`, () => {
    const bug = check(compile('check/nospec-pred.c', [opt, '-DPRED_INLINE=0']));
    const preds = bug.filter((f) => f.message.startsWith('speculation barrier in'));
    assert.deepEqual(preds.map((f) => f.symbol).sort(), ['is_hvm_domain.isra.0', 'vcpu_in_range.isra.0'].filter((n) => bug.some((f) => f.symbol === n)).sort());
    assert.equal(preds.length, 2, JSON.stringify(bug, null, 1));
    for (const p of preds) assert.match(p.message, /2 caller branches on its result unprotected/);
    const callers = bug.filter((f) => f.message.startsWith('branch on the result'));
    // read_hvm, read_vcpu and both (twice): one finding per caller branch, each naming its predicate as root cause.
    assert.deepEqual(callers.map((f) => f.symbol).sort(), ['both', 'both', 'read_hvm', 'read_vcpu']);
    for (const c of callers) {
      assert.equal(c.check, 'nospec-outlined');
      assert.match(c.message, /neither successor has a speculation barrier/);
      assert.match(c.related[0]!.symbol, /^(is_hvm_domain|vcpu_in_range)/);
    }
    assert.equal(bug.filter((f) => f.check === 'nospec-branch').length, 0);
  });

  test(`nospec: the always_inline fix is clean (gcc ${opt})`, () => {
    const path = compile('check/nospec-pred.c', [opt, '-DPRED_INLINE=1']);
    assert.deepEqual(check(path), []);
    // ...and it is clean because the fences are on both arms, not because there are none.
    const img = Image.parse(readFileSync(path), path);
    const text = img.sectionBytes(img.section('.text')!);
    let fences = 0;
    for (let i = 0; i + 2 < text.length; i++) if (text[i] === 0x0f && text[i + 1] === 0xae && text[i + 2] === 0xe8) fences++;
    assert.ok(fences >= 6, `expected inlined fences, found ${fences}`);
  });
}

test('nospec-branch: one-sided fence reported; fences on both arms and fenced compare chains are not', () => {
  const f = check(assemble('check/one-sided.S'));
  assert.equal(f.length, 1, JSON.stringify(f, null, 1));
  assert.equal(f[0]!.check, 'nospec-branch');
  assert.equal(f[0]!.symbol, 'one_sided');
  assert.equal(f[0]!.offset, 3);
  assert.match(f[0]!.message, /not-taken path only/);
  assert.equal(f[0]!.related[0]!.symbol, 'one_sided+0x5');
  assert.equal(f[0]!.related[1]!.symbol, 'one_sided+0xd');
});

test('xen-syms 4.17: the real outlined predicates, their callers, and no lock-hardening noise', () => {
  const f = check(corpus.xenSyms);
  const preds = new Map(f.filter((x) => x.message.startsWith('speculation barrier in')).map((x) => [x.symbol, Number(/(\d+) caller branch/.exec(x.message)![1])]));
  // Read in objdump -d: each is a bool (or pointer-or-NULL) function whose evaluate_nospec()/block_speculation()
  // fences end as `lfence; xor %eax,%eax; ret` and whose callers branch on the result unfenced.
  assert.deepEqual(Object.fromEntries(preds), {
    nr_grant_entries: 10,
    __mfn_valid: 104,
    domain_get_irq_dpci: 6,
    hvm_domain_use_pirq: 4,
    p2m_mem_access_sanity_check: 1,
  });
  const callers = f.filter((x) => x.message.startsWith('branch on the result'));
  assert.equal(callers.length, 125);
  // One caller pinned by address, as read in objdump -d:
  //   ffff82d04022564d: call p2m_mem_access_sanity_check; ffff82d040225652: test %al,%al; ffff82d040225654: je ...
  const memop = callers.find((x) => x.symbol === 'mem_access_memop');
  assert.equal(memop?.address, '0xffff82d040225654');
  assert.equal(memop?.offset, 0x94);
  assert.match(memop!.message, /p2m_mem_access_sanity_check\(\) \(called at mem_access_memop\+0x8d\)/);
  const branch = f.filter((x) => x.check === 'nospec-branch');
  assert.equal(branch.length, 28);
  // Every one-sided fence reported is a branch-hardening one: lock hardening (SC_NO_LOCK_HARDEN) is never a branch guard.
  for (const b of branch) assert.match(b.message, /SC_NO_BRANCH_HARDEN/);
});

test('xen-syms 4.17: fences are told apart by the alternative that can remove them', () => {
  const img = Image.parse(readFileSync(corpus.xenSyms), corpus.xenSyms);
  const { view } = prepare(img);
  const fi = fenceInfo(view);
  const count = (p: string): number => [...fi.purpose.values()].filter((x) => x === p).length;
  assert.ok(count('branch') > 1000, `branch hardening fences: ${count('branch')}`);
  assert.ok(count('lock') > 50, `lock hardening fences: ${count('lock')}`);
  view.dispose();
});
