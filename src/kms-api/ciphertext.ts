import { concatBytes, fromHex, toHex, utf8 } from "../util/bytes";

/**
 * The KMS API's ciphertext blob (FORMAT.md, "KMS ciphertext blobs"):
 *
 *   header (28) = "SGK" 0x01 ‖ key uuid (16 bytes) ‖ u32be(key version) ‖ u32be(master version)
 *   blob        = header ‖ nonce (12) ‖ AES-256-GCM(API key, nonce, plaintext, aad) ‖ tag (16)
 *   aad         = header ‖ context encoding
 *
 * The header names the key, so Decrypt needs no KeyId (as AWS); it is authenticated, so a
 * blob edited to name another key or version fails. The encryption context is never stored:
 * the caller must present it again, and any other context fails the tag (as AWS).
 */
export const MAGIC = new Uint8Array([0x53, 0x47, 0x4b, 0x01]);
export const HEADER_BYTES = 28;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
/** Smallest possible blob: an empty plaintext (AWS never produces one; we still parse it). */
export const MIN_BLOB_BYTES = HEADER_BYTES + NONCE_BYTES + TAG_BYTES;

export interface BlobHeader {
  keyId: string;
  keyVersion: number;
  masterVersion: number;
  bytes: Uint8Array;
}

export function encodeHeader(keyId: string, keyVersion: number, masterVersion: number): Uint8Array {
  const header = new Uint8Array(HEADER_BYTES);
  header.set(MAGIC, 0);
  const uuid = fromHex(keyId.replace(/-/g, ""));
  if (!uuid || uuid.byteLength !== 16) throw new Error("key id is not a uuid");
  header.set(uuid, 4);
  const view = new DataView(header.buffer);
  view.setUint32(20, keyVersion);
  view.setUint32(24, masterVersion);
  return header;
}

/** The header of a blob, or null when it is not one of ours (wrong magic or too short). */
export function parseHeader(blob: Uint8Array): BlobHeader | null {
  if (blob.byteLength < MIN_BLOB_BYTES) return null;
  for (let i = 0; i < MAGIC.byteLength; i++) if (blob[i] !== MAGIC[i]) return null;
  const hex = toHex(blob.subarray(4, 20));
  const keyId = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  const keyVersion = view.getUint32(20);
  const masterVersion = view.getUint32(24);
  if (keyVersion < 1 || masterVersion < 1) return null;
  return { keyId, keyVersion, masterVersion, bytes: blob.slice(0, HEADER_BYTES) };
}

/**
 * Canonical encryption context: u32be(pair count), then for each pair in ascending byte
 * order of the UTF-8 key: u32be(len) ‖ key ‖ u32be(len) ‖ value. The order of the JSON
 * members therefore does not matter (AWS: "the order of the pairs does not matter").
 */
export function encodeContext(context: Readonly<Record<string, string>>): Uint8Array {
  const pairs = Object.entries(context).map(([k, v]) => [utf8(k), utf8(v)] as const);
  pairs.sort(([a], [b]) => compareBytes(a, b));
  const parts: Uint8Array[] = [u32(pairs.length)];
  for (const [k, v] of pairs) parts.push(u32(k.byteLength), k, u32(v.byteLength), v);
  return concatBytes(parts);
}

export async function sealBlob(
  apiKey: CryptoKey,
  header: Uint8Array,
  context: Readonly<Record<string, string>>,
  plaintext: Uint8Array,
  nonce: Uint8Array = crypto.getRandomValues(new Uint8Array(NONCE_BYTES)),
): Promise<Uint8Array> {
  const aad = concatBytes([header, encodeContext(context)]);
  const ct = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv: nonce, additionalData: aad }, apiKey, plaintext));
  return concatBytes([header, nonce, ct]);
}

/** The plaintext, or null when the tag does not verify (wrong context, key or an edited blob). */
export async function openBlob(apiKey: CryptoKey, blob: Uint8Array, context: Readonly<Record<string, string>>): Promise<Uint8Array | null> {
  const header = blob.subarray(0, HEADER_BYTES);
  const nonce = blob.subarray(HEADER_BYTES, HEADER_BYTES + NONCE_BYTES);
  const ct = blob.subarray(HEADER_BYTES + NONCE_BYTES);
  const aad = concatBytes([header, encodeContext(context)]);
  try {
    return new Uint8Array(await crypto.subtle.decrypt({ name: "AES-GCM", iv: nonce, additionalData: aad }, apiKey, ct));
  } catch {
    return null;
  }
}

function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.byteLength, b.byteLength);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.byteLength - b.byteLength;
}
