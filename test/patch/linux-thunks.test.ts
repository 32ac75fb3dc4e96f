/**
 * Pins Linux 6.1 apply_retpolines, apply_returns and apply_paravirt (native) on a module-like object
 * (test/fixtures/patch/linux-thunks.S): thunks and pv_ops are imports, resolved to synthetic addresses.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Image } from '../../src/elf/image.js';
import { applyPatches, parseCpu, PatchedView } from '../../src/patch/index.js';
import { featureTable } from '../../src/target/features/index.js';
import { profileById } from '../../src/target/profile.js';
import { assemble } from '../support/build.js';

const table = featureTable('linux-6.1.85');
const img = Image.parse(readFileSync(assemble('patch/linux-thunks.S')), 'linux-thunks.o');
const profile = profileById('linux-6.1')!;
const run = (spec: string): PatchedView => applyPatches(img, profile, parseCpu(spec, table)).view;
const addrOf = (sym: string): number => img.symbol(sym)!.addr;
const at = (v: PatchedView, sym: string, n: number): number[] => [...v.read(addrOf(sym), n)!];
const rel32 = (b: number[], o: number): number => b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24) | 0;
const dest = (v: PatchedView, sym: string, b: number[]): bigint => v.abs(addrOf(sym)) + 5n + BigInt(rel32(b, 1));

test('retpolines, spectre_v2 off/eibrs: call/jmp/jcc through a thunk become indirect branches', () => {
  const v = run('intel-server');
  assert.deepEqual(at(v, 't_retp_call', 5), [0x41, 0xff, 0xd3, 0x66, 0x90]); // call *%r11, NOP2
  assert.deepEqual(at(v, 't_retp_jmp', 5), [0xff, 0xe0, 0xcc, 0x66, 0x90]); // jmp *%rax; int3; NOP2
  assert.deepEqual(at(v, 't_retp_jcc', 6), [0x75, 0x04, 0xff, 0xe2, 0xcc, 0x90]); // jne 1f; jmp *%rdx; int3; nop; 1:
});

test('retpolines, spectre_v2=retpoline: sites keep calling the thunk', () => {
  const v = run('old');
  assert.equal(v.patches.filter((p) => p.patcher === 'retpolines').length, 0);
});

test('retpolines, spectre_v2=lfence: lfence prepended where it fits, site left when it does not', () => {
  const v = run('intel-server,spectre_v2=lfence');
  assert.deepEqual(at(v, 't_retp_jmp', 5), [0x0f, 0xae, 0xe8, 0xff, 0xe0]);
  // lfence + call *%r11 needs 6 bytes: the kernel leaves the 5-byte thunk call alone, silently.
  assert.equal(at(v, 't_retp_call', 1)[0], 0xe8);
  assert.equal(v.patches.filter((p) => p.addr === addrOf('t_retp_call')).length, 0);
  assert.equal(v.findings.length, 0);
});

test('returns: ret + int3 padding without RETHUNK; jmp to the chosen thunk with it', () => {
  assert.deepEqual(at(run('intel-server'), 't_ret', 5), [0xc3, 0xcc, 0xcc, 0xcc, 0xcc]);
  const amd = run('amd-server');
  const b = at(amd, 't_ret', 5);
  assert.equal(b[0], 0xe9);
  assert.equal(dest(amd, 't_ret', b), amd.symbolAbs('srso_alias_return_thunk'));
  const def = run('amd-server,rethunk=default');
  assert.equal(dest(def, 't_ret', at(def, 't_ret', 5)), def.symbolAbs('__x86_return_thunk'));
});

test('paravirt (native): call pv_ops slot becomes call <native function> + NOP; paravirt_nop slots become NOPs', () => {
  const v = run('intel-server');
  const b = at(v, 't_pv', 6);
  assert.equal(b[0], 0xe8);
  assert.equal(dest(v, 't_pv', b), v.symbolAbs('native_save_fl'));
  assert.equal(b[5], 0x90);
  assert.deepEqual(at(v, 't_pvnop', 6), [0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00]);
});

test("static calls: sites take their key's initial function; keys outside the file are left and noted", () => {
  const v = run('intel-server');
  const b = at(v, 't_sc_call', 5);
  assert.equal(b[0], 0xe8);
  assert.equal(dest(v, 't_sc_call', b), v.abs(addrOf('target_fn')));
  assert.deepEqual(at(v, 't_sc_null', 5), [0x0f, 0x1f, 0x44, 0x00, 0x00]);
  assert.deepEqual(at(v, 't_sc_tail', 5), [0xc3, 0xcc, 0xcc, 0xcc, 0xcc]);
  const amd = run('amd-server');
  const t = at(amd, 't_sc_tail', 5);
  assert.equal(t[0], 0xe9);
  assert.equal(dest(amd, 't_sc_tail', t), amd.symbolAbs('srso_alias_return_thunk'));
  assert.equal(v.patches.filter((p) => p.addr === addrOf('t_sc_ext')).length, 0);
  assert.match(v.notes.join('\n'), /1 static call site\(s\) keep calling their trampolines: their keys \(__SCK__ext/);
});
