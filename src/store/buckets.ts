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
  /** Some object in the bucket has (or had) tags: GET/HEAD look them up (else 0 queries). */
  hasObjectTags: boolean;
}

interface BucketRow {
  name: string;
  tenant_id: string;
  region: string;
  created_at: number;
  encryption: string | null;
  policy: string | null;
  cors: string | null;
  has_object_tags?: number;
}

const fromRow = (r: BucketRow): Bucket => ({
  name: r.name,
  tenantId: r.tenant_id,
  region: r.region,
  createdAt: r.created_at,
  encryption: r.encryption,
  policy: r.policy,
  cors: r.cors,
  hasObjectTags: r.has_object_tags === 1,
});

/**
 * Bucket rows are read on every request, so each isolate caches them for the key-cache
 * TTL; writes made through this isolate update the cache at once, other isolates see them
 * within the TTL.
 */
const cache = new Map<string, { bucket: Bucket | null; at: number }>();

export type BucketSetting = "encryption" | "policy" | "cors";

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

  /** Inserts the bucket; returns the existing row instead when the name is taken. */
  async create(input: { name: string; tenantId: string; region: string }): Promise<{ created: boolean; bucket: Bucket }> {
    const now = Date.now();
    const result = await this.db
      .prepare("INSERT INTO buckets (name, tenant_id, region, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (name) DO NOTHING")
      .bind(input.name, input.tenantId, input.region, now)
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
    // `setting` is one of three fixed column names, never user input.
    await this.db.prepare(`UPDATE buckets SET ${setting} = ? WHERE name = ?`).bind(value, name).run();
    cache.delete(name);
  }
}
