import type { Tag } from "../store/object-tags";
import type { ChecksumAlgorithm, ChecksumType } from "../checksum";
import type { HttpMetadata, SseMode } from "../crypto/envelope";
import { fromBase64, toBase64 } from "../util/bytes";

/**
 * D1 state of multipart uploads (migrations/0002_multipart.sql). Every transition that
 * must not interleave with another is one statement or one D1 batch (a transaction):
 * recording a part, claiming an upload for completion, finishing it, aborting it.
 */
export type { ChecksumType };

export interface UploadRecord {
  uploadId: string;
  bucket: string;
  key: string;
  tenantId: string;
  initiatorId: string;
  initiatorName: string;
  state: "active" | "completing";
  partsVersion: number;
  mode: SseMode;
  keyArn: string;
  keyVersion: number;
  masterVersion: number;
  wrappedKey: Uint8Array;
  context?: string;
  bucketKeyEnabled: boolean;
  http: HttpMetadata;
  userMetadata: Record<string, string>;
  checksumAlgorithm?: ChecksumAlgorithm;
  checksumType?: ChecksumType;
  createdAt: number;
  completingAt?: number;
  manifestHash?: Uint8Array;
  /** While completing: the result being written, sealed (multipart/completion.ts); kept as the completion record. */
  completion?: Uint8Array;
  /** x-amz-tagging given at Create (store/object-tags.ts putUploadTags), applied at Complete. */
  tags?: Tag[];
  /** SSE-C uploads (mode "SSE-C"): see SseCUpload. */
  customer?: SseCUpload;
  /** The data key is wrapped under the bucket's bucket key (external CMK; envelope `bk`). */
  externalBucketKey?: true;
}

/**
 * What an SSE-C upload keeps (never the key or its MD5): the KEK salt and key verifier
 * every UploadPart's key is checked against, and the MAC key of the object-to-be, sealed
 * under the master secret, so CompleteMultipartUpload needs no customer key (as on S3).
 * The MAC key derives one-way from the data key: it can sign this object's envelope but
 * decrypts nothing, and it is deleted with the upload row.
 */
export interface SseCUpload {
  salt: Uint8Array;
  verifier: Uint8Array;
  sealedMacKey: Uint8Array;
}

/**
 * The D1 tables predate SSE-C and CHECK their mode column to 'aws:kms' / 'AES256'; an
 * SSE-C upload is stored as 'AES256' with an empty key ARN (an SSE-S3 upload always names
 * its service key) and its sse_c column set, and read back as "SSE-C".
 */
const storedMode = (mode: SseMode): SseMode => (mode === "SSE-C" ? "AES256" : mode);
const readMode = (mode: SseMode, keyArn: string): SseMode => (mode === "AES256" && keyArn === "" ? "SSE-C" : mode);

function encodeSseC(c: SseCUpload): string {
  return JSON.stringify({ x: toBase64(c.salt), y: toBase64(c.verifier), m: toBase64(c.sealedMacKey) });
}

function decodeSseC(text: string): SseCUpload {
  const doc = JSON.parse(text) as { x: string; y: string; m: string };
  return { salt: fromBase64(doc.x)!, verifier: fromBase64(doc.y)!, sealedMacKey: fromBase64(doc.m)! };
}

export type NewUpload = Omit<UploadRecord, "state" | "partsVersion" | "completingAt" | "manifestHash" | "completion" | "tags">;

export interface PartRecord {
  partNumber: number;
  attempt: string;
  size: number;
  salt: Uint8Array;
  /** Sealed {etag, checksum} (crypto/facts.ts, sealed for "_mpu/<upload>" / part number). */
  facts: Uint8Array;
  uploadedAt: number;
}

export interface MultipartObjectRecord {
  uploadId: string;
  bucket: string;
  key: string;
  manifestHash: Uint8Array;
  createdAt: number;
  /** When its manifest was first seen dead (no longer the object at the key); unset while live. */
  deadSince?: number;
}

/**
 * What a completed upload leaves for retried Completes (multipart_completions): its SSE
 * settings (the retry's headers and authorization) and its sealed result.
 */
export interface CompletionRecord {
  uploadId: string;
  bucket: string;
  key: string;
  tenantId: string;
  mode: SseMode;
  keyArn: string;
  context?: string;
  bucketKeyEnabled: boolean;
  masterVersion: number;
  checksumType?: ChecksumType;
  /** Sealed {ETag, checksum, part-list digest} (multipart/completion.ts). */
  result: Uint8Array;
  completedAt: number;
}

