import { describe, expect, it } from "vitest";
import vectors from "../vectors/format-v1.json";
import trailerVectors from "../vectors/format-v1-trailer.json";
import bucketKeyVectors from "../vectors/format-v1-bucket-key.json";
import { buildVector, expectBuiltExactly, vectorPlaintext, type StoredExpectation, type VectorInput } from "../support/vectors";
import { b64, bytesToHex, cat, hexToBytes, te, u32, u64 } from "../support/reader-bytes";

interface Vector {
  input: VectorInput;
  expected: StoredExpectation & { storedHeadHex?: string };
}

const all = [...(vectors as unknown as Vector[]), ...(trailerVectors as unknown as Vector[]), ...(bucketKeyVectors as unknown as Vector[])];

// ---- an independent reader, written from FORMAT.md only (no imports from src/) ----------

const z = new Uint8Array([0]);
const str0 = (s: string) => cat(te.encode(s), z);

type ImportAlgorithm = Parameters<typeof crypto.subtle.importKey>[2];

async function hkdfKey(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, alg: ImportAlgorithm, usages: string[]) {
  const base = await crypto.subtle.importKey("raw", ikm, "HKDF", false, ["deriveBits"]);
  const bits = new Uint8Array(await crypto.subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt, info }, base, 256));
  return { bits, key: await crypto.subtle.importKey("raw", bits, alg, false, usages) };
}

/**
 * FORMAT.md section 8, for a single-stream object. Returns the plaintext or throws.
 * `material` is the CMK version's material, or with `bk` the bucket key (section 10).
 */
async function independentRead(stored: Uint8Array, meta: Record<string, string>, master: Uint8Array, material: Uint8Array, bucket: string, key: string, tenantId: string) {
  for (const name of Object.keys(meta)) if (name !== "sse-envelope" && !name.startsWith("x-amz-meta-")) throw new Error("unknown metadata");
  const env = JSON.parse(meta["sse-envelope"]!);
  const kekInfo = env.bk === 1 ? cat(str0("s3-sse-gw/v1/bucket-kek"), str0(env.k), str0(bucket), u32(env.kv), u32(env.mv)) : cat(str0("s3-sse-gw/v1/kek"), str0(env.k), u32(env.kv), u32(env.mv));
  const kek = await hkdfKey(master, material, kekInfo, "AES-KW", ["unwrapKey"]);
  const dkKey = await crypto.subtle.unwrapKey("raw", b64(env.w), kek.key, "AES-KW", { name: "AES-GCM" }, true, ["encrypt"]);
  const dk = new Uint8Array((await crypto.subtle.exportKey("raw", dkKey)) as ArrayBuffer);
  const mac = await hkdfKey(dk, new Uint8Array(0), str0("s3-sse-gw/v1/mac"), { name: "HMAC", hash: "SHA-256" }, ["verify"]);
  const userMeta = Object.entries(meta).filter(([n]) => n.startsWith("x-amz-meta-")).map(([n, v]) => [n.slice(11), v] as const).sort(([a], [b]) => (a < b ? -1 : 1));
  const h = env.h ?? {};
  const fields: Array<string | Uint8Array> = [
    "s3-sse-gw/v1/object-mac", bucket, key, "1", env.m, env.k, String(env.kv), String(env.mv), b64(env.w), String(env.n),
    "single", b64(env.s), env.c ?? "", env.b === 1 ? "1" : "0", b64(env.e),
    h.ct ?? "", h.ce ?? "", h.cd ?? "", h.cl ?? "", h.cc ?? "", h.ex ?? "", String(userMeta.length), ...userMeta.flat(),
    ...(env.lm !== undefined ? ["lm", String(env.lm)] : []),
    ...(env.r === 1 ? ["r", "1"] : []),
    ...(env.bk === 1 ? ["bk", "1"] : []),
  ];
  const input = cat(...fields.map((f) => (typeof f === "string" ? te.encode(f) : f)).flatMap((b) => [u32(b.length), b]));
  if (!(await crypto.subtle.verify("HMAC", mac.key, b64(env.t), input))) throw new Error("MAC");
  const L: number = env.n;
  const n = Math.max(1, Math.ceil(L / 65536));
  const record = env.r === 1 ? 52 : 0; // §3a: the trailer record after the final chunk
  if (stored.length !== 32 + L + 16 * n + record) throw new Error("size");
  const header = cat(new Uint8Array([0x53, 0x47, 0x57, 0x01]), u32(0), u64(L), b64(env.s));
  if (bytesToHex(stored.subarray(0, 32)) !== bytesToHex(header)) throw new Error("header");
  const sk = await hkdfKey(dk, b64(env.s), cat(str0("s3-sse-gw/v1/stream"), u32(0), u64(L)), "AES-GCM", ["decrypt"]);
  let checksum: { algorithm: string; value: string } | undefined;
  if (record) {
    const nonce = cat(new Uint8Array([1]), new Uint8Array(11));
    const aad = cat(str0("s3-sse-gw/v1/trailer"), header);
    const plain = new Uint8Array(await crypto.subtle.decrypt({ name: "AES-GCM", iv: nonce, additionalData: aad }, sk.key, stored.subarray(stored.length - 52)));
    const names: Record<number, [string, number]> = { 1: ["CRC32", 4], 2: ["CRC32C", 4], 3: ["CRC64NVME", 8], 4: ["SHA1", 20], 5: ["SHA256", 32] };
    const [algorithm, size] = names[plain[0]!] ?? ["", -1];
    if (plain.length !== 36 || plain[1] !== 1 || plain[2] !== size || plain[3] !== 0 || plain.subarray(4 + size).some((x) => x !== 0)) throw new Error("record");
    checksum = { algorithm, value: btoa(String.fromCharCode(...plain.subarray(4, 4 + size))) };
  }
  const out: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    const len = (i < n - 1 ? 65536 : L - (n - 1) * 65536) + 16;
    const off = 32 + i * 65552;
    const nonce = cat(new Uint8Array(3), u64(i), new Uint8Array([i === n - 1 ? 1 : 0]));
    out.push(new Uint8Array(await crypto.subtle.decrypt({ name: "AES-GCM", iv: nonce, additionalData: header }, sk.key, stored.subarray(off, off + len))));
  }
  const seal = await hkdfKey(master, new Uint8Array(0), cat(str0("s3-sse-gw/v1/seal"), str0(tenantId)), "AES-GCM", ["decrypt"]);
  const sealed = b64(env.e);
  const facts = JSON.parse(
    new TextDecoder().decode(
      await crypto.subtle.decrypt({ name: "AES-GCM", iv: sealed.subarray(0, 12), additionalData: te.encode(`s3-sse-gw/v1/facts\0${bucket}\0${key}`) }, seal.key, sealed.subarray(12)),
    ),
  );
  return { plaintext: cat(...out), etag: facts.e as string, checksum };
}

