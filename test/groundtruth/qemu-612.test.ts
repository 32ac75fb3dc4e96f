/**
 * Ground truth from a real boot of Debian's 6.12 (6.12.117, bookworm-security) kernel (scripts/qemu-groundtruth.mjs --kernel 6.12):
 * two of the six configurations (an Intel with spectre_v2=retpoline,lfence, an AMD with the default mitigations; the script runs all six); see test/support/qemu-linux.ts for what is asserted and docs/groundtruth.md for the measured results.
 */
import { corpus } from '../support/corpus.js';
import { groundTruthTests } from '../support/qemu-linux.js';

groundTruthTests({
  kernel: '6.12',
  release: () => corpus.modules612.split('/').at(-2)!,
  modules: () => corpus.modules612,
  models: ['Skylake-Client-IBRS:spectre_v2=retpoline,lfence', 'EPYC-Rome'],
  insmod: ['crc32c_generic.ko', 'libcrc32c.ko', 'xfs.ko', 'irqbypass.ko', 'kvm.ko'],
  xfsSections: ['.altinstr_replacement', '.exit.text', '.static_call.text', '.text'],
  kvmSections: ['.altinstr_aux', '.altinstr_replacement', '.exit.text', '.noinstr.text', '.static_call.text', '.text'],
  kvmParavirtTable: '.altinstructions',
  traceEvent: 'xfs/xfs_perag_get',
  srso: /^Vulnerable: Safe RET, no microcode/,
  preempt: 'voluntary',
  minCoreText: 16_000_000,
  timeoutMs: 600_000,
});
