import { Crc32c as AwsCrc32c } from "@aws-crypto/crc32c";
import { Crc64Nvme as AwsCrc64Nvme } from "@aws-sdk/crc64-nvme";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  CHECKSUMS,
  CHECKSUM_ALGORITHMS,
  checksumBase64,
  checksumForHeader,
  createMd5,
  parseChecksumAlgorithm,
  type ChecksumAlgorithm,
  type Hasher,
} from "../../src/checksum";
import { fromBase64, toBase64, toHex, utf8 } from "../../src/util/bytes";

const CHECK = utf8("123456789");

// Standard "check" values of each algorithm over "123456789".
const VECTORS: Record<ChecksumAlgorithm | "MD5", string> = {
  CRC32: "cbf43926",
  CRC32C: "e3069283",
  CRC64NVME: "ae8b14860a799888",
  SHA1: "f7c3bc1d808e04732adf679965ccc34ca7ae3441",
  SHA256: "15e2b0d3c33891ebb0f1ef609ec419420c20e320ce94c65fbc8c3312448eb225",
  MD5: "25f9e794323b453885f5181f1b624d0b",
};

const make = (alg: ChecksumAlgorithm | "MD5"): Hasher => (alg === "MD5" ? createMd5() : CHECKSUMS[alg].create());

function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(out.subarray(i, i + 65536));
  return out;
}

