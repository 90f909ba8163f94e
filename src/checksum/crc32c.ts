import { bigEndian32 } from "./crc32";
import type { Hasher } from "./hasher";
import { crc32cUpdate } from "./wasm";

/**
 * CRC32C (Castagnoli, reflected polynomial 0x82f63b78, init and xorout all ones). The loop
 * is WebAssembly slicing-by-16 (./wasm.ts says why). @aws-crypto/crc32c computes the same
 * value one byte at a time (~60 MB/s in workerd) and stays as the independent oracle in
 * test/unit/checksum.test.ts.
 */
export class Crc32c implements Hasher {
  private register = 0xffffffff;

  update(data: Uint8Array): void {
    this.register = crc32cUpdate(this.register, data);
  }

  async digest(): Promise<Uint8Array> {
    return bigEndian32(~this.register);
  }
}
