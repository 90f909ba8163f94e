import { describe, expect, it } from "vitest";
import { deriveApiKey } from "../../src/crypto/keys";
import { encodeContext, encodeHeader, openBlob, parseHeader, sealBlob } from "../../src/kms-api/ciphertext";
import { bytesToHex, cat, hexToBytes, te, u32 } from "../support/reader-bytes";

/**
 * The KMS API's ciphertext blob (FORMAT.md, "KMS ciphertext blobs"): the worker's code must
 * produce the documented vector byte for byte, and a reader written from FORMAT.md alone
 * (below, raw WebCrypto, nothing from src/) must open it.
 */
const hex = bytesToHex;
const fromHex = hexToBytes;
const range = (start: number, n: number) => Uint8Array.from({ length: n }, (_, i) => start + i);

const VECTOR = {
  master: range(0x00, 32), // M_1
  material: range(0x20, 32), // S of key version 1
  keyId: "11111111-2222-4333-8444-555555555555",
  arn: "arn:aws:kms:us-east-1:000000000000000000000000000000aa:key/11111111-2222-4333-8444-555555555555",
  keyVersion: 1,
  masterVersion: 1,
  nonce: range(0x40, 12),
  context: { purpose: "vector", bucket: "b" },
  plaintext: "hello",
  blobHex:
    "53474b0111111111222243338444555555555555000000010000000140414243444546474849" +
    "4a4b" +
    "9cc8b6284fda8ceeac63c753d5de2869e1f9dbaec1",
};

describe("KMS ciphertext blob vector", () => {
  it("the worker produces the documented bytes", async () => {
    const key = await deriveApiKey(VECTOR.master, VECTOR.material, VECTOR.arn, VECTOR.keyVersion, VECTOR.masterVersion);
    const header = encodeHeader(VECTOR.keyId, VECTOR.keyVersion, VECTOR.masterVersion);
    const blob = await sealBlob(key, header, VECTOR.context, te.encode(VECTOR.plaintext), VECTOR.nonce);
    expect(hex(blob)).toBe(VECTOR.blobHex);
    expect(parseHeader(blob)).toMatchObject({ keyId: VECTOR.keyId, keyVersion: 1, masterVersion: 1 });
    expect(new TextDecoder().decode((await openBlob(key, blob, { bucket: "b", purpose: "vector" }))!)).toBe("hello");
    expect(await openBlob(key, blob, { purpose: "vector" })).toBeNull();
    // Context encoding: pair count, then pairs sorted by the key's UTF-8 bytes.
    expect(hex(encodeContext({ purpose: "vector", bucket: "b" }))).toBe("00000002" + "00000006" + hex(te.encode("bucket")) + "00000001" + "62" + "00000007" + hex(te.encode("purpose")) + "00000006" + hex(te.encode("vector")));
  });

  it("a reader written from FORMAT.md opens it", async () => {
    const blob = fromHex(VECTOR.blobHex);
    const header = blob.subarray(0, 28);
    expect(hex(header.subarray(0, 4))).toBe("53474b01");
    const keyId = hex(header.subarray(4, 20));
    expect(keyId).toBe(VECTOR.keyId.replace(/-/g, ""));
    const view = new DataView(header.buffer, header.byteOffset, 28);
    const [kv, mv] = [view.getUint32(20), view.getUint32(24)];
    const info = cat(te.encode("s3-sse-gw/v1/kms-api"), new Uint8Array([0]), te.encode(VECTOR.arn), new Uint8Array([0]), u32(kv), u32(mv));
    const base = await crypto.subtle.importKey("raw", VECTOR.master, "HKDF", false, ["deriveKey"]);
    const key = await crypto.subtle.deriveKey({ name: "HKDF", hash: "SHA-256", salt: VECTOR.material, info }, base, { name: "AES-GCM", length: 256 }, false, ["decrypt"]);
    const pairs = [["bucket", "b"], ["purpose", "vector"]].flatMap(([k, v]) => [u32(te.encode(k!).length), te.encode(k!), u32(te.encode(v!).length), te.encode(v!)]);
    const aad = cat(header, u32(2), ...pairs);
    const plaintext = await crypto.subtle.decrypt({ name: "AES-GCM", iv: blob.subarray(28, 40), additionalData: aad }, key, blob.subarray(40));
    expect(new TextDecoder().decode(plaintext)).toBe("hello");
  });
});
