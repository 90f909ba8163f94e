import type { Hasher } from "../src/checksum/hasher";

/**
 * The gateway's CRC64NVME in JS before it moved to WebAssembly (src/checksum/wasm.ts), kept
 * only so /_bench/checksum can measure the two side by side in one run.
 *
 * Slicing-by-16 over 32-bit halves, 16 bytes per step read as four little-endian words
 * (DataView: no assumption about the host's byte order). Measured in workerd on the
 * development machine: ~560–670 MB/s, against ~310 MB/s for the AWS SDK's slicing-by-8
 * (@aws-sdk/crc64-nvme, which test/unit/checksum.test.ts uses as the oracle).
 */
const POLY_LO = 0xac4bc9b5;
const POLY_HI = 0x9a6c9329;
const SLICES = 16;

/** Table t, byte b: low half at 2·(256t + b), high half right after. Tt[b] = CRC of b followed by t zero bytes. */
const TABLE = (() => {
  const t = new Uint32Array(SLICES * 512);
  for (let b = 0; b < 256; b++) {
    let lo = b;
    let hi = 0;
    for (let k = 0; k < 8; k++) {
      const bit = lo & 1;
      lo = ((lo >>> 1) | ((hi & 1) << 31)) >>> 0;
      hi = hi >>> 1;
      if (bit) {
        lo = (lo ^ POLY_LO) >>> 0;
        hi = (hi ^ POLY_HI) >>> 0;
      }
    }
    t[2 * b] = lo;
    t[2 * b + 1] = hi;
  }
  for (let s = 1; s < SLICES; s++) {
    for (let b = 0; b < 256; b++) {
      const lo = t[(s - 1) * 512 + 2 * b]!;
      const hi = t[(s - 1) * 512 + 2 * b + 1]!;
      const j = 2 * (lo & 255);
      t[s * 512 + 2 * b] = (((lo >>> 8) | (hi << 24)) ^ t[j]!) >>> 0;
      t[s * 512 + 2 * b + 1] = ((hi >>> 8) ^ t[j + 1]!) >>> 0;
    }
  }
  return t;
})();

export class Crc64NvmeJs implements Hasher {
  private lo = 0xffffffff;
  private hi = 0xffffffff;

  update(data: Uint8Array): void {
    const T = TABLE;
    const len = data.byteLength;
    const view = new DataView(data.buffer, data.byteOffset, len);
    let lo = this.lo;
    let hi = this.hi;
    let i = 0;
    for (; i + 16 <= len; i += 16) {
      // The CRC folds into the first 8 bytes; all 16 then index one table each.
      const a = lo ^ view.getUint32(i, true);
      const b = hi ^ view.getUint32(i + 4, true);
      const c = view.getUint32(i + 8, true);
      const d = view.getUint32(i + 12, true);
      let x = 15 * 512 + 2 * (a & 255);
      let nlo = T[x]!;
      let nhi = T[x + 1]!;
      x = 14 * 512 + 2 * ((a >>> 8) & 255);
      nlo ^= T[x]!;
      nhi ^= T[x + 1]!;
      x = 13 * 512 + 2 * ((a >>> 16) & 255);
      nlo ^= T[x]!;
      nhi ^= T[x + 1]!;
      x = 12 * 512 + 2 * (a >>> 24);
      nlo ^= T[x]!;
      nhi ^= T[x + 1]!;
      x = 11 * 512 + 2 * (b & 255);
      nlo ^= T[x]!;
      nhi ^= T[x + 1]!;
      x = 10 * 512 + 2 * ((b >>> 8) & 255);
      nlo ^= T[x]!;
      nhi ^= T[x + 1]!;
      x = 9 * 512 + 2 * ((b >>> 16) & 255);
      nlo ^= T[x]!;
      nhi ^= T[x + 1]!;
      x = 8 * 512 + 2 * (b >>> 24);
      nlo ^= T[x]!;
      nhi ^= T[x + 1]!;
      x = 7 * 512 + 2 * (c & 255);
      nlo ^= T[x]!;
      nhi ^= T[x + 1]!;
      x = 6 * 512 + 2 * ((c >>> 8) & 255);
      nlo ^= T[x]!;
      nhi ^= T[x + 1]!;
      x = 5 * 512 + 2 * ((c >>> 16) & 255);
      nlo ^= T[x]!;
      nhi ^= T[x + 1]!;
      x = 4 * 512 + 2 * (c >>> 24);
      nlo ^= T[x]!;
      nhi ^= T[x + 1]!;
      x = 3 * 512 + 2 * (d & 255);
      nlo ^= T[x]!;
      nhi ^= T[x + 1]!;
      x = 2 * 512 + 2 * ((d >>> 8) & 255);
      nlo ^= T[x]!;
      nhi ^= T[x + 1]!;
      x = 512 + 2 * ((d >>> 16) & 255);
      nlo ^= T[x]!;
      nhi ^= T[x + 1]!;
      x = 2 * (d >>> 24);
      lo = (nlo ^ T[x]!) >>> 0;
      hi = (nhi ^ T[x + 1]!) >>> 0;
    }
    for (; i < len; i++) {
      const x = 2 * ((lo ^ data[i]!) & 255);
      lo = (((lo >>> 8) | (hi << 24)) ^ T[x]!) >>> 0;
      hi = ((hi >>> 8) ^ T[x + 1]!) >>> 0;
    }
    this.lo = lo;
    this.hi = hi;
  }

  async digest(): Promise<Uint8Array> {
    const out = new Uint8Array(8);
    const view = new DataView(out.buffer);
    view.setUint32(0, (this.hi ^ 0xffffffff) >>> 0);
    view.setUint32(4, (this.lo ^ 0xffffffff) >>> 0);
    return out;
  }
}
