import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Image } from '../../src/elf/image.js';
import { RelocIndex } from '../../src/sites/listing.js';
import { disassemble, hexBytes, ImageDisassembler } from '../../src/x86/format.js';
import { assemble } from '../support/build.js';
import { corpus } from '../support/corpus.js';

// The same bytes at several places: shared decoding and formatting must still name each place's own
// relocation and branch target.
const SOURCE = `
  .text
  .globl f
f:
  call foo          # e8 00 00 00 00, relocation against foo
  call bar          # the same bytes, relocation against bar
  .byte 0xe9        # jmp rel32 to the next label: e9 01 00 00 00
  .long 1f - . - 4
  nop
1:
  .byte 0xe9        # the same bytes at another place: another target
  .long 2f - . - 4
  nop
2:
  movq foo(%rip), %rax
  movq bar(%rip), %rax
  ret
`;

test('identical bytes at different places keep their own relocations and branch targets', () => {
  const img = Image.parse(readFileSync(assemble('same-bytes.S', { inline: SOURCE })), 'same-bytes.o');
  const f = img.symbol('f')!;
  const relocs = new RelocIndex(img);
  const dis = new ImageDisassembler({ img });
  const at = (o: number, n: number): string =>
    dis
      .at(f.addr + o, n, relocs.at(f.addr + o))!
      .map((i) => i.text)
      .join('; ');
  // Asked twice each, in both orders, so the second answer comes from the shared shapes.
  for (let round = 0; round < 2; round++) {
    assert.equal(at(0, 5), 'call foo');
    assert.equal(at(5, 5), 'call bar');
    assert.equal(at(10, 5), 'jmp f+0x10');
    assert.equal(at(16, 5), 'jmp f+0x16');
    assert.equal(at(22, 7), 'mov (%rip),%rax  # foo');
    assert.equal(at(29, 7), 'mov (%rip),%rax  # bar');
  }
  dis.free();
  // The one-shot path formats the same way.
  const b = img.read(f.addr, 10)!;
  assert.deepEqual(
    disassemble(b, f.addr, { img, relocs: relocs.at(f.addr) }).map((i) => i.text),
    ['call foo', 'call bar'],
  );
  assert.equal(hexBytes(b), 'e8 00 00 00 00 e8 00 00 00 00');
  assert.equal(hexBytes(new Uint8Array([0, 0x0f, 0xff])), '00 0f ff');
  assert.equal(hexBytes(new Uint8Array(0)), '');
});

test('in a linked image the same bytes at two addresses show two absolute targets', () => {
  const img = Image.parse(readFileSync(corpus.xenSyms), corpus.xenSyms);
  const dis = new ImageDisassembler({ img });
  // Two `jmp rel32` with the same displacement in .text: find them by scanning for a repeat.
  const text = img.section('.text')!;
  const bytes = img.sectionBytes(text);
  const seen = new Map<string, number>();
  let pair: [number, number] | undefined;
  for (let o = 0; o + 5 <= bytes.length && !pair; o++) {
    if (bytes[o] !== 0xe9) continue;
    const insn = dis.at(text.addr + o, 5);
    if (insn?.length !== 1 || !insn[0]!.text.startsWith('jmp ')) continue;
    const key = hexBytes(bytes.subarray(o, o + 5));
    const prev = seen.get(key);
    if (prev !== undefined && o - prev > 64) pair = [prev, o];
    else if (prev === undefined) seen.set(key, o);
  }
  assert.ok(pair, 'two identical jmp rel32 in xen-syms .text');
  const [a, b] = pair.map((o) => dis.at(text.addr + o, 5)![0]!.text);
  assert.notEqual(a, b);
  const target = (o: number): bigint =>
    img.base + BigInt(text.addr + o + 5 + new DataView(bytes.buffer, bytes.byteOffset).getInt32(o + 1, true));
  assert.ok(a!.startsWith(`jmp 0x${target(pair[0]).toString(16)} <`), a);
  assert.ok(b!.startsWith(`jmp 0x${target(pair[1]).toString(16)} <`), b);
  dis.free();
});
