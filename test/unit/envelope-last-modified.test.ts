import { describe, expect, it } from "vitest";
import { decodeEnvelope, encodeEnvelope, signEnvelope, verifyEnvelope, type UnsignedEnvelope } from "../../src/crypto/envelope";
import { IntegrityError } from "../../src/crypto/errors";

/**
 * The optional `lm` envelope field (original upload time, set by the master-secret rewrap
 * job): bound by the MAC when present, absent from the MAC input otherwise, so envelopes
 * written before the field existed verify unchanged.
 */
async function macKey(): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", new Uint8Array(32).fill(7), { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
}

const base: UnsignedEnvelope = {
  version: 1,
  mode: "aws:kms",
  keyArn: "arn:aws:kms:us-east-1:000000000000000000000000000000aa:key/11111111-2222-3333-4444-555555555555",
  keyVersion: 1,
  masterVersion: 2,
  wrappedKey: new Uint8Array(40).fill(1),
  length: 5,
  layout: { kind: "single", salt: new Uint8Array(16).fill(2) },
  bucketKeyEnabled: false,
  sealed: new Uint8Array(30).fill(3),
  http: { contentType: "text/plain" },
};
const ctx = { bucket: "b", key: "k", userMetadata: { owner: "alice" } };

describe("envelope lm (original LastModified)", () => {
  it("round-trips and is bound by the MAC", async () => {
    const key = await macKey();
    const signed = await signEnvelope(key, { ...base, lastModified: 1_700_000_000_123 }, ctx);
    const decoded = decodeEnvelope(encodeEnvelope(signed));
    expect(decoded.lastModified).toBe(1_700_000_000_123);
    await verifyEnvelope(key, decoded, ctx);
    await expect(verifyEnvelope(key, { ...decoded, lastModified: 1_700_000_000_124 }, ctx)).rejects.toBeInstanceOf(IntegrityError);
    const { lastModified: _drop, ...without } = decoded;
    await expect(verifyEnvelope(key, without, ctx)).rejects.toBeInstanceOf(IntegrityError);
  });

  it("envelopes without it encode, decode and verify as before", async () => {
    const key = await macKey();
    const signed = await signEnvelope(key, base, ctx);
    const text = encodeEnvelope(signed);
    expect(JSON.parse(text)).not.toHaveProperty("lm");
    const decoded = decodeEnvelope(text);
    expect(decoded).not.toHaveProperty("lastModified");
    await verifyEnvelope(key, decoded, ctx);
    // A MAC over the old input does not verify once an lm is added.
    await expect(verifyEnvelope(key, { ...decoded, lastModified: 0 }, ctx)).rejects.toBeInstanceOf(IntegrityError);
  });

  it("refuses a malformed lm", () => {
    const stored = JSON.parse(encodeEnvelope({ ...base, mac: new Uint8Array(32) })) as Record<string, unknown>;
    for (const lm of [-1, 1.5, "1700000000000", null]) {
      expect(() => decodeEnvelope(JSON.stringify({ ...stored, lm }))).toThrow(IntegrityError);
    }
  });
});