interface UploadRow {
  upload_id: string;
  bucket: string;
  object_key: string;
  tenant_id: string;
  initiator_id: string;
  initiator_name: string;
  state: "active" | "completing";
  parts_version: number;
  mode: SseMode;
  key_arn: string;
  key_version: number;
  master_version: number;
  wrapped_key: ArrayBuffer | number[];
  context: string | null;
  bucket_key: number;
  http: string;
  user_metadata: string;
  checksum_algorithm: ChecksumAlgorithm | null;
  checksum_type: ChecksumType | null;
  created_at: number;
  completing_at: number | null;
  manifest_hash: ArrayBuffer | number[] | null;
  completion: ArrayBuffer | number[] | null;
  tagging?: string | null;
  sse_c?: string | null;
  external_bucket_key?: number;
}

interface CompletionRow {
  upload_id: string;
  bucket: string;
  object_key: string;
  tenant_id: string;
  mode: SseMode;
  key_arn: string;
  context: string | null;
  bucket_key: number;
  master_version: number;
  checksum_type: ChecksumType | null;
  result: ArrayBuffer | number[];
  completed_at: number;
}

interface PartRow {
  part_number: number;
  attempt: string;
  size: number;
  salt: ArrayBuffer | number[];
  facts: ArrayBuffer | number[];
  uploaded_at: number;
}

interface ObjectRow {
  upload_id: string;
  bucket: string;
  object_key: string;
  manifest_hash: ArrayBuffer | number[];
  created_at: number;
  dead_since: number | null;
}

const bytes = (b: ArrayBuffer | number[]) => new Uint8Array(b as ArrayBuffer);

function toUpload(r: UploadRow): UploadRecord {
  return {
    uploadId: r.upload_id,
    bucket: r.bucket,
    key: r.object_key,
    tenantId: r.tenant_id,
    initiatorId: r.initiator_id,
    initiatorName: r.initiator_name,
    state: r.state,
    partsVersion: r.parts_version,
    mode: readMode(r.mode, r.key_arn),
    keyArn: r.key_arn,
    keyVersion: r.key_version,
    masterVersion: r.master_version,
    wrappedKey: bytes(r.wrapped_key),
    ...(r.context !== null ? { context: r.context } : {}),
    bucketKeyEnabled: r.bucket_key === 1,
    http: JSON.parse(r.http) as HttpMetadata,
    userMetadata: JSON.parse(r.user_metadata) as Record<string, string>,
    ...(r.checksum_algorithm !== null ? { checksumAlgorithm: r.checksum_algorithm } : {}),
    ...(r.checksum_type !== null ? { checksumType: r.checksum_type } : {}),
    createdAt: r.created_at,
    ...(r.completing_at !== null ? { completingAt: r.completing_at } : {}),
    ...(r.manifest_hash !== null ? { manifestHash: bytes(r.manifest_hash) } : {}),
    ...(r.completion !== null && r.completion !== undefined ? { completion: bytes(r.completion) } : {}),
    ...(typeof r.tagging === "string" ? { tags: JSON.parse(r.tagging) as Tag[] } : {}),
    ...(typeof r.sse_c === "string" ? { customer: decodeSseC(r.sse_c) } : {}),
    ...(r.external_bucket_key === 1 ? { externalBucketKey: true as const } : {}),
  };
}

function toCompletion(r: CompletionRow): CompletionRecord {
  return {
    uploadId: r.upload_id,
    bucket: r.bucket,
    key: r.object_key,
    tenantId: r.tenant_id,
    mode: readMode(r.mode, r.key_arn),
    keyArn: r.key_arn,
    ...(r.context !== null ? { context: r.context } : {}),
    bucketKeyEnabled: r.bucket_key === 1,
    masterVersion: r.master_version,
    ...(r.checksum_type !== null ? { checksumType: r.checksum_type } : {}),
    result: bytes(r.result),
    completedAt: r.completed_at,
  };
}

function toPart(r: PartRow): PartRecord {
  return { partNumber: r.part_number, attempt: r.attempt, size: r.size, salt: bytes(r.salt), facts: bytes(r.facts), uploadedAt: r.uploaded_at };
}

function toObject(r: ObjectRow): MultipartObjectRecord {
  return {
    uploadId: r.upload_id,
    bucket: r.bucket,
    key: r.object_key,
    manifestHash: bytes(r.manifest_hash),
    createdAt: r.created_at,
    ...(r.dead_since !== null ? { deadSince: r.dead_since } : {}),
  };
}

/** Outcome of recording a part: the attempt it replaced (whose R2 data is now garbage). */
export type RecordedPart = { recorded: true; replaced?: string } | { recorded: false };

export class UploadStore {
  constructor(private readonly db: D1Database) {}

