/**
 * A view: the code a check looks at. Either the bytes as built, or a patched view (the bytes a CPU
 * runs after the kernel's boot-time patchers) supplied through `bytesOf`. Everything above (cfg,
 * checks) reads instructions only through `view.dis` and `view.reader`, so the same checks run on both.
 */
import { type Image, type Section, SHF_WRITE } from '../elf/image.js';
import type { Target } from '../target/detect.js';
import type { FeatureTable } from '../target/features/index.js';
import type { Site } from '../sites/site.js';
import { Disassembly, SectionCode } from '../x86/code.js';
import type { CodeSource } from './patched-code.js';
import { InsnReader } from './insn.js';

export interface ViewOptions {
  readonly target: Target;
  readonly sites?: readonly Site[];
  readonly features?: FeatureTable;
  /** Bytes of a patched view; absent: the bytes as built. */
  readonly bytesOf?: (s: Section) => Uint8Array;
  /** Reuse a decoding of these bytes. */
  readonly disassembly?: CodeSource;
  /** One line describing what the bytes are ("as built", "patched for ..."). */
  readonly describe?: string;
  /** Feature test on the view's CPU, when the view is patched for one. */
  readonly has?: (feature: number) => boolean;
  /** Names of addresses outside the image (undefined symbols a patched view gave addresses to). */
  readonly externName?: (addr: number) => string | undefined;
  /** Decoding of the bytes as built, when this view is patched (table consistency is checked on it). */
  readonly built?: CodeSource;
}

/** A writable, executable `.data` section: code and data mixed. */
function mixedData(s: Section): boolean {
  return (s.flags & SHF_WRITE) !== 0 && (s.name === '.data' || s.name.startsWith('.data.'));
}

export class View {
  readonly dis: CodeSource;
  readonly reader = new InsnReader();
  readonly target: Target;
  readonly sites: readonly Site[];
  readonly features?: FeatureTable;
  readonly patched: boolean;
  readonly describe: string;
  readonly has?: (feature: number) => boolean;
  readonly externName?: (addr: number) => string | undefined;
  /** Bytes of a section on this view. */
  readonly bytesOf: (s: Section) => Uint8Array;
  /** The bytes as built (the same decoding as `dis` when the view is not patched). */
  readonly built: CodeSource;
  private execCache?: SectionCode[];
  private builtCache?: SectionCode[];

  constructor(
    readonly img: Image,
    o: ViewOptions,
  ) {
    this.dis = o.disassembly ?? new Disassembly(img, o.bytesOf);
    this.target = o.target;
    this.sites = o.sites ?? [];
    this.features = o.features;
    this.patched = Boolean(o.bytesOf);
    this.describe = o.describe ?? (o.bytesOf ? 'patched view' : 'bytes as built');
    this.has = o.has;
    this.externName = o.externName;
    this.bytesOf = o.bytesOf ?? ((s) => img.sectionBytes(s));
    this.built = o.bytesOf ? (o.built ?? new Disassembly(img)) : this.dis;
  }

  /**
   * Decoded code of every allocated executable section, except a `.data` one when no symbols tell its code
   * from its data: Linux 6.14+ links the kexec relocation code into `.data`, which makes it writable and
   * executable (WAX), and decoding its data would invent instructions (and findings).
   */
  code(): SectionCode[] {
    if (!this.execCache) {
      const blind = this.img.kind !== 'rel' && this.img.fewSymbols;
      this.execCache = this.img.sections
        .filter((s) => s.exec && s.alloc && s.size > 0 && s.type !== 8 && !(blind && mixedData(s)))
        .map((s) => this.dis.of(s));
    }
    return this.execCache;
  }

  /** Executable sections {@link code} leaves out (a stripped 7.x vmlinux's `.data`), for the report's notes. */
  skipped(): Section[] {
    const blind = this.img.kind !== 'rel' && this.img.fewSymbols;
    return blind ? this.img.sections.filter((s) => s.exec && s.alloc && s.size > 0 && mixedData(s)) : [];
  }

  /** Decoded bytes as built of every allocated executable section. */
  builtCode(): SectionCode[] {
    if (!this.patched) return this.code();
    if (!this.builtCache) this.builtCache = this.code().map((sc) => this.built.of(sc.section));
    return this.builtCache;
  }

  /** The section code and instruction index starting exactly at `addr`, or undefined. */
  insnAt(addr: number): { sc: SectionCode; i: number } | undefined {
    const sc = this.dis.at(addr);
    if (!sc) return undefined;
    const i = sc.indexAt(addr - sc.section.addr);
    return i < 0 ? undefined : { sc, i };
  }

  /** Frees decoder memory held in WebAssembly. */
  dispose(): void {
    this.reader.free();
  }
}
