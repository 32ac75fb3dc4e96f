import test from 'node:test';
import assert from 'node:assert/strict';
import { CpuSpecError, LINUX_PRESETS, parseCpu, XEN_PRESETS } from '../../src/patch/index.js';
import { featureNumber, featureTable } from '../../src/target/features/index.js';

const linux = featureTable('linux-6.1.85');
const xen = featureTable('xen-4.17.7');
const n = (t: typeof linux, s: string): number => featureNumber(t, s)!;

test('presets: none has only ALWAYS; all has every number below the limit', () => {
  assert.deepEqual([...parseCpu('none', linux).features], [n(linux, 'ALWAYS')]);
  assert.deepEqual([...parseCpu('none', xen).features], [93]);
  assert.equal(parseCpu('all', linux).features.size, linux.limit);
});

test('presets resolve in the newest tables without unknown names', () => {
  for (const p of LINUX_PRESETS) assert.deepEqual(parseCpu(p.id, linux).notes, [], p.id);
  for (const p of XEN_PRESETS) assert.deepEqual(parseCpu(p.id, xen).notes, [], p.id);
});

test('+/- features with or without the X86_FEATURE_ prefix, any case', () => {
  const c = parseCpu('intel-server,-x86_feature_popcnt,+RETPOLINE,xenpv', linux);
  assert.ok(!c.has(n(linux, 'POPCNT')));
  assert.ok(c.has(n(linux, 'RETPOLINE')));
  assert.ok(c.has(n(linux, 'XENPV')));
});

test('Linux mitigation choices set the synthetic features and the return thunk', () => {
  const a = parseCpu('amd-server', linux);
  assert.equal(a.returnThunk, 'srso_alias_return_thunk');
  assert.ok(a.has(n(linux, 'RETHUNK')) && a.has(n(linux, 'SRSO_ALIAS')));
  const i = parseCpu('intel-server', linux);
  assert.ok(!i.has(n(linux, 'RETHUNK')) && !i.has(n(linux, 'RETPOLINE')));
  const l = parseCpu('intel-server,spectre_v2=lfence,rethunk=retbleed', linux);
  assert.ok(l.has(n(linux, 'RETPOLINE')) && l.has(n(linux, 'RETPOLINE_LFENCE')));
  assert.equal(l.returnThunk, 'retbleed_return_thunk');
  const o = parseCpu('amd-server,rethunk=off', linux);
  assert.ok(!o.has(n(linux, 'RETHUNK')) && !o.has(n(linux, 'SRSO_ALIAS')));
});

test('Xen: hardening switches map to SC_NO_*_HARDEN with the right polarity; nops', () => {
  // Xen's defaults: branch hardening on, lock hardening off (spec-ctrl=lock-harden turns it on).
  const def = parseCpu('intel-server', xen);
  assert.ok(!def.has(n(xen, 'SC_NO_BRANCH_HARDEN')) && def.has(n(xen, 'SC_NO_LOCK_HARDEN')));
  const on = parseCpu('intel-server,lock-harden=on', xen);
  assert.ok(!on.has(n(xen, 'SC_NO_BRANCH_HARDEN')) && !on.has(n(xen, 'SC_NO_LOCK_HARDEN')));
  const off = parseCpu('intel-server,branch-harden=off,lock-harden=off', xen);
  assert.ok(off.has(n(xen, 'SC_NO_BRANCH_HARDEN')) && off.has(n(xen, 'SC_NO_LOCK_HARDEN')));
  assert.equal(parseCpu('old', xen).nops, 'k8');
  assert.equal(parseCpu('intel-server,nops=k8', xen).nops, 'k8');
});

test('bad specs are one-line errors', () => {
  assert.throws(() => parseCpu('pentium', linux), CpuSpecError);
  assert.throws(() => parseCpu('none,+NOT_A_FEATURE', linux), /unknown CPU feature 'NOT_A_FEATURE'/);
  assert.throws(() => parseCpu('none,branch-harden=off', linux), CpuSpecError);
  assert.throws(() => parseCpu('none,spectre_v2=maybe', linux), CpuSpecError);
});
