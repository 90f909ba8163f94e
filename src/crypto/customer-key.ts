/**
 * SSE-C: keys derived from a customer-provided key (FORMAT.md, "SSE-C").
 *
 * The customer key CK (32 bytes, sent with every request, never stored) and a random
 * per-object salt X derive, with the object's identity bound in:
 *
 *   KEK_C    = HKDF(CK, X, info("s3-sse-gw/v1/sse-c-kek", tenant, bucket, key))      → AES-KW, wraps DK
 *   VERIFIER = HKDF(CK, X, info("s3-sse-gw/v1/sse-c-verifier", tenant, bucket, key))  → 32 bytes, stored
 *
 * Neither R2 (salt, verifier, wrapped DK) nor the master secret can unwrap the data key.
 * The verifier lets a wrong key be refused before any unwrap or decryption; it is a salted
 * HMAC-based derivation, so unlike the key's MD5 it cannot be precomputed across objects.
 */
import { importHkdf, info, INFO, randomBytes, seal, unseal } from "./keys";
import { timingSafeEqual, utf8 } from "../util/bytes";

export const CUSTOMER_SALT_SIZE = 32;

export const SSE_C_INFO = {
  kek: "s3-sse-gw/v1/sse-c-kek",
  verifier: "s3-sse-gw/v1/sse-c-verifier",
} as const;

/** A validated customer key from a request (algorithm AES256, 32 bytes, MD5 matching). */
export interface CustomerKey {
  /** The 32 key bytes. Never logged, stored or echoed. */
  readonly raw: Uint8Array;
  /** base64 MD5 of the key, as the client sent it: echoed in responses. */
  readonly md5: string;
}

/** Where a customer-key envelope lives: the KEK and verifier are bound to it. */
export interface CustomerKeyScope {
  tenantId: string;
  bucket: string;
  key: string;
}

/** What an SSE-C envelope (or upload record) keeps: the salt and the verifier, never the key. */
export interface CustomerKeyRecord {
  salt: Uint8Array;
  verifier: Uint8Array;
}

function scopeInfo(label: string, scope: CustomerKeyScope): Uint8Array {
  return info(label, scope.tenantId, scope.bucket, scope.key);
}

/** KEK_C for (customer key, salt, object identity). */
export async function deriveCustomerKek(ck: CustomerKey, salt: Uint8Array, scope: CustomerKeyScope): Promise<CryptoKey> {
  const base = await importHkdf(ck.raw);
  return crypto.subtle.deriveKey(
    { name: "HKDF", hash: "SHA-256", salt, info: scopeInfo(SSE_C_INFO.kek, scope) },
    base,
    { name: "AES-KW", length: 256 },
    false,
    ["wrapKey", "unwrapKey"],
  );
}

export async function customerKeyVerifier(ck: CustomerKey, salt: Uint8Array, scope: CustomerKeyScope): Promise<Uint8Array> {
  const base = await importHkdf(ck.raw);
  return new Uint8Array(await crypto.subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt, info: scopeInfo(SSE_C_INFO.verifier, scope) }, base, 256));
}

/** A fresh salt and the verifier for it (a new object, or a new multipart upload). */
export async function newCustomerKeyRecord(ck: CustomerKey, scope: CustomerKeyScope, salt: Uint8Array = randomBytes(CUSTOMER_SALT_SIZE)): Promise<CustomerKeyRecord> {
  return { salt, verifier: await customerKeyVerifier(ck, salt, scope) };
}

/** Constant-time check of a key against a stored verifier. */
export async function customerKeyMatches(ck: CustomerKey, record: CustomerKeyRecord, scope: CustomerKeyScope): Promise<boolean> {
  return timingSafeEqual(await customerKeyVerifier(ck, record.salt, scope), record.verifier);
}

// ---- SSE-C multipart uploads -------------------------------------------------------------

const UPLOAD_MAC_AAD = "s3-sse-gw/v1/sse-c-upload-mac";

/** The object MAC key (FORMAT.md MACKEY) as bytes: deriveMacKey's exact derivation, exportable. */
export async function macKeyBytes(dataKey: CryptoKey): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt: new Uint8Array(0), info: info(INFO.mac) }, dataKey, 256));
}

export function importMacKey(bytes: Uint8Array): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", bytes, { name: "HMAC", hash: "SHA-256", length: 256 }, false, ["sign", "verify"]);
}

/**
 * An SSE-C upload's MAC key, sealed under the tenant's seal key (master secret) for the
 * upload's lifetime so Complete can sign the envelope without the customer key. The AAD
 * (its own label and the upload id) keeps it apart from sealed object facts.
 */
export function sealUploadMacKey(sealKey: CryptoKey, uploadId: string, macKey: Uint8Array): Promise<Uint8Array> {
  return seal(sealKey, macKey, utf8(`${UPLOAD_MAC_AAD}\0${uploadId}`));
}

export async function openUploadMacKey(sealKey: CryptoKey, uploadId: string, sealed: Uint8Array): Promise<CryptoKey> {
  const bytes = await unseal(sealKey, sealed, utf8(`${UPLOAD_MAC_AAD}\0${uploadId}`));
  try {
    return await importMacKey(bytes);
  } finally {
    bytes.fill(0);
  }
}
