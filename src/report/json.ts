/**
 * JSON report: {"files":[{"path", "target", "view", "findings":[{"check","severity","address","symbol",
 * "offset","message","related":[{"symbol","address","message"}]}], "errors"}]}. Keys are stable; new ones
 * may be added.
 */
import type { Finding } from '../checks/finding.js';
import { severityOf } from './text.js';

export interface FileReport {
  readonly path: string;
  readonly target?: {
    os: string;
    version: string | null;
    profile: string | null;
    warnings?: string[];
    /** How the file was read (a stripped vmlinux: what was inferred, what was left out). */
    notes?: string[];
  };
  /** What bytes were checked ("bytes as built", "patched for ..."). */
  readonly view?: string;
  readonly findings: Finding[];
  readonly errors: string[];
}

export function fileJson(r: FileReport, werror = false): object {
  return {
    path: r.path,
    ...(r.target ? { target: r.target } : {}),
    ...(r.view ? { view: r.view } : {}),
    findings: r.findings.map((f) => ({ ...f, severity: severityOf(f, werror) })),
    errors: r.errors,
  };
}

export function renderJson(files: readonly FileReport[], werror = false): string {
  return JSON.stringify({ files: files.map((f) => fileJson(f, werror)) }, null, 1) + '\n';
}