// ------------------------------------------------------------------------------------------

describe("format v1 test vectors", () => {
  it.each(all.map((v) => [v.input.name, v] as const))("the worker writes exactly: %s", async (_name, v) => {
    await expectBuiltExactly(await buildVector(v.input), v.expected);
  });

  it.each(all.map((v) => [v.input.name, v] as const))("an independent reader decrypts: %s", async (_name, v) => {
    const stored = v.expected.storedHex ? hexToBytes(v.expected.storedHex) : hexToBytes((await buildVector(v.input)).storedHex);
    const { input } = v;
    const root = hexToBytes(input.externalBucketKeyHex ?? input.cmkMaterialHex);
    const read = await independentRead(stored, v.expected.customMetadata, hexToBytes(input.masterSecretHex), root, input.bucket, input.key, input.tenantId);
    expect(read.plaintext).toEqual(vectorPlaintext(input.plaintextLength));
    expect(read.etag).toBe(input.etag);
    expect(read.checksum).toEqual(input.trailer);
  });

  it("the independent reader refuses a trailer record with one bit flipped, and one whose flag was dropped", async () => {
    for (const v of trailerVectors as unknown as Vector[]) {
      const { input } = v;
      const stored = hexToBytes(v.expected.storedHex!);
      stored[stored.length - 30]! ^= 0x04;
      const read = (s: Uint8Array, meta: Record<string, string>) => independentRead(s, meta, hexToBytes(input.masterSecretHex), hexToBytes(input.cmkMaterialHex), input.bucket, input.key, input.tenantId);
      await expect(read(stored, v.expected.customMetadata)).rejects.toThrow();
      const envelope = JSON.parse(v.expected.customMetadata["sse-envelope"]!);
      delete envelope.r;
      await expect(read(hexToBytes(v.expected.storedHex!), { ...v.expected.customMetadata, "sse-envelope": JSON.stringify(envelope) })).rejects.toThrow("MAC");
    }
  });

  it("bucket-key vectors: neither the version material, nor the bucket key under another bucket name, nor the envelope without bk reads them", async () => {
    for (const v of bucketKeyVectors as unknown as Vector[]) {
      const { input } = v;
      const stored = hexToBytes(v.expected.storedHex!);
      const read = (meta: Record<string, string>, material: string, bucket = input.bucket) =>
        independentRead(stored, meta, hexToBytes(input.masterSecretHex), hexToBytes(material), bucket, input.key, input.tenantId);
      await expect(read(v.expected.customMetadata, input.externalBucketKeyHex!)).resolves.toBeDefined();
      // The data key is wrapped under the bucket KEK: AES-KW's integrity check fails otherwise.
      await expect(read(v.expected.customMetadata, input.cmkMaterialHex)).rejects.toThrow();
      await expect(read(v.expected.customMetadata, input.externalBucketKeyHex!, "another-bucket")).rejects.toThrow();
      const envelope = JSON.parse(v.expected.customMetadata["sse-envelope"]!);
      delete envelope.bk;
      await expect(read({ ...v.expected.customMetadata, "sse-envelope": JSON.stringify(envelope) }, input.cmkMaterialHex)).rejects.toThrow();
    }
  });

  it("the independent reader refuses a vector with one metadata byte changed", async () => {
    const v = all[1]!;
    const meta = { ...v.expected.customMetadata, "x-amz-meta-author": "someone else" };
    const { input } = v;
    await expect(independentRead(hexToBytes(v.expected.storedHex!), meta, hexToBytes(input.masterSecretHex), hexToBytes(input.cmkMaterialHex), input.bucket, input.key, input.tenantId)).rejects.toThrow("MAC");
  });
});
