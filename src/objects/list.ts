import { decodeEnvelope, ENVELOPE_KEY } from "../crypto/envelope";
import { unsealFacts } from "../crypto/facts";
import { plaintextSize } from "../crypto/format";
import type { Bucket } from "../store/buckets";
import { bucketR2Prefix } from "./location";
import type { ObjectDeps } from "./write";

export interface ListedObject {
  key: string;
  etag: string;
  size: number;
  lastModified: Date;
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
 * limit as S3 does). Sizes are the authenticated plaintext lengths from each envelope and
 * ETags are unsealed with the tenant's seal key; a listing never needs the per-object data
 * keys, so it does not depend on any CMK's state. An object whose envelope cannot be read
 * is still listed (size from its stored length, empty ETag) — the audit reports it.
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

async function describe(deps: ObjectDeps, bucket: Bucket, object: R2Object, root: string, opaqueKmsEtags: boolean): Promise<ListedObject> {
  const key = object.key.slice(root.length);
  const listed: ListedObject = { key, etag: "", size: Math.max(0, plaintextSize(object.size)), lastModified: object.uploaded };
  try {
    const envelope = decodeEnvelope(object.customMetadata?.[ENVELOPE_KEY]);
    listed.size = envelope.length;
    if (envelope.lastModified !== undefined) listed.lastModified = new Date(envelope.lastModified);
    if (opaqueKmsEtags && envelope.mode !== "AES256") {
      listed.etag = `${object.etag}-1`;
      return listed;
    }
    const facts = await unsealFacts(await deps.keys.sealKey(bucket.tenantId, envelope.masterVersion), bucket.name, key, envelope.sealed);
    listed.etag = facts.etag;
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
