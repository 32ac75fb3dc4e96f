/**
 * PatchedView: a copy-on-write byte overlay over an Image. The Image's bytes are never written; each
 * section a patcher touches gets its own copy. Two layers: the loader's (relocations a module loader
 * applies before any patcher runs) and the patchers'. `bytesOf` plugs into `new Disassembly(img, view.bytesOf)`.
 *
 * @example
 * ```ts
 * const view = applyToImage(img, target, parseCpu('intel-server', featureTable(target.profile!.features)));
 * const dis = new Disassembly(img, view.bytesOf);
 * for (const p of view.patches) console.log(img.where(p.addr), hexBytes(p.before), '->', hexBytes(p.after));
 * ```
 */
import type { Image, Section } from '../elf/image.js';
import type { Site } from '../sites/site.js';

export type PatcherId =
  | 'relocate'
  | 'paravirt'
  | 'retpolines'
  | 'returns'
  | 'alternatives'
  | 'ibt'
  | 'static-calls'
  | 'jump-labels'
  | 'ftrace'
  | 'xen-alternatives'
  | 'xen-altcalls'
  | 'xen-cf-clobber';

/** One write a patcher made (bytes as they were just before it, and as it left them). */
export interface AppliedPatch {
  readonly patcher: PatcherId;
  readonly addr: number;
  readonly before: Uint8Array;
  readonly after: Uint8Array;
  readonly site?: Site;
  /** Free-text detail (e.g. 'optimize_nops', 'recompute_jump: 2-byte jmp'). */
  readonly note?: string;
}

/** Something the kernel would BUG/WARN on, or that textpoke cannot reproduce; the entry is skipped. */
export interface PatchFinding {
  readonly patcher: PatcherId;
  readonly addr: number;
  readonly site?: Site;
  readonly message: string;
  /** 'bug': the kernel would BUG()/crash; 'warn': the kernel warns and skips; 'model': a limit of the model. */
  readonly kind: 'bug' | 'warn' | 'model';
}

export class PatchedView {
  /** Loader layer (relocated section copies). */
  private readonly loaded = new Map<number, Uint8Array>();
  /** Patcher layer (copies of loaded/original bytes, written by patchers). */
  private readonly patched = new Map<number, Uint8Array>();
  readonly patches: AppliedPatch[] = [];
  readonly findings: PatchFinding[] = [];
  /** Per-file remarks on what the model could not resolve (not tied to one site). */
  readonly notes: string[] = [];
  /** Names for addresses that are not in the image (undefined symbols given synthetic or System.map addresses). */
  readonly externs = new Map<number, string>();
  private readonly absBase = new Map<number, bigint>();
  /** Addresses of symbols the image does not define (System.map values or synthetic ones), by name. */
  readonly externAbs = new Map<string, bigint>();

  constructor(
    readonly img: Image,
    load?: ReadonlyMap<string, bigint>,
  ) {
    if (load?.size) {
      // Given sections at their addresses; the other allocated sections after the highest of them, in header order.
      let top = 0n;
      for (const s of img.sections) {
        const a = load.get(s.name);
        if (a === undefined || !s.alloc) continue;
        this.absBase.set(s.index, a);
        if (a + BigInt(s.size) > top) top = a + BigInt(s.size);
      }
      for (const s of img.sections) {
        if (!s.alloc || this.absBase.has(s.index) || Number.isNaN(s.addr)) continue;
        const al = BigInt(Math.max(1, Math.min(s.addralign || 1, 4096)));
        top = ((top + al - 1n) / al) * al;
        this.absBase.set(s.index, top);
        top += BigInt(Math.max(1, s.size));
      }
    }
  }

  /** Current bytes of a section (patched, else relocated, else the file's). Do not write into the result. */
  readonly bytesOf = (s: Section): Uint8Array =>
    this.patched.get(s.index) ?? this.loaded.get(s.index) ?? this.img.sectionBytes(s);

  /** Bytes of a section as the loader left them (before any patcher). */
  readonly loadedBytesOf = (s: Section): Uint8Array => this.loaded.get(s.index) ?? this.img.sectionBytes(s);

  /** The real (absolute) address of a relative one, honouring load addresses given for ET_REL sections. */
  abs(addr: number): bigint {
    if (this.absBase.size) {
      const s = this.img.sectionAt(addr);
      const b = s ? this.absBase.get(s.index) : undefined;
      if (s && b !== undefined) return b + BigInt(addr - s.addr);
    }
    return this.img.base + BigInt(addr);
  }

  /** System.map-style addresses for symbols a relocatable image does not define. */
  symbolList?: ReadonlyMap<string, bigint>;
  /** Next synthetic extern address (set up by relocate()); undefined for linked images. */
  nextSynthetic?: bigint;
  syntheticCount = 0;

  /**
   * Real address of a symbol: defined in the image, else (relocatable images, whose undefined symbols the
   * kernel resolves) from the symbol list or a synthetic address; undefined when unknown.
   */
  symbolAbs(name: string): bigint | undefined {
    const s = this.img.symbol(name);
    if (s && s.shndx !== 0 && !Number.isNaN(s.addr)) return this.abs(s.addr);
    return this.extern(name);
  }

