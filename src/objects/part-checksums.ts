/**
 * The per-part checksums of a multipart object whose upload had a checksum algorithm, kept
 * in its manifest (docs/multipart.md, "Manifest", field `c`) so GetObjectAttributes can
 * list its parts with their checksums, as S3 does. A CRC or hash of plaintext would let
 * anyone with R2 access confirm a guessed part, so they are sealed: AES-256-GCM under a
 * key derived from the object's data key, the upload id as additional data. The manifest
 * itself is under the envelope's MAC (its SHA-256 is), so the sealed value cannot be
 * swapped for another object's either.
 */
import { CHECKSUMS, type ChecksumAlgorithm } from "../checksum";
import { IntegrityError } from "../crypto/errors";
import { derivePartChecksumKey, seal, unseal } from "../crypto/keys";
import { fromBase64 } from "../util/bytes";

export interface PartChecksums {
  algorithm: ChecksumAlgorithm;
  /** Base64 values, one per manifest part, in manifest order. */
  values: string[];
}

const encoder = new TextEncoder();
const aad = (uploadId: string) => encoder.encode(`s3-sse-gw/v1/part-checksums\0${uploadId}`);

export async function sealPartChecksums(dataKey: CryptoKey, uploadId: string, checksums: PartChecksums): Promise<Uint8Array> {
  const doc = JSON.stringify({ a: checksums.algorithm, v: checksums.values });
  return seal(await derivePartChecksumKey(dataKey), encoder.encode(doc), aad(uploadId));
}

/** Opens and checks the sealed checksums of a manifest with `parts` parts; IntegrityError otherwise. */
export async function openPartChecksums(dataKey: CryptoKey, uploadId: string, sealed: Uint8Array, parts: number): Promise<PartChecksums> {
  let doc: { a?: unknown; v?: unknown };
  try {
    doc = JSON.parse(new TextDecoder().decode(await unseal(await derivePartChecksumKey(dataKey), sealed, aad(uploadId)))) as typeof doc;
  } catch {
    throw new IntegrityError("part checksums failed authentication");
  }
  const algorithm = doc.a;
  if (typeof algorithm !== "string" || !(algorithm in CHECKSUMS) || !Array.isArray(doc.v) || doc.v.length !== parts) {
    throw new IntegrityError("part checksums are malformed");
  }
  const length = CHECKSUMS[algorithm as ChecksumAlgorithm].digestLength;
  for (const value of doc.v) {
    if (typeof value !== "string" || fromBase64(value)?.byteLength !== length) throw new IntegrityError("part checksums are malformed");
  }
  return { algorithm: algorithm as ChecksumAlgorithm, values: doc.v as string[] };
}
