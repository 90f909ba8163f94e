import { keyFromRow, type KeyState, type KmsKey } from "./registry";

/**
 * State changes of CMKs in D1 (the KMS API and the scheduled lifecycle job call these).
 * Every change is a single conditional statement or a D1 batch (one transaction), so two
 * concurrent callers cannot both win a transition: the loser sees `false` / null and the
 * caller re-reads the row to explain why.
 */
export const DAY_MS = 24 * 60 * 60 * 1000;
/** AWS-managed keys rotate yearly; the default key's rotation status is therefore always true. */
export const DEFAULT_KEY_ROTATION_DAYS = 365;
/** AWS allows this many on-demand rotations per key. */
export const MAX_ON_DEMAND_ROTATIONS = 25;

export type RotationType = "AUTOMATIC" | "ON_DEMAND";

export interface KeyVersion {
  version: number;
  createdAt: number;
  rotationType: RotationType | null;
}

type Row = Parameters<typeof keyFromRow>[0];

export class KeyLifecycle {
  constructor(private readonly db: D1Database) {}

  /** The tenant's visible keys (customer and default; never the SSE-S3 service key or destroyed keys), by id. */
  async list(tenantId: string, region: string, afterId: string | null, limit: number): Promise<KmsKey[]> {
    const { results } = await this.db
      .prepare(
        `SELECT * FROM kms_keys WHERE tenant_id = ? AND region = ? AND kind != 'service' AND state != 'Destroyed' AND id > ?
         ORDER BY id LIMIT ?`,
      )
      .bind(tenantId, region, afterId ?? "", limit)
      .all<Row>();
    return results.map(keyFromRow);
  }

  /** Moves a key from one of `from` to `to`; false when its state was not one of them. */
  async transition(id: string, from: KeyState[], to: KeyState, now = Date.now()): Promise<boolean> {
    const marks = from.map(() => "?").join(", ");
    const result = await this.db
      .prepare(`UPDATE kms_keys SET state = ?, deletion_at = NULL, updated_at = ? WHERE id = ? AND state IN (${marks})`)
      .bind(to, now, id, ...from)
      .run();
    return result.meta.changes > 0;
  }

  async scheduleDeletion(id: string, deletionAt: number, now = Date.now()): Promise<boolean> {
    const result = await this.db
      .prepare("UPDATE kms_keys SET state = 'PendingDeletion', deletion_at = ?, updated_at = ? WHERE id = ? AND state IN ('Enabled', 'Disabled')")
      .bind(deletionAt, now, id)
      .run();
    return result.meta.changes > 0;
  }

  /** AWS leaves a key whose deletion was cancelled Disabled. */
  cancelDeletion(id: string, now = Date.now()): Promise<boolean> {
    return this.transition(id, ["PendingDeletion"], "Disabled", now);
  }

  async setRotation(id: string, enabled: boolean, periodDays: number | null, now = Date.now()): Promise<void> {
    await this.db
      .prepare("UPDATE kms_keys SET rotation_enabled = ?, rotation_period_days = ?, next_rotation_at = ?, updated_at = ? WHERE id = ?")
      .bind(enabled ? 1 : 0, enabled ? periodDays : null, enabled && periodDays ? now + periodDays * DAY_MS : null, now, id)
      .run();
  }

  /**
   * Adds a key version with fresh material and makes it current, atomically: the version
   * row is derived from current_version inside the same transaction, so concurrent
   * rotations produce consecutive versions and never share one. Only Enabled keys rotate.
   * Returns the new version, or null when the key was not Enabled.
   */
  async rotate(id: string, type: RotationType, now = Date.now()): Promise<number | null> {
    const material = crypto.getRandomValues(new Uint8Array(32));
    const [insert] = await this.db.batch([
      this.db
        .prepare(
          `INSERT INTO kms_key_versions (key_id, version, material, created_at, rotation_type)
           SELECT id, current_version + 1, ?, ?, ? FROM kms_keys WHERE id = ? AND state = 'Enabled'`,
        )
        .bind(material, now, type, id),
      this.db
        .prepare(
          `UPDATE kms_keys SET current_version = current_version + 1, updated_at = ?,
             next_rotation_at = CASE WHEN rotation_enabled = 1 AND ? = 'AUTOMATIC' THEN ? + rotation_period_days * ? ELSE next_rotation_at END
           WHERE id = ? AND state = 'Enabled'
             AND EXISTS (SELECT 1 FROM kms_key_versions v WHERE v.key_id = kms_keys.id AND v.version = kms_keys.current_version + 1)`,
        )
        .bind(now, type, now, DAY_MS, id),
    ]);
    material.fill(0);
    if (!insert || insert.meta.changes === 0) return null;
    const row = await this.db.prepare("SELECT current_version FROM kms_keys WHERE id = ?").bind(id).first<{ current_version: number }>();
    return row?.current_version ?? null;
  }

