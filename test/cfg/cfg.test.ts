import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { FlowControl } from '../../src/x86/insn.js';
import { Image } from '../../src/elf/image.js';
import { buildCfg } from '../../src/cfg/blocks.js';
import { functions, pieceOf } from '../../src/cfg/functions.js';
import { prepare } from '../../src/checks/run.js';
import { assemble, compile } from '../support/build.js';

function viewOf(path: string) {
  return prepare(Image.parse(readFileSync(path), path)).view;
}

test('cfg: pieces are tied to their parent', () => {
  assert.deepEqual(pieceOf('foo.cold'), { parent: 'foo', piece: 'cold' });
  assert.deepEqual(pieceOf('mbox_post_sync_cmd.isra.0'), { parent: 'mbox_post_sync_cmd', piece: 'isra' });
  assert.deepEqual(pieceOf('hvm_get_param.part.0'), { parent: 'hvm_get_param', piece: 'part' });
  assert.equal(pieceOf('plain_name'), undefined);
  const view = viewOf(
    compile('check/cfg.c', ['-O2', '-fno-pic', '-fno-asynchronous-unwind-tables', '-freorder-blocks-and-partition']),
  );
  const cold = functions(view).find((f) => f.name.endsWith('.cold'));
  assert.ok(
    cold,
    functions(view)
      .map((f) => f.name)
      .join(' '),
  );
  assert.equal(cold.piece, 'cold');
  assert.equal(cold.parent, cold.name.replace(/\.cold$/, ''));
  assert.ok(functions(view).some((f) => f.name === cold.parent));
  view.dispose();
});

test('cfg: switch jump table through .rodata relocations, no-return calls end blocks', () => {
  const view = viewOf(
    compile('check/cfg.c', ['-O2', '-fno-pic', '-fno-asynchronous-unwind-tables', '-fjump-tables', '-mcmodel=kernel']),
  );
  const fn = functions(view).find((f) => f.name === 'dispatch')!;
  const cfg = buildCfg(view, fn)!;
  const table = cfg.blocks.flatMap((b) => b.succ.filter((e) => e.kind === 'table'));
  assert.equal(table.length, 8, JSON.stringify(cfg.blocks.map((b) => b.succ)));
  for (const e of table) assert.ok(e.to >= fn.addr && e.to < fn.addr + fn.size);
  // Every table destination starts a block.
  for (const e of table) assert.ok(cfg.at.has(e.to), view.img.where(e.to));
  // A call to panic() ends its block with no successor.
  const all = functions(view).filter((f) => f.name.startsWith('checked'));
  const sc = cfg.sc;
  const blocks = all.flatMap((f) => buildCfg(view, f)!.blocks);
  const calls = blocks.filter((b) => sc.flow[b.last] === FlowControl.Call);
  // work(1), work(2), work(3) fall through; panic() does not.
  assert.deepEqual(calls.map((b) => b.succ.length).sort(), [0]);
  const panicEnd = blocks.find((b) => sc.flow[b.last] === FlowControl.Call && b.succ.length === 0)!;
  assert.equal(view.img.where(sc.section.addr + sc.off[panicEnd.last]!), 'checked+0x39');
  view.dispose();
});

test('cfg: alternatives and jump labels add alternative paths', () => {
  const view = viewOf(assemble('sites/tables61.S'));
  const fn = functions(view).find((f) => f.name === 'func')!;
  const cfg = buildCfg(view, fn)!;
  const kinds = cfg.blocks.flatMap((b) => b.succ.map((e) => e.kind));
  assert.equal(kinds.filter((k) => k === 'alternative').length, 1); // the empty replacement adds no path
  assert.equal(kinds.filter((k) => k === 'jump-label').length, 2);
  const jl = cfg.blocks.find((b) => b.succ.some((e) => e.kind === 'jump-label'))!;
  assert.equal(view.img.where(jl.succ.find((e) => e.kind === 'jump-label')!.to), 'func+0x37');
  view.dispose();
});
