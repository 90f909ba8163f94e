/**
 * Key hierarchy (FORMAT.md, "Keys"). Every derivation is HKDF-SHA256 in WebCrypto with a
 * distinct info string, so no key is ever used for two purposes.
 *
 *   master secret (Worker secret, versioned) ─┐
 *   CMK version material (D1, 32 random bytes) ┴─ HKDF ─▶ KEK (AES-KW)
 *   data key (32 random bytes per object) ── wrapped by the KEK, stored in R2 metadata
 *   data key ─ HKDF(salt) ─▶ stream key (AES-256-GCM), one per stream
 *   data key ─ HKDF ─▶ metadata MAC key (HMAC-SHA256)
 *   master secret + CMK version material ─ HKDF ─▶ KMS API key (AES-256-GCM): the
 *     ciphertext blobs of Encrypt / GenerateDataKey (FORMAT.md, "KMS ciphertext blobs")
 *
 * For a CMK rooted in an external KMS the version material is not kept in D1: D1 holds
 * the external KMS's ciphertext of it, and the gateway asks that KMS to decrypt it
 * (src/kms/external.ts). Objects under such a CMK are not wrapped under the version's KEK
 * but under a bucket KEK: HKDF(master secret, salt = the bucket key, info naming CMK,
 * bucket, versions), the bucket key being 32 bytes from one external GenerateDataKey per
 * (CMK version, bucket), stored as the external KMS's ciphertext (FORMAT.md §10).
 */
import { concatBytes } from "../util/bytes";

const encoder = new TextEncoder();

export const INFO = {
  kek: "s3-sse-gw/v1/kek",
  stream: "s3-sse-gw/v1/stream",
  mac: "s3-sse-gw/v1/mac",
  seal: "s3-sse-gw/v1/seal",
  accessKey: "s3-sse-gw/v1/access-key",
  kmsApi: "s3-sse-gw/v1/kms-api",
  external: "s3-sse-gw/v1/external-credentials",
  partChecksums: "s3-sse-gw/v1/part-checksums",
  bucketKek: "s3-sse-gw/v1/bucket-kek",
} as const;

/** info = label ‖ 0x00 ‖ fields…, fields being strings (UTF-8 ‖ 0x00) or fixed-width integers. */
export function info(label: string, ...fields: Array<string | { u32: number } | { u64: number }>): Uint8Array {
  const parts: Uint8Array[] = [encoder.encode(label), new Uint8Array([0])];
  for (const field of fields) {
    if (typeof field === "string") {
      parts.push(encoder.encode(field), new Uint8Array([0]));
    } else if ("u32" in field) {
      const b = new Uint8Array(4);
      new DataView(b.buffer).setUint32(0, field.u32);
      parts.push(b);
    } else {
      const b = new Uint8Array(8);
      new DataView(b.buffer).setBigUint64(0, BigInt(field.u64));
      parts.push(b);
    }
  }
  return concatBytes(parts);
}

export function randomBytes(n: number): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(n));
}

export function importHkdf(ikm: Uint8Array): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", ikm, "HKDF", false, ["deriveKey", "deriveBits"]);
}

function hkdf(salt: Uint8Array, infoBytes: Uint8Array) {
  return { name: "HKDF", hash: "SHA-256", salt, info: infoBytes };
}

/** KEK for one (CMK, key version, master version): wraps and unwraps data keys. */
export async function deriveKek(
  master: Uint8Array,
  material: Uint8Array,
  keyArn: string,
  keyVersion: number,
  masterVersion: number,
): Promise<CryptoKey> {
  const base = await importHkdf(master);
  return crypto.subtle.deriveKey(
    hkdf(material, info(INFO.kek, keyArn, { u32: keyVersion }, { u32: masterVersion })),
    base,
    { name: "AES-KW", length: 256 },
    false,
    ["wrapKey", "unwrapKey"],
  );
}

