import { seal, unseal } from "../crypto/keys";
import type { KeyService } from "../kms/service";
import { fromBase64, toBase64 } from "../util/bytes";

export type Role = "tenant_admin" | "member";

/** Who a request acts as, once its signature has been verified. */
export interface Principal {
  accessKeyId: string;
  userId: string;
  userName: string;
  role: Role;
  tenantId: string;
}

export interface Tenant {
  id: string;
  name: string;
  createdAt: number;
}

export interface User {
  id: string;
  tenantId: string;
  name: string;
  role: Role;
  createdAt: number;
}

export interface AccessKeyInfo {
  accessKeyId: string;
  userId: string;
  status: "Active" | "Inactive";
  masterVersion: number;
  createdAt: number;
}

const TENANT_ID = /^[a-z0-9]{32}$/;
const ACCESS_KEY_ID = /^[A-Z0-9]{8,128}$/;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Access-key lookups are cached briefly per isolate: a revoked key stops working within the TTL. */
const lookups = new Map<string, { value: { principal: Principal; secret: string } | null; at: number }>();

export class IdentityStore {
  constructor(
    private readonly db: D1Database,
    private readonly keys: KeyService,
    private readonly ttlMs: number,
  ) {}

  /** The principal and secret behind an access key id, or null if unknown or inactive. */
  async lookup(accessKeyId: string): Promise<{ principal: Principal; secret: string } | null> {
    const hit = lookups.get(accessKeyId);
    if (hit && Date.now() - hit.at < this.ttlMs) return hit.value;
    const row = await this.db
      .prepare(
        `SELECT k.access_key_id, k.secret_sealed, k.master_version, k.status, u.id AS user_id, u.name AS user_name, u.role, u.tenant_id
         FROM access_keys k JOIN users u ON u.id = k.user_id WHERE k.access_key_id = ?`,
      )
      .bind(accessKeyId)
      .first<{ access_key_id: string; secret_sealed: string; master_version: number; status: string; user_id: string; user_name: string; role: Role; tenant_id: string }>();
    let value: { principal: Principal; secret: string } | null = null;
    if (row && row.status === "Active") {
      const secret = await this.unsealSecret(row.access_key_id, row.secret_sealed, row.master_version);
      value = {
        principal: { accessKeyId: row.access_key_id, userId: row.user_id, userName: row.user_name, role: row.role, tenantId: row.tenant_id },
        secret,
      };
    }
    if (lookups.size > 1000) lookups.clear();
    lookups.set(accessKeyId, { value, at: Date.now() });
    return value;
  }

  async createTenant(input: { id?: string; name: string }): Promise<Tenant> {
    const id = input.id ?? crypto.randomUUID().replace(/-/g, "");
    if (!TENANT_ID.test(id)) throw new IdentityError("tenant id must be 32 lowercase letters or digits");
    const tenant = { id, name: input.name, createdAt: Date.now() };
    await this.db.prepare("INSERT INTO tenants (id, name, created_at) VALUES (?, ?, ?)").bind(tenant.id, tenant.name, tenant.createdAt).run();
    return tenant;
  }

  async getTenant(id: string): Promise<Tenant | null> {
    const row = await this.db.prepare("SELECT id, name, created_at FROM tenants WHERE id = ?").bind(id).first<{ id: string; name: string; created_at: number }>();
    return row ? { id: row.id, name: row.name, createdAt: row.created_at } : null;
  }

  /** The tenant's Block Public Access default for new buckets (JSON), or null when it has none (all four on). */
  async getPublicAccessBlockDefault(tenantId: string): Promise<string | null> {
    const row = await this.db.prepare("SELECT public_access_block FROM tenants WHERE id = ?").bind(tenantId).first<{ public_access_block: string | null }>();
    return row?.public_access_block ?? null;
  }

  async setPublicAccessBlockDefault(tenantId: string, value: string | null): Promise<boolean> {
    const result = await this.db.prepare("UPDATE tenants SET public_access_block = ? WHERE id = ?").bind(value, tenantId).run();
    return result.meta.changes > 0;
  }

  async listTenants(): Promise<Tenant[]> {
    const { results } = await this.db.prepare("SELECT id, name, created_at FROM tenants ORDER BY name").all<{ id: string; name: string; created_at: number }>();
    return results.map((r) => ({ id: r.id, name: r.name, createdAt: r.created_at }));
  }

  async createUser(input: { tenantId: string; name: string; role: Role; id?: string }): Promise<User> {
    if (input.role !== "tenant_admin" && input.role !== "member") throw new IdentityError("role must be tenant_admin or member");
    const user = { id: input.id ?? crypto.randomUUID(), tenantId: input.tenantId, name: input.name, role: input.role, createdAt: Date.now() };
    await this.db
      .prepare("INSERT INTO users (id, tenant_id, name, role, created_at) VALUES (?, ?, ?, ?, ?)")
      .bind(user.id, user.tenantId, user.name, user.role, user.createdAt)
      .run();
    return user;
  }

