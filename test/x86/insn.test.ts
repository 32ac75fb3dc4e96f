/**
 * The instruction helpers against iced and against the kernels' own tables: NOP recognition over every NOP
 * the Linux and Xen patchers write, prefixes and the opcode index as the kernel's insn decoder counts them,
 * condition negation as iced's Instruction.negateConditionCode() does it, 32-bit fields and hex text.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { LINUX_NOPS, XEN_K8_NOPS, XEN_P6_NOPS } from '../../src/patch/nops.js';
import {
  branchKind,
  Code,
  ConditionCode,
  decoder,
  GPR64_NAMES,
  gpr64,
  hex,
  isNearBranch,
  isNop,
  isNopCode,
  legacyPrefixes,
  negateCondition,
  newInstruction,
  opcodeIndex,
  readS32,
  Register,
  writeS32,
  type Instruction,
} from '../../src/x86/insn.js';
import { callIndirect, callRel32, jccRel32, jmpIndirect, jmpRel8, lfence, ret } from '../../src/x86/encode.js';

function withDecoded<T>(bytes: ArrayLike<number>, f: (ins: Instruction) => T, ip = 0n): T {
  const dec = decoder(Uint8Array.from(bytes), { ip });
  const ins = newInstruction();
  try {
    dec.decodeOut(ins);
    return f(ins);
  } finally {
    ins.free();
    dec.free();
  }
}

test('isNop: every NOP of the Linux, Xen P6 and Xen K8 tables is one NOP (K8 5..9 are sequences of them); pause and xchg are not', () => {
  for (const table of [LINUX_NOPS, XEN_P6_NOPS]) {
    for (let n = 1; n <= table.max; n++) {
      const b = table.nops[n]!;
      withDecoded(b, (i) => {
        assert.ok(isNop(i), `${table.name} NOP${n} ${hex(b)}`);
        assert.equal(i.length, n);
      });
    }
  }
  for (let n = 1; n <= XEN_K8_NOPS.max; n++) {
    const b = XEN_K8_NOPS.nops[n]!;
    let at = 0;
    while (at < b.length) {
      const len = withDecoded(b.slice(at), (i) => {
        assert.ok(isNop(i), `k8 NOP${n} ${hex(b)} at +${at}`);
        return i.length;
      });
      at += len;
    }
  }
  withDecoded([0xf3, 0x90], (i) => assert.ok(!isNop(i) && i.code === Code.Pause));
  withDecoded([0x87, 0xc0], (i) => assert.ok(!isNop(i)), 0n); // xchg %eax,%eax (not 90)
  withDecoded([0x41, 0x90], (i) => assert.ok(!isNop(i)), 0n); // xchg %eax,%r8d
  assert.ok(isNopCode(Code.Nop_rm32) && !isNopCode(Code.Int3));
});

test('legacyPrefixes and opcodeIndex count prefixes as the kernel insn decoder does', () => {
  assert.deepEqual(legacyPrefixes([0x66, 0xf0, 0x0f, 0xb1, 0x11]), [0x66, 0xf0]);
  assert.deepEqual(legacyPrefixes([0x2e, 0x2e, 0xe8, 0, 0, 0, 0]), [0x2e, 0x2e]);
  assert.deepEqual(legacyPrefixes([0x48, 0x89, 0xe5]), []);
  assert.equal(opcodeIndex([0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00], 6), 1);
  assert.equal(opcodeIndex([0xf0, 0x48, 0x0f, 0xb1, 0x11], 5), 2);
  assert.equal(opcodeIndex([0x2e, 0xe8, 0, 0, 0, 0], 6), 1);
  // A prefix byte that is the whole instruction stays the opcode (e.g. a lone 0x66 in a table).
  assert.equal(opcodeIndex([0x66], 1), 0);
  // Against iced: for each instruction, the bytes before the opcode are exactly the prefixes iced saw.
  for (const b of [
    [0xf3, 0x48, 0xab],
    [0x65, 0x48, 0x8b, 0x04, 0x25, 0, 0, 0, 0],
    [0xf0, 0x0f, 0xc1, 0x07],
  ]) {
    withDecoded(b, (i) => {
      assert.equal(i.length, b.length);
      const k = opcodeIndex(b, i.length);
      assert.equal(i.hasLockPrefix, b.slice(0, k).includes(0xf0));
      assert.equal(i.hasRepPrefix || i.hasRepePrefix, b.slice(0, k).includes(0xf3));
    });
  }
});

test('negateCondition agrees with iced negateConditionCode() for every Jcc; branchKind and isNearBranch classify', () => {
  for (const [, cc] of Object.entries(ConditionCode).filter(([k, v]) => typeof v === 'number' && k !== 'None') as [
    string,
    ConditionCode,
  ][]) {
    const ours = negateCondition(cc);
    const theirs = withDecoded(jccRel32(cc, 0n, 0x100n), (i) => {
      i.negateConditionCode();
      return i.conditionCode;
    });
    assert.equal(ours, theirs, `not ${cc}`);
    assert.equal(negateCondition(ours), cc);
  }
  assert.equal(negateCondition(ConditionCode.None), ConditionCode.None);
  const kinds: [Uint8Array, string, boolean][] = [
    [callRel32(0n, 0x10n), 'call', true],
    [jmpRel8(0n, 0x10n), 'jmp', true],
    [jccRel32(ConditionCode.ne, 0n, 0x10n), 'jcc', true],
    [ret(), 'ret', false],
    [callIndirect(Register.RBX), 'indirect-call', false],
    [jmpIndirect(Register.R11), 'indirect-jmp', false],
    [lfence(), 'other', false],
  ];
  for (const [b, kind, near] of kinds) {
    withDecoded(b, (i) => {
      assert.equal(branchKind(i), kind, hex(b));
      assert.equal(isNearBranch(i), near, hex(b));
    });
  }
});

test('readS32/writeS32 round-trip signed rel32 fields; hex is two lower-case digits per byte', () => {
  const b = new Uint8Array(6);
  for (const v of [0, 1, -1, 0x7fffffff, -0x80000000, -5, 0x12345678]) {
    writeS32(b, 1, v);
    assert.equal(readS32(b, 1), v);
  }
  writeS32(b, 1, -5);
  assert.equal(hex(b), '00 fb ff ff ff 00');
  assert.equal(hex([]), '');
  assert.equal(hex([0x0f, 0xae, 0xe8]), '0f ae e8');
});

test("gpr64 numbers the 64-bit general registers as the encoding (and the kernels' thunk names) do", () => {
  const names = GPR64_NAMES;
  names.forEach((name, n) => {
    assert.equal(gpr64(n), Register[name.toUpperCase() as keyof typeof Register]);
    // ff /2 with the register number in ModRM.rm and REX.B: what decoding `call *%reg` gives back.
    const bytes = n >= 8 ? [0x41, 0xff, 0xd0 | (n & 7)] : [0xff, 0xd0 | n];
    withDecoded(bytes, (ins) => assert.equal(ins.op0Register, gpr64(n)));
  });
  assert.throws(() => gpr64(16), RangeError);
  assert.throws(() => gpr64(-1), RangeError);
});
