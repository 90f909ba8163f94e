import type { Hasher } from "./hasher";
import { crc64Update } from "./wasm";

/**
 * CRC64NVME (reflected, polynomial 0x9a6c9329ac4bc9b5, init and xorout all ones): S3's
 * default full-object checksum, and the one the gateway computes for every object written
 * without a checksum — so it runs over most PUT bodies and its speed is PUT CPU time. The
 * loop is WebAssembly (./wasm.ts says why); test/unit/checksum.test.ts checks it against
 * the AWS SDK's @aws-sdk/crc64-nvme.
 */
const ALL_ONES = 0xffffffffffffffffn;

export class Crc64Nvme implements Hasher {
  private register = ALL_ONES;

  update(data: Uint8Array): void {
    this.register = crc64Update(this.register, data);
  }

  async digest(): Promise<Uint8Array> {
    const out = new Uint8Array(8);
    // The register comes back from wasm as a signed i64; the mask makes it the unsigned value.
    new DataView(out.buffer).setBigUint64(0, (this.register ^ ALL_ONES) & ALL_ONES);
    return out;
  }
}
