/**
 * The named encoders against iced's decoder (every encoding decodes back to the instruction asked for, with
 * the requested length and target) and against the bytes the kernels write, as spelled in their sources
 * (arch/x86/include/asm/text-patching.h, arch/x86/kernel/alternative.c, arch/x86/include/asm/ibt.h).
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import {
  callIndirect,
  callRel32,
  EncodeError,
  endbr64,
  int3,
  jccRel32,
  jccRel8,
  jmpIndirect,
  jmpRel32,
  jmpRel8,
  lfence,
  ret,
  ud2,
} from '../../src/x86/encode.js';
import { Code, ConditionCode, decoder, hex, newInstruction, Register, type Instruction } from '../../src/x86/insn.js';

const IP = 0xffffffff81000000n;

/** Decodes exactly one instruction from `bytes` at `ip` and hands it to `check`. */
function decoded(bytes: Uint8Array, ip: bigint, check: (ins: Instruction) => void): void {
  const dec = decoder(bytes, { ip });
  const ins = newInstruction();
  try {
    dec.decodeOut(ins);
    assert.equal(ins.isInvalid, false, `${hex(bytes)} is invalid`);
    assert.equal(ins.length, bytes.length, `${hex(bytes)}: one instruction of all the bytes`);
    check(ins);
  } finally {
    ins.free();
    dec.free();
  }
}

test('rel32 call and jmp: the kernel bytes (e8/e9 rel32) and iced decodes the target back, forwards and backwards', () => {
  assert.equal(hex(callRel32(IP, IP + 0x1000n)), 'e8 fb 0f 00 00');
  assert.equal(hex(jmpRel32(IP, IP + 5n)), 'e9 00 00 00 00');
  assert.equal(hex(jmpRel32(IP, IP - 0x100n)), 'e9 fb fe ff ff');
  for (const target of [IP + 5n, IP - 0x7fff0000n, IP + 0x7e000000n, 0xffffffff82345678n]) {
    decoded(callRel32(IP, target), IP, (i) => {
      assert.equal(i.code, Code.Call_rel32_64);
      assert.equal(i.nearBranchTarget, target);
    });
    decoded(jmpRel32(IP, target), IP, (i) => {
      assert.equal(i.code, Code.Jmp_rel32_64);
      assert.equal(i.nearBranchTarget, target);
    });
  }
  assert.throws(() => callRel32(IP, IP + 0x100000000n), EncodeError);
});

test('rel8 jmp: eb rel8 to the ends of its reach, an error one byte beyond (no silent rel32)', () => {
  assert.equal(hex(jmpRel8(IP, IP + 2n)), 'eb 00');
  assert.equal(hex(jmpRel8(IP, IP + 2n + 127n)), 'eb 7f');
  assert.equal(hex(jmpRel8(IP, IP + 2n - 128n)), 'eb 80');
  decoded(jmpRel8(IP, IP + 0x40n), IP, (i) => {
    assert.equal(i.code, Code.Jmp_rel8_64);
    assert.equal(i.nearBranchTarget, IP + 0x40n);
  });
  assert.throws(() => jmpRel8(IP, IP + 2n + 128n), EncodeError);
  assert.throws(() => jmpRel8(IP, IP + 2n - 129n), EncodeError);
});

test('jcc: all 16 conditions, rel8 (70+cc) and rel32 (0f 80+cc), decode to the same condition and target', () => {
  const conditions = Object.entries(ConditionCode).filter(([k, v]) => typeof v === 'number' && k !== 'None') as [
    string,
    ConditionCode,
  ][];
  assert.equal(conditions.length, 16);
  for (const [name, cc] of conditions) {
    const short = jccRel8(cc, IP, IP + 0x10n);
    assert.equal(short.length, 2);
    assert.equal(short[0], 0x70 + cc - 1, `j${name} rel8 opcode`);
    decoded(short, IP, (i) => {
      assert.equal(i.conditionCode, cc, `j${name}`);
      assert.ok(i.isJccShort);
      assert.equal(i.nearBranchTarget, IP + 0x10n);
    });
    const near = jccRel32(cc, IP, IP - 0x1000n);
    assert.equal(near.length, 6);
    assert.deepEqual([near[0], near[1]], [0x0f, 0x80 + cc - 1], `j${name} rel32 opcode`);
    decoded(near, IP, (i) => {
      assert.equal(i.conditionCode, cc, `j${name}`);
      assert.ok(i.isJccNear);
      assert.equal(i.nearBranchTarget, IP - 0x1000n);
    });
  }
  assert.throws(() => jccRel8(ConditionCode.e, IP, IP + 0x1000n), EncodeError);
  assert.throws(() => jccRel8(ConditionCode.None, IP, IP), EncodeError);
});

test('indirect call and jmp through each of the 16 registers: ff d0+r / ff e0+r, REX.B 41 for r8..r15 (the retpoline patcher)', () => {
  const regs = [
    Register.RAX,
    Register.RCX,
    Register.RDX,
    Register.RBX,
    Register.RSP,
    Register.RBP,
    Register.RSI,
    Register.RDI,
    Register.R8,
    Register.R9,
    Register.R10,
    Register.R11,
    Register.R12,
    Register.R13,
    Register.R14,
    Register.R15,
  ];
  regs.forEach((reg, n) => {
    const rex = n >= 8 ? [0x41] : [];
    assert.deepEqual([...callIndirect(reg)], [...rex, 0xff, 0xd0 | (n & 7)]);
    assert.deepEqual([...jmpIndirect(reg)], [...rex, 0xff, 0xe0 | (n & 7)]);
    decoded(callIndirect(reg), 0n, (i) => {
      assert.equal(i.code, Code.Call_rm64);
      assert.equal(i.op0Register, reg);
    });
    decoded(jmpIndirect(reg), 0n, (i) => {
      assert.equal(i.code, Code.Jmp_rm64);
      assert.equal(i.op0Register, reg);
    });
  });
  assert.throws(() => callIndirect(Register.EAX), EncodeError);
});

test('fixed instructions: ret, int3, lfence, endbr64 and ud2 are the kernel bytes and decode back', () => {
  const cases: [Uint8Array, string, number][] = [
    [ret(), 'c3', Code.Retnq],
    [int3(), 'cc', Code.Int3],
    [lfence(), '0f ae e8', Code.Lfence],
    [endbr64(), 'f3 0f 1e fa', Code.Endbr64],
    [ud2(), '0f 0b', Code.Ud2],
  ];
  for (const [bytes, text, code] of cases) {
    assert.equal(hex(bytes), text);
    decoded(bytes, 0n, (i) => assert.equal(i.code, code, text));
  }
});
