import test from 'node:test';
import assert from 'node:assert/strict';
import {
  FEATURE_TABLE_IDS,
  featureName,
  featureNumber,
  featureTable,
  type FeatureTable,
} from '../../src/target/features/index.js';

const wb = (w: number, b: number): number => w * 32 + b;

const LINUX_61 = ['linux-6.1.0', 'linux-6.1.38', 'linux-6.1.85'];
const XEN = ['0', '1', '2', '3', '4', '5', '6', '7'].map((p) => `xen-4.17.${p}`);

test('table ids', () => {
  for (const id of [...LINUX_61, 'linux-6.3', 'linux-6.12', ...XEN]) assert.ok(FEATURE_TABLE_IDS.includes(id), id);
  assert.throws(() => featureTable('linux-2.6'), /unknown feature table/);
  assert.equal(featureTable('linux-6.12'), featureTable('linux-6.12'), 'tables are built once');
});

test('every table is consistent', () => {
  for (const id of FEATURE_TABLE_IDS) {
    const t = featureTable(id);
    assert.equal(t.id, id);
    assert.ok(t.byNumber.size > 200, `${id}: ${t.byNumber.size} numbers`);
    for (const [n, name] of t.byNumber) {
      assert.ok(Number.isInteger(n) && n >= 0 && n < t.limit, `${id}: ${name} = ${n} outside limit ${t.limit}`);
      assert.equal(t.byName.get(name), n, `${id}: ${name}`);
      assert.match(name, /^X86_(FEATURE|BUG|SPEC)_[A-Z0-9_]+$/);
    }
    for (const [name, n] of t.byName) assert.ok(t.byNumber.has(n), `${id}: ${name}`);
    // Bugs live above the feature words (Linux: X86_BUG(0) = NCAPINTS*32; Xen: after the synthetic word).
    for (const [name, n] of t.byName) {
      if (name.startsWith('X86_BUG_')) assert.ok(n >= t.words * 32, `${id}: ${name}`);
    }
  }
});

test('Linux 6.1 reference numbers, all three NCAPINTS variants', () => {
  const bug0: Record<string, number> = { 'linux-6.1.0': 640, 'linux-6.1.38': 672, 'linux-6.1.85': 704 };
  const words: Record<string, number> = { 'linux-6.1.0': 20, 'linux-6.1.38': 21, 'linux-6.1.85': 22 };
  for (const id of LINUX_61) {
    const t = featureTable(id);
    assert.equal(t.family, 'linux');
    assert.equal(t.words, words[id]);
    assert.equal(featureNumber(t, 'X86_FEATURE_ALWAYS'), wb(3, 21));
    assert.equal(featureNumber(t, 'X86_FEATURE_XENPV'), wb(8, 16));
    assert.equal(featureNumber(t, 'X86_FEATURE_SMAP'), wb(9, 20));
    assert.equal(featureNumber(t, 'X86_FEATURE_RETPOLINE'), wb(11, 12));
    assert.equal(featureNumber(t, 'X86_FEATURE_RETPOLINE_LFENCE'), wb(11, 13));
    assert.equal(featureNumber(t, 'X86_FEATURE_RETHUNK'), wb(11, 14));
    assert.equal(featureNumber(t, 'X86_FEATURE_UNRET'), wb(11, 15));
    assert.equal(featureNumber(t, 'X86_FEATURE_FPU'), 0);
    assert.equal(featureNumber(t, 'X86_FEATURE_XMM'), wb(0, 25), 'macro name, not the /proc name "sse"');
    assert.equal(featureNumber(t, 'X86_BUG_F00F'), bug0[id]);
    assert.equal(featureNumber(t, 'X86_BUG_SPECTRE_V2'), bug0[id]! + 16);
    assert.equal(featureNumber(t, 'X86_BUG_RETBLEED'), bug0[id]! + 27);
    assert.equal(featureName(t, bug0[id]! + 15), 'X86_BUG_SPECTRE_V1');
    assert.equal(featureName(t, wb(3, 21)), 'X86_FEATURE_ALWAYS');
  }
  // Word 20 (CPUID 0x80000021.eax) exists from 6.1.38, word 21 (CPUID_LNX_5) from 6.1.85; below that those
  // numbers are bugs.
  assert.equal(featureNumber(featureTable('linux-6.1.0'), 'X86_FEATURE_SBPB'), undefined);
  assert.equal(featureNumber(featureTable('linux-6.1.38'), 'X86_FEATURE_SBPB'), wb(20, 27));
  assert.equal(featureNumber(featureTable('linux-6.1.38'), 'X86_FEATURE_CLEAR_BHB_LOOP'), undefined);
  assert.equal(featureNumber(featureTable('linux-6.1.85'), 'X86_FEATURE_CLEAR_BHB_LOOP'), wb(21, 1));
  assert.equal(featureName(featureTable('linux-6.1.0'), 640), 'X86_BUG_F00F');
  assert.equal(featureName(featureTable('linux-6.1.0'), 645), 'X86_BUG_11AP');
  assert.equal(featureName(featureTable('linux-6.1.85'), 645), 'X86_FEATURE_VERW_CLEAR');
  // SRSO is X86_BUG(1*32+0): needs NBUGINTS 2.
  assert.equal(featureNumber(featureTable('linux-6.1.0'), 'X86_BUG_SRSO'), undefined);
  assert.equal(featureNumber(featureTable('linux-6.1.38'), 'X86_BUG_SRSO'), 672 + 32);
  assert.equal(featureNumber(featureTable('linux-6.1.85'), 'X86_BUG_SRSO'), 704 + 32);
  assert.equal(featureTable('linux-6.1.0').limit, 21 * 32);
  assert.equal(featureTable('linux-6.1.38').limit, 23 * 32);
  assert.equal(featureTable('linux-6.1.85').limit, 24 * 32);
});

