// The project's tsconfig has no @types/node (the worker's types are workers-types, and
// the Node globals would clash with them). Declare the one node:zlib export we use, which
// workerd provides under nodejs_compat.
declare module "node:zlib" {
  /** CRC32 (zlib polynomial) of `data`, continuing from a previous result `value`. */
  export function crc32(data: string | ArrayBufferView, value?: number): number;
}
