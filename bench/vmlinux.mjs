// One file that is a whole kernel: textpoke sites and check on Debian's 7.3 vmlinux (the ELF inside the
// corpus vmlinuz, written to a temporary file so objdump can read the same bytes) against `objdump -d` on it,
// in one run. textpoke also reads the vmlinuz itself (unpacking the zstd payload in memory). And attest: a
// booted 6.1 kernel's text (core + the modules loaded) against the vmlinuz, when the QEMU ground truth has
// left its dump in .cache/groundtruth (node scripts/qemu-groundtruth.mjs --attest); otherwise that table
// says why it is missing.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { imageFromBytes } from 'textpoke';
import { corpusDir, exec, median, note, paths, root, table, textpoke } from './lib.mjs';

const FINDINGS_OK = { ok: [0, 1] };

function vmlinuz7() {
  const base = join(corpusDir, 'linux-7/usr/lib/modules');
  const rel = existsSync(base) ? readdirSync(base).find((d) => d.endsWith('-amd64')) : undefined;
  if (!rel) throw new Error(`no 7.x kernel in ${base} (node scripts/fetch-corpus.mjs linux-7)`);
  return join(base, rel, 'vmlinuz.unsigned');
}

export async function run({ quick = false } = {}) {
  const runs = quick ? 1 : 5;
  const vmlinuz = vmlinuz7();
  const dir = mkdtempSync(join(tmpdir(), 'textpoke-bench-'));
  try {
    const vmlinux = join(dir, 'vmlinux');
    const elf = (await imageFromBytes(readFileSync(vmlinuz), vmlinuz)).bytes;
    writeFileSync(vmlinux, elf);
    const rows = [
      {
        name: 'textpoke sites vmlinux',
        ...(await median(runs, () => exec(process.execPath, [textpoke, 'sites', vmlinux]))),
      },
      {
        name: 'textpoke check vmlinux',
        ...(await median(runs, () => exec(process.execPath, [textpoke, 'check', vmlinux], FINDINGS_OK))),
      },
      {
        name: 'textpoke sites vmlinuz (unpacks the payload)',
        ...(await median(runs, () => exec(process.execPath, [textpoke, 'sites', vmlinuz]))),
      },
      {
        name: 'textpoke check vmlinuz (unpacks the payload)',
        ...(await median(runs, () => exec(process.execPath, [textpoke, 'check', vmlinuz], FINDINGS_OK))),
      },
      { name: 'objdump -d vmlinux', ...(await median(runs, () => exec('objdump', ['-d', vmlinux]))) },
    ];
    table(
      `vmlinux: Debian 7.3 (${(elf.length / 1e6).toFixed(1)} MB ELF, stripped, from ${vmlinuz.slice(root.length + 1)})`,
      rows,
    );
    return { vmlinux7: rows, attest: await attest(runs) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** attest on what the QEMU ground truth dumped of a booted 6.1 kernel (xfs and kvm loaded). */
async function attest(runs) {
  const base = join(root, '.cache', 'groundtruth');
  const model = existsSync(base)
    ? readdirSync(base).find((d) => existsSync(join(base, d, 'attest', 'kcore')))
    : undefined;
  const title = 'attest: a booted Debian 6.1 kernel (core .text and the loaded xfs and kvm) against its vmlinuz';
  if (!model) {
    note(`${title}\n  not timed: no dump in ${base} (node scripts/qemu-groundtruth.mjs --attest makes one)`);
    return undefined;
  }
  const a = join(base, model, 'attest');
  const vmlinuz = readdirSync(join(corpusDir, 'linux-6.1/boot')).find((f) => f.startsWith('vmlinuz-'));
  if (!vmlinuz)
    throw new Error(`no vmlinuz in ${join(corpusDir, 'linux-6.1/boot')} (node scripts/fetch-corpus.mjs linux-6.1)`);
  const args = [
    textpoke,
    'attest',
    '--vmlinuz',
    join(corpusDir, 'linux-6.1/boot', vmlinuz),
    '--modules',
    join(paths.modules61, '..'),
    '--kcore',
    join(a, 'kcore'),
    '--sysfs',
    join(a, 'root'),
    '--cpu',
    'host',
  ];
  // Exit 1: the ground truth plants a kprobe, which attest reports as unexplained.
  const rows = [
    { name: `textpoke attest (${model})`, ...(await median(runs, () => exec(process.execPath, args, FINDINGS_OK))) },
  ];
  table(title, rows);
  return rows;
}
