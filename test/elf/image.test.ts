import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { ElfError, Image, R_X86_64_PC32 } from '../../src/elf/image.js';
import { compressionOf, imageFromBytes } from '../../src/elf/load.js';
import { assemble } from '../support/build.js';
import { corpus } from '../support/corpus.js';

const obj = assemble('sites/tables61.S');
const bytes = readFileSync(obj);

test('relocatable object: sections get distinct addresses, symbols resolve in one address space', () => {
  const img = Image.parse(bytes, obj);
  assert.equal(img.kind, 'rel');
  const text = img.section('.text')!;
  const repl = img.section('.altinstr_replacement')!;
  assert.ok(text.alloc && text.exec && repl.exec);
  assert.ok(repl.addr >= text.addr + text.size || repl.addr + repl.size <= text.addr, 'sections do not overlap');
  const func = img.symbol('func')!;
  assert.equal(func.addr, text.addr);
  assert.equal(img.where(func.addr + 9), 'func+0x9');
  assert.equal(img.symbolize(repl.addr).name, '.altinstr_replacement');
  // .rela.altinstructions: PC32 against .text + 9 (the first alternative's instruction).
  const r = img.relocs(img.section('.altinstructions')!).entry(0);
  assert.equal(r.type, R_X86_64_PC32);
  assert.equal(img.relocSymbolName(r), '.text');
  assert.equal(img.relocTarget(r), text.addr + 9);
});

test('load addresses as /sys/module/NAME/sections lists them', () => {
  // An address a double cannot hold exactly (more than 53 significant bits) must come back exactly.
  const img = Image.parse(bytes, obj, {
    load: new Map([
      ['.text', 0xffffffffc0a01234n],
      ['.data', 0xffffffffc0b00008n],
    ]),
  });
  assert.equal(img.hex(img.symbol('func')!.addr), '0xffffffffc0a01234');
  assert.equal(img.hex(img.symbol('func')!.addr + 9), '0xffffffffc0a0123d');
  assert.equal(img.hex(img.symbol('counter')?.addr ?? img.section('.data')!.addr), '0xffffffffc0b00008');
  const repl = img.section('.altinstr_replacement')!;
  assert.ok(
    repl.addr >= img.section('.data')!.addr + img.section('.data')!.size ||
      repl.addr + repl.size <= img.section('.text')!.addr,
    'sections without a load address go elsewhere',
  );
});

test('address lookup is fast and exact on a large linked image (xen-syms)', () => {
  const img = Image.parse(readFileSync(corpus.xenSyms), corpus.xenSyms);
  const f = img.symbol('pv_hypercall')!;
  assert.equal(img.hex(f.addr).startsWith('0xffff82d0'), true);
  assert.equal(img.where(f.addr + 0x10), 'pv_hypercall+0x10');
  // A million look-ups: exercises the sorted table, not a linear scan (no timing asserted here).
  let n = 0;
  for (let i = 0; i < 1_000_000; i++) if (img.symbolize(f.addr + (i % f.size)).name === 'pv_hypercall') n++;
  assert.equal(n, 1_000_000);
});

test('compressed modules are read directly: xz, zstd and gzip', async () => {
  const xz = execFileSync('xz', ['-c', obj]);
  const zst = execFileSync('zstd', ['-q', '-c', obj]);
  const gz = gzipSync(bytes);
  for (const [kind, data] of [
    ['xz', xz],
    ['zstd', zst],
    ['gzip', gz],
  ] as const) {
    assert.equal(compressionOf(data), kind);
    const img = await imageFromBytes(data, `x.ko.${kind}`);
    assert.equal(img.symbol('func')!.size, Image.parse(bytes).symbol('func')!.size, kind);
  }
});

function expectElfError(b: Uint8Array, re: RegExp): void {
  assert.throws(
    () => Image.parse(b, 'bad'),
    (e: unknown) => e instanceof ElfError && re.test(e.message) && !e.message.includes('\n'),
  );
}

test('bad input: one-line ElfError for each kind of damage', () => {
  expectElfError(new TextEncoder().encode('#!/bin/sh\necho hi\n'.repeat(10)), /not an ELF file/);
  expectElfError(bytes.subarray(0, 40), /truncated ELF header/);
  expectElfError(bytes.subarray(0, bytes.length - 200), /section header table|outside the file|truncated/);
  const corrupt = Uint8Array.from(bytes);
  const shoff = Number(new DataView(corrupt.buffer).getBigUint64(40, true));
  new DataView(corrupt.buffer).setBigUint64(shoff + 64 * 1 + 24, 0xffffffffn, true); // section 1 offset
  expectElfError(corrupt, /lies outside the file/);
  const b32 = Uint8Array.from(bytes);
  b32[4] = 1;
  expectElfError(b32, /64-bit/);
  const nosh = Uint8Array.from(bytes);
  new DataView(nosh.buffer).setBigUint64(40, 0n, true);
  expectElfError(nosh, /no section header table/);
});

test('corrupt compressed data is an ElfError, not a crash', async () => {
  const xz = execFileSync('xz', ['-c', obj]);
  const broken = Uint8Array.from(xz.subarray(0, 60));
  await assert.rejects(imageFromBytes(broken, 'x.ko.xz'), ElfError);
});
