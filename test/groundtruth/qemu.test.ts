/**
 * Ground truth from a real boot of Debian's 6.1 kernel (scripts/qemu-groundtruth.mjs --kernel 6.1): two of the six
 * configurations (one Intel with the default mitigations, one AMD with mitigations=off; the script runs all six),
 * see test/support/qemu-linux.ts for what is asserted and docs/groundtruth.md for the measured results.
 */
import { corpus } from '../support/corpus.js';
import { groundTruthTests } from '../support/qemu-linux.js';

groundTruthTests({
  kernel: '6.1',
  release: () => corpus.release61,
  modules: () => corpus.modules61,
  models: ['Skylake-Client-IBRS', 'EPYC-Rome:mitigations=off'],
  insmod: ['crc32c_generic.ko', 'libcrc32c.ko', 'xfs.ko', 'irqbypass.ko', 'kvm.ko'],
  xfsSections: ['.altinstr_replacement', '.exit.text', '.static_call.text', '.text', '.text.unlikely'],
  kvmSections: [
    '.altinstr_aux',
    '.altinstr_replacement',
    '.exit.text',
    '.noinstr.text',
    '.static_call.text',
    '.text',
    '.text.unlikely',
  ],
  kvmParavirtTable: '.parainstructions',
  traceEvent: 'xfs/xfs_perag_get',
  srso: /^Mitigation: safe RET, no microcode/,
  preempt: 'voluntary',
  minCoreText: 14_000_000,
  timeoutMs: 600_000,
});
