// Typings for the decompressors that ship none (see decompress.ts).
declare module 'lz4js' {
  export function decompressBlock(
    src: Uint8Array,
    dst: Uint8Array,
    sIndex: number,
    sLength: number,
    dIndex: number,
  ): number;
}
