/** The shape of a check: one file each under checks/, one line each in checks/index.ts. */
import type { View } from '../cfg/view.js';
import type { Finding, Severity } from './finding.js';

export interface Check {
  readonly id: string;
  /** One line for --help and SARIF rule descriptions. */
  readonly describe: string;
  /** Severity of its findings unless a finding says otherwise. */
  readonly severity: Severity;
  /** Runs by default (without --checks). */
  readonly byDefault: boolean;
  run(view: View): Finding[];
}