  /** Address of a symbol the image does not define (allocating a synthetic one for relocatable images). */
  extern(name: string): bigint | undefined {
    let a = this.externAbs.get(name);
    if (a !== undefined) return a;
    a = this.symbolList?.get(name);
    if (a === undefined && this.nextSynthetic !== undefined) {
      a = this.nextSynthetic;
      this.nextSynthetic += 16n;
      this.syntheticCount++;
    }
    if (a !== undefined) this.externAbs.set(name, a);
    return a;
  }

  /** Relative address for a real one (NaN when not representable). */
  rel(abs: bigint): number {
    if (this.absBase.size) {
      for (const [i, b] of this.absBase) {
        const s = this.img.sections[i]!;
        if (abs >= b && abs < b + BigInt(Math.max(1, s.size))) return s.addr + Number(abs - b);
      }
    }
    return this.img.rel(abs);
  }

  /** Name for a real address: an extern, else symbol+offset in the image. */
  nameOf(abs: bigint): string {
    for (const [n, a] of this.externAbs) if (a === abs) return n;
    const r = this.rel(abs);
    if (Number.isNaN(r)) return '0x' + BigInt.asUintN(64, abs).toString(16);
    const w = this.img.where(r);
    return w.endsWith('+0x0') ? w.slice(0, -4) : w;
  }

  /** Was a load address given for the section? */
  hasLoadAddress(s: Section): boolean {
    return this.absBase.has(s.index);
  }

  /** Sections whose bytes differ from the file (relocated or patched). */
  changedSections(): Section[] {
    const idx = new Set([...this.loaded.keys(), ...this.patched.keys()]);
    return [...idx].sort((a, b) => a - b).map((i) => this.img.sections[i]!);
  }

  private locate(addr: number, len: number): { sec: Section; off: number } | undefined {
    const sec = this.img.sectionAt(addr);
    if (!sec || sec.type === 8 /* NOBITS */) return undefined;
    const off = addr - sec.addr;
    if (off < 0 || off + len > sec.size) return undefined;
    return { sec, off };
  }

  /** A copy of `len` current bytes at `addr`, or undefined when they are not all inside one section with file bytes. */
  read(addr: number, len: number): Uint8Array | undefined {
    const at = this.locate(addr, len);
    if (!at) return undefined;
    return copy(this.bytesOf(at.sec), at.off, at.off + len);
  }

  /** Up to `max` current bytes from `addr` to the end of its section (for instruction decoding). */
  readUpTo(addr: number, max: number): Uint8Array | undefined {
    const sec = this.img.sectionAt(addr);
    if (!sec || sec.type === 8) return undefined;
    const off = addr - sec.addr;
    return copy(this.bytesOf(sec), off, Math.min(sec.size, off + max));
  }

  /** Bytes at `addr` as the loader left them. */
  readLoaded(addr: number, len: number): Uint8Array | undefined {
    const at = this.locate(addr, len);
    if (!at) return undefined;
    return copy(this.loadedBytesOf(at.sec), at.off, at.off + len);
  }

  /** Loader layer: writes (relocations) without recording a patch. Must run before any patcher. */
  load(sec: Section, off: number, bytes: Uint8Array): void {
    this.loaderCopy(sec).set(bytes, off);
  }

  /** The loader layer's own copy of a section, for the loader to write into in place. Must run before any patcher. */
  loaderCopy(sec: Section): Uint8Array {
    let b = this.loaded.get(sec.index);
    if (!b) {
      b = copy(this.img.sectionBytes(sec));
      this.loaded.set(sec.index, b);
    }
    return b;
  }

  /** `abs(addr)` as a number, when no load addresses were given and it is exact (relocatable images); else NaN. */
  absNumber(addr: number): number {
    if (this.absBase.size) return NaN;
    const a = this.img.base + BigInt(addr);
    return a < 1n << 52n && a > -(1n << 52n) ? Number(a) : NaN;
  }

  /** A patcher's write: recorded with the bytes it replaced. Returns false (and writes nothing) outside the image. */
  write(patcher: PatcherId, addr: number, bytes: Uint8Array, site?: Site, note?: string): boolean {
    const at = this.locate(addr, bytes.length);
    if (!at) return false;
    let b = this.patched.get(at.sec.index);
    if (!b) {
      b = copy(this.loadedBytesOf(at.sec));
      this.patched.set(at.sec.index, b);
    }
    const before = copy(b, at.off, at.off + bytes.length);
    b.set(bytes, at.off);
    this.patches.push({ patcher, addr, before, after: copy(bytes), site, note });
    return true;
  }

  finding(patcher: PatcherId, addr: number, message: string, kind: PatchFinding['kind'], site?: Site): void {
    this.findings.push({ patcher, addr, message, kind, site });
  }
}

/** A copy (never a view: Node Buffers' slice() shares memory with the file bytes). */
export function copy(b: Uint8Array, start = 0, end = b.length): Uint8Array {
  const out = new Uint8Array(Math.max(0, end - start));
  out.set(b.subarray(start, end));
  return out;
}
