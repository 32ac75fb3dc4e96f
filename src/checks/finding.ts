/**
 * Findings: plain data (they cross worker threads and go straight to the reporters). Addresses are
 * printed as real (absolute) hex addresses; `symbol`/`offset` locate them as objtool does.
 */
import type { View } from '../cfg/view.js';

export type Severity = 'error' | 'warning' | 'info';

export interface Related {
  readonly symbol: string;
  /** Real address as 0x-prefixed hex. */
  readonly address: string;
  readonly message: string;
}

export interface Finding {
  /** Check id, e.g. 'nospec-branch'. */
  readonly check: string;
  severity: Severity;
  /** Real address as 0x-prefixed hex. */
  readonly address: string;
  readonly symbol: string;
  readonly offset: number;
  readonly message: string;
  readonly related: Related[];
}

/** A finding at a relative address of the view's image. */
export function finding(
  view: View,
  check: string,
  severity: Severity,
  addr: number,
  message: string,
  related: Related[] = [],
): Finding {
  const s = view.img.symbolize(addr);
  return { check, severity, address: view.img.hex(addr), symbol: s.name, offset: s.offset, message, related };
}

export function related(view: View, addr: number, message: string): Related {
  return { symbol: view.img.where(addr), address: view.img.hex(addr), message };
}

/** `SYMBOL+0xOFF` of a finding. */
export function where(f: Finding): string {
  return `${f.symbol}+0x${f.offset.toString(16)}`;
}
