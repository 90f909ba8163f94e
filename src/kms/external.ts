import { IntegrityError } from "../crypto/errors";
import { seal, unseal } from "../crypto/keys";
import { Errors, S3Error } from "../errors";
import { fromBase64, toBase64, toHex, utf8 } from "../util/bytes";
import { ExternalKmsError, callExternalKms, type ExternalTarget } from "./external-client";
import { keyArn } from "./arn";
import type { KmsKey } from "./registry";

/**
 * CMKs rooted in an external KMS (README, "Keys rooted in your KMS").
 *
 * Such a CMK's version material — the HKDF salt that, with the master secret, derives the
 * KEK and the KMS API key — is never stored in the clear: D1 holds the external KMS's
 * ciphertext of it (from one external GenerateDataKey when the version is created), bound
 * to an encryption context naming the tenant, the CMK and the version. To use the CMK the
 * gateway asks the external KMS to Decrypt that ciphertext and keeps the answer in the
 * isolate's memory for at most EXTERNAL_KEY_CACHE_SECONDS. So:
 *  - Cloudflare (D1 + master secret) cannot derive any key of the CMK without the external KMS;
 *  - disabling or deleting the external key stops new reads and writes within the cache period;
 *  - an object is only ever written under material the external KMS has just given back,
 *    so no object is written whose key cannot be unwrapped while the external key lives;
 *  - external calls: one Decrypt per (CMK version, isolate, cache period), however many objects.
 *
 * Objects (S3 writes and reads) do not use the version material but a bucket key, as S3
 * Bucket Keys do: 32 bytes from one external GenerateDataKey per (CMK version, bucket),
 * with an encryption context naming tenant, bucket, CMK and version; D1
 * (external_bucket_keys) keeps the external ciphertext of it. A bucket's objects then need
 * one external call per (CMK version, bucket, isolate, cache period): GenerateDataKey the
 * first time, Decrypt after. The KMS data-plane API (Encrypt, GenerateDataKey… on the
 * CMK) has no bucket and keeps the version material.
 */
export interface ExternalBindingInput {
  endpoint: string;
  region: string;
  externalKeyId: string;
  /** Sealed under the master secret in D1… */
  accessKeyId?: string;
  secretAccessKey?: string;
  /** …or read from the Worker secrets <name>_ACCESS_KEY_ID / <name>_SECRET_ACCESS_KEY. */
  credentialsSecret?: string;
}

/** What DescribeKey and the admin API show: never credentials. */
export interface ExternalBindingInfo {
  endpoint: string;
  region: string;
  externalKeyId: string;
  credentials: "sealed" | `secret:${string}`;
  customKeyStoreId: string;
}

interface BindingRow {
  key_id: string;
  endpoint: string;
  region: string;
  external_key_id: string;
  access_key_id: string | null;
  secret_sealed: ArrayBuffer | null;
  master_version: number | null;
  credentials_secret: string | null;
}

interface Binding {
  info: ExternalBindingInfo;
  target: ExternalTarget;
  externalKeyId: string;
}

export interface ExternalDeps {
  db: D1Database;
  env: Record<string, unknown>;
  /** The AES-GCM key that seals credentials for master version `v`, and the version to seal new ones with. */
  sealKey(masterVersion: number): Promise<CryptoKey>;
  writeVersion: number;
  cacheMs: number;
  timeoutMs: number;
}

/** Seconds a client is told to wait after the external KMS failed to answer. */
export const RETRY_AFTER_SECONDS = 5;
const SECRET_NAME = /^[A-Z][A-Z0-9_]{0,63}$/;

/** A root the external KMS gave back, and when. Keys derived from it are cached on the entry (KeyService), so they go with it. */
export interface Root {
  material: Uint8Array;
  at: number;
}

// Isolate caches: decrypted roots (the only copy of usable material) expire with the
// cache period; bindings (with unsealed credentials) follow the same period.
const roots = new Map<string, Root>();
const inflight = new Map<string, Promise<Root>>();
const bindings = new Map<string, { binding: Binding; at: number }>();
// Bucket keys, by "<CMK id>:<version>:<bucket>", with the same expiry as roots.
const bucketKeys = new Map<string, Root>();
const bucketInflight = new Map<string, Promise<Root>>();