test('Linux 6.12 numbers from its header', () => {
  const t = featureTable('linux-6.12');
  assert.equal(t.words, 22);
  assert.equal(t.limit, 24 * 32);
  assert.equal(featureNumber(t, 'X86_FEATURE_ALWAYS'), wb(3, 21));
  assert.equal(featureNumber(t, 'X86_FEATURE_XENPV'), wb(8, 16));
  assert.equal(featureNumber(t, 'X86_FEATURE_SMAP'), wb(9, 20));
  assert.equal(featureNumber(t, 'X86_FEATURE_RETPOLINE'), wb(11, 12));
  assert.equal(featureNumber(t, 'X86_FEATURE_RETHUNK'), wb(11, 14));
  assert.equal(featureNumber(t, 'X86_FEATURE_UNRET'), wb(11, 15));
  assert.equal(featureNumber(t, 'X86_FEATURE_CALL_DEPTH'), wb(11, 19));
  assert.equal(featureNumber(t, 'X86_FEATURE_CLEAR_BHB_LOOP'), wb(21, 1));
  assert.equal(featureNumber(t, 'X86_FEATURE_INDIRECT_THUNK_ITS'), wb(21, 6));
  assert.equal(featureNumber(t, 'X86_BUG_SPECTRE_V2'), 704 + 16);
  assert.equal(featureNumber(t, 'X86_BUG_ITS'), 704 + 32 + 5);
  assert.equal(featureNumber(t, 'X86_FEATURE_RETPOLINE_LFENCE'), wb(11, 13));
  // Same name, different bit: 6.1.y's backport put INDIRECT_THUNK_ITS at 21*32+5, 6.12 at 21*32+6.
  assert.equal(featureNumber(featureTable('linux-6.1.85'), 'X86_FEATURE_INDIRECT_THUNK_ITS'), wb(21, 5));
  const t63 = featureTable('linux-6.3');
  assert.equal(t63.words, 21);
  assert.equal(featureNumber(t63, 'X86_BUG_SPECTRE_V2'), 672 + 16);
  assert.equal(featureNumber(t63, 'X86_FEATURE_CLEAR_BHB_LOOP'), undefined);
});

