/**
 * NOP tables the kernels' patchers write (data, copied from the kernels' headers).
 *
 * - Linux x86_64 (arch/x86/include/asm/nops.h, 6.1+): BYTES_NOP1..8, ASM_NOP_MAX 8; later kernels add NOP9..NOP11
 *   (`cs`, `osp cs`, `osp osp cs` before NOP8), ASM_NOP_MAX 11 (LinuxRules.nopMax says which).
 * - Xen (xen/arch/x86/include/asm/nops.h, 4.17): P6_NOP1..9 and K8_NOP1..9, ASM_NOP_MAX 9.
 */

export interface NopTable {
  readonly name: string;
  /** nops[n] is the n-byte NOP (index 0 unused). */
  readonly nops: readonly (readonly number[])[];
  readonly max: number;
}

export const LINUX_NOPS: NopTable = {
  name: 'linux',
  max: 8,
  nops: [
    [],
    [0x90],
    [0x66, 0x90],
    [0x0f, 0x1f, 0x00],
    [0x0f, 0x1f, 0x40, 0x00],
    [0x0f, 0x1f, 0x44, 0x00, 0x00],
    [0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00],
    [0x0f, 0x1f, 0x80, 0x00, 0x00, 0x00, 0x00],
    [0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00],
  ],
};

/** x86-64 x86_nops[] with BYTES_NOP9..11 (ASM_NOP_MAX 11). */
export const LINUX_NOPS_11: NopTable = {
  name: 'linux-11',
  max: 11,
  nops: [
    ...LINUX_NOPS.nops,
    [0x2e, ...LINUX_NOPS.nops[8]!],
    [0x66, 0x2e, ...LINUX_NOPS.nops[8]!],
    [0x66, 0x66, 0x2e, ...LINUX_NOPS.nops[8]!],
  ],
};

/** The Linux NOP table for an ASM_NOP_MAX. */
export function linuxNops(max: 8 | 11): NopTable {
  return max === 11 ? LINUX_NOPS_11 : LINUX_NOPS;
}

export const XEN_P6_NOPS: NopTable = {
  name: 'p6',
  max: 9,
  // The same P6 NOPs as Linux's up to 8 bytes, plus the 9-byte one.
  nops: [...LINUX_NOPS.nops, [0x66, 0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00]],
};

/* K8_NOP1 0x90; K8_NOP2 0x66,NOP1; K8_NOP3 0x66,NOP2; K8_NOP4 0x66,NOP3; K8_NOP5 NOP3,NOP2; K8_NOP6 NOP3,NOP3;
 * K8_NOP7 NOP4,NOP3; K8_NOP8 NOP4,NOP4; K8_NOP9 NOP3,NOP3,NOP3. */
const K1 = [0x90];
const K2 = [0x66, ...K1];
const K3 = [0x66, ...K2];
const K4 = [0x66, ...K3];
export const XEN_K8_NOPS: NopTable = {
  name: 'k8',
  max: 9,
  nops: [[], K1, K2, K3, K4, [...K3, ...K2], [...K3, ...K3], [...K4, ...K3], [...K4, ...K4], [...K3, ...K3, ...K3]],
};

/** add_nops(): fill buf[at, at+len) with the largest NOPs first, as both kernels do. */
export function addNops(t: NopTable, buf: Uint8Array, at: number, len: number): void {
  while (len > 0) {
    const n = Math.min(len, t.max);
    buf.set(t.nops[n]!, at);
    at += n;
    len -= n;
  }
}