/** Forget everything cached for a CMK (its state changed in this isolate). */
export function forgetExternal(keyId: string): void {
  bindings.delete(keyId);
  // Not zeroed: a request in flight may still be deriving from it; dropping the reference suffices.
  for (const name of [...roots.keys()]) if (name.startsWith(`${keyId}:`)) roots.delete(name);
  for (const name of [...bucketKeys.keys()]) if (name.startsWith(`${keyId}:`)) bucketKeys.delete(name);
}

/** The encryption context of a CMK version's material at the external KMS. */
export function rootContext(key: KmsKey, version: number): Record<string, string> {
  return { "s3-sse-gw:tenant": key.tenantId, "s3-sse-gw:cmk": key.arn, "s3-sse-gw:version": String(version) };
}

/** The encryption context of a bucket key at the external KMS (FORMAT.md §10). */
export function bucketKeyContext(key: KmsKey, version: number, bucket: string): Record<string, string> {
  return { "s3-sse-gw:tenant": key.tenantId, "s3-sse-gw:bucket": bucket, "s3-sse-gw:cmk": key.arn, "s3-sse-gw:version": String(version) };
}

export class ExternalRoots {
  constructor(private readonly deps: ExternalDeps) {}

  /**
   * The material of `key`'s `version`, fresh from the external KMS within the cache period.
   * Concurrent callers in one isolate share one external call.
   */
  async material(key: KmsKey, version: number): Promise<Root> {
    const name = `${key.id}:${version}`;
    const hit = roots.get(name);
    if (hit && Date.now() - hit.at < this.deps.cacheMs) return hit;
    if (hit) roots.delete(name);
    let pending = inflight.get(name);
    if (!pending) {
      pending = this.fetchMaterial(key, version).finally(() => inflight.delete(name));
      inflight.set(name, pending);
    }
    return pending;
  }

  /**
   * The bucket key of (`key`, `version`, `bucket`), fresh from the external KMS within the
   * cache period; concurrent callers in one isolate share one external call. `create`
   * (writers): a bucket without one gets one. Readers never create one: an object that
   * claims a bucket key its bucket does not have was not written here (IntegrityError).
   */
  async bucketKey(key: KmsKey, version: number, bucket: string, create: boolean): Promise<Root> {
    const name = `${key.id}:${version}:${bucket}`;
    const hit = bucketKeys.get(name);
    if (hit && Date.now() - hit.at < this.deps.cacheMs) return hit;
    if (hit) bucketKeys.delete(name);
    // Writers and readers do not share a fetch: a reader's "no bucket key" is not a writer's answer.
    const flight = `${name}:${create ? "w" : "r"}`;
    let pending = bucketInflight.get(flight);
    if (!pending) {
      pending = this.fetchBucketKey(key, version, bucket, create).finally(() => bucketInflight.delete(flight));
      bucketInflight.set(flight, pending);
    }
    return pending;
  }

  private async fetchBucketKey(key: KmsKey, version: number, bucket: string, create: boolean): Promise<Root> {
    const name = `${key.id}:${version}:${bucket}`;
    const stored = await this.storedBucketKey(key, version, bucket);
    if (stored) return this.decryptBucketKey(key, version, bucket, stored);
    if (!create) throw new IntegrityError("the object names a bucket key its bucket does not have");
    const { material, blob } = await externalGenerate(key, await this.binding(key), bucketKeyContext(key, version, bucket), this.deps.timeoutMs);
    // Concurrent first writes (other isolates): the first row stays, and a loser uses it —
    // one bucket key per (CMK version, bucket), whatever the race.
    const inserted = await this.deps.db
      .prepare("INSERT OR IGNORE INTO external_bucket_keys (key_id, version, bucket, external_blob, created_at) VALUES (?, ?, ?, ?, ?)")
      .bind(key.id, version, bucket, blob, Date.now())
      .run();
    if (inserted.meta.changes === 0) {
      material.fill(0);
      const winner = await this.storedBucketKey(key, version, bucket);
      if (!winner) throw new Error("external bucket key row vanished after a conflicting insert");
      return this.decryptBucketKey(key, version, bucket, winner);
    }
    const root = { material, at: Date.now() };
    bucketKeys.set(name, root);
    return root;
  }

