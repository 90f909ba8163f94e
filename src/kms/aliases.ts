/**
 * KMS aliases in D1 ("alias/<name>" → key id, per tenant and region). KeyService.resolve
 * already looks them up, so an alias works wherever an SSE-KMS key id is accepted.
 */
export interface Alias {
  name: string;
  keyId: string;
  createdAt: number;
  updatedAt: number;
}

interface AliasRow {
  name: string;
  key_id: string;
  created_at: number;
  updated_at: number;
}

const fromRow = (r: AliasRow): Alias => ({ name: r.name, keyId: r.key_id, createdAt: r.created_at, updatedAt: r.updated_at });

export class AliasStore {
  constructor(private readonly db: D1Database) {}

  async get(tenantId: string, region: string, name: string): Promise<Alias | null> {
    const row = await this.db
      .prepare("SELECT * FROM kms_aliases WHERE tenant_id = ? AND region = ? AND name = ?")
      .bind(tenantId, region, name)
      .first<AliasRow>();
    return row ? fromRow(row) : null;
  }

  /** Inserts the alias; false when the name is taken (the primary key decides races). */
  async create(tenantId: string, region: string, name: string, keyId: string, now = Date.now()): Promise<boolean> {
    const result = await this.db
      .prepare("INSERT INTO kms_aliases (tenant_id, region, name, key_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING")
      .bind(tenantId, region, name, keyId, now, now)
      .run();
    return result.meta.changes > 0;
  }

  async retarget(tenantId: string, region: string, name: string, keyId: string, now = Date.now()): Promise<boolean> {
    const result = await this.db
      .prepare("UPDATE kms_aliases SET key_id = ?, updated_at = ? WHERE tenant_id = ? AND region = ? AND name = ?")
      .bind(keyId, now, tenantId, region, name)
      .run();
    return result.meta.changes > 0;
  }

  async delete(tenantId: string, region: string, name: string): Promise<boolean> {
    const result = await this.db.prepare("DELETE FROM kms_aliases WHERE tenant_id = ? AND region = ? AND name = ?").bind(tenantId, region, name).run();
    return result.meta.changes > 0;
  }

  /** A page of the tenant's aliases by name, optionally only those of one key. */
  async list(tenantId: string, region: string, keyId: string | null, afterName: string | null, limit: number): Promise<Alias[]> {
    const { results } = await this.db
      .prepare(
        `SELECT * FROM kms_aliases WHERE tenant_id = ? AND region = ? AND (? IS NULL OR key_id = ?) AND name > ?
         ORDER BY name LIMIT ?`,
      )
      .bind(tenantId, region, keyId, keyId, afterName ?? "", limit)
      .all<AliasRow>();
    return results.map(fromRow);
  }
}
