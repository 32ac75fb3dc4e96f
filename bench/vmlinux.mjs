// One file that is a whole kernel: textpoke sites and check on Debian's 7.3 vmlinux (the ELF inside the
// corpus vmlinuz, written to a temporary file so objdump can read the same bytes) against `objdump -d` on it,
// in one run. textpoke also reads the vmlinuz itself (unpacking the zstd payload in memory). And attest: each
// booted kernel's text (core + the modules loaded) against its vmlinuz, where the QEMU ground truth has left
// its dump in .cache/groundtruth (node scripts/qemu-groundtruth.mjs --attest); otherwise the table says why
// a kernel is missing.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { imageFromBytes } from 'textpoke';
import { corpusDir, exec, median, note, root, table, textpoke } from './lib.mjs';

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

/** Where each kernel of the corpus keeps its vmlinuz and module tree (7.x is usr-merged). */
function kernelFiles(id) {
  for (const dir of ['lib/modules', 'usr/lib/modules']) {
    const base = join(corpusDir, id, dir);
    const rel = existsSync(base) ? readdirSync(base).find((d) => d.endsWith('-amd64')) : undefined;
    if (!rel) continue;
    const modules = join(base, rel);
    const boot = join(corpusDir, id, 'boot');
    const z = existsSync(join(modules, 'vmlinuz.unsigned'))
      ? join(modules, 'vmlinuz.unsigned')
      : existsSync(boot)
        ? readdirSync(boot)
            .filter((f) => f.startsWith('vmlinuz-'))
            .map((f) => join(boot, f))[0]
        : undefined;
    if (z) return { vmlinuz: z, modules };
  }
  return undefined;
}

/**
 * attest on what the QEMU ground truth dumped of each booted kernel (core .text, xfs and kvm), against the
 * corpus vmlinuz and modules: the first CPU model that left a dump in .cache/groundtruth/<corpus id>/.
 */
async function attest(runs) {
  const title = 'attest: a booted kernel (core .text and the loaded xfs and kvm) against its vmlinuz, --cpu host';
  const rows = [];
  const missing = [];
  for (const [id, label] of [
    ['linux-6.1', '6.1'],
    ['linux-6.12', '6.12'],
    ['linux-7', '7.3'],
  ]) {
    const base = join(root, '.cache', 'groundtruth', id);
    const model = existsSync(base)
      ? readdirSync(base)
          .sort()
          .find((d) => existsSync(join(base, d, 'attest', 'kcore')))
      : undefined;
    const files = kernelFiles(id);
    if (!model || !files) {
      missing.push(`${label}: ${!files ? `no kernel in the corpus (${id})` : `no dump in ${base}`}`);
      continue;
    }
    const a = join(base, model, 'attest');
    const args = [textpoke, 'attest', '--vmlinuz', files.vmlinuz, '--modules', files.modules];
    args.push('--kcore', join(a, 'kcore'), '--sysfs', join(a, 'root'), '--cpu', 'host');
    // Exit 1: the ground truth plants a kprobe, which attest reports as unexplained.
    rows.push({
      name: `textpoke attest ${label} (${model})`,
      ...(await median(runs, () => exec(process.execPath, args, FINDINGS_OK))),
    });
  }
  if (rows.length) table(title, rows);
  if (missing.length)
    note(`${title}\n  not timed: ${missing.join('; ')} (node scripts/qemu-groundtruth.mjs --attest makes the dumps)`);
  return rows;
}
