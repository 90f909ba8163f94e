import { bigEndian32 } from "../src/checksum/crc32";
import type { Hasher } from "../src/checksum/hasher";

/**
 * The gateway's CRC32C in JS before it moved to WebAssembly (src/checksum/wasm.ts), kept
 * only so /_bench/checksum can measure the two side by side in one run.
 *
 * CRC32C (Castagnoli), slicing-by-8. @aws-crypto/crc32c computes the same value but walks
 * the input one byte at a time through an iterator (~60 MB/s in workerd), which would make
 * CRC32C uploads CPU-bound; eight tables let the loop consume 8 bytes per iteration. The
 * package stays as the independent oracle in test/unit/checksum.test.ts.
 */
const POLY = 0x82f63b78;
const TABLES: Uint32Array[] = (() => {
  const t0 = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    t0[i] = c >>> 0;
  }
  const tables = [t0];
  for (let s = 1; s < 8; s++) {
    const prev = tables[s - 1]!;
    const t = new Uint32Array(256);
    for (let i = 0; i < 256; i++) t[i] = (prev[i]! >>> 8) ^ t0[prev[i]! & 0xff]!;
    tables.push(t);
  }
  return tables;
})();
const [T0, T1, T2, T3, T4, T5, T6, T7] = TABLES as [Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array];

export class Crc32cJs implements Hasher {
  private crc = 0xffffffff;

  update(data: Uint8Array): void {
    let crc = this.crc;
    let i = 0;
    const end8 = data.length - 8;
    while (i <= end8) {
      const a = crc ^ (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24));
      crc =
        T7[a & 0xff]! ^
        T6[(a >>> 8) & 0xff]! ^
        T5[(a >>> 16) & 0xff]! ^
        T4[a >>> 24]! ^
        T3[data[i + 4]!]! ^
        T2[data[i + 5]!]! ^
        T1[data[i + 6]!]! ^
        T0[data[i + 7]!]!;
      i += 8;
    }
    for (; i < data.length; i++) crc = T0[(crc ^ data[i]!) & 0xff]! ^ (crc >>> 8);
    this.crc = crc;
  }

  async digest(): Promise<Uint8Array> {
    return bigEndian32(~this.crc);
  }
}
