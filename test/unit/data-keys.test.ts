import { describe, expect, it } from "vitest";
import { deriveMacKey, deriveStreamKey, importHkdf, randomBytes, unwrapDataKey, wrapDataKey } from "../../src/crypto/keys";
import { unwrapCheckedDataKey } from "../../src/kms/data-keys";

/** kms/data-keys.ts and the derived-key memo in crypto/keys.ts: caching must never change an answer. */
const kekOf = (fill: number) => crypto.subtle.importKey("raw", new Uint8Array(32).fill(fill), "AES-KW", false, ["wrapKey", "unwrapKey"]);
const sign = async (key: CryptoKey) => new Uint8Array(await crypto.subtle.sign("HMAC", key, new Uint8Array([1, 2, 3])));
const seal = async (key: CryptoKey) => new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv: new Uint8Array(12) }, key, new Uint8Array(16)));

describe("cached data-key unwrap", () => {
  it("returns the same key object for the same KEK and wrapped bytes within 60 s, a fresh unwrap after", async () => {
    const kek = await kekOf(1);
    const { wrapped } = await wrapDataKey(kek, randomBytes(32));
    const t = 1_000_000;
    const first = await unwrapCheckedDataKey(kek, wrapped, t);
    expect(await unwrapCheckedDataKey(kek, wrapped.slice(), t + 59_000)).toBe(first);
    const later = await unwrapCheckedDataKey(kek, wrapped, t + 60_001);
    expect(later).not.toBe(first);
    // Same key material either way: the derived MAC keys sign alike.
    expect(await sign(await deriveMacKey(later))).toEqual(await sign(await deriveMacKey(first)));
  });

  it("is keyed by the KEK object: another KEK object (a re-derived or forgotten one) unwraps afresh, a wrong KEK still fails", async () => {
    const raw = randomBytes(32);
    const kek = await kekOf(2);
    const { wrapped } = await wrapDataKey(kek, raw);
    const cached = await unwrapCheckedDataKey(kek, wrapped);
    const again = await kekOf(2);
    expect(await unwrapCheckedDataKey(again, wrapped)).not.toBe(cached);
    await expect(unwrapCheckedDataKey(await kekOf(3), wrapped)).rejects.toThrow();
  });

  it("never caches a failed unwrap: tampered bytes fail every time, the intact ones still work", async () => {
    const kek = await kekOf(4);
    const { wrapped } = await wrapDataKey(kek, randomBytes(32));
    const bad = wrapped.slice();
    bad[5]! ^= 1;
    for (let i = 0; i < 2; i++) await expect(unwrapCheckedDataKey(kek, bad)).rejects.toThrow();
    const good = await unwrapCheckedDataKey(kek, wrapped);
    expect(await sign(await deriveMacKey(good))).toEqual(await sign(await deriveMacKey(await unwrapDataKey(kek, wrapped))));
  });
});

describe("derived keys memoized per data key", () => {
  it("stream keys: the same (salt, part, length) gives the memoized key, any other input its own — equal to an unmemoized derivation", async () => {
    const raw = randomBytes(32);
    const dataKey = await importHkdf(raw);
    const salt = randomBytes(16);
    const a = await deriveStreamKey(dataKey, salt, 0, 100);
    expect(await deriveStreamKey(dataKey, salt.slice(), 0, 100)).toBe(a);
    const fresh = await deriveStreamKey(await importHkdf(raw), salt, 0, 100);
    expect(await seal(a)).toEqual(await seal(fresh));
    for (const other of [await deriveStreamKey(dataKey, salt, 1, 100), await deriveStreamKey(dataKey, salt, 0, 101), await deriveStreamKey(dataKey, randomBytes(16), 0, 100)]) {
      expect(other).not.toBe(a);
      expect(await seal(other)).not.toEqual(await seal(a));
    }
  });

  it("the MAC key: one per data key object", async () => {
    const dataKey = await importHkdf(randomBytes(32));
    expect(await deriveMacKey(dataKey)).toBe(await deriveMacKey(dataKey));
    expect(await deriveMacKey(await importHkdf(randomBytes(32)))).not.toBe(await deriveMacKey(dataKey));
  });
});
