/**
 * Worker for the robustness test: mutates real modules with a fixed seed and runs the whole sites
 * pipeline on each mutant. Every failure must be one of textpoke's own one-line errors; anything else
 * (TypeError, RangeError, ...) is reported back as a crash.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { readFileSync } from 'node:fs';
import { ElfError, Image } from '../../src/elf/image.js';
import { detectTarget, ProfileError } from '../../src/target/detect.js';
import { profileById } from '../../src/target/profile.js';
import { readSites } from '../../src/sites/read.js';
import { fileJson, renderText } from '../../src/sites/listing.js';
import { TableError } from '../../src/sites/table.js';

interface Input { files: string[]; mutants: number; seed: number }
const { files, mutants, seed } = workerData as Input;

function mulberry32(a: number): () => number {
  return () => {
    a |= 0; a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rnd = mulberry32(seed);
const int = (n: number) => Math.floor(rnd() * n);

const originals = files.map((f) => new Uint8Array(readFileSync(f)));

function mutate(src: Uint8Array): Uint8Array {
  const img = Image.parse(src);
  const b = Uint8Array.from(src);
  const dv = new DataView(b.buffer);
  const shoff = Number(dv.getBigUint64(40, true));
  const kind = int(8);
  const pickSection = () => img.sections[1 + int(img.sections.length - 1)]!;
  switch (kind) {
    case 0: // random bytes anywhere
      for (let k = 1 + int(8); k > 0; k--) b[int(b.length)] = int(256);
      return b;
    case 1: // ELF header field
      b[16 + int(48)] = int(256);
      return b;
    case 2: { // a section header field: offset, size, link, info, entsize, name, type
      const s = pickSection();
      const field = [4, 24, 32, 40, 44, 56, 0][int(7)]!;
      const o = shoff + s.index * 64 + field;
      if (field === 24 || field === 32 || field === 56) dv.setBigUint64(o, BigInt(int(4)) === 0n ? 0xffffffffffffn : BigInt(int(b.length * 2)), true);
      else dv.setUint32(o, int(4) === 0 ? 0xffffffff : int(img.sections.length + 3), true);
      return b;
    }
    case 3: { // bytes inside a table or relocation or symbol section
      const s = img.sections.find((x) => /^(\.rela)?(\.altinstructions|__jump_table|\.static_call_sites|\.parainstructions|\.smp_locks|__mcount_loc|\.return_sites|\.symtab)$/.test(x.name) && int(3) === 0) ?? pickSection();
      if (s.size === 0 || s.type === 8) return b;
      for (let k = 1 + int(6); k > 0; k--) b[s.offset + int(s.size)] = int(256);
      return b;
    }
    case 4: // truncation
      return b.subarray(0, int(b.length));
    case 5: { // a symbol's section index or value
      const st = img.sections.find((x) => x.type === 2);
      if (!st) return b;
      const i = int(Math.floor(st.size / 24));
      if (int(2)) dv.setUint16(st.offset + i * 24 + 6, [0xffff, 0xfff1, int(img.sections.length + 5)][int(3)]!, true);
      else dv.setBigUint64(st.offset + i * 24 + 8, BigInt(int(0x7fffffff)) * 0x100000000n, true);
      return b;
    }
    case 6: { // a relocation's symbol index or addend
      const rs = img.sections.filter((x) => x.type === 4);
      if (!rs.length) return b;
      const s = rs[int(rs.length)]!;
      const i = int(Math.max(1, Math.floor(s.size / 24)));
      if (int(2)) dv.setUint32(s.offset + i * 24 + 12, int(4) ? int(1 << 20) : 0xffffffff, true);
      else dv.setBigInt64(s.offset + i * 24 + 16, BigInt(int(0x7fffffff)) - 0x40000000n, true);
      return b;
    }
    default: { // section header count / string index
      dv.setUint16(60 + 2 * int(2), int(3) === 0 ? 0xffff : int(img.sections.length + 4), true);
      return b;
    }
  }
}

const crashes: string[] = [];
let ok = 0;
let rejected = 0;
let peak = 0;
for (let i = 0; i < mutants; i++) {
  const src = originals[i % originals.length]!;
  const m = mutate(src);
  try {
    const img = Image.parse(m, `mutant-${i}`);
    let t = detectTarget(img);
    if (!t.profile) t = detectTarget(img, 'linux-6.1');
    const set = readSites(img, t.profile ?? profileById('linux-6.1')!);
    renderText(fileJson(img, t, set));
    ok++;
  } catch (e) {
    if (e instanceof ElfError || e instanceof TableError || e instanceof ProfileError) {
      if (e.message.includes('\n')) crashes.push(`mutant ${i}: multi-line message`);
      rejected++;
    } else crashes.push(`mutant ${i} (${files[i % files.length]}): ${e instanceof Error ? `${e.name}: ${e.message}\n${e.stack}` : String(e)}`);
  }
  if (i % 100 === 0) peak = Math.max(peak, process.memoryUsage().heapUsed);
}
parentPort!.postMessage({ ok, rejected, crashes: crashes.slice(0, 20), crashCount: crashes.length, peak });
