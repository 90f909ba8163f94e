import { checksumTypeOf, type ChecksumType } from "../checksum";
import { decodeEnvelope, ENVELOPE_KEY } from "../crypto/envelope";
import { unsealFacts } from "../crypto/facts";
import { encryptedSize, plaintextSize } from "../crypto/format";
import { TRAILER_SIZE } from "../crypto/trailer";
import type { Bucket } from "../store/buckets";
import { bucketR2Prefix } from "./location";
import type { ObjectDeps } from "./write";

export interface ListedObject {
  key: string;
  etag: string;
  size: number;
  lastModified: Date;
  /** S3's ChecksumAlgorithm/ChecksumType, when the sealed facts name them (never the value). */
  checksum?: { algorithm: string; type: ChecksumType };
}

export interface ListPage {
  objects: ListedObject[];
  commonPrefixes: string[];
  truncated: boolean;
  /** R2's cursor for the next page (wrapped into S3 continuation tokens by the caller). */
  cursor?: string;
}

export interface ListRequest {
  prefix: string;
  delimiter?: string;
  maxKeys: number;
  startAfter?: string;
  cursor?: string;
  /**
   * For listers outside the owning tenant: an SSE-KMS object's ETag may be the MD5 of its
   * plaintext (a guess-confirmation oracle), so they get an opaque value instead, derived
   * from R2's etag of the ciphertext — stable per version, revealing nothing of the plaintext.
   */
  opaqueKmsEtags?: boolean;
}

/**
 * One page of a bucket listing from R2 (R2 counts keys and common prefixes against the
 * limit as S3 does). A listing never needs the per-object data keys, so it does not depend
 * on any CMK's state — and so it cannot check the envelope's MAC (its key derives from the
 * data key). What it shows is authenticated only as far as the tenant's seal key reaches:
 * see describe(). An object whose envelope cannot be read is still listed (size from its
 * stored length, empty ETag) — GET/HEAD refuse it and the audit reports it.
 */
export async function listObjects(deps: ObjectDeps, bucket: Bucket, req: ListRequest): Promise<ListPage> {
  const root = bucketR2Prefix(bucket.name);
  if (req.maxKeys === 0) return { objects: [], commonPrefixes: [], truncated: false };
  const result = await deps.r2.list({
    prefix: root + req.prefix,
    limit: Math.min(req.maxKeys, 1000),
    include: ["customMetadata"],
    ...(req.delimiter ? { delimiter: req.delimiter } : {}),
    ...(req.cursor ? { cursor: req.cursor } : req.startAfter ? { startAfter: root + req.startAfter } : {}),
  });
  const objects = await Promise.all(result.objects.map((o) => describe(deps, bucket, o, root, req.opaqueKmsEtags ?? false)));
  return {
    objects,
    commonPrefixes: result.delimitedPrefixes.map((p) => p.slice(root.length)),
    truncated: result.truncated,
    ...(result.truncated ? { cursor: result.cursor } : {}),
  };
}

/**
 * One listed object. The ETag comes from the sealed facts (AES-GCM under the tenant's seal
 * key, bound to bucket and key: authentic, though an older version's facts of the same key
 * could be replayed — a rollback, out of the format's scope). The size:
 * - facts written since they carry the length (`n`): that sealed length — authentic in the
 *   same sense — whatever the envelope's unauthenticated `n` says;
 * - older facts, single layout: the envelope's `n` only if the stored ciphertext has
 *   exactly its size, else the size the ciphertext's length implies (a GET refuses such an
 *   object; the audit names it). Not authenticated: consistent with what R2 holds;
 * - older facts, multipart layout: the envelope's `n`, unauthenticated (the stored object
 *   is the manifest; its parts' sizes would need the manifest read and its hash checked
 *   under the MAC). The master-secret rewrap job reseals facts with the length.
 * Cost: no WebCrypto operation beyond the one AES-GCM open per object the ETag already
 * needs (and one seal-key derivation per tenant and master version, cached).
 */
async function describe(deps: ObjectDeps, bucket: Bucket, object: R2Object, root: string, opaqueKmsEtags: boolean): Promise<ListedObject> {
  const key = object.key.slice(root.length);
  const stored = Math.max(0, plaintextSize(object.size));
  const listed: ListedObject = { key, etag: "", size: stored, lastModified: object.uploaded };
  try {
    const envelope = decodeEnvelope(object.customMetadata?.[ENVELOPE_KEY]);
    // A stream ending with a trailer record (FORMAT.md §3a) is that much longer.
    const record = envelope.trailer ? TRAILER_SIZE : 0;
    if (record > 0) listed.size = Math.max(0, plaintextSize(object.size - record));
    if (envelope.layout.kind === "multipart" || encryptedSize(envelope.length) + record === object.size) listed.size = envelope.length;
    if (envelope.lastModified !== undefined) listed.lastModified = new Date(envelope.lastModified);
    const facts = await unsealFacts(await deps.keys.sealKey(bucket.tenantId, envelope.masterVersion), bucket.name, key, envelope.sealed);
    // SSE-C objects already have opaque ETags (never a plaintext MD5, see chooseEtag), and
    // other tenants may read them as they may SSE-S3 objects: shown as stored.
    listed.etag = opaqueKmsEtags && envelope.mode === "aws:kms" ? `${object.etag}-1` : facts.etag;
    if (facts.length !== undefined) listed.size = facts.length;
    if (facts.checksum) listed.checksum = { algorithm: facts.checksum.algorithm, type: checksumTypeOf(facts.checksum.value) };
    else if (facts.trailerAlgorithm !== undefined) listed.checksum = { algorithm: facts.trailerAlgorithm, type: "FULL_OBJECT" };
  } catch {
    // Listed as-is; GET/HEAD refuse it and the audit names it.
  }
  return listed;
}

/** True when the bucket holds no objects (DeleteBucket's BucketNotEmpty check). */
export async function bucketIsEmpty(r2: R2Bucket, bucket: string): Promise<boolean> {
  const result = await r2.list({ prefix: bucketR2Prefix(bucket), limit: 1 });
  return result.objects.length === 0;
}
