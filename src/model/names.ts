/** How CPUs are called in messages and traces: CPU 0 is the patching CPU. */
export function cpuName(c: number): string {
  return c === 0 ? 'patcher' : `cpu${c}`;
}
