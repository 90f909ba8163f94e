/**
 * objects/verified-memo.ts: a remembered verification answers only for exactly the stored
 * inputs it was made for (the tamper campaign checks the same end to end, warm).
 */
import { describe, expect, it } from "vitest";
import { memoFacts, memoTrailer, metadataIdentity, rememberVerified, verifiedBefore } from "../../src/objects/verified-memo";

const aesKey = () => crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]) as Promise<CryptoKey>;

describe("verified memo", () => {
  it("answers only for the same data key object and the same identity", async () => {
    const dataKey = await aesKey();
    const other = await aesKey();
    const identity = metadataIdentity("b", "k", { "sse-envelope": "{}", "x-amz-meta-a": "1" });
    expect(verifiedBefore(dataKey, identity)).toBeUndefined();
    const memo = rememberVerified(dataKey, identity);
    expect(verifiedBefore(dataKey, identity)).toBe(memo);
    expect(verifiedBefore(other, identity)).toBeUndefined();
    for (const changed of [
      metadataIdentity("b2", "k", { "sse-envelope": "{}", "x-amz-meta-a": "1" }),
      metadataIdentity("b", "k2", { "sse-envelope": "{}", "x-amz-meta-a": "1" }),
      metadataIdentity("b", "k", { "sse-envelope": "{ }", "x-amz-meta-a": "1" }),
      metadataIdentity("b", "k", { "sse-envelope": "{}", "x-amz-meta-a": "2" }),
      metadataIdentity("b", "k", { "sse-envelope": "{}" }),
      // Characters moved between the key and the metadata make another identity.
      metadataIdentity("b", 'k","x', { "sse-envelope": "{}", "x-amz-meta-a": "1" }),
    ]) {
      expect(changed).not.toBe(identity);
      expect(verifiedBefore(dataKey, changed)).toBeUndefined();
    }
    // A new verification of another identity replaces the memo.
    const second = metadataIdentity("b", "k", {});
    rememberVerified(dataKey, second);
    expect(verifiedBefore(dataKey, identity)).toBeUndefined();
  });

  it("reuses facts only under the same seal key object, and never remembers a failure", async () => {
    const memo = rememberVerified(await aesKey(), "id");
    const sealKey = await aesKey();
    let opened = 0;
    const open = async () => (opened++, { etag: "e" });
    expect(await memoFacts(memo, sealKey, open)).toEqual({ etag: "e" });
    expect(await memoFacts(memo, sealKey, open)).toEqual({ etag: "e" });
    expect(opened).toBe(1);
    await memoFacts(memo, await aesKey(), open);
    expect(opened).toBe(2);
    const failing = rememberVerified(await aesKey(), "id2");
    await expect(memoFacts(failing, sealKey, async () => Promise.reject(new Error("bad")))).rejects.toThrow("bad");
    expect(failing.facts).toBeUndefined();
    // Remembered facts cannot be changed by a caller.
    expect(Object.isFrozen(await memoFacts(memo, await aesKey(), open))).toBe(true);
  });

  it("reuses a trailer checksum only for the same stored record bytes", async () => {
    const memo = rememberVerified(await aesKey(), "id");
    const record = new Uint8Array(52).fill(7);
    let opened = 0;
    const open = async () => (opened++, { algorithm: "CRC32" as const, value: "AAAAAA==", type: "FULL_OBJECT" as const });
    await memoTrailer(memo, record, open);
    await memoTrailer(memo, record.slice(), open);
    expect(opened).toBe(1);
    const changed = record.slice();
    changed[51]! ^= 1;
    await memoTrailer(memo, changed, open);
    expect(opened).toBe(2);
    // Without a memo (SSE-C) it always opens.
    await memoTrailer(undefined, record, open);
    expect(opened).toBe(3);
  });
});
