/**
 * ftrace at boot and at module load (ftrace_init / ftrace_module_init -> ftrace_process_locs ->
 * ftrace_init_nop): with no tracer active, every `__mcount_loc` site, a 5-byte `call __fentry__`, becomes
 * the 5-byte NOP `0f 1f 44 00 00`. A site that is neither that call nor already the NOP is what ftrace_bug()
 * reports and leaves alone. The qemu ground truth shows the booted kernel's module text in exactly this form.
 */
import type { Site } from '../sites/site.js';
import type { PatchedView } from './view.js';

export const FTRACE_NOP = Uint8Array.of(0x0f, 0x1f, 0x44, 0x00, 0x00);

export function applyLinuxFtrace(view: PatchedView, sites: readonly Site[]): void {
  for (const s of sites) {
    if (s.table !== '__mcount_loc' || Number.isNaN(s.addr)) continue;
    const b = view.read(s.addr, 5);
    if (!b) continue;
    if (b[0] === 0x0f && b[1] === 0x1f && b[2] === 0x44 && b[3] === 0x00 && b[4] === 0x00) continue;
    if (b[0] !== 0xe8) {
      view.finding(
        'ftrace',
        s.addr,
        'mcount site is not a 5-byte call: ftrace_bug() reports it and leaves it alone',
        'warn',
        s,
      );
      continue;
    }
    view.write('ftrace', s.addr, FTRACE_NOP, s, 'ftrace_init_nop');
  }
}