  async create(u: NewUpload): Promise<void> {
    await this.db
      .prepare(
        `INSERT INTO multipart_uploads (upload_id, bucket, object_key, tenant_id, initiator_id, initiator_name, mode, key_arn, key_version,
           master_version, wrapped_key, context, bucket_key, http, user_metadata, checksum_algorithm, checksum_type, created_at, sse_c,
           external_bucket_key)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .bind(
        u.uploadId,
        u.bucket,
        u.key,
        u.tenantId,
        u.initiatorId,
        u.initiatorName,
        storedMode(u.mode),
        u.mode === "SSE-C" ? "" : u.keyArn,
        u.keyVersion,
        u.masterVersion,
        u.wrappedKey,
        u.context ?? null,
        u.bucketKeyEnabled ? 1 : 0,
        JSON.stringify(u.http),
        JSON.stringify(u.userMetadata),
        u.checksumAlgorithm ?? null,
        u.checksumType ?? null,
        u.createdAt,
        u.customer ? encodeSseC(u.customer) : null,
        u.externalBucketKey ? 1 : 0,
      )
      .run();
  }

  async get(uploadId: string): Promise<UploadRecord | null> {
    const row = await this.db.prepare("SELECT * FROM multipart_uploads WHERE upload_id = ?").bind(uploadId).first<UploadRow>();
    return row ? toUpload(row) : null;
  }

  /**
   * Records a part's current attempt, only while the upload is active: one transaction
   * reads the attempt it replaces, bumps the upload's parts_version (so a complete that
   * read the parts before cannot commit) and upserts the part.
   */
  async recordPart(uploadId: string, part: PartRecord): Promise<RecordedPart> {
    const [previous, bumped] = await this.db.batch([
      this.db.prepare("SELECT attempt FROM multipart_parts WHERE upload_id = ? AND part_number = ?").bind(uploadId, part.partNumber),
      this.db.prepare("UPDATE multipart_uploads SET parts_version = parts_version + 1 WHERE upload_id = ? AND state = 'active'").bind(uploadId),
      this.db
        .prepare(
          `INSERT INTO multipart_parts (upload_id, part_number, attempt, size, salt, facts, uploaded_at)
           SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7 WHERE EXISTS (SELECT 1 FROM multipart_uploads WHERE upload_id = ?1 AND state = 'active')
           ON CONFLICT (upload_id, part_number) DO UPDATE SET attempt = excluded.attempt, size = excluded.size, salt = excluded.salt,
             facts = excluded.facts, uploaded_at = excluded.uploaded_at`,
        )
        .bind(uploadId, part.partNumber, part.attempt, part.size, part.salt, part.facts, part.uploadedAt),
    ]);
    if ((bumped!.meta.changes ?? 0) === 0) return { recorded: false };
    const replaced = (previous!.results[0] as { attempt?: string } | undefined)?.attempt;
    return replaced !== undefined && replaced !== part.attempt ? { recorded: true, replaced } : { recorded: true };
  }

  /** Parts with numbers above `after`, ascending, at most `limit` (ListParts pages). */
  async listParts(uploadId: string, after: number, limit: number): Promise<PartRecord[]> {
    const { results } = await this.db
      .prepare("SELECT * FROM multipart_parts WHERE upload_id = ? AND part_number > ? ORDER BY part_number LIMIT ?")
      .bind(uploadId, after, limit)
      .all<PartRow>();
    return results.map(toPart);
  }

  async allParts(uploadId: string): Promise<PartRecord[]> {
    const { results } = await this.db.prepare("SELECT * FROM multipart_parts WHERE upload_id = ? ORDER BY part_number").bind(uploadId).all<PartRow>();
    return results.map(toPart);
  }

  /**
   * Takes an active upload for completion if no part changed since its parts were read
   * (`partsVersion`), with the sealed result it is about to write (`completion`, which
   * becomes the completion record when it finishes).
   */
  async claim(uploadId: string, partsVersion: number, manifestHash: Uint8Array, now: number, completion?: Uint8Array): Promise<boolean> {
    const result = await this.db
      .prepare(
        `UPDATE multipart_uploads SET state = 'completing', completing_at = ?, manifest_hash = ?, completion = ?
         WHERE upload_id = ? AND parts_version = ? AND state = 'active'`,
      )
      .bind(now, manifestHash, completion ?? null, uploadId, partsVersion)
      .run();
    return (result.meta.changes ?? 0) > 0;
  }

  /** Gives a claimed upload back (the complete failed before its manifest was written). */
  async unclaim(uploadId: string, completingAt: number): Promise<void> {
    await this.db
      .prepare("UPDATE multipart_uploads SET state = 'active', completing_at = NULL, manifest_hash = NULL, completion = NULL WHERE upload_id = ? AND completing_at = ?")
      .bind(uploadId, completingAt)
      .run();
  }

  /**
   * The upload became an object: its part data now belongs to the object's row, and the
   * result its claim recorded becomes the completion record (retried Completes answer it).
   * Idempotent: whoever settles a complete (itself, a retry, the cron job) may call it.
   */
  async finish(upload: UploadRecord, manifestHash: Uint8Array, now: number): Promise<void> {
    await this.db.batch([
      this.db
        .prepare(
          `INSERT OR IGNORE INTO multipart_completions (upload_id, bucket, object_key, tenant_id, mode, key_arn, context, bucket_key, master_version,
             checksum_type, result, completed_at)
           SELECT upload_id, bucket, object_key, tenant_id, mode, key_arn, context, bucket_key, master_version, checksum_type, completion, ?2
           FROM multipart_uploads WHERE upload_id = ?1 AND completion IS NOT NULL`,
        )
        .bind(upload.uploadId, now),
      this.db
        .prepare("INSERT OR REPLACE INTO multipart_objects (upload_id, bucket, object_key, manifest_hash, created_at) VALUES (?, ?, ?, ?, ?)")
        .bind(upload.uploadId, upload.bucket, upload.key, manifestHash, now),
      this.db.prepare("DELETE FROM multipart_parts WHERE upload_id = ?").bind(upload.uploadId),
      this.db.prepare("DELETE FROM multipart_uploads WHERE upload_id = ?").bind(upload.uploadId),
    ]);
  }

  /** Removes an active upload and its part rows atomically; false when it is not active (gone, or being completed). */
  async remove(uploadId: string): Promise<boolean> {
    const active = "SELECT 1 FROM multipart_uploads WHERE upload_id = ?1 AND state = 'active'";
    const [, removed] = await this.db.batch([
      this.db.prepare(`DELETE FROM multipart_parts WHERE upload_id = ?1 AND EXISTS (${active})`).bind(uploadId),
      this.db.prepare("DELETE FROM multipart_uploads WHERE upload_id = ?1 AND state = 'active'").bind(uploadId),
    ]);
    return (removed!.meta.changes ?? 0) > 0;
  }

  /**
   * One tenant's uploads of a bucket in ListMultipartUploads order (key, then upload id,
   * which sorts by initiation time): those after (afterKey, afterUploadId) and with keys
   * from `from` on and before `before` (null: no upper bound). A range scan of
   * multipart_uploads_by_tenant_key that reads at most `limit` rows: the lower bound is one
   * row value (SQLite seeks on one lower bound per column, so `from` is folded into it).
   */
  async listUploads(bucket: string, tenantId: string, q: { afterKey: string; afterUploadId: string; from: string; before: string | null; limit: number }): Promise<UploadRecord[]> {
    // Every upload id is longer than "", so (from, "") admits the key `from` itself.
    const [key, id] = q.afterKey < q.from ? [q.from, ""] : [q.afterKey, q.afterUploadId];
    const upper = q.before === null ? "" : " AND object_key < ?6";
    const stmt = this.db.prepare(
      `SELECT * FROM multipart_uploads INDEXED BY multipart_uploads_by_tenant_key
       WHERE bucket = ?1 AND tenant_id = ?2 AND (object_key, upload_id) > (?3, ?4)${upper}
       ORDER BY object_key, upload_id LIMIT ?5`,
    );
    const args: unknown[] = [bucket, tenantId, key, id, q.limit];
    if (q.before !== null) args.push(q.before);
    const { results } = await stmt.bind(...args).all<UploadRow>();
    return results.map(toUpload);
  }

  /** Upload ids of a bucket (DeleteBucket aborts them all). */
  async uploadIdsIn(bucket: string, limit: number): Promise<string[]> {
    const { results } = await this.db.prepare("SELECT upload_id FROM multipart_uploads WHERE bucket = ? LIMIT ?").bind(bucket, limit).all<{ upload_id: string }>();
    return results.map((r) => r.upload_id);
  }

  /**
   * Uploads to retire: active ones initiated before `expiredBefore`, ones whose bucket is
   * gone (or now belongs to another tenant), and completes that stalled before `staleBefore`.
   */
  async dueForCleanup(expiredBefore: number, staleBefore: number, limit: number): Promise<UploadRecord[]> {
    const { results } = await this.db
      .prepare(
        `SELECT u.* FROM multipart_uploads u
         WHERE (u.state = 'active' AND u.created_at < ?1)
            OR (u.state = 'completing' AND u.completing_at < ?2)
            OR NOT EXISTS (SELECT 1 FROM buckets b WHERE b.name = u.bucket AND b.tenant_id = u.tenant_id)
         ORDER BY u.created_at LIMIT ?3`,
      )
      .bind(expiredBefore, staleBefore, limit)
      .all<UploadRow>();
    return results.map(toUpload);
  }

  /** Completed-object rows for these keys of a bucket (one statement: keys as a JSON array). */
  async objectsAt(bucket: string, keys: string[]): Promise<MultipartObjectRecord[]> {
    if (keys.length === 0) return [];
    const { results } = await this.db
      .prepare("SELECT * FROM multipart_objects WHERE bucket = ? AND object_key IN (SELECT value FROM json_each(?))")
      .bind(bucket, JSON.stringify(keys))
      .all<ObjectRow>();
    return results.map(toObject);
  }

  /** Rows of a bucket not yet marked dead (DeleteBucket marks them). */
  async unmarkedObjectsIn(bucket: string, limit: number): Promise<MultipartObjectRecord[]> {
    const { results } = await this.db
      .prepare("SELECT * FROM multipart_objects WHERE bucket = ? AND dead_since IS NULL LIMIT ?")
      .bind(bucket, limit)
      .all<ObjectRow>();
    return results.map(toObject);
  }

  /** Records when a manifest was first seen dead; an earlier mark is kept (the grace counts from it). */
  async markDead(uploadId: string, now: number): Promise<void> {
    await this.db.prepare("UPDATE multipart_objects SET dead_since = ? WHERE upload_id = ? AND dead_since IS NULL").bind(now, uploadId).run();
  }

  /** The manifest is live again (a re-put by the rewrap job): only a mark still as read is cleared. */
  async clearDead(uploadId: string, deadSince: number): Promise<void> {
    await this.db.prepare("UPDATE multipart_objects SET dead_since = NULL WHERE upload_id = ? AND dead_since = ?").bind(uploadId, deadSince).run();
  }

  /** The record a completed upload left for retried Completes, if still kept. */
  async getCompletion(uploadId: string): Promise<CompletionRecord | null> {
    const row = await this.db.prepare("SELECT * FROM multipart_completions WHERE upload_id = ?").bind(uploadId).first<CompletionRow>();
    return row ? toCompletion(row) : null;
  }

  /** Deletes up to `limit` completion records made at or before `before`; returns how many went. */
  async expireCompletions(before: number, limit: number): Promise<number> {
    const result = await this.db
      .prepare("DELETE FROM multipart_completions WHERE upload_id IN (SELECT upload_id FROM multipart_completions WHERE completed_at <= ? LIMIT ?)")
      .bind(before, limit)
      .run();
    return result.meta.changes ?? 0;
  }

  /** DeleteBucket: its uploads' completion records go with it. */
  async forgetCompletionsIn(bucket: string): Promise<void> {
    await this.db.prepare("DELETE FROM multipart_completions WHERE bucket = ?").bind(bucket).run();
  }

  async forgetObject(uploadId: string): Promise<void> {
    await this.db.prepare("DELETE FROM multipart_objects WHERE upload_id = ?").bind(uploadId).run();
  }

  /** Which of these ids D1 knows, as uploads in progress or as completed objects. */
  async lookup(ids: string[]): Promise<{ uploads: Set<string>; objects: Map<string, MultipartObjectRecord> }> {
    if (ids.length === 0) return { uploads: new Set(), objects: new Map() };
    const list = JSON.stringify(ids);
    const [uploads, objects] = await this.db.batch([
      this.db.prepare("SELECT upload_id FROM multipart_uploads WHERE upload_id IN (SELECT value FROM json_each(?))").bind(list),
      this.db.prepare("SELECT * FROM multipart_objects WHERE upload_id IN (SELECT value FROM json_each(?))").bind(list),
    ]);
    return {
      uploads: new Set((uploads!.results as Array<{ upload_id: string }>).map((r) => r.upload_id)),
      objects: new Map((objects!.results as ObjectRow[]).map((r) => [r.upload_id, toObject(r)])),
    };
  }

  async sweepCursor(name: string): Promise<string | null> {
    const row = await this.db.prepare("SELECT cursor FROM multipart_sweeps WHERE name = ?").bind(name).first<{ cursor: string | null }>();
    return row?.cursor ?? null;
  }

  async saveSweepCursor(name: string, cursor: string | null, now: number): Promise<void> {
    await this.db
      .prepare("INSERT INTO multipart_sweeps (name, cursor, updated_at) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at")
      .bind(name, cursor, now)
      .run();
  }
}
