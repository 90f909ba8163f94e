/**
 * The sealed part checksums of a multipart manifest (docs/multipart.md, "Manifest", field
 * `c`; FORMAT.md §2, PCKEY): the worker's seal is opened here by a reader written from
 * those two documents alone (raw WebCrypto, no src/ import on the reading side), and the
 * worker's opener refuses what it must.
 */
import { describe, expect, it } from "vitest";
import { IntegrityError } from "../../src/crypto/errors";
import { openPartChecksums, sealPartChecksums } from "../../src/objects/part-checksums";

const utf8 = (s: string) => new TextEncoder().encode(s);

/** The data key as the format holds it: 32 bytes, an HKDF input key. */
async function dataKeyFrom(raw: Uint8Array): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", raw, "HKDF", false, ["deriveKey", "deriveBits"]);
}

/** PCKEY = HKDF(ikm = DK, salt = "", info("s3-sse-gw/v1/part-checksums"), 32), info = label ‖ 0x00. */
async function readerOpen(raw: Uint8Array, uploadId: string, sealed: Uint8Array): Promise<unknown> {
  const ikm = await crypto.subtle.importKey("raw", raw, "HKDF", false, ["deriveKey"]);
  const info = new Uint8Array([...utf8("s3-sse-gw/v1/part-checksums"), 0]);
  const key = await crypto.subtle.deriveKey({ name: "HKDF", hash: "SHA-256", salt: new Uint8Array(0), info }, ikm, { name: "AES-GCM", length: 256 }, false, ["decrypt"]);
  const aad = new Uint8Array([...utf8("s3-sse-gw/v1/part-checksums"), 0, ...utf8(uploadId)]);
  const plain = await crypto.subtle.decrypt({ name: "AES-GCM", iv: sealed.subarray(0, 12), additionalData: aad }, key, sealed.subarray(12));
  return JSON.parse(new TextDecoder().decode(plain));
}

const raw = crypto.getRandomValues(new Uint8Array(32));
const sums = { algorithm: "CRC32" as const, values: ["AAAAAA==", "/////w==", "EjRWeA=="] };

describe("sealed part checksums", () => {
  it("a reader written from the documents opens the worker's seal: {a, v} in manifest order", async () => {
    const sealed = await sealPartChecksums(await dataKeyFrom(raw), "upload-1", sums);
    expect(await readerOpen(raw, "upload-1", sealed)).toEqual({ a: "CRC32", v: sums.values });
    expect(await openPartChecksums(await dataKeyFrom(raw), "upload-1", sealed, 3)).toEqual(sums);
  });

  it("another upload id, another data key, an edited byte or another part count is refused", async () => {
    const sealed = await sealPartChecksums(await dataKeyFrom(raw), "upload-1", sums);
    await expect(openPartChecksums(await dataKeyFrom(raw), "upload-2", sealed, 3)).rejects.toBeInstanceOf(IntegrityError);
    await expect(openPartChecksums(await dataKeyFrom(crypto.getRandomValues(new Uint8Array(32))), "upload-1", sealed, 3)).rejects.toBeInstanceOf(IntegrityError);
    const edited = sealed.slice();
    edited[20]! ^= 1;
    await expect(openPartChecksums(await dataKeyFrom(raw), "upload-1", edited, 3)).rejects.toBeInstanceOf(IntegrityError);
    await expect(openPartChecksums(await dataKeyFrom(raw), "upload-1", sealed, 2)).rejects.toBeInstanceOf(IntegrityError);
  });

  it("a value of the wrong length for its algorithm is refused", async () => {
    const sealed = await sealPartChecksums(await dataKeyFrom(raw), "upload-1", { algorithm: "CRC32", values: ["AAAAAAAAAAA="] });
    await expect(openPartChecksums(await dataKeyFrom(raw), "upload-1", sealed, 1)).rejects.toBeInstanceOf(IntegrityError);
  });
});
