import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { imageFromBytes } from '../../src/elf/load.js';
import { Image } from '../../src/elf/image.js';
import { prepare, runChecks } from '../../src/checks/run.js';
import { CHECKS } from '../../src/checks/index.js';
import type { Finding } from '../../src/checks/finding.js';
import { assemble } from '../support/build.js';
import { corpus } from '../support/corpus.js';

function check(path: string, cpu?: string): Finding[] {
  const img = Image.parse(readFileSync(path), path);
  const { view } = prepare(img, { cpu });
  try {
    return runChecks(view, CHECKS);
  } finally {
    view.dispose();
  }
}

const brief = (f: Finding[]): string[] =>
  f.map((x) => `${x.check} ${x.symbol}+0x${x.offset.toString(16)} ${x.severity}`);

// Each bad site of test/fixtures/check/bad-sites.S, by label: what must be reported, where, at which level.
const EXPECTED = [
  'site-mcount func+0x5 error', // .Lmcount_bad: call fallback
  'site-boundary func+0xc error', // .Lmovabs+2
  'site-length func+0x14 error', // .Lalt_long: 5-byte replacement for a 3-byte site
  'site-reloc func+0x17 error', // .Lalt_rip: RIP-relative replacement
  'site-reloc func+0x1e error', // .Lalt_call2: call after a NOP in the replacement
  'site-jump-label func+0x2a error', // .Ljl_bad: movl %eax,%ebx
  'site-static-call func+0x2e error', // .Lsc_bad: jmp at a non-tail site
  'site-smp-lock func+0x33 error', // .Llock_bad
  'retpoline func+0x40 warning', // .Lbare_call: call *%rax
  'retpoline func+0x42 warning', // .Lthunk_unlisted
  'retpoline func+0x4c warning', // .Lnot_thunk listed in .retpoline_sites
  'rethunk func+0x4d warning', // .Lret_unlisted
  'rethunk func+0x57 warning', // .Lbare_ret
  'site-cacheline func+0xbe info', // .Lsc_cross
];

test('site checks: every kind of bad site in an assembled module, and none of the good controls', () => {
  const f = check(assemble('check/bad-sites.S'), 'as-built');
  assert.deepEqual(brief(f), EXPECTED);
  const reloc = f.filter((x) => x.check === 'site-reloc');
  assert.match(
    reloc[0]!.message,
    /RIP-relative operand at \.altinstr_replacement\+0x5 refers to var\+0x0 .*Linux 6\.1 does not fix it up/,
  );
  assert.match(reloc[1]!.message, /replacement call at \.altinstr_replacement\+0xe refers to fallback/);
});

test('site checks: the same findings on the patched view (intel-server), retpoline sites rewritten on purpose are not findings', () => {
  assert.deepEqual(brief(check(assemble('check/bad-sites.S'), 'intel-server')), EXPECTED);
});

test('sls: detected from the binary; the one return without int3 is reported', () => {
  const f = check(assemble('check/sls.S'));
  assert.deepEqual(brief(f), ['sls f+0x38 warning']);
  assert.match(f[0]!.message, /13 of 14 returns and indirect jumps are followed by int3/);
});

test('xen-syms 4.17 on the default patched view: retpoline/rethunk findings are the kexec trampoline and BHB-clearing code', () => {
  const f = check(corpus.xenSyms, 'intel-server');
  const cov = f.filter((x) => x.check === 'retpoline' || x.check === 'rethunk').map((x) => `${x.check} ${x.symbol}`);
  assert.deepEqual(cov.sort(), [
    'rethunk clear_bhb_loops',
    'rethunk clear_bhb_loops',
    'rethunk clear_bhb_loops', // deliberate rets of the BHB-clearing sequence
    'rethunk multiboot1_header', // data between the multiboot headers decoded as code
    'rethunk relocate_pages', // kexec_reloc.S
    'retpoline _etextentry',
    'retpoline _etextentry',
    'retpoline compatibility_mode', // kexec_reloc.S: jumps into the new image
  ]);
  assert.equal(f.filter((x) => x.check.startsWith('site-')).length, 0);
});

test('Linux 6.12 kvm.ko: the one .smp_locks entry that points at a 66 prefix before its lock', async () => {
  const path = corpus.modules612 + '/arch/x86/kvm/kvm.ko.xz';
  const { view } = prepare(await imageFromBytes(readFileSync(path), path), { cpu: 'as-built' });
  const f = runChecks(
    view,
    CHECKS.filter((c) => c.id.startsWith('site-')),
  );
  view.dispose();
  const locks = f.filter((x) => x.check === 'site-smp-lock');
  // objdump -d: 2b0f5: 66 f0 0f b1 3a  lock cmpxchg %di,(%rdx) -- the entry names the 66, not the f0.
  assert.deepEqual(
    locks.map((x) => `${x.symbol}+0x${x.offset.toString(16)}`),
    ['emulator_cmpxchg_emulated+0x175'],
  );
  assert.equal(locks[0]!.severity, 'warning');
  assert.match(locks[0]!.message, /byte is 66, not a lock prefix \(f0\); the lock prefix is 1 byte later, after 66/);
});
