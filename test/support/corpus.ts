/**
 * Paths into the Debian corpus unpacked by scripts/fetch-corpus.mjs (`npm test` runs it first), and the
 * exact builds it fetched (its manifest). Each corpus id names a series, not a build: whatever Debian serves
 * on the day is what the tests read. Tests assert invariants against oracles computed at test time for any
 * build, and pin exact numbers only through `pinned()`, which answers true only for the build the numbers
 * were measured on.
 *
 * A missing corpus entry is a failure, never a skip: the tests that use it exist to run on real binaries.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const corpusDir = process.env.TEXTPOKE_CORPUS ?? join(repoRoot, '.cache', 'corpus');

function need(p: string): string {
  if (!existsSync(p)) throw new Error(`corpus file missing: ${p} (run: node scripts/fetch-corpus.mjs)`);
  return p;
}

/** One fetched package of a corpus entry, as the manifest records it. */
export interface CorpusPackage {
  name: string;
  version: string;
  suite: string;
  deb: string;
  sha256: string;
}

/** The manifest entry of a corpus id. */
export interface CorpusEntry {
  id: string;
  packages: CorpusPackage[];
  served: boolean;
}

let manifestCache: Record<string, CorpusEntry> | undefined;
function manifest(): Record<string, CorpusEntry> {
  if (!manifestCache) {
    const p = need(join(corpusDir, 'manifest.json'));
    manifestCache = (JSON.parse(readFileSync(p, 'utf8')) as { entries: Record<string, CorpusEntry> }).entries;
  }
  return manifestCache;
}

/** The manifest entry of `id` (which build the corpus holds). */
export function corpusEntry(id: string): CorpusEntry {
  const e = manifest()[id];
  if (!e)
    throw new Error(
      `corpus entry ${id} missing from ${join(corpusDir, 'manifest.json')} (run: node scripts/fetch-corpus.mjs)`,
    );
  return e;
}

/** The Debian version of the first package of `id`, e.g. '4.17.7+13-g2445b30a44-0+deb12u1'. */
export function corpusVersion(id: string): string {
  return corpusEntry(id).packages[0].version;
}

/**
 * True when the corpus holds exactly the build `version` of `id`: exact figures measured on that build may be
 * asserted. Otherwise the test notes (through `note`) which build it measured on and which it has, and
 * asserts only its invariants.
 */
export function pinned(id: string, version: string, note?: (msg: string) => void): boolean {
  const have = corpusVersion(id);
  if (have === version) return true;
  note?.(`${id}: exact figures were measured on ${version}; this corpus has ${have}, so only invariants are asserted`);
  return false;
}

/** The single directory under `base` whose name starts with `prefix`. */
function only(base: string, prefix: string): string {
  need(base);
  const names = readdirSync(base).filter((d) => d.startsWith(prefix));
  if (names.length !== 1) throw new Error(`expected one ${prefix}* under ${base}, found ${names.length}`);
  return join(base, names[0]);
}

/** lib/modules of a corpus entry: /lib/modules (6.x packages) or /usr/lib/modules (7.x, usr-merged). */
function modulesRoot(id: string): string {
  const usr = join(corpusDir, id, 'usr/lib/modules');
  return existsSync(usr) ? usr : join(corpusDir, id, 'lib/modules');
}
function modulesOf(id: string, prefix: string): string {
  return join(only(modulesRoot(id), prefix), 'kernel');
}
/** The kernel image: boot/vmlinuz-RELEASE (6.x image packages) or lib/modules/RELEASE/vmlinuz.unsigned (7.x). */
function vmlinuzOf(id: string): string {
  const boot = join(corpusDir, id, 'boot');
  if (existsSync(boot)) return only(boot, 'vmlinuz-');
  const dir = dirname(modulesOf(id, ''));
  return need(join(dir, 'vmlinuz.unsigned'));
}

export const corpus = {
  /** xen-syms of the newest Xen 4.17 build Debian serves (bookworm-security when it has one). */
  get xenSyms(): string {
    return need(join(corpusDir, 'xen-4.17/usr/lib/debug/boot/xen-syms-4.17-amd64'));
  },
  /** xen-syms of bookworm's main-suite Xen 4.17 (4.17.5+72 with Debian's backports). */
  get xenSyms417Bookworm(): string {
    return need(join(corpusDir, 'xen-4.17-bookworm/usr/lib/debug/boot/xen-syms-4.17-amd64'));
  },
  /** xen-syms of trixie's Xen 4.20. */
  get xenSyms420(): string {
    return need(join(corpusDir, 'xen-4.20/usr/lib/debug/boot/xen-syms-4.20-amd64'));
  },
  /** The bootable hypervisor (boot/xen-4.17-amd64.gz) of the same build as xenSyms. */
  get xenGz417(): string {
    return need(join(corpusDir, 'xen-4.17/boot/xen-4.17-amd64.gz'));
  },
  /** The bootable hypervisor of the same build as xenSyms420. */
  get xenGz420(): string {
    return need(join(corpusDir, 'xen-4.20/boot/xen-4.20-amd64.gz'));
  },
  /** lib/modules/6.1.0-N-amd64/kernel of the newest 6.1.0-N image. */
  get modules61(): string {
    return modulesOf('linux-6.1', '6.1.0-');
  },
  module61(rel: string): string {
    return need(join(this.modules61, rel));
  },
  get vmlinuz61(): string {
    return vmlinuzOf('linux-6.1');
  },
  /** The 6.1 release string of the corpus build, e.g. '6.1.0-57-amd64'. */
  get release61(): string {
    return this.modules61.split('/').at(-2)!;
  },
  get objtool(): string {
    return need(join(corpusDir, 'linux-kbuild-6.1/usr/lib/linux-kbuild-6.1/tools/objtool/objtool'));
  },
  /** The 6.1 header tree (linux-headers-6.1.0-N-common) of the same build as modules61. */
  get headers61(): string {
    return only(join(corpusDir, 'linux-6.1/usr/src'), 'linux-headers-6.1.0-');
  },
  /** lib/modules/<6.12 version>/kernel of the newest bookworm 6.12 build. */
  get modules612(): string {
    return modulesOf('linux-6.12', '6.12.');
  },
  get vmlinuz612(): string {
    return vmlinuzOf('linux-6.12');
  },
  /** lib/modules/<6.12 version>/kernel of the newest trixie 6.12 build. */
  get modules612Trixie(): string {
    return modulesOf('linux-6.12-trixie', '6.12.');
  },
  get vmlinuz612Trixie(): string {
    return vmlinuzOf('linux-6.12-trixie');
  },
  /** lib/modules/<7.x version>/kernel of the newest 7.x build (trixie-backports). */
  get modules7(): string {
    return modulesOf('linux-7', '7.');
  },
  get vmlinuz7(): string {
    return vmlinuzOf('linux-7');
  },
  get modules7Cloud(): string {
    return modulesOf('linux-7-cloud', '7.');
  },
  get vmlinuz7Cloud(): string {
    return vmlinuzOf('linux-7-cloud');
  },
  /** lib/modules/<7.x version>/kernel of the newest 7.x PREEMPT_RT build (trixie-backports). */
  get modules7Rt(): string {
    return modulesOf('linux-7-rt', '7.');
  },
  get vmlinuz7Rt(): string {
    return vmlinuzOf('linux-7-rt');
  },
};