describe("checksums", () => {
  for (const alg of [...CHECKSUM_ALGORITHMS, "MD5"] as const) {
    it(`${alg} matches the check value of "123456789"`, async () => {
      const h = make(alg);
      h.update(CHECK);
      expect(toHex(await h.digest())).toBe(VECTORS[alg]);
    });

    it(`${alg} of nothing has the right length and incremental equals one-shot`, async () => {
      const empty = await make(alg).digest();
      expect(empty.byteLength).toBe(alg === "MD5" ? 16 : CHECKSUMS[alg].digestLength);
      await fc.assert(
        fc.asyncProperty(fc.uint8Array({ maxLength: 3000 }), fc.array(fc.nat(3000), { maxLength: 8 }), async (data, cuts) => {
          const whole = make(alg);
          whole.update(data);
          const pieces = make(alg);
          let at = 0;
          for (const cut of [...cuts].sort((a, b) => a - b)) {
            const to = Math.min(cut, data.length);
            if (to < at) continue;
            pieces.update(data.subarray(at, to));
            at = to;
          }
          pieces.update(data.subarray(at));
          expect(toHex(await pieces.digest())).toBe(toHex(await whole.digest()));
        }),
        { numRuns: 40 },
      );
    });
  }

  it("CRC32C agrees with @aws-crypto/crc32c on random data of every alignment", async () => {
    for (const n of [0, 1, 7, 8, 9, 15, 16, 17, 1000, 65537]) {
      const data = randomBytes(n);
      const h = CHECKSUMS.CRC32C.create();
      h.update(data.subarray(0, n >> 1));
      h.update(data.subarray(n >> 1));
      const oracle = new AwsCrc32c().update(data).digest();
      expect(toHex(await h.digest())).toBe(oracle.toString(16).padStart(8, "0"));
    }
  });

  it("CRC64NVME agrees with the AWS SDK's @aws-sdk/crc64-nvme on random data of every length and alignment, in pieces", async () => {
    const data = randomBytes(70_000);
    for (const n of [0, 1, 7, 8, 15, 16, 17, 31, 32, 33, 1000, 65537]) {
      for (const offset of [0, 1, 2, 3, 5]) {
        const slice = data.subarray(offset, offset + n);
        const h = CHECKSUMS.CRC64NVME.create();
        h.update(slice.subarray(0, n >> 1));
        h.update(slice.subarray(n >> 1));
        const oracle = new AwsCrc64Nvme();
        oracle.update(slice);
        expect(toHex(await h.digest()), `n=${n} offset=${offset}`).toBe(toHex(await oracle.digest()));
      }
    }
  });

  // CRC64NVME and CRC32C run in WebAssembly (src/checksum/wasm.ts): each update is copied into
  // a 256 KiB input window of the module's memory and hashed in window-sized calls, and one
  // instance serves every hasher. These cases aim at those seams.
  const oracles = {
    CRC64NVME: async (data: Uint8Array) => {
      const o = new AwsCrc64Nvme();
      o.update(data);
      return toHex(await o.digest());
    },
    CRC32C: async (data: Uint8Array) => new AwsCrc32c().update(data).digest().toString(16).padStart(8, "0"),
  };
  const WINDOW = 256 * 1024;

  for (const alg of ["CRC64NVME", "CRC32C"] as const) {
    it(`${alg}: pieces larger than the wasm input window, at window ± 1 and odd offsets, agree with the SDK's`, async () => {
      const data = randomBytes(3 * WINDOW + 1000);
      for (const [offset, n] of [
        [0, WINDOW - 1],
        [0, WINDOW],
        [1, WINDOW + 1],
        [3, 2 * WINDOW + 17],
        [5, 3 * WINDOW + 995],
      ] as const) {
        const slice = data.subarray(offset, offset + n);
        const h = CHECKSUMS[alg].create();
        h.update(slice);
        expect(toHex(await h.digest()), `offset=${offset} n=${n}`).toBe(await oracles[alg](slice));
      }
      // 1 MiB + 1 in one update, as the largest body piece plus a byte.
      const big = randomBytes(1024 * 1024 + 1);
      const h = CHECKSUMS[alg].create();
      h.update(big);
      expect(toHex(await h.digest())).toBe(await oracles[alg](big));
    });

    it(`${alg}: thousands of small updates (0–33 bytes, empty ones included) equal one update`, async () => {
      const data = randomBytes(50_000);
      const h = CHECKSUMS[alg].create();
      let at = 0;
      for (let i = 0; at < data.length; i++) {
        const n = (i * 7) % 34;
        h.update(data.subarray(at, at + n));
        at += n;
      }
      expect(toHex(await h.digest())).toBe(await oracles[alg](data));
    });

    it(`${alg}: empty input and empty updates give the SDK's value of nothing`, async () => {
      const none = CHECKSUMS[alg].create();
      expect(toHex(await none.digest())).toBe(await oracles[alg](new Uint8Array(0)));
      const empties = CHECKSUMS[alg].create();
      empties.update(new Uint8Array(0));
      empties.update(CHECK.subarray(9));
      expect(toHex(await empties.digest())).toBe(await oracles[alg](new Uint8Array(0)));
      // A non-empty update between empty ones still counts exactly once.
      const around = CHECKSUMS[alg].create();
      around.update(new Uint8Array(0));
      around.update(CHECK);
      around.update(new Uint8Array(0));
      expect(toHex(await around.digest())).toBe(VECTORS[alg].toLowerCase());
    });

    it(`${alg}: hashers interleaved on the one wasm instance keep their own state`, async () => {
      const a = randomBytes(WINDOW + 3000);
      const b = randomBytes(WINDOW + 5000);
      const ha = CHECKSUMS[alg].create();
      const hb = CHECKSUMS[alg].create();
      for (let at = 0; at < Math.max(a.length, b.length); at += 40_000) {
        ha.update(a.subarray(at, at + 40_000));
        hb.update(b.subarray(at, at + 40_000));
      }
      expect(toHex(await ha.digest())).toBe(await oracles[alg](a));
      expect(toHex(await hb.digest())).toBe(await oracles[alg](b));
    });

    it(`${alg} consumes bytes inside update (the caller may detach or overwrite them right after)`, async () => {
      const data = randomBytes(70_000);
      const expected = await oracles[alg](data);
      const copy = data.slice();
      const h = CHECKSUMS[alg].create();
      h.update(copy);
      structuredClone(copy.buffer, { transfer: [copy.buffer] });
      expect(copy.byteLength).toBe(0);
      expect(toHex(await h.digest())).toBe(expected);
    });
  }

  it("DigestStream-backed hashers consume bytes inside update (the caller may detach them right after)", async () => {
    const data = randomBytes(65536);
    const expected = toHex(await crypto.subtle.digest("SHA-256", data));
    const copy = data.slice();
    const h = CHECKSUMS.SHA256.create();
    h.update(copy);
    // Detach the buffer: a hasher that kept a reference for later would now see 0 bytes.
    const moved = structuredClone(copy.buffer, { transfer: [copy.buffer] });
    expect(copy.byteLength).toBe(0);
    new Uint8Array(moved).fill(0);
    expect(toHex(await h.digest())).toBe(expected);
  });

  it("maps header names and algorithm values", () => {
    expect(checksumForHeader("X-Amz-Checksum-CRC64NVME")?.algorithm).toBe("CRC64NVME");
    expect(checksumForHeader("x-amz-checksum-sha1")?.headerName).toBe("x-amz-checksum-sha1");
    expect(checksumForHeader("x-amz-checksum-algorithm")).toBeUndefined();
    expect(checksumForHeader("x-amz-checksum-type")).toBeUndefined();
    expect(checksumForHeader("content-md5")).toBeUndefined();
    expect(parseChecksumAlgorithm("crc32c")).toBe("CRC32C");
    expect(parseChecksumAlgorithm("md5")).toBeUndefined();
  });

  it("one-shot base64 equals the S3 header form", async () => {
    expect(await checksumBase64("CRC32", CHECK)).toBe(toBase64(new Uint8Array([0xcb, 0xf4, 0x39, 0x26])));
    expect(fromBase64(await checksumBase64("SHA256", CHECK))?.byteLength).toBe(32);
  });
});
