import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fixturesDir, tempDir } from '../support/build.js';
import { preprocess } from '../../src/hypercall/cpp.js';
import { defineMap, parseDefs, X86_DEFINES } from '../../src/hypercall/defs.js';
import { abiDiff } from '../../src/hypercall/abi.js';
import { main } from '../../src/cli/main.js';

const path = join(fixturesDir, 'hypercall/hypercall-defs-4.17.c');
const text = readFileSync(path, 'utf8');
const load = (t: string, ds: string[] = [...X86_DEFINES]) => parseDefs(preprocess(t, defineMap(ds)));
const base = load(text);

function diff(from: string, to: string, ds?: string[]) {
  assert.ok(text.includes(from), from);
  return abiDiff(ds ? load(text, ds) : base, load(text.replace(from, to), ds)).map(
    (c) => `${c.prefix}_${c.hypercall} ${c.abi ?? '-'}: ${c.what}`,
  );
}

test('identical input: no changes', () => {
  assert.deepEqual(abiDiff(base, load(text)), []);
});

test('the 4.17 kexec_op slip (unsigned long op narrowed to unsigned int) is caught under the 64-bit ABI only', () => {
  assert.deepEqual(diff('kexec_op(unsigned long op, void *uarg)', 'kexec_op(unsigned int op, void *uarg)'), [
    "do_kexec_op 64-bit: argument 1 'op': unsigned long -> unsigned int: 64-bit unsigned -> 32-bit unsigned (narrowed)",
  ]);
});

test('a dropped argument is caught', () => {
  assert.deepEqual(diff('vm_assist(unsigned int cmd, unsigned int type)', 'vm_assist(unsigned int cmd)'), [
    "do_vm_assist -: argument count 2 -> 1 (dropped 'type')",
  ]);
});

test('a changed return type is caught where the guest can see it', () => {
  // compat handlers return into a 32-bit register: int -> unsigned int changes signedness there.
  const c = diff('rettype: compat int', 'rettype: compat unsigned int');
  assert.ok(c.length > 5);
  assert.ok(
    c.every((l) =>
      /^compat_\w+ 32-bit compat: return type int -> unsigned int: 32-bit signed -> 32-bit unsigned$/.test(l),
    ),
    c.join('\n'),
  );
  // ... while int -> long is invisible in a 32-bit register.
  assert.deepEqual(diff('rettype: compat int', 'rettype: compat long'), []);
  // do_ handlers returning int: a 64-bit guest loses the upper half.
  const d = diff('handle: uint unsigned int', 'rettype: do int\nhandle: uint unsigned int');
  assert.ok(d.includes('do_console_io 64-bit: return type long -> int: 64-bit signed -> 32-bit signed'), d.join('\n'));
});

test('signedness under the compat ABI (the 4.17.4 compat_set_timer_op fix) and handle pointee changes', () => {
  assert.deepEqual(diff('set_timer_op(uint32_t lo, int32_t hi)', 'set_timer_op(uint32_t lo, uint32_t hi)'), [
    "compat_set_timer_op 32-bit compat: argument 2 'hi': int32_t -> uint32_t: 32-bit signed -> 32-bit unsigned (signedness changed)",
  ]);
  // unsigned long -> unsigned int is invisible to a 32-bit guest.
  assert.deepEqual(diff('memory_op(unsigned int cmd, void *arg)', 'memory_op(unsigned long cmd, void *arg)'), []);
  assert.deepEqual(diff('xsm_op(void *op)', 'xsm_op(const void *op)'), []);
  assert.deepEqual(diff('mca(xen_mc_t *u_xen_mc)', 'mca(xen_mc_v2_t *u_xen_mc)'), [
    "do_mca -: argument 1 'u_xen_mc': guest handle to xen_mc_t -> xen_mc_v2_t (pointee layout may differ)",
  ]);
});

test('reordering table rows or changing priorities is not an ABI change; changing a handler is', () => {
  const a = 'set_debugreg                       do       do       -        -        -\n';
  const b = 'get_debugreg                       do       do       -        -        -\n';
  assert.ok(text.includes(a + b));
  assert.deepEqual(abiDiff(base, load(text.replace(a + b, b + a))), []);
  assert.deepEqual(
    diff('mmu_update                         do:1     do:1', 'mmu_update                         do:3     do'),
    [],
  );
  assert.deepEqual(
    diff(
      'xen_version                        compat   do       compat   do',
      'xen_version                        compat   do       do       do',
    ),
    ['do_xen_version -: hvm32 xen_version: handler compat_xen_version -> do_xen_version'],
  );
  assert.deepEqual(
    diff('fpu_taskswitch                     do       do', 'fpu_taskswitch                     do       -'),
    ['do_fpu_taskswitch -: pv64 loses fpu_taskswitch (was do_fpu_taskswitch; now -ENOSYS)'],
  );
});

test('textpoke hypercalls abi-diff: exit 0 quiet on reordered rows, 1 with the change listed', async () => {
  let out = '';
  const io = {
    out: (t: string) => {
      out += t;
    },
    err: () => {},
    isTTY: false,
  };
  const dir = tempDir();
  const moved = join(dir, 'moved.c');
  const a = 'set_debugreg                       do       do       -        -        -\n';
  writeFileSync(moved, text.replace(a, '') + a);
  assert.equal(await main(['hypercalls', 'abi-diff', path, moved], io), 0);
  assert.match(out, /^0 ABI changes$/m);
  const slip = join(dir, 'slip.c');
  writeFileSync(slip, text.replace('kexec_op(unsigned long op, void *uarg)', 'kexec_op(unsigned int op, void *uarg)'));
  out = '';
  assert.equal(await main(['hypercalls', 'abi-diff', path, slip], io), 1);
  assert.match(
    out,
    /slip\.c: do_kexec_op \[pv64\] 64-bit: argument 1 'op': unsigned long -> unsigned int: 64-bit unsigned -> 32-bit unsigned \(narrowed\)/,
  );
});
