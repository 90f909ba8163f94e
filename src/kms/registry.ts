import { keyArn } from "./arn";

/** Rows of the KMS key registry in D1 (migrations/0001_init.sql). */
export type KeyKind = "customer" | "default" | "service";
export type KeyState = "Enabled" | "Disabled" | "PendingDeletion" | "Destroyed";
/** AWS_KMS: material in D1; EXTERNAL_KEY_STORE: material wrapped by an external KMS (src/kms/external.ts). */
export type KeyOrigin = "AWS_KMS" | "EXTERNAL_KEY_STORE";

export interface KmsKey {
  id: string;
  arn: string;
  tenantId: string;
  region: string;
  kind: KeyKind;
  state: KeyState;
  origin: KeyOrigin;
  description: string;
  currentVersion: number;
  rotationEnabled: boolean;
  rotationPeriodDays: number | null;
  nextRotationAt: number | null;
  deletionAt: number | null;
  createdAt: number;
  updatedAt: number;
}

interface KeyRow {
  id: string;
  tenant_id: string;
  region: string;
  kind: KeyKind;
  state: KeyState;
  /** Absent before migration 0009. */
  origin?: KeyOrigin;
  description: string;
  current_version: number;
  rotation_enabled: number;
  rotation_period_days: number | null;
  next_rotation_at: number | null;
  deletion_at: number | null;
  created_at: number;
  updated_at: number;
}

export function keyFromRow(row: KeyRow): KmsKey {
  return {
    id: row.id,
    arn: keyArn(row.region, row.tenant_id, row.id),
    tenantId: row.tenant_id,
    region: row.region,
    kind: row.kind,
    state: row.state,
    origin: row.origin ?? "AWS_KMS",
    description: row.description,
    currentVersion: row.current_version,
    rotationEnabled: row.rotation_enabled === 1,
    rotationPeriodDays: row.rotation_period_days,
    nextRotationAt: row.next_rotation_at,
    deletionAt: row.deletion_at,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export class KeyRegistry {
  constructor(private readonly db: D1Database) {}

  async get(id: string): Promise<KmsKey | null> {
    const row = await this.db.prepare("SELECT * FROM kms_keys WHERE id = ?").bind(id).first<KeyRow>();
    return row ? keyFromRow(row) : null;
  }

  async getByAlias(tenantId: string, region: string, alias: string): Promise<KmsKey | null> {
    const row = await this.db
      .prepare("SELECT k.* FROM kms_aliases a JOIN kms_keys k ON k.id = a.key_id WHERE a.tenant_id = ? AND a.region = ? AND a.name = ?")
      .bind(tenantId, region, alias)
      .first<KeyRow>();
    return row ? keyFromRow(row) : null;
  }

  async getOfKind(tenantId: string, region: string, kind: "default" | "service"): Promise<KmsKey | null> {
    const row = await this.db
      .prepare("SELECT * FROM kms_keys WHERE tenant_id = ? AND region = ? AND kind = ?")
      .bind(tenantId, region, kind)
      .first<KeyRow>();
    return row ? keyFromRow(row) : null;
  }

  /**
   * Creates a key with its first version. For 'default' and 'service' keys the unique
   * index makes concurrent creators collide; the losers' inserts do nothing and everyone
   * reads back the one winning row.
   */
  async create(input: { tenantId: string; region: string; kind: KeyKind; description?: string; now?: number }): Promise<KmsKey> {
    const id = crypto.randomUUID();
    const now = input.now ?? Date.now();
    const material = crypto.getRandomValues(new Uint8Array(32));
    await this.db.batch([
      this.db
        .prepare(
          `INSERT INTO kms_keys (id, tenant_id, region, kind, state, description, current_version, created_at, updated_at)
           VALUES (?, ?, ?, ?, 'Enabled', ?, 1, ?, ?) ON CONFLICT DO NOTHING`,
        )
        .bind(id, input.tenantId, input.region, input.kind, input.description ?? "", now, now),
      this.db
        .prepare("INSERT INTO kms_key_versions (key_id, version, material, created_at) SELECT ?, 1, ?, ? WHERE EXISTS (SELECT 1 FROM kms_keys WHERE id = ?)")
        .bind(id, material, now, id),
    ]);
    if (input.kind === "customer") return (await this.get(id))!;
    const winner = await this.getOfKind(input.tenantId, input.region, input.kind);
    if (!winner) throw new Error("default key creation lost its row");
    return winner;
  }

  async ensureOfKind(tenantId: string, region: string, kind: "default" | "service"): Promise<KmsKey> {
    return (await this.getOfKind(tenantId, region, kind)) ?? this.create({ tenantId, region, kind, description: describe(kind) });
  }

  /** Material of one key version, or null once destroyed. */
  async material(keyId: string, version: number): Promise<Uint8Array | null> {
    const row = await this.db
      .prepare("SELECT material FROM kms_key_versions WHERE key_id = ? AND version = ?")
      .bind(keyId, version)
      .first<{ material: ArrayBuffer | number[] | null }>();
    if (!row?.material) return null;
    return new Uint8Array(row.material as ArrayBuffer);
  }
}

function describe(kind: "default" | "service"): string {
  return kind === "default" ? "Default key that protects my S3 objects when no other key is defined" : "Service-owned key for SSE-S3";
}
