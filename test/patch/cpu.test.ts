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

// ---- --cpu host / --cpu-from: saved machine descriptions in test/fixtures/cpu ----
import { readdirSync, readFileSync as readFixture } from 'node:fs';
import { join as joinPath } from 'node:path';
import { hostCpuSpec } from '../../src/patch/host-cpu.js';
import { parseCpuFile, readHostFiles, resolveCpuSpec } from '../../src/cli/host-cpu.js';
import { repoRoot } from '../support/corpus.js';

const cpuFixtures = joinPath(repoRoot, 'test', 'fixtures', 'cpu');
const names = (spec: string, t = linux): Set<string> => {
  const cpu = parseCpu(spec, t);
  return new Set([...cpu.features].map((k) => featureNameOf(t, k).replace(/^X86_FEATURE_/, '')));
};
import { featureName as featureNameOf } from '../../src/target/features/index.js';

test('--cpu-from a saved tree (Skylake-SP, retpolines): cpuinfo flags with their cpuinfo names, bugs, and the hidden mitigation features', () => {
  const files = readHostFiles(joinPath(cpuFixtures, 'skylake'));
  const host = hostCpuSpec(files);
  const f = names(host.spec);
  // cpuinfo names differ from the kernel's for some: sse4_2 = XMM4_2, pdpe1gb = GBPAGES, monitor = MWAIT, pni = XMM3.
  for (const x of ['XMM4_2', 'GBPAGES', 'MWAIT', 'XMM3', 'AVX512F', 'PTI', 'MD_CLEAR', 'IBRS']) assert.ok(f.has(x), x);
  for (const x of ['X86_BUG_CPU_MELTDOWN', 'X86_BUG_RETBLEED', 'X86_BUG_MDS', 'X86_BUG_SWAPGS']) assert.ok(f.has(x), x);
  // From the vulnerabilities files: what cpuinfo does not show.
  for (const x of [
    'RETPOLINE',
    'RSB_CTXSW',
    'CLEAR_CPU_BUF',
    'KERNEL_IBRS',
    'FENCE_SWAPGS_KERNEL',
    'USE_IBPB',
    'CLEAR_BHB_LOOP',
  ])
    assert.ok(f.has(x), x);
  // Set by the kernel for Intel CPUs without a cpuinfo name, and by the retpoline mode.
  for (const x of ['SYSENTER32', 'LFENCE_RDTSC', 'APIC_MSRS_FENCE', 'MSR_IA32_FEAT_CTL', 'OSXSAVE', 'RSB_VMEXIT'])
    assert.ok(f.has(x), x);
  for (const x of ['RETPOLINE_LFENCE', 'RETHUNK', 'UNRET', 'IBRS_ENHANCED', 'FENCE_SWAPGS_USER'])
    assert.ok(!f.has(x), x);
  // Only the first processor's block counts (the second has only fpu).
  assert.ok(f.has('AVX2'));
  assert.match(host.notes[0]!, /GenuineIntel family 6 model 85, \d+ flags, 13 bugs/);
});

test('--cpu-from one saved file (Zen 4, Safe RET): AutoIBRS so no retpoline; srso_alias_return_thunk; PTI off', () => {
  const files = parseCpuFile(readFixture(joinPath(cpuFixtures, 'zen4.txt'), 'utf8'));
  assert.equal(Object.keys(files.vulnerabilities!).length, 6);
  assert.match(files.cmdline!, /nvme0n1p1/);
  const host = hostCpuSpec(files);
  const cpu = parseCpu(host.spec, linux);
  assert.equal(cpu.returnThunk, 'srso_alias_return_thunk');
  const f = names(host.spec);
  for (const x of [
    'RETHUNK',
    'UNRET',
    'SRSO_ALIAS',
    'LA57',
    'IBRS_ENHANCED',
    'RSB_CTXSW',
    'X86_BUG_SRSO',
    'SVM',
    'AVX512_VBMI2',
  ])
    assert.ok(f.has(x), x);
  for (const x of ['RETPOLINE', 'PTI', 'CLEAR_CPU_BUF', 'SRSO', 'SYSENTER32', 'APIC_MSRS_FENCE', 'RSB_VMEXIT'])
    assert.ok(!f.has(x), x);
  assert.ok(f.has('LFENCE_RDTSC'));
  // Family 0x17 (Zen 2) gets the plain SRSO thunk.
  const zen2 = hostCpuSpec({ ...files, cpuinfo: files.cpuinfo!.replace('cpu family\t: 25', 'cpu family\t: 23') });
  assert.equal(parseCpu(zen2.spec, linux).returnThunk, 'srso_return_thunk');
});

test('--cpu-from: the Zen generation as bsp_init_amd() picks it, where the kernel has the bit', () => {
  const files = parseCpuFile(readFixture(joinPath(cpuFixtures, 'zen4.txt'), 'utf8'));
  const as = (family: number, model: number) =>
    hostCpuSpec({
      ...files,
      cpuinfo: files
        .cpuinfo!.replace('cpu family\t: 25', `cpu family\t: ${family}`)
        .replace('model\t\t: 17', `model\t\t: ${model}`),
    }).spec;
  const t7 = featureTable('linux-7.3');
  const zen = (spec: string, t: typeof t7): string[] => [...names(spec, t)].filter((n) => /^ZEN\d?$/.test(n)).sort();
  assert.deepEqual(zen(as(25, 17), t7), ['ZEN', 'ZEN4']);
  assert.deepEqual(zen(as(26, 0xd0), t7), ['ZEN', 'ZEN5']);
  assert.deepEqual(zen(as(26, 0x50), t7), ['ZEN', 'ZEN6']);
  // A table without the bit (6.1's has no ZEN5 or ZEN6) leaves the generation out.
  assert.deepEqual(zen(as(26, 0x50), linux), ['ZEN']);
  // Family 0x1a beyond every range and family 0x17 Zen 2.
  assert.deepEqual(zen(as(26, 0xf0), t7), ['ZEN']);
  assert.deepEqual(zen(as(23, 0x31), t7), ['ZEN', 'ZEN2']);
});

