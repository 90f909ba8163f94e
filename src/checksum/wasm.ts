import crcModule from "./crc.wasm";

/**
 * The CRC64NVME and CRC32C loops, in WebAssembly (crc.wat, built to crc.wasm).
 *
 * Why wasm: both CRCs are table-driven with no native implementation in workerd (node:zlib
 * has CRC32 only), and JS cannot do the 64-bit CRC well — it has no unboxed 64-bit
 * integers, so the best JS loop (slicing-by-16 over 32-bit halves, now
 * bench/crc64nvme-js.ts) does two lookups and twice the XORs per byte: 1.22 CPU s/GiB in
 * workerd. Wasm has native i64: the same slicing-by-16 is one load per byte, 0.59–0.63
 * CPU s/GiB including the copy below (docs/performance.md, "CRC64NVME"). Why hand-written:
 * no npm package does a fast CRC64NVME that runs in workerd — @aws-sdk/crc64-nvme is JS
 * slicing-by-8 (~300 MB/s), @aws-sdk/crc64-nvme-crt is a native Node addon, and hash-wasm
 * (CRC64 and CRC32 with any polynomial) compiles its wasm from bytes at run time, which
 * workerd refuses ("Wasm code generation disallowed by embedder", tried under
 * @cloudflare/vitest-plugin). Here the .wasm is imported as a module (wrangler's
 * CompiledWasm rule, also under the vitest plugin and `wrangler dev`), so it is compiled
 * ahead of the request and only instantiated here. Nothing Node-side imports src/checksum.
 *
 * Wasm code sees only its own memory, so each update copies the caller's bytes into the
 * module's input window (256 KiB, so up to a 1 MiB body piece takes four calls and the
 * copied bytes are still in cache when the CRC reads them); measured together, copy + CRC.
 * One instance per isolate serves every hasher: a call runs to completion before the next
 * begins, and each hasher keeps its own register between calls. A call costs ~0.1 µs
 * (the subarray, the BigInt register), so 256-byte updates run at about half speed and
 * updates under ~64 bytes would be faster in JS; body pieces are KiBs, so no JS path.
 */
interface CrcExports {
  readonly memory: WebAssembly.Memory;
  readonly input: WebAssembly.Global;
  readonly inputSize: WebAssembly.Global;
  crc64(crc: bigint, at: number, length: number): bigint;
  crc32c(crc: number, at: number, length: number): number;
}

interface Crc {
  readonly fns: CrcExports;
  /** The module's memory; it never grows, so this view stays valid. */
  readonly heap: Uint8Array;
  readonly input: number;
  readonly inputSize: number;
}

let crc: Crc | undefined;

function instance(): Crc {
  if (!crc) {
    const fns = new WebAssembly.Instance(crcModule, {}).exports as unknown as CrcExports;
    crc = { fns, heap: new Uint8Array(fns.memory.buffer), input: fns.input.value as number, inputSize: fns.inputSize.value as number };
  }
  return crc;
}

/** Runs `step` over `data` one input window at a time, threading the register through. */
function feed<R>(register: R, data: Uint8Array, step: (fns: CrcExports, register: R, at: number, length: number) => R): R {
  const { fns, heap, input, inputSize } = instance();
  for (let at = 0; at < data.byteLength; at += inputSize) {
    const piece = data.subarray(at, at + inputSize);
    heap.set(piece, input);
    register = step(fns, register, input, piece.byteLength);
  }
  return register;
}

/** CRC64NVME register (no init or xorout applied) after `data`, from register `register`. */
export function crc64Update(register: bigint, data: Uint8Array): bigint {
  return feed(register, data, (fns, r, at, length) => fns.crc64(r, at, length));
}

/** CRC32C register (no init or xorout applied) after `data`, from register `register`. */
export function crc32cUpdate(register: number, data: Uint8Array): number {
  return feed(register, data, (fns, r, at, length) => fns.crc32c(r, at, length));
}
