/**
 * Findings as objtool prints its warnings, so editors and grep pipelines that know objtool work unchanged:
 * `PATH: warning: textpoke: SYMBOL+0xOFF: MESSAGE [check-id]`, related locations indented below.
 */
import type { Finding } from '../checks/finding.js';

export interface TextOptions {
  /** Print related locations (default true). */
  readonly related?: boolean;
  /** Severity shown for warnings when --werror is given. */
  readonly werror?: boolean;
}

export function severityOf(f: Finding, werror = false): Finding['severity'] {
  return werror && f.severity === 'warning' ? 'error' : f.severity;
}

export function renderFinding(path: string, f: Finding, o: TextOptions = {}): string {
  let s = `${path}: ${severityOf(f, o.werror)}: textpoke: ${f.symbol}+0x${f.offset.toString(16)}: ${f.message} [${f.check}]\n`;
  if (o.related !== false) for (const r of f.related) s += `${path}:   ${r.symbol} (${r.address}): ${r.message}\n`;
  return s;
}

export function renderFile(path: string, findings: readonly Finding[], o: TextOptions = {}): string {
  let s = '';
  for (const f of findings) s += renderFinding(path, f, o);
  return s;
}

/** Counts per check at the end of a run. */
export function renderCounts(
  counts: ReadonlyMap<string, number>,
  checks: readonly string[],
  files: number,
  failed: number,
): string {
  const total = [...counts.values()].reduce((a, b) => a + b, 0);
  let s = `\n${files} file${files === 1 ? '' : 's'} checked${failed ? ` (${failed} unreadable)` : ''}, ${total} finding${total === 1 ? '' : 's'}\n`;
  for (const id of checks) s += `  ${id.padEnd(22)} ${counts.get(id) ?? 0}\n`;
  return s;
}