test('--cpu-from: MMIO stale data alone is no CLEAR_CPU_BUF (7.x: CLEAR_CPU_BUF_VM_MMIO); FRED clears SYSFAST32', () => {
  const files = parseCpuFile(readFixture(joinPath(cpuFixtures, 'zen4.txt'), 'utf8'));
  const t7 = featureTable('linux-7.3');
  const vuln = (extra: Record<string, string>) => ({
    ...files,
    vulnerabilities: { ...files.vulnerabilities, ...extra },
  });
  const mmio = names(hostCpuSpec(vuln({ mmio_stale_data: 'Mitigation: Clear CPU buffers; SMT vulnerable' })).spec, t7);
  assert.ok(!mmio.has('CLEAR_CPU_BUF') && !mmio.has('CLEAR_CPU_BUF_VM') && mmio.has('CLEAR_CPU_BUF_VM_MMIO'));
  const mds = names(hostCpuSpec(vuln({ mds: 'Mitigation: Clear CPU buffers; SMT vulnerable' })).spec, t7);
  assert.ok(mds.has('CLEAR_CPU_BUF') && mds.has('CLEAR_CPU_BUF_VM') && !mds.has('CLEAR_CPU_BUF_VM_MMIO'));
  assert.ok(names(hostCpuSpec(files).spec, t7).has('SYSFAST32'));
  const fred = hostCpuSpec({ ...files, cpuinfo: files.cpuinfo!.replace(/^flags\t\t: /m, 'flags\t\t: fred ') });
  assert.ok(!names(fred.spec, t7).has('SYSFAST32') && !names(fred.spec, t7).has('SYSCALL32'));
});

test('--cpu-from without vulnerabilities files: the command line decides (mitigations=off)', () => {
  const host = hostCpuSpec(readHostFiles(joinPath(cpuFixtures, 'nomitigations')));
  const f = names(host.spec);
  for (const x of ['RETPOLINE', 'RETHUNK', 'PTI', 'KERNEL_IBRS', 'CLEAR_CPU_BUF']) assert.ok(!f.has(x), x);
  assert.ok(f.has('POPCNT'));
  assert.ok(
    host.notes.some((n) => /mitigations=off/.test(n)),
    host.notes.join('\n'),
  );
  const spectre = hostCpuSpec({
    cpuinfo: readFixture(joinPath(cpuFixtures, 'nomitigations', 'cpuinfo'), 'utf8'),
    cmdline: 'ro spectre_v2=retpoline,lfence',
  });
  assert.ok(names(spectre.spec).has('RETPOLINE_LFENCE'));
});

test('host specs read with any table: unknown cpuinfo names are skipped, extra items apply after, errors are one line', () => {
  const files = readHostFiles(joinPath(cpuFixtures, 'skylake'));
  const spec = hostCpuSpec(files).spec;
  for (const id of ['linux-6.1.0', 'linux-6.12']) assert.doesNotThrow(() => parseCpu(spec, featureTable(id)), id);
  const notes: string[] = [];
  const withExtra = resolveCpuSpec('host,-AVX2', joinPath(cpuFixtures, 'skylake'), notes)!;
  assert.ok(!names(withExtra).has('AVX2'));
  assert.ok(
    notes.some((n) => n.startsWith('--cpu from ')),
    notes.join('\n'),
  );
  assert.equal(resolveCpuSpec('intel-server', undefined), 'intel-server');
  assert.throws(() => resolveCpuSpec(undefined, joinPath(cpuFixtures, 'missing')), /missing: no such file/);
  assert.throws(() => hostCpuSpec({ cpuinfo: 'processor : 0\n' }), /no "flags" line/);
  assert.throws(() => resolveCpuSpec('amd-server', joinPath(cpuFixtures, 'skylake')), /exclusive/);
});

// The 6.1 guests (table linux-6.1.85), then Debian's 6.12.117 and 7.3.4 (each fixture names its table).
for (const guest of readdirSync(cpuFixtures)
  .filter((d) => d.startsWith('qemu-'))
  .sort())
  test(`--cpu-from a QEMU guest's saved files (${guest}) gives exactly the feature bits that kernel set (boot_cpu_data) and its return thunk`, () => {
    const dir = joinPath(cpuFixtures, guest);
    const want = readFixture(joinPath(dir, 'kernel-features.txt'), 'utf8')
      .split('\n')
      .filter((l) => l && !l.startsWith('#'));
    const thunk = want.find((l) => l.startsWith('thunk '))!.slice(6);
    const tableId = want.find((l) => l.startsWith('table '))?.slice(6) ?? 'linux-6.1.85';
    const t = featureTable(tableId);
    const kernel = new Set(want.filter((l) => !/^(thunk|table) /.test(l)).map((n) => n.replace(/^X86_FEATURE_/, '')));
    const cpu = parseCpu(hostCpuSpec(readHostFiles(dir)).spec, t);
    const got = names(cpu.spec, t);
    assert.deepEqual(
      [...got].filter((n) => !kernel.has(n)),
      [],
      'inferred but not set by the kernel',
    );
    assert.deepEqual(
      [...kernel].filter((n) => !got.has(n)),
      [],
      'set by the kernel but not inferred',
    );
    assert.equal(cpu.returnThunk, thunk);
  });