  private async storedBucketKey(key: KmsKey, version: number, bucket: string): Promise<Uint8Array | null> {
    const row = await this.deps.db
      .prepare("SELECT external_blob FROM external_bucket_keys WHERE key_id = ? AND version = ? AND bucket = ?")
      .bind(key.id, version, bucket)
      .first<{ external_blob: ArrayBuffer }>();
    return row ? new Uint8Array(row.external_blob) : null;
  }

  private async decryptBucketKey(key: KmsKey, version: number, bucket: string, blob: Uint8Array): Promise<Root> {
    const material = await externalDecrypt(key, await this.binding(key), blob, bucketKeyContext(key, version, bucket), this.deps.timeoutMs);
    const root = { material, at: Date.now() };
    bucketKeys.set(`${key.id}:${version}:${bucket}`, root);
    return root;
  }

  private async fetchMaterial(key: KmsKey, version: number, given?: Binding): Promise<Root> {
    const row = await this.deps.db
      .prepare("SELECT external_blob FROM kms_key_versions WHERE key_id = ? AND version = ?")
      .bind(key.id, version)
      .first<{ external_blob: ArrayBuffer | null }>();
    if (!row?.external_blob) throw Errors.KmsNotFound({}, `Key '${key.arn}' version ${version} does not exist; its key material was destroyed`);
    const binding = given ?? (await this.binding(key));
    const material = await externalDecrypt(key, binding, new Uint8Array(row.external_blob), rootContext(key, version), this.deps.timeoutMs);
    const root = { material, at: Date.now() };
    roots.set(`${key.id}:${version}`, root);
    return root;
  }

  /**
   * New material for a version of an external CMK: one external GenerateDataKey. Returns
   * the ciphertext to store; the plaintext goes straight into the cache.
   */
  async generate(key: KmsKey, version: number, input: ExternalBindingInput): Promise<Uint8Array> {
    const { material, blob } = await externalGenerate(key, { target: this.targetOf(input), externalKeyId: input.externalKeyId }, rootContext(key, version), this.deps.timeoutMs);
    roots.set(`${key.id}:${version}`, { material, at: Date.now() });
    return blob;
  }

  /**
   * Creates a customer CMK of `tenantId` rooted in the external key: its first version's
   * material comes from one external GenerateDataKey (which also proves the endpoint, the
   * credentials and the key work), and the key, its version and the binding are stored in
   * one D1 batch — a binding that failed leaves nothing behind.
   */
  async createKey(tenantId: string, region: string, description: string, input: ExternalBindingInput, now = Date.now()): Promise<KmsKey> {
    const id = crypto.randomUUID();
    const key: KmsKey = {
      id,
      arn: keyArn(region, tenantId, id),
      tenantId,
      region,
      kind: "customer",
      state: "Enabled",
      origin: "EXTERNAL_KEY_STORE",
      description,
      currentVersion: 1,
      rotationEnabled: false,
      rotationPeriodDays: null,
      nextRotationAt: null,
      deletionAt: null,
      createdAt: now,
      updatedAt: now,
    };
    const blob = await this.generate(key, 1, input);
    const db = this.deps.db;
    await db.batch([
      db
        .prepare(
          `INSERT INTO kms_keys (id, tenant_id, region, kind, state, origin, description, current_version, created_at, updated_at)
           VALUES (?, ?, ?, 'customer', 'Enabled', 'EXTERNAL_KEY_STORE', ?, 1, ?, ?)`,
        )
        .bind(id, tenantId, region, description, now, now),
      db.prepare("INSERT INTO kms_key_versions (key_id, version, material, external_blob, created_at) VALUES (?, 1, NULL, ?, ?)").bind(id, blob, now),
      await this.bindStatement(id, input, now),
    ]);
    return key;
  }