/**
 * KEK for one (external CMK, key version, bucket, master version): derived from the
 * bucket key the external KMS gave back and the master secret, so neither D1 (which holds
 * only the external ciphertext of the bucket key) nor the master secret alone derives it.
 * Its own label: a bucket KEK never equals a version KEK, even for equal inputs.
 */
export async function deriveBucketKek(
  master: Uint8Array,
  bucketKey: Uint8Array,
  keyArn: string,
  bucket: string,
  keyVersion: number,
  masterVersion: number,
): Promise<CryptoKey> {
  const base = await importHkdf(master);
  return crypto.subtle.deriveKey(
    hkdf(bucketKey, info(INFO.bucketKek, keyArn, bucket, { u32: keyVersion }, { u32: masterVersion })),
    base,
    { name: "AES-KW", length: 256 },
    false,
    ["wrapKey", "unwrapKey"],
  );
}

/**
 * Key of the KMS API's ciphertext blobs for one (CMK, key version, master version): the
 * same inputs as the KEK under another label, so a blob key never wraps an object's data
 * key and vice versa.
 */
export async function deriveApiKey(master: Uint8Array, material: Uint8Array, keyArn: string, keyVersion: number, masterVersion: number): Promise<CryptoKey> {
  const base = await importHkdf(master);
  return crypto.subtle.deriveKey(
    hkdf(material, info(INFO.kmsApi, keyArn, { u32: keyVersion }, { u32: masterVersion })),
    base,
    { name: "AES-GCM", length: 256 },
    false,
    ["encrypt", "decrypt"],
  );
}

/** A fresh data key: returns its wrapped form (40 bytes) and the HKDF base key to derive from. */
export async function newDataKey(kek: CryptoKey): Promise<{ wrapped: Uint8Array; dataKey: CryptoKey }> {
  const raw = randomBytes(32);
  const result = await wrapDataKey(kek, raw);
  raw.fill(0);
  return result;
}

/** Wraps given data-key bytes (newDataKey's core; test vectors use fixed bytes). */
export async function wrapDataKey(kek: CryptoKey, raw: Uint8Array): Promise<{ wrapped: Uint8Array; dataKey: CryptoKey }> {
  // AES-KW can only wrap an extractable CryptoKey; the import is transient.
  const exportable = await crypto.subtle.importKey("raw", raw, { name: "AES-GCM" }, true, ["encrypt"]);
  const wrapped = new Uint8Array(await crypto.subtle.wrapKey("raw", exportable, kek, "AES-KW"));
  return { wrapped, dataKey: await importHkdf(raw) };
}

/**
 * Unwraps a data key straight into a non-extractable HKDF key. AES-KW's integrity check
 * fails (throws) when the wrapped key or the KEK is wrong.
 */
export function unwrapDataKey(kek: CryptoKey, wrapped: Uint8Array): Promise<CryptoKey> {
  return crypto.subtle.unwrapKey("raw", wrapped, kek, "AES-KW", "HKDF", false, ["deriveKey", "deriveBits"]);
}

/** Re-wraps an existing data key under another KEK (copy to another CMK, master rotation). */
export async function rewrapDataKey(from: CryptoKey, to: CryptoKey, wrapped: Uint8Array): Promise<Uint8Array> {
  const exportable = await crypto.subtle.unwrapKey("raw", wrapped, from, "AES-KW", { name: "AES-GCM" }, true, ["encrypt"]);
  return new Uint8Array(await crypto.subtle.wrapKey("raw", exportable, to, "AES-KW"));
}

/**
 * Keys derived from one data key, memoized on that CryptoKey object: derivation is a pure
 * function of (data key, salt, part, length), so a hit returns exactly the key HKDF would.
 * A data key object lives as long as a request, or as long as the unwrap cache keeps it
 * (kms/data-keys.ts); its derived keys become unreachable with it (WeakMap), so this adds
 * no lifetime of its own. Saves two WebCrypto derivations per read of a cached data key.
 */
