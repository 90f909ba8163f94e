import { describe, expect, it } from "vitest";
import vectors from "../vectors/format-v1-sse-c.json";
import { buildSseCVector, expectBuiltExactly, vectorPlaintext, type SseCVectorInput, type StoredExpectation } from "../support/vectors";
import { b64, bytesToHex, cat, hexToBytes, te, u32, u64 } from "../support/reader-bytes";

/**
 * SSE-C test vectors (FORMAT.md, "SSE-C"): the worker writes them byte for byte, and a
 * reader written from FORMAT.md alone (no imports from src/) checks the key verifier,
 * unwraps the data key with the customer key, verifies the MAC and decrypts.
 */
interface Vector {
  input: SseCVectorInput;
  expected: StoredExpectation;
}

const all = vectors as unknown as Vector[];

const str0 = (s: string) => cat(te.encode(s), new Uint8Array([0]));

async function hkdfBits(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array): Promise<Uint8Array> {
  const base = await crypto.subtle.importKey("raw", ikm, "HKDF", false, ["deriveBits"]);
  return new Uint8Array(await crypto.subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt, info }, base, 256));
}

class WrongKey extends Error {}

async function independentRead(stored: Uint8Array, meta: Record<string, string>, master: Uint8Array, customerKey: Uint8Array, bucket: string, key: string, tenantId: string) {
  const env = JSON.parse(meta["sse-envelope"]!);
  if (env.m !== "SSE-C" || env.k !== undefined || env.kv !== undefined) throw new Error("not an SSE-C envelope");
  const x = b64(env.x);
  const scope = cat(str0(tenantId), str0(bucket), str0(key));
  // 1. The verifier, before anything is unwrapped.
  const verifier = await hkdfBits(customerKey, x, cat(str0("s3-sse-gw/v1/sse-c-verifier"), scope));
  if (bytesToHex(verifier) !== bytesToHex(b64(env.y))) throw new WrongKey("verifier");
  // 2. KEK_C and the data key.
  const kekBits = await hkdfBits(customerKey, x, cat(str0("s3-sse-gw/v1/sse-c-kek"), scope));
  const kek = await crypto.subtle.importKey("raw", kekBits, "AES-KW", false, ["unwrapKey"]);
  const dkKey = await crypto.subtle.unwrapKey("raw", b64(env.w), kek, "AES-KW", { name: "AES-GCM" }, true, ["encrypt"]);
  const dk = new Uint8Array((await crypto.subtle.exportKey("raw", dkKey)) as ArrayBuffer);
  // 3. The MAC: fields 6 and 7 are the salt and verifier bytes.
  const macKey = await crypto.subtle.importKey("raw", await hkdfBits(dk, new Uint8Array(0), str0("s3-sse-gw/v1/mac")), { name: "HMAC", hash: "SHA-256" }, false, ["verify"]);
  const userMeta = Object.entries(meta).filter(([n]) => n.startsWith("x-amz-meta-")).map(([n, v]) => [n.slice(11), v] as const).sort(([a], [b]) => (a < b ? -1 : 1));
  const h = env.h ?? {};
  const fields: Array<string | Uint8Array> = [
    "s3-sse-gw/v1/object-mac", bucket, key, "1", "SSE-C", x, b64(env.y), String(env.mv), b64(env.w), String(env.n),
    "single", b64(env.s), "", "0", b64(env.e),
    h.ct ?? "", h.ce ?? "", h.cd ?? "", h.cl ?? "", h.cc ?? "", h.ex ?? "", String(userMeta.length), ...userMeta.flat(),
  ];
  const input = cat(...fields.map((f) => (typeof f === "string" ? te.encode(f) : f)).flatMap((b) => [u32(b.length), b]));
  if (!(await crypto.subtle.verify("HMAC", macKey, b64(env.t), input))) throw new Error("MAC");
  // 4. The stream, as for every mode.
  const L: number = env.n;
  const n = Math.max(1, Math.ceil(L / 65536));
  if (stored.length !== 32 + L + 16 * n) throw new Error("size");
  const header = cat(new Uint8Array([0x53, 0x47, 0x57, 0x01]), u32(0), u64(L), b64(env.s));
  const sk = await crypto.subtle.importKey("raw", await hkdfBits(dk, b64(env.s), cat(str0("s3-sse-gw/v1/stream"), u32(0), u64(L))), "AES-GCM", false, ["decrypt"]);
  const out: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    const len = (i < n - 1 ? 65536 : L - (n - 1) * 65536) + 16;
    const off = 32 + i * 65552;
    const nonce = cat(new Uint8Array(3), u64(i), new Uint8Array([i === n - 1 ? 1 : 0]));
    out.push(new Uint8Array(await crypto.subtle.decrypt({ name: "AES-GCM", iv: nonce, additionalData: header }, sk, stored.subarray(off, off + len))));
  }
  // 5. The sealed facts need the master secret only (listings read them without the key).
  const sealKey = await crypto.subtle.importKey("raw", await hkdfBits(master, new Uint8Array(0), cat(str0("s3-sse-gw/v1/seal"), str0(tenantId))), "AES-GCM", false, ["decrypt"]);
  const sealed = b64(env.e);
  const facts = JSON.parse(
    new TextDecoder().decode(await crypto.subtle.decrypt({ name: "AES-GCM", iv: sealed.subarray(0, 12), additionalData: te.encode(`s3-sse-gw/v1/facts\0${bucket}\0${key}`) }, sealKey, sealed.subarray(12))),
  );
  return { plaintext: cat(...out), etag: facts.e as string, length: facts.n as number };
}

describe("format v1 SSE-C test vectors", () => {
  it.each(all.map((v) => [v.input.name, v] as const))("the worker writes exactly: %s", async (_name, v) => {
    await expectBuiltExactly(await buildSseCVector(v.input), v.expected);
  });

  it.each(all.map((v) => [v.input.name, v] as const))("an independent reader decrypts with the customer key: %s", async (_name, v) => {
    const { input } = v;
    const stored = v.expected.storedHex ? hexToBytes(v.expected.storedHex) : hexToBytes((await buildSseCVector(input)).storedHex);
    const read = await independentRead(stored, v.expected.customMetadata, hexToBytes(input.masterSecretHex), hexToBytes(input.customerKeyHex), input.bucket, input.key, input.tenantId);
    expect(read.plaintext).toEqual(vectorPlaintext(input.plaintextLength));
    expect(read.etag).toBe(input.etag);
    expect(read.length).toBe(input.plaintextLength);
  });

  it("another customer key fails the verifier; the same key under another name fails it too", async () => {
    const v = all[0]!;
    const { input } = v;
    const stored = hexToBytes(v.expected.storedHex!);
    const other = hexToBytes(input.customerKeyHex).map((b) => b ^ 0xff);
    await expect(independentRead(stored, v.expected.customMetadata, hexToBytes(input.masterSecretHex), other, input.bucket, input.key, input.tenantId)).rejects.toThrow(WrongKey);
    await expect(independentRead(stored, v.expected.customMetadata, hexToBytes(input.masterSecretHex), hexToBytes(input.customerKeyHex), input.bucket, "renamed", input.tenantId)).rejects.toThrow(WrongKey);
  });

  it("a metadata change fails the MAC", async () => {
    const v = all[0]!;
    const { input } = v;
    const meta = { ...v.expected.customMetadata, "x-amz-meta-author": "someone else" };
    await expect(independentRead(hexToBytes(v.expected.storedHex!), meta, hexToBytes(input.masterSecretHex), hexToBytes(input.customerKeyHex), input.bucket, input.key, input.tenantId)).rejects.toThrow("MAC");
  });
});
