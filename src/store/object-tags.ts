/**
 * Object tag sets in D1 (migrations/0005_object_tags.sql). R2 has no metadata-only update
 * and tags change after an object is written, so they cannot live in the object's
 * envelope; they are kept per key together with the identity of the object version they
 * belong to — its R2 etag — so a tag set never attaches to a later object at the same key
 * and never outlives its version (a stale row reads as no tags).
 */
export interface Tag {
  key: string;
  value: string;
}

/** The stored version a tag set belongs to: R2's etag and upload time of the object. */
export interface ObjectVersion {
  r2Etag: string;
  uploaded: number;
}

export class ObjectTagStore {
  constructor(private readonly db: D1Database) {}

  /** The tags of exactly this version of bucket/key (empty when it has none). */
  async get(bucket: string, key: string, version: ObjectVersion): Promise<Tag[]> {
    const row = await this.db
      .prepare("SELECT r2_etag, tags FROM object_tags WHERE bucket = ? AND object_key = ?")
      .bind(bucket, key)
      .first<{ r2_etag: string; tags: string }>();
    if (!row || row.r2_etag !== version.r2Etag) return [];
    return JSON.parse(row.tags) as Tag[];
  }

  /**
   * Sets the tag set of this version (an empty set clears it). Ignored when the row already
   * belongs to a version uploaded later: a tag write racing an overwrite never takes the
   * newer object's tags away. The bucket is marked as holding tags in the same batch.
   */
  async put(bucket: string, key: string, version: ObjectVersion, tags: Tag[]): Promise<void> {
    await this.db.batch([
      this.db.prepare("UPDATE buckets SET has_object_tags = 1 WHERE name = ? AND has_object_tags = 0").bind(bucket),
      this.db
        .prepare(
          `INSERT INTO object_tags (bucket, object_key, r2_etag, uploaded, tags) VALUES (?, ?, ?, ?, ?)
           ON CONFLICT (bucket, object_key) DO UPDATE SET r2_etag = excluded.r2_etag, uploaded = excluded.uploaded, tags = excluded.tags
           WHERE excluded.uploaded >= object_tags.uploaded`,
        )
        .bind(bucket, key, version.r2Etag, version.uploaded, JSON.stringify(tags)),
    ]);
  }

  /** Drops every row of a deleted bucket (a bucket of the same name starts without tags). */
  async deleteBucket(bucket: string): Promise<void> {
    await this.db.prepare("DELETE FROM object_tags WHERE bucket = ?").bind(bucket).run();
  }

  /** Records the tags CreateMultipartUpload was given; Complete applies them. */
  async putUploadTags(uploadId: string, tags: Tag[]): Promise<void> {
    await this.db.prepare("UPDATE multipart_uploads SET tagging = ? WHERE upload_id = ?").bind(JSON.stringify(tags), uploadId).run();
  }
}
