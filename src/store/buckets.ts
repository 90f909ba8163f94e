/** Logical S3 buckets (D1 rows); their objects live under "<name>/" in the R2 binding. */
export interface Bucket {
  name: string;
  tenantId: string;
  region: string;
  createdAt: number;
  /** Default encryption configuration (JSON of DefaultEncryption), policy text, CORS rules (JSON). */
  encryption: string | null;
  policy: string | null;
  cors: string | null;
  /** Lifecycle rules, Block Public Access configuration, bucket tags (JSON each; see src/s3/handlers/lifecycle.ts, public-access.ts, tagging.ts). */
  lifecycle: string | null;
  publicAccessBlock: string | null;
  tagging: string | null;
  /** Some object in the bucket has (or had) tags: GET/HEAD look them up (else 0 queries). */
  hasObjectTags: boolean;
  /** Encryption types new objects may not use (PutBucketEncryption BlockedEncryptionTypes): [] or ["SSE-C"]. */
  blockedEncryptionTypes: string[];
}

interface BucketRow {
  name: string;
  tenant_id: string;
  region: string;
  created_at: number;
  encryption: string | null;
  policy: string | null;
  cors: string | null;
  lifecycle: string | null;
  public_access_block: string | null;
  tagging: string | null;
  has_object_tags?: number;
  blocked_encryption_types?: string | null;
}

const fromRow = (r: BucketRow): Bucket => ({
  name: r.name,
  tenantId: r.tenant_id,
  region: r.region,
  createdAt: r.created_at,
  encryption: r.encryption,
  policy: r.policy,
  cors: r.cors,
  lifecycle: r.lifecycle,
  publicAccessBlock: r.public_access_block,
  tagging: r.tagging,
  hasObjectTags: r.has_object_tags === 1,
  blockedEncryptionTypes: r.blocked_encryption_types ? (JSON.parse(r.blocked_encryption_types) as string[]) : [],
});

/**
 * Encryption types a new bucket blocks: SSE-C, as AWS does for new buckets since 2026 —
 * a key the gateway never holds cannot be recovered, re-keyed or moved to a new master
 * secret, and stolen write credentials plus a private key are a ransom tool. The owner
 * unblocks it with PutBucketEncryption (BlockedEncryptionTypes NONE).
 */
export const NEW_BUCKET_BLOCKED_ENCRYPTION = JSON.stringify(["SSE-C"]);

/**
 * Block Public Access of a new bucket when its tenant has no default: all four settings
 * on, as AWS creates buckets since April 2023.
 */
export const ALL_BLOCKED = JSON.stringify({ BlockPublicAcls: true, IgnorePublicAcls: true, BlockPublicPolicy: true, RestrictPublicBuckets: true });

/**
 * Bucket rows are read on every request, so each isolate caches them for the key-cache
 * TTL; writes made through this isolate update the cache at once, other isolates see them
 * within the TTL.
 */
const cache = new Map<string, { bucket: Bucket | null; at: number }>();

export type BucketSetting = "encryption" | "policy" | "cors" | "lifecycle" | "public_access_block" | "tagging" | "blocked_encryption_types";

export class BucketStore {
  constructor(
    private readonly db: D1Database,
    private readonly ttlMs: number,
  ) {}

  async get(name: string): Promise<Bucket | null> {
    const hit = cache.get(name);
    if (hit && Date.now() - hit.at < this.ttlMs) return hit.bucket;
    const row = await this.db.prepare("SELECT * FROM buckets WHERE name = ?").bind(name).first<BucketRow>();
    const bucket = row ? fromRow(row) : null;
    if (cache.size > 5000) cache.clear();
    cache.set(name, { bucket, at: Date.now() });
    return bucket;
  }

  /**
   * Inserts the bucket (with its tenant's Block Public Access default); returns the existing
   * row instead when the name is taken.
   */
  async create(input: { name: string; tenantId: string; region: string }): Promise<{ created: boolean; bucket: Bucket }> {
    const now = Date.now();
    const result = await this.db
      .prepare(
        `INSERT INTO buckets (name, tenant_id, region, created_at, public_access_block, blocked_encryption_types)
         VALUES (?1, ?2, ?3, ?4, COALESCE((SELECT public_access_block FROM tenants WHERE id = ?2), ?5), ?6)
         ON CONFLICT (name) DO NOTHING`,
      )
      .bind(input.name, input.tenantId, input.region, now, ALL_BLOCKED, NEW_BUCKET_BLOCKED_ENCRYPTION)
      .run();
    cache.delete(input.name);
    const bucket = (await this.get(input.name))!;
    return { created: result.meta.changes > 0, bucket };
  }

  async delete(name: string): Promise<void> {
    await this.db.prepare("DELETE FROM buckets WHERE name = ?").bind(name).run();
    cache.set(name, { bucket: null, at: Date.now() });
  }

  async listByTenant(tenantId: string): Promise<Bucket[]> {
    const { results } = await this.db.prepare("SELECT * FROM buckets WHERE tenant_id = ? ORDER BY name").bind(tenantId).all<BucketRow>();
    return results.map(fromRow);
  }

  async listAll(): Promise<Bucket[]> {
    const { results } = await this.db.prepare("SELECT * FROM buckets ORDER BY name").all<BucketRow>();
    return results.map(fromRow);
  }

  /** Drops this isolate's cached row (after a write made elsewhere, e.g. the object-tags flag). */
  forget(name: string): void {
    cache.delete(name);
  }

  async setSetting(name: string, setting: BucketSetting, value: string | null): Promise<void> {
    // `setting` is one of the fixed column names above, never user input.
    await this.db.prepare(`UPDATE buckets SET ${setting} = ? WHERE name = ?`).bind(value, name).run();
    cache.delete(name);
  }
}
