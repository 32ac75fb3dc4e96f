/**
 * Thousands of mutants of real modules (fixed seed): no uncaught exception, no hang, bounded memory.
 * The pipeline runs in a worker thread with a heap limit and a wall-clock guard, so a hang or a runaway
 * allocation fails the test instead of stalling it.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { corpus } from '../support/corpus.js';
import { assemble } from '../support/build.js';

const MODULES = [
  'fs/nls/nls_cp437.ko', 'net/ipv4/tcp_bic.ko', 'drivers/input/misc/pcspkr.ko', 'crypto/crc32_generic.ko',
  'lib/crc-itu-t.ko', 'drivers/char/hw_random/virtio-rng.ko', 'fs/fat/vfat.ko', 'net/sched/sch_prio.ko',
];

test('4,000 mutants of real modules: only one-line textpoke errors, no hang, heap bounded', async () => {
  const files = [...MODULES.map((m) => corpus.module61(m)), assemble('sites/tables61.S')];
  const worker = new Worker(new URL('../support/mutant-worker.js', import.meta.url), {
    workerData: { files, mutants: 4000, seed: 0x7e47 },
    resourceLimits: { maxOldGenerationSizeMb: 768 },
  });
  const result = await new Promise<{ ok: number; rejected: number; crashes: string[]; crashCount: number; peak: number }>((resolve, reject) => {
    const guard = setTimeout(() => { void worker.terminate(); reject(new Error('mutant run did not finish in 240 s: a hang')); }, 240_000);
    worker.once('message', (m) => { clearTimeout(guard); resolve(m); });
    worker.once('error', (e) => { clearTimeout(guard); reject(e); });
  });
  await worker.terminate();
  console.log(`mutants: ${result.ok} parsed, ${result.rejected} rejected with a one-line error`);
  assert.equal(result.crashCount, 0, result.crashes.join('\n\n'));
  assert.equal(result.ok + result.rejected, 4000);
  assert.ok(result.rejected > 400, `mutations must actually break files (${result.rejected} rejected)`);
  assert.ok(result.ok > 400, `and some mutants must still parse (${result.ok} parsed)`);
});
