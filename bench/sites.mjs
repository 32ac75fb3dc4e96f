// textpoke sites against objdump -d and objtool (linux-kbuild-6.1), over the same files, in one run.
import { statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { execEach, exec, median, modules, paths, table, textpoke } from './lib.mjs';

const OBJTOOL = ['--retpoline', '--rethunk', '--static-call', '--dry-run', '--link', '--module'];

/** The corpus build, e.g. 6.1.0-57-amd64 (the directory above kernel/). */
const release61 = basename(dirname(paths.modules61));

export async function run({ quick = false } = {}) {
  const all = modules(paths.modules61).sort();
  const runsBig = quick ? 1 : 3;
  const runsSmall = quick ? 3 : 7;
  const results = {};

  const allRows = [
    {
      name: `textpoke sites (${all.length} modules, one process)`,
      ...(await median(runsBig, () => exec(process.execPath, [textpoke, 'sites', paths.modules61]))),
    },
    {
      name: 'textpoke sites --summary',
      ...(await median(runsBig, () => exec(process.execPath, [textpoke, 'sites', '--summary', paths.modules61]))),
    },
    {
      name: 'objdump -d (one process per module, 2 at a time)',
      ...(await median(runsBig, () => execEach(all, (f) => ['objdump', ['-d', f]]))),
    },
    {
      name: 'objtool (one process per module, 2 at a time)',
      ...(await median(runsBig, () => execEach(all, (f) => [paths.objtool, [...OBJTOOL, f]]))),
    },
  ];
  table(`sites: all ${all.length} modules of linux-image-${release61}`, allRows);
  results.allModules = allRows;

  for (const rel of ['fs/xfs/xfs.ko', 'drivers/gpu/drm/amd/amdgpu/amdgpu.ko']) {
    const f = join(paths.modules61, rel);
    const rows = [
      { name: 'textpoke sites', ...(await median(runsSmall, () => exec(process.execPath, [textpoke, 'sites', f]))) },
      {
        name: 'textpoke sites --summary',
        ...(await median(runsSmall, () => exec(process.execPath, [textpoke, 'sites', '--summary', f]))),
      },
      { name: 'objdump -d', ...(await median(runsSmall, () => exec('objdump', ['-d', f]))) },
      { name: 'objtool', ...(await median(runsSmall, () => exec(paths.objtool, [...OBJTOOL, f]))) },
    ];
    table(`sites: ${rel} (${(statSync(f).size / 1e6).toFixed(1)} MB)`, rows);
    results[rel] = rows;
  }
  const xrows = [
    {
      name: 'textpoke sites',
      ...(await median(runsSmall, () => exec(process.execPath, [textpoke, 'sites', paths.xenSyms]))),
    },
    { name: 'objdump -d', ...(await median(runsSmall, () => exec('objdump', ['-d', paths.xenSyms]))) },
  ];
  table('sites: xen-syms-4.17-amd64 (objtool does not read Xen)', xrows);
  results.xenSyms = xrows;
  return results;
}