  /**
   * Master-secret rotation: re-seals up to `limit` sealed credentials still under another
   * master version than `target` (the rewrap job calls this with its access keys). Each
   * update is conditional on the version it read, so two runners cannot undo each other.
   */
  async resealCredentials(target: number, limit: number): Promise<number> {
    const { results } = await this.deps.db
      .prepare("SELECT key_id, secret_sealed, master_version FROM kms_external_keys WHERE secret_sealed IS NOT NULL AND master_version != ? LIMIT ?")
      .bind(target, limit)
      .all<{ key_id: string; secret_sealed: ArrayBuffer; master_version: number }>();
    for (const row of results) {
      const secret = await unseal(await this.deps.sealKey(row.master_version), new Uint8Array(row.secret_sealed), utf8(row.key_id));
      const sealed = await seal(await this.deps.sealKey(target), secret, utf8(row.key_id));
      secret.fill(0);
      await this.deps.db
        .prepare("UPDATE kms_external_keys SET secret_sealed = ?, master_version = ?, updated_at = ? WHERE key_id = ? AND master_version = ?")
        .bind(sealed, target, Date.now(), row.key_id, row.master_version)
        .run();
      bindings.delete(row.key_id);
    }
    return results.length;
  }

  /** The statement that stores the binding (run in the caller's batch with the key's rows). */
  async bindStatement(keyId: string, input: ExternalBindingInput, now: number): Promise<D1PreparedStatement> {
    const { accessKeyId, sealed, masterVersion } = await this.storedCredentials(keyId, input);
    return this.deps.db
      .prepare(
        `INSERT INTO kms_external_keys (key_id, endpoint, region, external_key_id, access_key_id, secret_sealed, master_version, credentials_secret, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .bind(keyId, input.endpoint, input.region, input.externalKeyId, accessKeyId, sealed, masterVersion, input.credentialsSecret ?? null, now, now);
  }

  /**
   * Replaces an external CMK's credentials (rotated at the external KMS). The new ones must
   * decrypt the key's current root before they are stored, so a typo never locks the
   * key out; the answer is the binding as shown.
   */
  async updateCredentials(key: KmsKey, input: Pick<ExternalBindingInput, "accessKeyId" | "secretAccessKey" | "credentialsSecret">): Promise<ExternalBindingInfo> {
    const current = await this.binding(key);
    const next: ExternalBindingInput = { endpoint: current.info.endpoint, region: current.info.region, externalKeyId: current.externalKeyId, ...input };
    const invalid = this.validate(next);
    if (invalid) throw new BindingError(invalid);
    await this.fetchMaterial(key, key.currentVersion, { ...current, target: this.targetOf(next) });
    const { accessKeyId, sealed, masterVersion } = await this.storedCredentials(key.id, next);
    await this.deps.db
      .prepare("UPDATE kms_external_keys SET access_key_id = ?, secret_sealed = ?, master_version = ?, credentials_secret = ?, updated_at = ? WHERE key_id = ?")
      .bind(accessKeyId, sealed, masterVersion, next.credentialsSecret ?? null, Date.now(), key.id)
      .run();
    bindings.delete(key.id);
    return (await this.binding(key)).info;
  }

  /**
   * The credential columns of a binding: an access key id with its secret sealed under the
   * newest master version (bound to the key id), or all null when the credentials are
   * named Worker secrets.
   */
  private async storedCredentials(
    keyId: string,
    input: Pick<ExternalBindingInput, "accessKeyId" | "secretAccessKey" | "credentialsSecret">,
  ): Promise<{ accessKeyId: string | null; sealed: Uint8Array | null; masterVersion: number | null }> {
    if (input.credentialsSecret !== undefined) return { accessKeyId: null, sealed: null, masterVersion: null };
    const masterVersion = this.deps.writeVersion;
    const sealed = await seal(await this.deps.sealKey(masterVersion), utf8(input.secretAccessKey!), utf8(keyId));
    return { accessKeyId: input.accessKeyId!, sealed, masterVersion };
  }

  async info(key: KmsKey): Promise<ExternalBindingInfo | null> {
    if (key.origin !== "EXTERNAL_KEY_STORE") return null;
    return (await this.binding(key)).info;
  }

  /** Checks a binding request; returns the error text, or null when it is usable. */
  validate(input: ExternalBindingInput): string | null {
    let url: URL;
    try {
      url = new URL(input.endpoint);
    } catch {
      return "endpoint must be an http(s) URL";
    }
    if (url.protocol !== "https:" && url.protocol !== "http:") return "endpoint must be an http(s) URL";
    if (url.search !== "" || url.hash !== "" || url.username !== "" || url.password !== "") return "endpoint must not carry a query, fragment or user info";
    if (!/^[a-z0-9-]{1,32}$/.test(input.region)) return "region must be an AWS region name";
    if (input.externalKeyId.length < 1 || input.externalKeyId.length > 2048) return "externalKeyId must be 1-2048 characters";
    if (input.credentialsSecret !== undefined) {
      if (input.accessKeyId !== undefined || input.secretAccessKey !== undefined) return "give either credentialsSecret or accessKeyId + secretAccessKey, not both";
      if (!SECRET_NAME.test(input.credentialsSecret)) return "credentialsSecret must be an upper-case Worker secret name prefix";
      try {
        this.targetOf(input);
      } catch (error) {
        return (error as Error).message;
      }
      return null;
    }
    if (!input.accessKeyId || !input.secretAccessKey) return "accessKeyId and secretAccessKey (or credentialsSecret) are required";
    if (input.accessKeyId.length > 128 || input.secretAccessKey.length > 256) return "credentials are too long";
    return null;
  }

  private targetOf(input: ExternalBindingInput): ExternalTarget {
    if (input.credentialsSecret !== undefined) {
      const id = this.deps.env[`${input.credentialsSecret}_ACCESS_KEY_ID`];
      const secret = this.deps.env[`${input.credentialsSecret}_SECRET_ACCESS_KEY`];
      if (typeof id !== "string" || typeof secret !== "string" || id === "" || secret === "") {
        throw new Error(`Worker secrets ${input.credentialsSecret}_ACCESS_KEY_ID and ${input.credentialsSecret}_SECRET_ACCESS_KEY are not both set`);
      }
      return { endpoint: input.endpoint, region: input.region, credentials: { accessKeyId: id, secretAccessKey: secret } };
    }
    return { endpoint: input.endpoint, region: input.region, credentials: { accessKeyId: input.accessKeyId!, secretAccessKey: input.secretAccessKey! } };
  }

  private async binding(key: KmsKey): Promise<Binding> {
    const hit = bindings.get(key.id);
    if (hit && Date.now() - hit.at < this.deps.cacheMs) return hit.binding;
    const row = await this.deps.db.prepare("SELECT * FROM kms_external_keys WHERE key_id = ?").bind(key.id).first<BindingRow>();
    if (!row) throw externalFailure(key, "the CMK has no external binding");
    const input: ExternalBindingInput = { endpoint: row.endpoint, region: row.region, externalKeyId: row.external_key_id };
    if (row.credentials_secret !== null) {
      input.credentialsSecret = row.credentials_secret;
    } else {
      input.accessKeyId = row.access_key_id!;
      const secret = await unseal(await this.deps.sealKey(row.master_version!), new Uint8Array(row.secret_sealed!), utf8(key.id));
      input.secretAccessKey = new TextDecoder().decode(secret);
    }
    let target: ExternalTarget;
    try {
      target = this.targetOf(input);
    } catch (error) {
      throw externalFailure(key, (error as Error).message);
    }
    const binding: Binding = {
      target,
      externalKeyId: row.external_key_id,
      info: {
        endpoint: row.endpoint,
        region: row.region,
        externalKeyId: row.external_key_id,
        credentials: row.credentials_secret !== null ? `secret:${row.credentials_secret}` : "sealed",
        customKeyStoreId: await customKeyStoreId(row.endpoint, row.region),
      },
    };
    bindings.set(key.id, { binding, at: Date.now() });
    return binding;
  }
}

type Caller = Pick<Binding, "target" | "externalKeyId">;

/** 32 fresh bytes and their external ciphertext under `context` (one external GenerateDataKey), for a root or a bucket key. */
async function externalGenerate(key: KmsKey, caller: Caller, context: Record<string, string>, timeoutMs: number): Promise<{ material: Uint8Array; blob: Uint8Array }> {
  let output: Record<string, unknown>;
  try {
    output = await callExternalKms(caller.target, "GenerateDataKey", { KeyId: caller.externalKeyId, KeySpec: "AES_256", EncryptionContext: context }, timeoutMs);
  } catch (error) {
    throw asS3Error(error, key);
  }
  const material = typeof output["Plaintext"] === "string" ? fromBase64(output["Plaintext"]) : null;
  const blob = typeof output["CiphertextBlob"] === "string" ? fromBase64(output["CiphertextBlob"]) : null;
  if (!material || material.byteLength !== 32 || !blob) throw externalFailure(key, "the external KMS answered GenerateDataKey without a 32-byte key");
  return { material, blob };
}

/** The 32 bytes an external ciphertext (of a root or a bucket key) holds under `context` (one external Decrypt). */
async function externalDecrypt(key: KmsKey, caller: Caller, blob: Uint8Array, context: Record<string, string>, timeoutMs: number): Promise<Uint8Array> {
  let output: Record<string, unknown>;
  try {
    output = await callExternalKms(caller.target, "Decrypt", { KeyId: caller.externalKeyId, CiphertextBlob: toBase64(blob), EncryptionContext: context }, timeoutMs);
  } catch (error) {
    throw asS3Error(error, key);
  }
  const material = typeof output["Plaintext"] === "string" ? fromBase64(output["Plaintext"]) : null;
  if (!material || material.byteLength !== 32) throw externalFailure(key, "the external KMS answered Decrypt without 32 bytes of plaintext");
  return material;
}

/** A binding request that cannot work (the admin API answers 400 with the message). */
export class BindingError extends Error {
  override name = "BindingError";
}

/** A stable AWS-shaped custom key store id ("cks-" + 17 hex digits) naming the external KMS. */
export async function customKeyStoreId(endpoint: string, region: string): Promise<string> {
  const digest = toHex(await crypto.subtle.digest("SHA-256", utf8(`${endpoint}\0${region}`)));
  return `cks-${digest.slice(0, 17)}`;
}

/**
 * An S3 answer caused by the external KMS (refused, or not answering). A subclass so the
 * audit and the rewrap job can tell "the external KMS said no / is down" from tampering.
 */
export class ExternalKeyError extends S3Error {
  constructor(
    code: string,
    status: number,
    message: string,
    readonly failure: "refused" | "unavailable",
    readonly externalType: string,
    headers: Record<string, string> = {},
  ) {
    super(code, status, message, {}, headers);
  }
}

const REFUSED = "The ciphertext refers to a customer master key that does not exist, does not exist in this region, or you are not allowed to access.";

/**
 * What S3 (and, through toKmsError, the KMS API) answers when the external KMS refused or
 * could not be asked. Fail closed in every case: no answer, no key, no object.
 */
function asS3Error(error: unknown, key: KmsKey): Error {
  if (!(error instanceof ExternalKmsError)) return error as Error;
  // Key ids and error types are not secret; the message of the external KMS is not logged.
  console.warn(JSON.stringify({ event: "external-kms-error", key: key.arn, type: error.type, status: error.status }));
  if (error.transient) return unavailable(key, error.type);
  switch (error.type) {
    case "DisabledException":
      return new ExternalKeyError("KMS.DisabledException", 400, `${key.arn} is disabled.`, "refused", error.type);
    case "KMSInvalidStateException":
      return new ExternalKeyError("KMS.KMSInvalidStateException", 400, `${key.arn} is pending deletion.`, "refused", error.type);
    case "NotFoundException":
      return new ExternalKeyError("KMS.NotFoundException", 400, `Key '${key.arn}' does not exist`, "refused", error.type);
    default:
      // Wrong credentials, a key policy that says no, a ciphertext it does not accept (moto
      // answers AccessDeniedException for a disabled key): S3's answer when KMS refuses.
      return new ExternalKeyError("AccessDenied", 403, REFUSED, "refused", error.type);
  }
}

function externalFailure(key: KmsKey, why: string): Error {
  console.warn(JSON.stringify({ event: "external-kms-error", key: key.arn, type: "BadResponse", why }));
  return new ExternalKeyError("AccessDenied", 403, REFUSED, "refused", "BadResponse");
}

/** 503 with Retry-After: the external KMS did not answer in time (S3's ServiceUnavailable). */
export function unavailable(key: KmsKey, type = "Timeout"): S3Error {
  return new ExternalKeyError(
    "ServiceUnavailable",
    503,
    `The external KMS holding the root of ${key.arn} did not answer in time. Please retry.`,
    "unavailable",
    type,
    { "Retry-After": String(RETRY_AFTER_SECONDS) },
  );
}
