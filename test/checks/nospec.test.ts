import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Image } from '../../src/elf/image.js';
import { prepare, runChecks } from '../../src/checks/run.js';
import { checkById } from '../../src/checks/index.js';
import { fenceInfo } from '../../src/cfg/fences.js';
import type { Finding } from '../../src/checks/finding.js';
import { execFileSync, spawnSync } from 'node:child_process';
import { basename, join } from 'node:path';
import { classifyFences } from '../../src/cfg/fence-classes.js';
import { pieceOf } from '../../src/cfg/functions.js';
import { analyseEscapes } from '../../src/checks/nospec-outlined.js';
import { analyse } from '../../src/report/html/data.js';
import { assemble, compile, fixturesDir, tempDir } from '../support/build.js';
import { corpus, pinned, repoRoot } from '../support/corpus.js';

const corpus420Version = '4.20.4+63-g7abfd2bce2-0+deb13u1';

function check(path: string, ids = ['nospec-branch', 'nospec-outlined']): Finding[] {
  const img = Image.parse(readFileSync(path), path);
  const { view } = prepare(img);
  try {
    return runChecks(
      view,
      ids.map((id) => checkById(id)!),
    );
  } finally {
    view.dispose();
  }
}

/** Builds a C fixture with `cc` (gcc or Debian's clang: `apt-get install clang`) into a fresh object. */
function build(cc: 'gcc' | 'clang', source: string, flags: string[]): string {
  const out = join(tempDir(), basename(source).replace(/\.c$/, '') + '.o');
  try {
    execFileSync(cc, ['-c', ...flags, join(fixturesDir, source), '-o', out], {
      stdio: ['ignore', 'ignore', 'pipe'],
      timeout: 60_000,
    });
  } catch (e) {
    throw new Error(
      `${cc} failed on ${source} (is ${cc} installed? clang: apt-get install -y clang): ${e instanceof Error ? e.message : String(e)}`,
    );
  }
  return out;
}

/** Function name without gcc's clone suffixes. */
const base = (name: string): string => pieceOf(name)?.parent ?? name;