interface Derived {
  mac?: Promise<CryptoKey>;
  streams?: Map<string, Promise<CryptoKey>>;
}
const derivedFrom = new WeakMap<CryptoKey, Derived>();
/** Stream keys kept per data key: a multipart object has one per part, reads want a few. */
const STREAM_KEYS_PER_DATA_KEY = 32;

function derivedOf(dataKey: CryptoKey): Derived {
  let entry = derivedFrom.get(dataKey);
  if (!entry) derivedFrom.set(dataKey, (entry = {}));
  return entry;
}

/** Drops a failed derivation, so the error is not replayed from the memo. */
function forgetOnFailure(made: Promise<CryptoKey>, drop: () => void): Promise<CryptoKey> {
  made.catch(drop);
  return made;
}

/** Stream key: unique per stream because every stream gets a fresh 16-byte salt. */
export function deriveStreamKey(dataKey: CryptoKey, salt: Uint8Array, partNumber: number, length: number): Promise<CryptoKey> {
  const entry = derivedOf(dataKey);
  const streams = (entry.streams ??= new Map());
  const name = `${partNumber}:${length}:${saltText(salt)}`;
  const hit = streams.get(name);
  if (hit) return hit;
  if (streams.size >= STREAM_KEYS_PER_DATA_KEY) streams.delete(streams.keys().next().value!);
  const made = crypto.subtle.deriveKey(
    hkdf(salt, info(INFO.stream, { u32: partNumber }, { u64: length })),
    dataKey,
    { name: "AES-GCM", length: 256 },
    false,
    ["encrypt", "decrypt"],
  );
  streams.set(name, made);
  return forgetOnFailure(made, () => streams.delete(name));
}

export function deriveMacKey(dataKey: CryptoKey): Promise<CryptoKey> {
  const entry = derivedOf(dataKey);
  if (entry.mac) return entry.mac;
  const made = crypto.subtle.deriveKey(
    hkdf(new Uint8Array(0), info(INFO.mac)),
    dataKey,
    { name: "HMAC", hash: "SHA-256", length: 256 },
    false,
    ["sign", "verify"],
  );
  entry.mac = made;
  return forgetOnFailure(made, () => delete entry.mac);
}

/** A salt as a map key (16 bytes → 16 UTF-16 code units; not for display). */
function saltText(salt: Uint8Array): string {
  return String.fromCharCode(...salt);
}

/**
 * The key that seals a multipart object's per-part checksums in its manifest
 * (docs/multipart.md, "Manifest"): from the object's data key, like the MAC key, so the
 * checksums are readable exactly by whoever may read the object.
 */
export function derivePartChecksumKey(dataKey: CryptoKey): Promise<CryptoKey> {
  return crypto.subtle.deriveKey(
    hkdf(new Uint8Array(0), info(INFO.partChecksums)),
    dataKey,
    { name: "AES-GCM", length: 256 },
    false,
    ["encrypt", "decrypt"],
  );
}

/** AES-GCM key derived from a master secret for sealing small values (ETags, access-key secrets). */
export async function deriveSealKey(master: Uint8Array, label: string, ...context: string[]): Promise<CryptoKey> {
  const base = await importHkdf(master);
  return crypto.subtle.deriveKey(
    hkdf(new Uint8Array(0), info(label, ...context)),
    base,
    { name: "AES-GCM", length: 256 },
    false,
    ["encrypt", "decrypt"],
  );
}

/** seal = nonce (12) ‖ AES-GCM(value) ‖ tag, with `aad` bound. The nonce is random (fixed only in test vectors). */
export async function seal(key: CryptoKey, value: Uint8Array, aad: Uint8Array, iv: Uint8Array = randomBytes(12)): Promise<Uint8Array> {
  const ct = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: aad }, key, value));
  return concatBytes([iv, ct]);
}

export async function unseal(key: CryptoKey, sealed: Uint8Array, aad: Uint8Array): Promise<Uint8Array> {
  const iv = sealed.subarray(0, 12);
  const ct = sealed.subarray(12);
  return new Uint8Array(await crypto.subtle.decrypt({ name: "AES-GCM", iv, additionalData: aad }, key, ct));
}
