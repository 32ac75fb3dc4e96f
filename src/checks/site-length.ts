/**
 * site-length: an alternative whose replacement is longer than the site it replaces (Linux: replacementlen >
 * instrlen; Xen: repl_len > orig_len + pad_len). Linux 6.1 BUG()s at boot on such an entry; Xen refuses it.
 */
import type { View } from '../cfg/view.js';
import type { Check } from './check.js';
import { Finding, finding } from './finding.js';
import { sitesOf } from './site-common.js';

export const siteLength: Check = {
  id: 'site-length',
  describe: 'alternative replacement longer than its site',
  severity: 'error',
  byDefault: true,
  run(view: View): Finding[] {
    const out: Finding[] = [];
    for (const s of sitesOf(view, '.altinstructions')) {
      if (!s.repl || s.repl.length <= s.length) continue;
      out.push(
        finding(
          view,
          'site-length',
          'error',
          s.addr,
          `.altinstructions entry ${s.index}: replacement is ${s.repl.length} bytes, longer than its ${s.length}-byte site`,
        ),
      );
    }
    return out;
  },
};
