import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fixturesDir } from '../support/build.js';
import { verifyText } from '../../src/patchlets/verify.js';
import { findByteTables } from '../../src/patchlets/ctable.js';
import { main } from '../../src/cli/main.js';

const seed = readFileSync(join(fixturesDir, 'patchlets/paravirt_patch.c'), 'utf8');

function io() {
  const o = {
    out: '',
    err: '',
    isTTY: false,
    io: undefined as unknown as { out(t: string): void; err(t: string): void; isTTY: boolean },
  };
  o.io = {
    out: (t) => {
      o.out += t;
    },
    err: (t) => {
      o.err += t;
    },
    isTTY: false,
  };
  return o;
}

test('the seed 003 table verifies clean, each entry in the mode its #ifdef implies', () => {
  const r = verifyText(seed);
  assert.equal(r.entries.length, 17);
  assert.deepEqual(
    r.entries.filter((e) => !e.ok).map((e) => e.message),
    [],
  );
  const modes = Object.fromEntries(r.entries.map((e) => [`${e.entry.name}@${e.entry.line}`, e.entry.bits]));
  assert.equal(modes['.irq_save_fl@45'], 64);
  assert.equal(modes['.irq_restore_fl@49'], 64);
  assert.equal(modes['.irq_restore_fl@57'], 32);
  assert.equal(modes['.cpu_iret@59'], 32);
  assert.equal(modes['.queued_spin_unlock@82'], 64);
  assert.equal(modes['.queued_spin_unlock@84'], 32);
  // The table spanning two lines is one entry with six bytes.
  const sysret = r.entries.find((e) => e.entry.name === '.cpu_usergs_sysret64')!;
  assert.deepEqual(sysret.entry.bytes, [0x0f, 0x01, 0xf8, 0x48, 0x0f, 0x07]);
  assert.equal(sysret.entry.asm, 'swapgs; sysretq');
});

/** Applies one textual mutation to the seed table and returns the failing entries. */
function mutate(from: string, to: string) {
  assert.ok(seed.includes(from), from);
  const r = verifyText(seed.replace(from, to));
  return r.entries.filter((e) => !e.ok);
}

test('a wrong byte is caught and named', () => {
  const bad = mutate('.mmu_read_cr3		= { 0x0f, 0x20, 0xd8 }', '.mmu_read_cr3		= { 0x0f, 0x20, 0xd9 }');
  assert.equal(bad.length, 1);
  assert.equal(bad[0].entry.name, '.mmu_read_cr3');
  assert.equal(bad[0].entry.line, 47);
  assert.match(bad[0].message!, /mov %cr3, %rcx/);
  assert.equal(bad[0].kind, 'operands');
});

test('a missing REX prefix is caught as an operand-width slip', () => {
  const bad = mutate('{ 0x48, 0x89, 0xf8 }', '{ 0x89, 0xf8 }');
  assert.equal(bad.length, 1);
  assert.equal(bad[0].entry.name, '.mov64');
  assert.equal(bad[0].kind, 'operand-width');
  assert.match(bad[0].message!, /'mov %edi, %eax'/);
  // sysretq without REX.W is sysretl: the suffix in the comment is checked, not ignored.
  const bad2 = mutate('0x48, 0x0f, 0x07 }', '0x0f, 0x07 }');
  assert.equal(bad2.length, 1);
  assert.equal(bad2[0].entry.name, '.cpu_usergs_sysret64');
  assert.equal(bad2[0].at, 1);
  assert.equal(bad2[0].kind, 'operand-width');
});

test('swapped operands are caught, in the bytes or in the comment', () => {
  const bytes = mutate('{ 0x48, 0x89, 0xf8 }', '{ 0x48, 0x89, 0xc7 }');
  assert.equal(bytes.length, 1);
  assert.equal(bytes[0].kind, 'swapped-operands');
  const comment = mutate('// mov %rdi, %cr3', '// mov %cr3, %rdi');
  assert.equal(comment.length, 1);
  assert.equal(comment[0].entry.name, '.mmu_write_cr3');
  assert.equal(comment[0].kind, 'swapped-operands');
});

test('a missing instruction, a 32-bit table decoded as 64-bit, and truncated bytes are caught', () => {
  const count = mutate('{ 0x9c, 0x58 }', '{ 0x9c }');
  assert.equal(count[0].kind, 'count');
  // Dropping the #else makes the 32-bit entries 64-bit: push %eax does not exist there.
  const r = verifyText(seed.replace('# else\n\t.irq_restore_fl', '\t.irq_restore_fl'));
  assert.deepEqual(
    r.entries.filter((e) => !e.ok).map((e) => e.entry.line),
    [56, 57],
  ); // one line fewer above them
  const torn = mutate('{ 0x0f, 0x22, 0xdf }', '{ 0x0f, 0x22 }');
  assert.equal(torn[0].kind, 'undecodable');
});

