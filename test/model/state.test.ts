/**
 * The state layout (src/model/state.ts): fields are where the layout says, and a value that would not fit
 * its one-byte field is an error, never a silent wrap.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { compile, explore, findProtocol, findScenario } from '../../src/model/index.js';
import { CPU, K_BASE, K_INT3, K_PROTO, StateLayout } from '../../src/model/state.js';

const model = () => compile(findProtocol('text-poke-bp')!, findScenario('static-call-retarget')!);

test('the layout: patcher pc, variables, CPU blocks, then the history', () => {
  const m = model();
  const st = new StateLayout(m);
  assert.equal(st.oCpu, 1 + m.vars.length);
  assert.equal(st.cpuWidth, 6 + 3 * m.maxDepth);
  assert.equal(st.oHist, st.oCpu + m.cpus.length * st.cpuWidth);
  const s = new Uint8Array(st.size(1));
  st.setCpu(s, 1, CPU.depth, 1);
  st.setFrame(s, st.frame(1, 0), K_BASE, 3, 0);
  st.push(s, 1, K_INT3, 0, 0);
  assert.equal(st.depth(s, 1), 2);
  assert.equal(st.kind(s, st.top(s, 1)), K_INT3);
  st.pop(s, 1);
  assert.equal(st.kind(s, st.top(s, 1)), K_BASE);
  assert.equal(st.pc(s, st.top(s, 1)), 3);
  st.setFrame(s, st.frame(0, 0), K_PROTO, 0, 0);
  st.initHistory(s, 7);
  const t = st.appendVersion(s, 9);
  assert.equal(st.histLen(t), 2);
  assert.equal(st.version(t, 0), 7);
  assert.equal(st.current(t), 9);
});

test('a value that does not fit its field is an error naming it', () => {
  const s = findScenario('static-call-retarget')!;
  const big = { ...s, cpus: [{ ...s.cpus[0]!, passes: 300 }, ...s.cpus.slice(1)] };
  assert.throws(
    () => explore(compile(findProtocol('text-poke-bp')!, big)),
    /cpu1's passes is 300, outside the 0\.\.255/,
  );
  const long = { ...s, old: [...s.old, ...new Array(300).fill(0x90)], new: [...s.new, ...new Array(300).fill(0x90)] };
  assert.throws(
    () => explore(compile(findProtocol('memcpy')!, long)),
    /the site length .* is 3\d\d, outside the 0\.\.255/,
  );
  const m = model();
  const st = new StateLayout(m);
  const full = new Uint8Array(st.size(255));
  full[st.oHist] = 255;
  assert.throws(() => st.appendVersion(full, 1), /memory history length .* is 256/);
  const deep = new Uint8Array(st.size(1));
  st.setCpu(deep, 1, CPU.depth, m.maxDepth);
  assert.throws(() => st.push(deep, 1, K_INT3, 0, 0), /more than \d+ frames/);
});
