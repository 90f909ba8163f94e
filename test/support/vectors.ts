import { expect } from "vitest";
import { deriveCustomerKek, newCustomerKeyRecord } from "../../src/crypto/customer-key";
import { encryptingStream } from "../../src/crypto/encrypt";
import { joinCustomMetadata, signEnvelope, type HttpMetadata, type SseMode } from "../../src/crypto/envelope";
import { sealFacts } from "../../src/crypto/facts";
import { deriveBucketKek, deriveKek, deriveMacKey, deriveSealKey, INFO, wrapDataKey } from "../../src/crypto/keys";
import { fromHex, toHex } from "../../src/util/bytes";
import { bytesSource, collect } from "./sources";

/** Inputs of one test vector: every random value of a write is fixed here. */
export interface VectorInput {
  name: string;
  masterSecretHex: string;
  masterVersion: number;
  cmkMaterialHex: string;
  keyArn: string;
  keyVersion: number;
  tenantId: string;
  dataKeyHex: string;
  saltHex: string;
  factsNonceHex: string;
  bucket: string;
  key: string;
  mode: SseMode;
  context?: string;
  bucketKeyEnabled: boolean;
  http: HttpMetadata;
  userMetadata: Record<string, string>;
  etag: string;
  /** Plaintext byte i is (i * 7 + 3) mod 256. */
  plaintextLength: number;
  /** The checksum kept in a trailer record (FORMAT.md §3a), for objects written with one. */
  trailer?: { algorithm: "CRC32" | "CRC32C" | "CRC64NVME" | "SHA1" | "SHA256"; value: string };
  /**
   * An external CMK's object (FORMAT.md §10): the bucket key the external KMS gave back; the
   * KEK derives from it (and the bucket) instead of cmkMaterialHex, and the envelope has `bk`.
   */
  externalBucketKeyHex?: string;
}

export function vectorPlaintext(length: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (i * 7 + 3) % 256);
}

const hex = (s: string) => fromHex(s)!;

/** Builds the stored object (R2 body + custom metadata) exactly as the worker writes it. */
export async function buildVector(v: VectorInput): Promise<{ storedHex: string; customMetadata: Record<string, string> }> {
  const master = hex(v.masterSecretHex);
  const kek = v.externalBucketKeyHex
    ? await deriveBucketKek(master, hex(v.externalBucketKeyHex), v.keyArn, v.bucket, v.keyVersion, v.masterVersion)
    : await deriveKek(master, hex(v.cmkMaterialHex), v.keyArn, v.keyVersion, v.masterVersion);
  const { wrapped, dataKey } = await wrapDataKey(kek, hex(v.dataKeyHex));
  const sealKey = await deriveSealKey(master, INFO.seal, v.tenantId);
  const sealed = await sealFacts(sealKey, v.bucket, v.key, { etag: v.etag }, hex(v.factsNonceHex));
  const salt = hex(v.saltHex);
  const envelope = await signEnvelope(
    await deriveMacKey(dataKey),
    {
      version: 1,
      mode: v.mode,
      keyArn: v.keyArn,
      keyVersion: v.keyVersion,
      masterVersion: v.masterVersion,
      wrappedKey: wrapped,
      length: v.plaintextLength,
      layout: { kind: "single", salt },
      ...(v.context !== undefined ? { context: v.context } : {}),
      bucketKeyEnabled: v.bucketKeyEnabled,
      sealed,
      http: v.http,
      ...(v.trailer ? { trailer: true as const } : {}),
      ...(v.externalBucketKeyHex ? { externalBucketKey: true as const } : {}),
    },
    { bucket: v.bucket, key: v.key, userMetadata: v.userMetadata },
  );
  const trailer = v.trailer ? async () => ({ ...v.trailer!, type: "FULL_OBJECT" as const }) : undefined;
  const stored = await collect(encryptingStream(bytesSource(vectorPlaintext(v.plaintextLength)), dataKey, { partNumber: 0, length: v.plaintextLength, salt }, trailer));
  return { storedHex: toHex(stored), customMetadata: joinCustomMetadata(envelope, v.userMetadata) };
}

/** Inputs of one SSE-C test vector (test/vectors/format-v1-sse-c.json): every random value fixed. */
export interface SseCVectorInput extends Omit<VectorInput, "cmkMaterialHex" | "keyArn" | "keyVersion" | "mode" | "context" | "bucketKeyEnabled" | "trailer" | "externalBucketKeyHex"> {
  /** The customer's 32-byte key. */
  customerKeyHex: string;
  /** The per-object KEK salt (32 bytes). */
  customerSaltHex: string;
}

/** Builds an SSE-C stored object exactly as the worker writes it. */
export async function buildSseCVector(v: SseCVectorInput): Promise<{ storedHex: string; customMetadata: Record<string, string> }> {
  const master = hex(v.masterSecretHex);
  const ck = { raw: hex(v.customerKeyHex), md5: "" };
  const scope = { tenantId: v.tenantId, bucket: v.bucket, key: v.key };
  const customer = await newCustomerKeyRecord(ck, scope, hex(v.customerSaltHex));
  const kek = await deriveCustomerKek(ck, customer.salt, scope);
  const { wrapped, dataKey } = await wrapDataKey(kek, hex(v.dataKeyHex));
  const sealKey = await deriveSealKey(master, INFO.seal, v.tenantId);
  const sealed = await sealFacts(sealKey, v.bucket, v.key, { etag: v.etag, length: v.plaintextLength }, hex(v.factsNonceHex));
  const salt = hex(v.saltHex);
  const envelope = await signEnvelope(
    await deriveMacKey(dataKey),
    {
      version: 1,
      mode: "SSE-C",
      keyArn: "",
      keyVersion: 0,
      masterVersion: v.masterVersion,
      wrappedKey: wrapped,
      length: v.plaintextLength,
      layout: { kind: "single", salt },
      bucketKeyEnabled: false,
      sealed,
      http: v.http,
      customer,
    },
    { bucket: v.bucket, key: v.key, userMetadata: v.userMetadata },
  );
  const stored = await collect(encryptingStream(bytesSource(vectorPlaintext(v.plaintextLength)), dataKey, { partNumber: 0, length: v.plaintextLength, salt }));
  return { storedHex: toHex(stored), customMetadata: joinCustomMetadata(envelope, v.userMetadata) };
}

/** What a vector file expects of the stored object: its length and SHA-256, its bytes when small, its R2 metadata. */
export interface StoredExpectation {
  storedLength: number;
  storedSha256: string;
  storedHex?: string;
  customMetadata: Record<string, string>;
}

/** The worker's build of a vector is exactly the stored object the vector file records. */
export async function expectBuiltExactly(built: { storedHex: string; customMetadata: Record<string, string> }, expected: StoredExpectation): Promise<void> {
  const stored = fromHex(built.storedHex)!;
  expect(stored.length).toBe(expected.storedLength);
  expect(toHex(new Uint8Array(await crypto.subtle.digest("SHA-256", stored)))).toBe(expected.storedSha256);
  if (expected.storedHex) expect(built.storedHex).toBe(expected.storedHex);
  expect(built.customMetadata).toEqual(expected.customMetadata);
}