  async getUser(id: string): Promise<User | null> {
    const row = await this.db.prepare("SELECT * FROM users WHERE id = ?").bind(id).first<{ id: string; tenant_id: string; name: string; role: Role; created_at: number }>();
    return row ? { id: row.id, tenantId: row.tenant_id, name: row.name, role: row.role, createdAt: row.created_at } : null;
  }

  async findUser(tenantId: string, name: string): Promise<User | null> {
    const row = await this.db
      .prepare("SELECT * FROM users WHERE tenant_id = ? AND name = ?")
      .bind(tenantId, name)
      .first<{ id: string; tenant_id: string; name: string; role: Role; created_at: number }>();
    return row ? { id: row.id, tenantId: row.tenant_id, name: row.name, role: row.role, createdAt: row.created_at } : null;
  }

  async listUsers(tenantId: string): Promise<User[]> {
    const { results } = await this.db
      .prepare("SELECT * FROM users WHERE tenant_id = ? ORDER BY name")
      .bind(tenantId)
      .all<{ id: string; tenant_id: string; name: string; role: Role; created_at: number }>();
    return results.map((r) => ({ id: r.id, tenantId: r.tenant_id, name: r.name, role: r.role, createdAt: r.created_at }));
  }

  /** Creates an access key; generates the id and secret unless given (seeding, imports). */
  async createAccessKey(input: { userId: string; accessKeyId?: string; secret?: string }): Promise<{ accessKeyId: string; secret: string }> {
    const accessKeyId = input.accessKeyId ?? generateAccessKeyId();
    if (!ACCESS_KEY_ID.test(accessKeyId)) throw new IdentityError("access key id must be 8-128 uppercase letters or digits");
    const secret = input.secret ?? generateSecret();
    if (secret.length < 8 || secret.length > 128) throw new IdentityError("secret must be 8-128 characters");
    const masterVersion = this.keys.keyring.writeVersion;
    const sealed = await seal(await this.keys.accessKeySealKey(masterVersion), encoder.encode(secret), encoder.encode(accessKeyId));
    await this.db
      .prepare("INSERT INTO access_keys (access_key_id, user_id, secret_sealed, master_version, status, created_at) VALUES (?, ?, ?, ?, 'Active', ?)")
      .bind(accessKeyId, input.userId, toBase64(sealed), masterVersion, Date.now())
      .run();
    lookups.delete(accessKeyId);
    return { accessKeyId, secret };
  }

  async listAccessKeys(userId: string): Promise<AccessKeyInfo[]> {
    const { results } = await this.db
      .prepare("SELECT access_key_id, user_id, status, master_version, created_at FROM access_keys WHERE user_id = ? ORDER BY created_at")
      .bind(userId)
      .all<{ access_key_id: string; user_id: string; status: "Active" | "Inactive"; master_version: number; created_at: number }>();
    return results.map((r) => ({ accessKeyId: r.access_key_id, userId: r.user_id, status: r.status, masterVersion: r.master_version, createdAt: r.created_at }));
  }

  async setAccessKeyStatus(accessKeyId: string, status: "Active" | "Inactive"): Promise<boolean> {
    const result = await this.db.prepare("UPDATE access_keys SET status = ? WHERE access_key_id = ?").bind(status, accessKeyId).run();
    lookups.delete(accessKeyId);
    return result.meta.changes > 0;
  }

  async deleteAccessKey(accessKeyId: string): Promise<boolean> {
    const result = await this.db.prepare("DELETE FROM access_keys WHERE access_key_id = ?").bind(accessKeyId).run();
    lookups.delete(accessKeyId);
    return result.meta.changes > 0;
  }

  /** Re-seals access-key secrets still on older master versions (part of master rotation). */
  async resealSecrets(limit = 100): Promise<number> {
    const target = this.keys.keyring.writeVersion;
    const { results } = await this.db
      .prepare("SELECT access_key_id, secret_sealed, master_version FROM access_keys WHERE master_version != ? LIMIT ?")
      .bind(target, limit)
      .all<{ access_key_id: string; secret_sealed: string; master_version: number }>();
    for (const row of results) {
      const secret = await this.unsealSecret(row.access_key_id, row.secret_sealed, row.master_version);
      const sealed = await seal(await this.keys.accessKeySealKey(target), encoder.encode(secret), encoder.encode(row.access_key_id));
      await this.db
        .prepare("UPDATE access_keys SET secret_sealed = ?, master_version = ? WHERE access_key_id = ? AND master_version = ?")
        .bind(toBase64(sealed), target, row.access_key_id, row.master_version)
        .run();
    }
    return results.length;
  }

  private async unsealSecret(accessKeyId: string, sealedText: string, masterVersion: number): Promise<string> {
    const sealed = fromBase64(sealedText);
    if (!sealed) throw new Error(`access key ${accessKeyId} has a malformed sealed secret`);
    const key = await this.keys.accessKeySealKey(masterVersion);
    return decoder.decode(await unseal(key, sealed, encoder.encode(accessKeyId)));
  }
}

export class IdentityError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "IdentityError";
  }
}

function generateAccessKeyId(): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return "AK" + Array.from(bytes, (b) => alphabet[b & 31]).join("");
}

function generateSecret(): string {
  return toBase64(crypto.getRandomValues(new Uint8Array(30)));
}
