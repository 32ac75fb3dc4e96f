/**
 * A minimal reader of a vmlinux's `.BTF` section (the kernel's type information, present in Debian kernels even
 * when the symbol table is stripped, e.g. the vmlinux inside a bzImage): struct sizes and the element count of an
 * array member, which is all the numbering evidence needs (`struct cpuinfo_x86.x86_capability` is
 * `__u32[NCAPINTS + NBUGINTS]`, `struct alt_instr` is the alternatives entry). Anything it does not understand
 * makes it answer undefined: BTF is evidence, never a requirement.
 */
import type { Image } from '../elf/image.js';

const KIND_INT = 1,
  KIND_ARRAY = 3,
  KIND_STRUCT = 4,
  KIND_UNION = 5,
  KIND_ENUM = 6,
  KIND_TYPEDEF = 8,
  KIND_VOLATILE = 9,
  KIND_CONST = 10,
  KIND_RESTRICT = 11,
  KIND_FUNC_PROTO = 13,
  KIND_VAR = 14,
  KIND_DATASEC = 15,
  KIND_DECL_TAG = 17,
  KIND_TYPE_TAG = 18,
  KIND_ENUM64 = 19;

interface BtfType {
  name: number;
  kind: number;
  vlen: number;
  /** size (struct, union, int, enum) or referenced type id (typedef, ptr, const, ...). */
  sizeOrType: number;
  /** Offset of the kind-specific data after the 12-byte header. */
  data: number;
}

export class Btf {
  private readonly types: BtfType[] = [{ name: 0, kind: 0, vlen: 0, sizeOrType: 0, data: 0 }];
  private readonly strOff: number;
  private readonly strEnd: number;

  private constructor(
    private readonly b: DataView,
    private readonly bytes: Uint8Array,
    hdrLen: number,
    typeOff: number,
    typeLen: number,
    strOff: number,
    strLen: number,
  ) {
    this.strOff = hdrLen + strOff;
    this.strEnd = this.strOff + strLen;
    let o = hdrLen + typeOff;
    const end = o + typeLen;
    while (o + 12 <= end) {
      const info = b.getUint32(o + 4, true);
      const kind = (info >>> 24) & 0x1f;
      const vlen = info & 0xffff;
      const t: BtfType = { name: b.getUint32(o, true), kind, vlen, sizeOrType: b.getUint32(o + 8, true), data: o + 12 };
      let extra: number;
      switch (kind) {
        case KIND_INT:
        case KIND_VAR:
        case KIND_DECL_TAG:
          extra = 4;
          break;
        case KIND_ARRAY:
          extra = 12;
          break;
        case KIND_STRUCT:
        case KIND_UNION:
        case KIND_DATASEC:
        case KIND_ENUM64:
          extra = 12 * vlen;
          break;
        case KIND_ENUM:
        case KIND_FUNC_PROTO:
          extra = 8 * vlen;
          break;
        default:
          if (kind > KIND_ENUM64) throw new RangeError(`BTF kind ${kind}`);
          extra = 0;
      }
      this.types.push(t);
      o = t.data + extra;
    }
  }

  /** The image's .BTF, or undefined when absent or not understood. */
  static of(img: Image): Btf | undefined {
    const sec = img.section('.BTF');
    if (!sec || sec.size < 24) return undefined;
    try {
      const bytes = img.sectionBytes(sec);
      const b = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      if (b.getUint16(0, true) !== 0xeb9f) return undefined;
      const hdrLen = b.getUint32(4, true);
      const [typeOff, typeLen, strOff, strLen] = [8, 12, 16, 20].map((k) => b.getUint32(k, true)) as [
        number,
        number,
        number,
        number,
      ];
      if (hdrLen + typeOff + typeLen > bytes.length || hdrLen + strOff + strLen > bytes.length) return undefined;
      return new Btf(b, bytes, hdrLen, typeOff, typeLen, strOff, strLen);
    } catch {
      return undefined;
    }
  }

  private str(off: number): string {
    let e = this.strOff + off;
    if (e >= this.strEnd) return '';
    const s = e;
    while (e < this.strEnd && this.bytes[e] !== 0) e++;
    return String.fromCharCode(...this.bytes.subarray(s, e));
  }

  private findStruct(name: string): BtfType | undefined {
    // Several entries may share a name (a forward declaration has its own kind); the first full definition wins.
    for (const t of this.types)
      if ((t.kind === KIND_STRUCT || t.kind === KIND_UNION) && t.vlen > 0 && this.str(t.name) === name) return t;
    return undefined;
  }

  /** Through typedefs and qualifiers to the underlying type. */
  private resolve(id: number): BtfType | undefined {
    for (let k = 0; k < 16; k++) {
      const t = this.types[id];
      if (!t) return undefined;
      if (
        t.kind === KIND_TYPEDEF ||
        t.kind === KIND_VOLATILE ||
        t.kind === KIND_CONST ||
        t.kind === KIND_RESTRICT ||
        t.kind === KIND_TYPE_TAG
      )
        id = t.sizeOrType;
      else return t;
    }
    return undefined;
  }

  /** sizeof(struct name), or undefined. */
  structSize(name: string): number | undefined {
    return this.findStruct(name)?.sizeOrType;
  }

  /** Element count of array member `member` of struct `name`, looking into anonymous struct/union members. */
  arrayMemberLength(name: string, member: string): number | undefined {
    const s = this.findStruct(name);
    return s ? this.memberArray(s, member, 0) : undefined;
  }

  private memberArray(s: BtfType, member: string, depth: number): number | undefined {
    if (depth > 4) return undefined;
    for (let i = 0; i < s.vlen; i++) {
      const o = s.data + 12 * i;
      const mname = this.str(this.b.getUint32(o, true));
      const mt = this.resolve(this.b.getUint32(o + 4, true));
      if (!mt) continue;
      if (mname === member && mt.kind === KIND_ARRAY) return this.b.getUint32(mt.data + 8, true);
      if (mname === '' && (mt.kind === KIND_STRUCT || mt.kind === KIND_UNION)) {
        const r = this.memberArray(mt, member, depth + 1);
        if (r !== undefined) return r;
      }
    }
    return undefined;
  }
}
