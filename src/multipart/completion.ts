import type { ChecksumAlgorithm } from "../checksum";
import { seal, unseal } from "../crypto/keys";
import { IntegrityError } from "../crypto/errors";
import { fromBase64, fromUtf8, toBase64, utf8 } from "../util/bytes";

/**
 * The result a completed upload leaves for retried Completes (docs/multipart.md,
 * "Complete and its retries"): the object's ETag and checksum, and a digest of the part
 * list that produced them, so a retry is answered only for the same list.
 *
 * ETags and checksums derive from the plaintext, so this is sealed like an object's facts
 * (crypto/facts.ts: the tenant's seal key of the upload's master version), with its own
 * AAD label, the upload id, bucket and key bound in: a record cannot be moved to another
 * upload or object.
 */
export interface CompletionResult {
  etag: string;
  checksum?: { algorithm: ChecksumAlgorithm; value: string };
  /** SHA-256 of the part list (partListDigest). */
  parts: Uint8Array;
}

/** Part numbers and ETags as S3 compares them (partNumber ascending, as Complete requires). */
export interface ListedPart {
  partNumber: number;
  etag: string;
}

/** An ETag as S3 compares them: surrounding quotes and whitespace dropped, hex case ignored. */
export function normalizeEtag(etag: string): string {
  // Quotes stripped, never trimmed: an ETag is a value, not a token (src/s3/xml.ts).
  return etag.replace(/^"(.*)"$/, "$1").toLowerCase();
}

/** SHA-256 over "<number>:<normalized etag>\n" per part, in the order given. */
export async function partListDigest(parts: readonly ListedPart[]): Promise<Uint8Array> {
  const text = parts.map((p) => `${p.partNumber}:${normalizeEtag(p.etag)}\n`).join("");
  return new Uint8Array(await crypto.subtle.digest("SHA-256", utf8(text)));
}

function aad(uploadId: string, bucket: string, key: string): Uint8Array {
  return utf8(`s3-sse-gw/v1/mpu-completion\0${uploadId}\0${bucket}\0${key}`);
}

interface Doc {
  e: string;
  c?: { a: string; v: string };
  d: string;
}

export function sealCompletion(sealKey: CryptoKey, uploadId: string, bucket: string, key: string, result: CompletionResult): Promise<Uint8Array> {
  const doc: Doc = { e: result.etag, d: toBase64(result.parts) };
  if (result.checksum) doc.c = { a: result.checksum.algorithm, v: result.checksum.value };
  return seal(sealKey, utf8(JSON.stringify(doc)), aad(uploadId, bucket, key));
}

export async function openCompletion(sealKey: CryptoKey, uploadId: string, bucket: string, key: string, sealed: Uint8Array): Promise<CompletionResult> {
  let doc: Partial<Doc>;
  try {
    doc = JSON.parse(fromUtf8(await unseal(sealKey, sealed, aad(uploadId, bucket, key)))) as Partial<Doc>;
  } catch {
    throw new IntegrityError("sealed completion record failed authentication");
  }
  const parts = typeof doc.d === "string" ? fromBase64(doc.d) : null;
  if (typeof doc.e !== "string" || !parts) throw new IntegrityError("sealed completion record is malformed");
  const result: CompletionResult = { etag: doc.e, parts };
  if (doc.c && typeof doc.c.a === "string" && typeof doc.c.v === "string") result.checksum = { algorithm: doc.c.a as ChecksumAlgorithm, value: doc.c.v };
  return result;
}