test('Xen 4.17 per-release FSCAPINTS and synthetic features', () => {
  const fscapints = [14, 16, 18, 18, 18, 18, 19, 19];
  XEN.forEach((id, i) => {
    const t = featureTable(id);
    const f = fscapints[i]!;
    assert.equal(t.family, 'xen');
    assert.equal(t.words, f, id);
    assert.equal(t.limit, (f + 2) * 32, id);
    assert.equal(featureNumber(t, 'X86_FEATURE_ALWAYS'), 93);
    assert.equal(featureNumber(t, 'X86_FEATURE_LM'), 93);
    assert.equal(featureName(t, 93), 'X86_FEATURE_ALWAYS');
    assert.equal(featureNumber(t, 'X86_FEATURE_SC_NO_BRANCH_HARDEN'), f * 32 + 15, id);
    assert.equal(featureName(t, f * 32 + 15), 'X86_FEATURE_SC_NO_BRANCH_HARDEN');
    assert.equal(featureNumber(t, 'X86_FEATURE_XEN_SMAP'), f * 32 + 11, id);
    assert.equal(featureNumber(t, 'X86_BUG_FPU_PTRS'), (f + 1) * 32, id);
    assert.equal(featureNumber(t, 'X86_BUG_IBPB_NO_RET'), (f + 1) * 32 + 3, id);
    // Lock hardening (X86_SYNTH(12)) arrived with 4.17.4 (XSA-453).
    assert.equal(featureNumber(t, 'X86_FEATURE_SC_NO_LOCK_HARDEN'), i >= 4 ? f * 32 + 12 : undefined, id);
    assert.equal(featureNumber(t, 'X86_FEATURE_SMAP'), wb(5, 20));
    assert.equal(featureNumber(t, 'X86_FEATURE_SMEP'), wb(5, 7));
  });
  const x7 = featureTable('xen-4.17.7');
  assert.equal(featureNumber(x7, 'X86_FEATURE_SC_NO_BRANCH_HARDEN'), 623);
  assert.equal(featureNumber(x7, 'X86_FEATURE_SC_NO_LOCK_HARDEN'), 620);
  assert.equal(featureNumber(x7, 'X86_SPEC_BHB_LOOPS'), 20 * 32 + 20);
  assert.equal(featureNumber(x7, 'X86_FEATURE_TSA_SQ_NO'), wb(18, 1));
  assert.equal(featureNumber(x7, 'X86_FEATURE_ITS_NO'), wb(17, 30));
  // CLFLUSH_MONITOR moved from X86_SYNTH(7) to X86_BUG(4) in 4.17.6.
  assert.equal(featureNumber(featureTable('xen-4.17.5'), 'X86_FEATURE_CLFLUSH_MONITOR'), 18 * 32 + 7);
  assert.equal(featureNumber(featureTable('xen-4.17.5'), 'X86_BUG_CLFLUSH_MONITOR'), undefined);
  assert.equal(featureNumber(x7, 'X86_FEATURE_CLFLUSH_MONITOR'), undefined);
  assert.equal(featureNumber(x7, 'X86_BUG_CLFLUSH_MONITOR'), 20 * 32 + 4);
});

test('name lookup: prefixes, case, dashes, numbers', () => {
  const t = featureTable('linux-6.1.85');
  for (const s of ['X86_FEATURE_SMAP', 'FEATURE_SMAP', 'SMAP', 'smap', ' Smap ', 'x86_feature_smap']) {
    assert.equal(featureNumber(t, s), wb(9, 20), s);
  }
  for (const s of ['X86_BUG_SPECTRE_V2', 'BUG_SPECTRE_V2', 'bug_spectre_v2', 'SPECTRE_V2', 'spectre-v2']) {
    assert.equal(featureNumber(t, s), 704 + 16, s);
  }
  assert.equal(featureNumber(t, 'RETPOLINE_LFENCE'), wb(11, 13));
  assert.equal(featureNumber(t, 'NO_SUCH_FEATURE'), undefined);
  assert.equal(featureNumber(t, ''), undefined);
  assert.equal(featureNumber(t, 'X86_SMAP'), undefined);
  // Numbers, as featureName prints unnamed ones.
  assert.equal(featureNumber(t, '9*32+20'), wb(9, 20));
  assert.equal(featureNumber(t, 'feature 12*32+5'), wb(12, 5));
  assert.equal(featureNumber(t, '308'), 308);
  assert.equal(featureNumber(t, '9*32+40'), undefined);
  assert.equal(featureNumber(t, String(t.limit)), undefined);

  const x = featureTable('xen-4.17.7');
  assert.equal(featureNumber(x, 'sc-no-branch-harden'), 623);
  assert.equal(featureNumber(x, 'always'), 93);
  assert.equal(featureNumber(x, 'MONITOR'), wb(1, 3), 'feature wins over the bug of the same name');
  assert.equal(featureNumber(x, 'BUG_MONITOR'), 20 * 32 + 5);
  assert.equal(featureNumber(x, 'SPEC_BHB_TSX'), 20 * 32 + 19);
  assert.equal(featureNumber(x, 'bhb_tsx'), 20 * 32 + 19);
});

test('featureName', () => {
  const t: FeatureTable = featureTable('linux-6.1.85');
  assert.equal(featureName(t, wb(9, 20)), 'X86_FEATURE_SMAP');
  assert.equal(featureName(t, wb(8, 16)), 'X86_FEATURE_XENPV');
  assert.equal(featureName(t, 704 + 16), 'X86_BUG_SPECTRE_V2');
  // An unnamed number: pick one that the header leaves free.
  let free = -1;
  for (let n = 0; n < t.limit; n++)
    if (!t.byNumber.has(n)) {
      free = n;
      break;
    }
  assert.ok(free >= 0);
  assert.equal(featureName(t, free), `feature ${Math.floor(free / 32)}*32+${free % 32}`);
  assert.equal(featureName(t, wb(12 + 312, 5)), 'feature 324*32+5');
});