  async versions(id: string): Promise<KeyVersion[]> {
    const { results } = await this.db
      .prepare("SELECT version, created_at, rotation_type FROM kms_key_versions WHERE key_id = ? ORDER BY version")
      .bind(id)
      .all<{ version: number; created_at: number; rotation_type: RotationType | null }>();
    return results.map((r) => ({ version: r.version, createdAt: r.created_at, rotationType: r.rotation_type }));
  }

  async onDemandRotations(id: string): Promise<number> {
    const row = await this.db
      .prepare("SELECT count(*) AS n FROM kms_key_versions WHERE key_id = ? AND rotation_type = 'ON_DEMAND'")
      .bind(id)
      .first<{ n: number }>();
    return row?.n ?? 0;
  }

  /** Keys whose deletion window has ended (the lifecycle job destroys them). */
  async dueForDestruction(now: number, limit: number): Promise<string[]> {
    const { results } = await this.db
      .prepare("SELECT id FROM kms_keys WHERE state = 'PendingDeletion' AND deletion_at <= ? ORDER BY deletion_at LIMIT ?")
      .bind(now, limit)
      .all<{ id: string }>();
    return results.map((r) => r.id);
  }

  /**
   * Crypto-shredding: the key's version material rows are deleted and the key marked
   * Destroyed, in one transaction, and only if it is still PendingDeletion with its window
   * over (a CancelKeyDeletion racing the job wins or loses as a whole). Without the
   * material no KEK can be derived again, so every data key wrapped under this CMK — and
   * with it every object — is unrecoverable. Aliases go with the key, as in AWS (and an
   * external key's binding and bucket keys: the external ciphertext of its material went with the versions). The row
   * itself stays (state Destroyed) so reads can say why an object is gone.
   */
  async destroy(id: string, now: number): Promise<boolean> {
    const [update] = await this.db.batch([
      this.db
        .prepare("UPDATE kms_keys SET state = 'Destroyed', updated_at = ? WHERE id = ? AND state = 'PendingDeletion' AND deletion_at <= ?")
        .bind(now, id, now),
      this.db.prepare("DELETE FROM kms_key_versions WHERE key_id = ? AND EXISTS (SELECT 1 FROM kms_keys WHERE id = ? AND state = 'Destroyed')").bind(id, id),
      this.db.prepare("DELETE FROM kms_aliases WHERE key_id = ? AND EXISTS (SELECT 1 FROM kms_keys WHERE id = ? AND state = 'Destroyed')").bind(id, id),
      // A key rooted in an external KMS: its credentials are of no further use here.
      this.db.prepare("DELETE FROM kms_external_keys WHERE key_id = ? AND EXISTS (SELECT 1 FROM kms_keys WHERE id = ? AND state = 'Destroyed')").bind(id, id),
      // …and its bucket keys (external ciphertexts too; no longer decryptable nor needed).
      this.db.prepare("DELETE FROM external_bucket_keys WHERE key_id = ? AND EXISTS (SELECT 1 FROM kms_keys WHERE id = ? AND state = 'Destroyed')").bind(id, id),
    ]);
    return (update?.meta.changes ?? 0) > 0;
  }

  /**
   * Keys due an automatic rotation: customer keys with rotation enabled whose date passed,
   * and default (AWS-managed) keys whose newest version is a year old.
   */
  async dueForRotation(now: number, limit: number): Promise<string[]> {
    const { results } = await this.db
      .prepare(
        `SELECT id FROM kms_keys WHERE state = 'Enabled' AND (
           (kind = 'customer' AND rotation_enabled = 1 AND next_rotation_at <= ?)
           OR (kind = 'default' AND (SELECT max(created_at) FROM kms_key_versions v WHERE v.key_id = kms_keys.id) <= ?)
         ) LIMIT ?`,
      )
      .bind(now, now - DEFAULT_KEY_ROTATION_DAYS * DAY_MS, limit)
      .all<{ id: string }>();
    return results.map((r) => r.id);
  }

  /** When the default key's next yearly rotation is due. */
  async defaultKeyNextRotation(id: string): Promise<number> {
    const row = await this.db
      .prepare("SELECT max(created_at) AS at FROM kms_key_versions WHERE key_id = ?")
      .bind(id)
      .first<{ at: number | null }>();
    return (row?.at ?? Date.now()) + DEFAULT_KEY_ROTATION_DAYS * DAY_MS;
  }
}
