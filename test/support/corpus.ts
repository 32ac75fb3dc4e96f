/**
 * Paths into the Debian corpus unpacked by scripts/fetch-corpus.mjs (`npm test` runs it first).
 * A missing corpus is a failure, never a skip: the tests that use it exist to run on real binaries.
 */
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const corpusDir = process.env.TEXTPOKE_CORPUS ?? join(repoRoot, '.cache', 'corpus');

function need(p: string): string {
  if (!existsSync(p)) throw new Error(`corpus file missing: ${p} (run: node scripts/fetch-corpus.mjs)`);
  return p;
}

export const corpus = {
  get xenSyms(): string {
    return need(join(corpusDir, 'xen-hypervisor-4.17-amd64-dbg/usr/lib/debug/boot/xen-syms-4.17-amd64'));
  },
  /** lib/modules/6.1.0-47-amd64/kernel of linux-image-6.1.0-47-amd64. */
  get modules61(): string {
    return need(join(corpusDir, 'linux-image-6.1.0-47-amd64/lib/modules/6.1.0-47-amd64/kernel'));
  },
  module61(rel: string): string {
    return need(join(this.modules61, rel));
  },
  get vmlinuz61(): string {
    return need(join(corpusDir, 'linux-image-6.1.0-47-amd64/boot/vmlinuz-6.1.0-47-amd64'));
  },
  get objtool(): string {
    return need(join(corpusDir, 'linux-kbuild-6.1/usr/lib/linux-kbuild-6.1/tools/objtool/objtool'));
  },
  get headers61(): string {
    return need(join(corpusDir, 'linux-headers-6.1.0-47-common/usr/src/linux-headers-6.1.0-47-common'));
  },
  /** lib/modules/<6.12 version>/kernel of the newest linux-image-6.12.*-amd64-unsigned. */
  get modules612(): string {
    const base = need(join(corpusDir, 'linux-image-6.12-amd64/lib/modules'));
    const v = readdirSync(base).find((d) => d.startsWith('6.12.'));
    if (!v) throw new Error(`no 6.12 module tree under ${base}`);
    return join(base, v, 'kernel');
  },
};
