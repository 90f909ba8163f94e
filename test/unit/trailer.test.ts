import { describe, expect, it } from "vitest";
import { IntegrityError } from "../../src/crypto/errors";
import { encodeHeader } from "../../src/crypto/format";
import { decodeTrailer, encodeTrailer, openTrailer, sealTrailer, TRAILER_PLAIN_SIZE, TRAILER_SIZE } from "../../src/crypto/trailer";

/** The trailer record (FORMAT.md §3a): one stored form per checksum, sealed to its stream. */
const key = () => crypto.subtle.importKey("raw", new Uint8Array(32).fill(7), { name: "AES-GCM" }, false, ["encrypt", "decrypt"]);
const header = (length: number) => encodeHeader({ partNumber: 0, length, salt: new Uint8Array(16).fill(1) });
const b64 = (bytes: number[]) => btoa(String.fromCharCode(...bytes));

describe("trailer record", () => {
  it("round-trips every algorithm at its digest size, in 36 + 16 bytes", async () => {
    const k = await key();
    for (const [algorithm, size] of [["CRC32", 4], ["CRC32C", 4], ["CRC64NVME", 8], ["SHA1", 20], ["SHA256", 32]] as const) {
      const checksum = { algorithm, value: b64(Array.from({ length: size }, (_, i) => i + 1)), type: "FULL_OBJECT" as const };
      const sealed = await sealTrailer(k, header(10), checksum);
      expect(sealed.byteLength).toBe(TRAILER_SIZE);
      expect(await openTrailer(k, header(10), sealed)).toEqual(checksum);
      const plain = encodeTrailer(checksum);
      expect(plain.byteLength).toBe(TRAILER_PLAIN_SIZE);
      expect(Array.from(plain.subarray(0, 4))).toEqual([{ CRC32: 1, CRC32C: 2, CRC64NVME: 3, SHA1: 4, SHA256: 5 }[algorithm], 1, size, 0]);
    }
  });

  it("is bound to its stream: another header (length) fails authentication", async () => {
    const k = await key();
    const sealed = await sealTrailer(k, header(10), { algorithm: "CRC32", value: b64([1, 2, 3, 4]), type: "FULL_OBJECT" });
    await expect(openTrailer(k, header(11), sealed)).rejects.toBeInstanceOf(IntegrityError);
    await expect(openTrailer(k, header(10), sealed.subarray(1))).rejects.toBeInstanceOf(IntegrityError);
  });

  it("refuses any other plaintext form: unknown algorithm or type, wrong length, reserved byte, padding", () => {
    const good = encodeTrailer({ algorithm: "CRC64NVME", value: b64([1, 2, 3, 4, 5, 6, 7, 8]), type: "FULL_OBJECT" });
    const edits: Array<(p: Uint8Array) => void> = [
      (p) => void (p[0] = 6),
      (p) => void (p[0] = 0),
      (p) => void (p[1] = 2),
      (p) => void (p[2] = 4),
      (p) => void (p[3] = 1),
      (p) => void (p[35] = 1),
      (p) => void (p[12] = 9),
    ];
    expect(decodeTrailer(good).algorithm).toBe("CRC64NVME");
    for (const edit of edits) {
      const bad = good.slice();
      edit(bad);
      expect(() => decodeTrailer(bad)).toThrow(IntegrityError);
    }
    expect(() => encodeTrailer({ algorithm: "CRC32", value: b64([1, 2, 3]), type: "FULL_OBJECT" })).toThrow();
    expect(() => encodeTrailer({ algorithm: "CRC32", value: `${b64([1, 2, 3, 4])}`, type: "COMPOSITE" })).toThrow();
  });
});
