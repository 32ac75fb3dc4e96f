// Plumbing the two QEMU ground truths share (scripts/qemu-groundtruth.mjs for Linux,
// scripts/qemu-xen-groundtruth.mjs for Xen): their usage error, tool and input checks, atomic writes.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** A missing tool or input, or bad arguments: the scripts print its message and exit 2. */
export class UsageError extends Error {}

/** `path` when it exists; otherwise a UsageError naming `what`. */
export function need(path, what) {
  if (!existsSync(path)) throw new UsageError(`${what} missing: ${path}`);
  return path;
}

/** The full path of a command on PATH, or null. */
export function which(cmd) {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

/** Writes `data` to `path` through a temporary file and a rename (a reader never sees half a file). */
export function writeAtomic(path, data) {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}