for (const cc of ['gcc', 'clang'] as const) {
  for (const opt of ['-O2', '-Os']) {
    test(`nospec-outlined: escaped decisions, their call sites and severities, and every exclusion (${cc} ${opt})`, () => {
      const path = build(cc, 'check/nospec-escape.c', [opt]);
      const f = check(path, ['nospec-branch', 'nospec-outlined']);
      const esc = f.filter((x) => x.check === 'nospec-outlined');
      const by = new Map(esc.map((x) => [base(x.symbol), x]));
      // Reported once per predicate, wrappers and clones folded into the predicate they pass on.
      assert.deepEqual(
        [...by.keys()].sort(),
        ['is_ctrl', 'is_hvm', 'is_priv_clone', 'only_via_ptr', 'perm_check'],
        JSON.stringify(esc, null, 1),
      );
      assert.equal(esc.length, 5);
      // Guest input (pv_hypercall -> do_fixture_op) reaches: warning; only the privileged do_domctl: info.
      assert.equal(by.get('is_hvm')!.severity, 'warning');
      assert.equal(by.get('perm_check')!.severity, 'warning');
      assert.equal(by.get('is_priv_clone')!.severity, 'warning');
      assert.equal(by.get('is_ctrl')!.severity, 'info');
      assert.match(by.get('is_ctrl')!.message, /privileged do_domctl/);
      // Every unprotected call site related: call, branch, first access (three entries per site).
      const hvm = by.get('is_hvm')!;
      assert.match(hvm.message, /2 call sites branch on it unfenced \(do_fixture_op\)/);
      assert.equal(hvm.related.length, 7);
      // Its address is stored in data (hvm_ptr): callers through it are unknown, said so, not dropped.
      assert.equal(hvm.related[6]!.symbol, 'hvm_ptr+0x0');
      assert.match(
        hvm.related[6]!.message,
        /address of is_hvm\(\) stored here: callers through this pointer are unknown/,
      );
      assert.match(hvm.related[0]!.message, /do_fixture_op calls is_hvm\(\)/);
      assert.match(hvm.related[1]!.message, /branch on the result/);
      assert.match(
        hvm.related[2]!.message,
        /first unprotected load; guest input reaches do_fixture_op from pv_hypercall/,
      );
      // The second call's arm calls the hook through a pointer: unknown, not dropped.
      assert.match(hvm.related[5]!.message, /indirect call \(callee unknown/);
      assert.match(hvm.message, /some arms reach an indirect call \(unknown\)/);
      // The rc check: the success arm goes on to load.
      assert.match(by.get('perm_check')!.related[2]!.message, /first unprotected load/);
      // Through the wrapper (a tail call or call+ret), possibly to a clone.
      assert.match(
        by.get('is_priv_clone')!.related[0]!.message,
        /do_fixture_op calls wrap_priv\(\) \(through wrap_priv\(\)\)/,
      );
      // Called only through a pointer: reported as unknown.
      assert.equal(by.get('only_via_ptr')!.severity, 'info');
      assert.match(by.get('only_via_ptr')!.message, /no direct call site .* unknown/);
      assert.deepEqual(
        by.get('only_via_ptr')!.related.map((r) => r.symbol),
        ['pred_ptr+0x0'],
      );
      // Not findings: fences before the returned value is read, same value on both arms, result used as a value.
      for (const n of ['is_dm', 'nr_entries', 'mfn_ok', 'same_value', 'same_reg', 'is_pv', 'bound_of', 'stub_setup'])
        assert.ok(!esc.some((x) => base(x.symbol) === n), n);
      // nospec-branch: one_sided_bad only (one_sided_ok's other side returns with no access; stub_setup is a store-bypass barrier).
      assert.deepEqual(
        f.filter((x) => x.check === 'nospec-branch').map((x) => x.symbol),
        ['one_sided_bad'],
      );

      // Fence classes: one per class, read from the code around each fence.
      const img = Image.parse(readFileSync(path), path);
      const { view } = prepare(img);
      try {
        const an = analyseEscapes(view);
        const fences = classifyFences(view).fences;
        const classIn = (fn: string): string[] =>
          [...new Set(fences.filter((x) => base(view.img.symbolize(x.addr).name) === fn).map((x) => x.cls))].sort();
        assert.deepEqual(classIn('is_hvm'), ['pair']);
        assert.deepEqual(classIn('nr_entries'), ['value']); // the bound is read behind the fences
        assert.deepEqual(classIn('mfn_ok'), ['pair']);
        assert.deepEqual(classIn('bound_of'), ['value']);
        assert.deepEqual(classIn('fenced_reader'), ['value']);
        assert.deepEqual(classIn('stub_setup'), ['store-bypass']);
        assert.deepEqual(classIn('one_sided_ok'), ['one-sided']);
        assert.deepEqual(classIn('one_sided_bad'), ['one-sided']);
        for (const x of fences) assert.equal(x.gate, 'ungated');
        // Why the exclusions are excluded.
        const why = (fn: string): string[] =>
          [...an.excluded].filter(([b]) => base(view.img.symbolize(b).name) === fn).map(([, w]) => w);
        assert.ok(why('same_value').includes('both arms end in the same value'), JSON.stringify(why('same_value')));
        assert.ok(why('same_reg').includes('both arms end in the same value'), JSON.stringify(why('same_reg')));
        assert.deepEqual(why('mfn_ok'), [why('mfn_ok')[0]!]);
        assert.match(why('mfn_ok')[0]!, /an arm does work after its fence \(memory access/);
        // is_pv escapes its fences but its result is only used as a value: a predicate with no unprotected use.
        assert.ok([...an.predicates.values()].some((p) => base(p.fn.name) === 'is_pv'));
        assert.ok(!an.uses.some((u) => base(u.callee.name) === 'is_pv'));
        // is_dm escapes too, but its caller's arm goes on into fenced_reader(), which fences first.
        assert.ok([...an.predicates.values()].some((p) => base(p.fn.name) === 'is_dm'));
        assert.ok(!an.uses.some((u) => base(u.callee.name) === 'is_dm'));
      } finally {
        view.dispose();
      }
      // The report data carries the same inventory; a file that is no known kernel has no nospec-fences findings.
      const data = analyse(Image.parse(readFileSync(path), path));
      const rows = Object.fromEntries((data.fences ?? []).map((r) => [`${r.cls} ${r.gate}`, r.count]));
      assert.deepEqual(Object.keys(rows).sort(), [
        'one-sided ungated',
        'pair ungated',
        'store-bypass ungated',
        'value ungated',
      ]);
      assert.equal(rows['store-bypass ungated'], 1);
      assert.equal(rows['one-sided ungated'], 2);
      assert.ok(!data.findings.some((x) => x.check === 'nospec-fences'));
    });
  }
}

for (const opt of ['-O2', '-Os']) {
  test(`nospec-outlined: the out-of-line predicates of nospec-pred.c, once each with their caller branches (gcc ${opt})`, () => {
    const bug = check(compile('check/nospec-pred.c', [opt, '-DPRED_INLINE=0']));
    const esc = bug.filter((f) => f.check === 'nospec-outlined');
    assert.deepEqual(
      esc.map((f) => base(f.symbol)).sort(),
      ['is_hvm_domain', 'vcpu_in_range'],
      JSON.stringify(bug, null, 1),
    );
    for (const p of esc) {
      assert.match(p.message, /2 call sites branch on it unfenced/);
      // No hypercall or guest entry in this object: information.
      assert.equal(p.severity, 'info');
      assert.equal(p.related.length, 6);
    }
    const callers = esc.flatMap((p) =>
      p.related.filter((r) => / calls /.test(r.message)).map((r) => r.message.split(' ')[0]),
    );
    assert.deepEqual(callers.sort(), ['both', 'both', 'read_hvm', 'read_vcpu']);
    assert.equal(bug.filter((f) => f.check === 'nospec-branch').length, 0);
  });

  test(`nospec: the always_inline fix is clean (gcc ${opt})`, () => {
    const path = compile('check/nospec-pred.c', [opt, '-DPRED_INLINE=1']);
    assert.deepEqual(check(path), []);
    // ...and it is clean because the fences are on both arms, not because there are none.
    const img = Image.parse(readFileSync(path), path);
    const { view } = prepare(img);
    const pairs = classifyFences(view).fences.filter((x) => x.cls === 'pair').length;
    view.dispose();
    assert.ok(pairs >= 6, `expected inlined fence pairs, found ${pairs}`);
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

interface XenRun {
  esc: Finding[];
  branch: Finding[];
  inv: Finding[];
}

/** Every check on a view with all hardening on (Xen's default leaves lock hardening off: see below). */
function xen(path: string, profile?: string): XenRun {
  const img = Image.parse(readFileSync(path), path);
  const { view } = prepare(img, { profile, cpu: 'intel-server,lock-harden=on' });
  try {
    const f = runChecks(
      view,
      ['nospec-branch', 'nospec-outlined', 'nospec-fences'].map((id) => checkById(id)!),
    );
    return {
      esc: f.filter((x) => x.check === 'nospec-outlined'),
      branch: f.filter((x) => x.check === 'nospec-branch'),
      inv: f.filter((x) => x.check === 'nospec-fences'),
    };
  } finally {
    view.dispose();
  }
}

/** Invariants of every Xen build: the inventory names both hardening switches and adds up. */
function invariants(r: XenRun): void {
  const counts = r.inv.map((x) => Number(/^(\d+) of (\d+) fences/.exec(x.message)![1]));
  const total = Number(/ of (\d+) fences/.exec(r.inv[0]!.message)![1]);
  assert.equal(
    counts.reduce((a, b) => a + b, 0),
    total,
  );
  assert.ok(r.inv.some((x) => /branch-hardening pair.*removed by spec-ctrl=no-branch-harden/.test(x.message)));
  assert.ok(r.inv.some((x) => /one-sided barrier.*removed by spec-ctrl=no-branch-harden/.test(x.message)));
  assert.ok(r.inv.some((x) => /lock hardening, gated by X86_FEATURE_SC_NO_LOCK_HARDEN/.test(x.message)));
  assert.ok(r.inv.some((x) => /store-bypass barrier/.test(x.message)));
  for (const e of r.esc) {
    assert.match(e.message, /^decision hardened in \S+\(\) escapes/);
    assert.equal(e.related.filter((x) => !/^address of/.test(x.message)).length % 3, 0);
  }
  for (const b of r.branch) assert.match(b.message, /SC_NO_BRANCH_HARDEN/);
}

const esc417 = {
  warning: ['get_page_from_l1e', 'p2m_mem_access_sanity_check', 'xatp_permission_check'],
  info: ['amd_iommu_add_device', 'domain_context_unmap', 'shadow_domain_init'],
};

test('xen-syms 4.17.7: escaped decisions, one-sided barriers and the fence inventory', (t) => {
  const r = xen(corpus.xenSyms);
  invariants(r);
  // The real ones: hypercall input reaches a branch on the decision with no fence (docs/check.md explains each).
  const sev = (s: string): string[] =>
    r.esc
      .filter((x) => x.severity === s)
      .map((x) => x.symbol)
      .sort();
  assert.ok(sev('warning').includes('p2m_mem_access_sanity_check'));
  assert.ok(sev('warning').includes('xatp_permission_check'));
  // The previous version's value-barrier and always-true predicates are not escaped decisions.
  for (const n of ['__mfn_valid', 'nr_grant_entries', 'domain_get_irq_dpci', 'hvm_domain_use_pirq'])
    assert.ok(!r.esc.some((x) => x.symbol === n), n);
  const memop = r.esc.find((x) => x.symbol === 'p2m_mem_access_sanity_check')!;
  //   ffff82d04022564d: call p2m_mem_access_sanity_check; ffff82d040225654: je (objdump -d)
  assert.ok(memop.related.some((x) => x.symbol === 'mem_access_memop+0x94' && /branch on the result/.test(x.message)));
  if (pinned('xen-4.17', '4.17.7+13-g2445b30a44-0+deb12u1', t.diagnostic)) {
    assert.deepEqual(sev('warning'), esc417.warning);
    assert.deepEqual(sev('info'), esc417.info);
    assert.equal(r.branch.length, 20);
    assert.equal(memop.address, '0xffff82d0402d639d'); // p2m_mem_access_sanity_check+0x1d: the branch of its pair
    const inv = Object.fromEntries(
      r.inv.map((x) => [
        /fences: ([^,(]+)/.exec(x.message)![1]!.trim() + ' ' + (/gated by (\S+)/.exec(x.message)?.[1] ?? 'ungated'),
        Number(x.message.split(' ')[0]),
      ]),
    );
    assert.deepEqual(inv, {
      'branch-hardening pair X86_FEATURE_SC_NO_BRANCH_HARDEN:': 2685,
      'one-sided barrier X86_FEATURE_SC_NO_BRANCH_HARDEN:': 69,
      'store-bypass barrier X86_FEATURE_SC_NO_BRANCH_HARDEN:': 1,
      'lock hardening X86_FEATURE_SC_NO_LOCK_HARDEN:': 1078,
      'fence no hardening feature gates X86_FEATURE_MFENCE_RDTSC': 34,
      'fence no hardening feature gates X86_SPEC_NO_LFENCE_ENTRY_PV': 4,
      'fence no hardening feature gates X86_SPEC_NO_LFENCE_ENTRY_INTR': 2,
      'fence no hardening feature gates X86_SPEC_NO_LFENCE_ENTRY_VMX': 1,
      'fence no hardening feature gates ungated': 151,
    });
  }
  // A predicate reached only through an ops table: the table entry is named.
  const amd = r.esc.find((x) => x.symbol === 'amd_iommu_add_device');
  if (amd) assert.match(amd.related[0]!.symbol, /iommu_ops\+0x/);
  // The store-bypass barrier nospec-branch used to report: io_emul_stub_setup, gated by SC_NO_BRANCH_HARDEN.
  assert.ok(!r.branch.some((x) => x.symbol === 'io_emul_stub_setup'));
  assert.ok(r.inv.some((x) => x.symbol === 'io_emul_stub_setup' && /store-bypass/.test(x.message)));
});

test('xen-syms 4.17.5+72 (profile and numbering from its own evidence) and 4.20.4: the same check, no crash, inventory present', (t) => {
  const b = xen(corpus.xenSyms417Bookworm);
  invariants(b);
  assert.ok(b.esc.some((x) => x.symbol === 'p2m_mem_access_sanity_check' && x.severity === 'warning'));
  const n = xen(corpus.xenSyms420);
  invariants(n);
  assert.ok(n.esc.some((x) => x.symbol === 'xatp_permission_check' && x.severity === 'warning'));
  if (pinned('xen-4.20', corpus420Version, t.diagnostic)) assert.equal(n.esc.length, 7);
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

test('textpoke check on xen-syms 4.17.7: the inventory in text and JSON, with the switch that removes each class', () => {
  const bin = join(repoRoot, 'bin', 'textpoke.js');
  const run = (args: string[]): { code: number; out: string } => {
    const r = spawnSync(process.execPath, [bin, 'check', '-j', '1', ...args], {
      encoding: 'utf8',
      maxBuffer: 1 << 26,
      timeout: 120_000,
    });
    return { code: r.status ?? -1, out: r.stdout };
  };
  const text = run(['--checks', 'nospec-fences', corpus.xenSyms]);
  assert.equal(text.code, 0);
  assert.match(
    text.out,
    /: info: textpoke: \S+: \d+ of \d+ fences: branch-hardening pair \(both arms of a conditional branch\), gated by X86_FEATURE_SC_NO_BRANCH_HARDEN: removed by spec-ctrl=no-branch-harden \[nospec-fences\]/,
  );
  assert.match(text.out, /store-bypass barrier .*removed by spec-ctrl=no-branch-harden/);
  const json = run(['--json', '--checks', 'nospec-fences,nospec-outlined', corpus.xenSyms]);
  assert.equal(json.code, 0);
  const f = (JSON.parse(json.out) as { files: { findings: Finding[] }[] }).files[0]!.findings;
  const inv = f.filter((x) => x.check === 'nospec-fences');
  assert.ok(inv.length >= 6 && inv.every((x) => x.severity === 'info'));
  // The default view is Xen's default boot: lock hardening off, so its fences are counted as removed.
  assert.ok(!inv.some((x) => /lock hardening, gated by/.test(x.message)));
  const removed = inv.find((x) =>
    /fences gated by X86_FEATURE_SC_NO_LOCK_HARDEN removed for this CPU/.test(x.message),
  )!;
  assert.match(removed.message, /spec-ctrl=lock-harden keeps them/);
  const on = run(['--json', '--checks', 'nospec-fences', '--cpu', 'intel-server,lock-harden=on', corpus.xenSyms]);
  const onInv = (JSON.parse(on.out) as { files: { findings: Finding[] }[] }).files[0]!.findings;
  const lock = onInv.find((x) => /lock hardening, gated by X86_FEATURE_SC_NO_LOCK_HARDEN/.test(x.message))!;
  assert.equal(Number(removed.message.split(' ')[0]), Number(lock.message.split(' ')[0]));
  assert.ok(!onInv.some((x) => /removed for this CPU/.test(x.message)));
  const p2m = f.find((x) => x.check === 'nospec-outlined' && x.symbol === 'p2m_mem_access_sanity_check')!;
  assert.equal(p2m.severity, 'warning');
  assert.ok(p2m.related.some((r) => r.symbol === 'mem_access_memop+0x94'));
});

test('xen-syms 4.17.7: what each spec-ctrl= switch removes, on the patched views', () => {
  const count = (cpu: string): Map<string, number> => {
    const img = Image.parse(readFileSync(corpus.xenSyms), corpus.xenSyms);
    const { view } = prepare(img, { cpu });
    try {
      const m = new Map<string, number>();
      for (const f of classifyFences(view).fences) m.set(f.cls, (m.get(f.cls) ?? 0) + 1);
      return m;
    } finally {
      view.dispose();
    }
  };
  // Xen's default boot: branch hardening on, lock hardening off (opt_lock_harden defaults to false).
  const on = count('intel-server,lock-harden=on');
  const noBranch = count('intel-server,lock-harden=on,branch-harden=off');
  const noLock = count('intel-server');
  assert.deepEqual(count('intel-server,lock-harden=off'), noLock);
  const total = (m: Map<string, number>): number => [...m.values()].reduce((a, b) => a + b, 0);
  // branch-harden=off removes every pair, one-sided, value and store-bypass fence, and nothing else.
  for (const c of ['pair', 'one-sided', 'value', 'store-bypass']) assert.equal(noBranch.get(c) ?? 0, 0, c);
  assert.equal(noBranch.get('lock'), on.get('lock'));
  assert.equal(
    total(on) - total(noBranch),
    (on.get('pair') ?? 0) + (on.get('one-sided') ?? 0) + (on.get('value') ?? 0) + (on.get('store-bypass') ?? 0),
  );
  // lock-harden=off removes the lock-hardening fences only.
  assert.equal(noLock.get('lock') ?? 0, 0);
  assert.equal(noLock.get('pair'), on.get('pair'));
  assert.equal(total(on) - total(noLock), on.get('lock'));
  assert.ok((on.get('lock') ?? 0) > 0 && (on.get('pair') ?? 0) > 0);
});
