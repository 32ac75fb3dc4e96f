/**
 * Ground truth from a real boot of Debian's 7.3 (7.3.4, trixie-backports) kernel (scripts/qemu-groundtruth.mjs --kernel 7.3):
 * the five configurations the kernel boots (7.3.4 itself triple-faults with spectre_v2=retpoline,lfence, see
 * docs/groundtruth.md); see test/support/qemu-linux.ts for what is asserted and docs/groundtruth.md for the measured results.
 */
import { corpus } from '../support/corpus.js';
import { groundTruthTests } from '../support/qemu-linux.js';

groundTruthTests({
  kernel: '7.3',
  release: () => corpus.modules7.split('/').at(-2)!,
  modules: () => corpus.modules7,
  models: ['Skylake-Client-IBRS', 'EPYC-Rome', 'qemu64', 'Penryn', 'EPYC-Rome:mitigations=off'],
  insmod: ['xfs.ko', 'irqbypass.ko', 'kvm.ko'],
  xfsSections: ['.altinstr_replacement', '.exit.text', '.static_call.text', '.text'],
  kvmSections: ['.altinstr_aux', '.altinstr_replacement', '.exit.text', '.noinstr.text', '.static_call.text', '.text'],
  kvmParavirtTable: '.altinstructions',
  traceEvent: 'xfs/xfs_group_get',
  srso: /^Mitigation: SMT disabled/,
  preempt: 'lazy',
  minCoreText: 18_000_000,
  timeoutMs: 780_000,
});
