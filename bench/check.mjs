// textpoke check against objtool (linux-kbuild-6.1) over the same 4,022 modules, in one run on one machine.
// objtool runs as kbuild runs it: one process per module, two at a time (2 cores), with the checks that
// correspond to ours (--retpoline --rethunk --sls --static-call; --link --module for a .ko; --dry-run so
// nothing is written). textpoke runs once over the directory with all default checks (-j 2: two worker
// threads), on its default patched view and on the bytes as built.
import { basename, dirname, join } from 'node:path';
import { exec, execEach, median, modules, paths, table, textpoke } from './lib.mjs';

/** textpoke check exits 1 when it reports error-level findings: a complete run; 2 or a crash is a failure. */
const FINDINGS_OK = { ok: [0, 1] };

export const OBJTOOL = ['--retpoline', '--rethunk', '--sls', '--static-call', '--dry-run', '--link', '--module'];

/** The corpus build, e.g. 6.1.0-57-amd64 (the directory above kernel/). */
const release61 = basename(dirname(paths.modules61));

export async function run({ quick = false } = {}) {
  const all = modules(paths.modules61).sort();
  const runs = quick ? 1 : 3;
  const rows = [
    {
      name: `textpoke check (${all.length} modules, patched view, -j 2)`,
      ...(await median(runs, () =>
        exec(process.execPath, [textpoke, 'check', '-j', '2', paths.modules61], FINDINGS_OK),
      )),
    },
    {
      name: 'textpoke check --cpu as-built (-j 2)',
      ...(await median(runs, () =>
        exec(process.execPath, [textpoke, 'check', '--cpu', 'as-built', '-j', '2', paths.modules61], FINDINGS_OK),
      )),
    },
    {
      name: 'objtool (one process per module, 2 at a time)',
      ...(await median(runs, () => execEach(all, (f) => [paths.objtool, [...OBJTOOL, f]], 2))),
    },
  ];
  table(
    `check: all ${all.length} modules of linux-image-${release61} (objtool time / textpoke time; 2.00x or more is the goal)`,
    rows,
  );
  // One module, as a developer checks the one they changed (objtool: one process, as kbuild runs it).
  const one = join(paths.modules61, 'fs/xfs/xfs.ko');
  const small = quick ? 3 : 7;
  const orows = [
    {
      name: 'textpoke check xfs.ko (patched view)',
      ...(await median(small, () => exec(process.execPath, [textpoke, 'check', one], FINDINGS_OK))),
    },
    {
      name: 'textpoke check --cpu as-built xfs.ko',
      ...(await median(small, () =>
        exec(process.execPath, [textpoke, 'check', '--cpu', 'as-built', one], FINDINGS_OK),
      )),
    },
    { name: 'objtool xfs.ko', ...(await median(small, () => exec(paths.objtool, [...OBJTOOL, one]))) },
    { name: 'node -e 0 (Node.js start alone)', ...(await median(small, () => exec(process.execPath, ['-e', '0']))) },
  ];
  table('check: fs/xfs/xfs.ko alone (objtool time / textpoke time; within 2x is the goal, i.e. 0.50x or more)', orows);
  const xrows = [
    {
      name: 'textpoke check xen-syms-4.17-amd64',
      ...(await median(quick ? 3 : 5, () => exec(process.execPath, [textpoke, 'check', paths.xenSyms], FINDINGS_OK))),
    },
  ];
  table('check: xen-syms-4.17-amd64 (objtool does not read Xen)', xrows);
  return { allModules: rows, xfs: orows, xenSyms: xrows };
}

if (import.meta.url === `file://${process.argv[1]}`) await run({ quick: process.argv.includes('--quick') });