test('Intel syntax, number radices, prefixes, aliases and symbolic branch targets', () => {
  const r = verifyText(readFileSync(join(fixturesDir, 'patchlets/intel.c'), 'utf8'));
  assert.deepEqual(
    r.entries.filter((e) => !e.ok).map((e) => e.message),
    [],
  );
  assert.equal(r.entries.length, 9);
  assert.equal(r.unannotated.length, 1);
  const wrongImm = verifyText('x = { 0xb8, 0x10, 0x00, 0x00, 0x00 }; // mov $0x11, %eax\n');
  assert.equal(wrongImm.entries[0].ok, false);
  const wrongIntel = verifyText('x = { 0x48, 0x89, 0xf8 }; // mov rdi, rax\n');
  assert.equal(wrongIntel.entries[0].kind, 'swapped-operands');
});

test('--32 decodes unconditioned tables as 32-bit code', () => {
  const t = 'x = { 0x50, 0x9d }; // push %eax; popf\n';
  assert.equal(findByteTables(t, 32)[0].bits, 32);
  assert.equal(verifyText(t, 32).entries[0].ok, true);
  assert.equal(verifyText(t, 64).entries[0].ok, false);
});

test('textpoke patchlets verify: exit 0 clean, 1 on a mismatch with both disassemblies, 2 unreadable', async () => {
  const a = io();
  assert.equal(await main(['patchlets', 'verify', join(fixturesDir, 'patchlets/paravirt_patch.c')], a.io), 0);
  assert.match(a.out, /17 annotated entries, 17 match, 0 mismatch/);
  const b = io();
  const { tempDir } = await import('../support/build.js');
  const { writeFileSync } = await import('node:fs');
  const p = join(tempDir(), 'bad.c');
  writeFileSync(p, seed.replace('{ 0x48, 0x89, 0xf8 }', '{ 0x48, 0x89, 0xc7 }'));
  assert.equal(await main(['patchlets', 'verify', p], b.io), 1);
  assert.match(
    b.out,
    /bad\.c:55: warning: textpoke: \.mov64: instruction 1: bytes 48 89 c7 are 'mov %rax, %rdi' \('mov rdi, rax'\), comment says 'mov %rdi, %rax': operands swapped \[patchlet-mismatch\]/,
  );
  assert.match(b.out, /AT&T: +mov %rax, %rdi\n +Intel: +mov rdi, rax/);
  const c = io();
  assert.equal(await main(['patchlets', 'verify', join(tempDir(), 'missing.c')], c.io), 2);
  assert.match(c.err, /missing\.c: no such file/);
});

test("Linux's static_call.c tables: the claim before ' - ' in the comment above, prefixes spelled out and counted", () => {
  const sc = readFileSync(join(fixturesDir, 'patchlets/static_call.c'), 'utf8');
  const r = verifyText(sc);
  assert.deepEqual(
    r.entries.map((e) => [e.entry.name, e.entry.asm, e.ok]),
    [
      ['tramp_ud[]', 'ud1 %esp, %ecx', true],
      ['xor5rax[]', 'cs cs cs xorl %eax, %eax', true],
      ['xor5rax_old[]', 'data16 data16 xorq %rax, %rax', true],
      ['warninsn[]', 'ud1 (%edx),%rdi', true],
    ],
  );
  // A prose comment above a table is not a claim; a macro byte makes no table.
  assert.deepEqual(
    r.unannotated.map((e) => e.name),
    ['nop1[]'],
  );
  const one = verifyText(sc.replace('{ 0x2e, 0x2e, 0x2e, 0x31, 0xc0 }', '{ 0x2e, 0x2e, 0x31, 0xc0 }')).entries.filter(
    (e) => !e.ok,
  );
  assert.equal(one.length, 1);
  assert.equal(one[0].kind, 'prefixes');
  assert.match(
    one[0].message!,
    /with prefix bytes 2e 2e, comment says 'cs cs cs xorl %eax, %eax': prefix bytes differ/,
  );
  const rexw = verifyText(sc.replace('{ 0x66, 0x66, 0x48, 0x31, 0xc0 }', '{ 0x66, 0x66, 0x31, 0xc0 }')).entries.filter(
    (e) => !e.ok,
  );
  assert.equal(rexw[0].entry.name, 'xor5rax_old[]');
});
