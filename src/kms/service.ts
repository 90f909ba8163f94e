import type { SseMode } from "../crypto/envelope";
import { IntegrityError } from "../crypto/errors";
import { INFO, deriveApiKey, deriveBucketKek, deriveKek, deriveSealKey } from "../crypto/keys";
import { Errors, S3Error } from "../errors";
import { parseKeyReference } from "./arn";
import { ExternalRoots, forgetExternal, type Root } from "./external";
import { MasterKeyMissingError, type MasterKeyring } from "./keyring";
import { KeyRegistry, type KmsKey } from "./registry";

/** The key material a writer needs: the CMK, its current version, the KEK to wrap with. */
export interface WriteKey {
  key: KmsKey;
  keyVersion: number;
  masterVersion: number;
  kek: CryptoKey;
  /**
   * The KEK derives from the bucket's bucket key (CMKs rooted in an external KMS), not
   * from the CMK version's material: the envelope says so (`bk`), and readers need the bucket.
   */
  bucketKey: boolean;
}

/**
 * Isolate-level caches. Key rows are trusted for `ttlMs` (KEY_CACHE_TTL_SECONDS), so a
 * DisableKey takes effect everywhere within that time; derived keys are cached without
 * expiry because they are pure functions of (material, master secret) and are only ever
 * used after a fresh-enough state check.
 */
const rows = new Map<string, { key: KmsKey; at: number }>();
const kinds = new Map<string, string>(); // "tenant:region:kind" → key id
const materials = new Map<string, Uint8Array>();
const derived = new Map<string, CryptoKey>();
const MAX_DERIVED = 2048;
/**
 * Keys derived from an external root live on that root's cache entry: when the entry
 * expires (EXTERNAL_KEY_CACHE_SECONDS) or is forgotten, they become unreachable with it,
 * so no usable key of an external CMK outlives the external KMS's last answer here.
 */
const externalDerived = new WeakMap<Root, Map<string, CryptoKey>>();

function remember(name: string, key: CryptoKey): CryptoKey {
  if (derived.size >= MAX_DERIVED) derived.delete(derived.keys().next().value!);
  derived.set(name, key);
  return key;
}

/**
 * Drop cached state for a key (after the KMS API or the lifecycle job changed it in this
 * isolate): its row, and its material and derived KEKs, so a destroyed key's material
 * does not outlive it here; a rotated key simply reloads them.
 */
export function forgetKey(id: string): void {
  rows.delete(id);
  for (const name of [...materials.keys()]) if (name.startsWith(`${id}:`)) materials.delete(name);
  for (const name of [...derived.keys()]) if (name.startsWith(`kek:${id}:`) || name.startsWith(`api:${id}:`)) derived.delete(name);
  forgetExternal(id);
}

/** External roots (src/kms/external.ts): how long a decrypted root is trusted, how long an external call may take. */
export interface ExternalOptions {
  env: Record<string, unknown>;
  cacheMs: number;
  timeoutMs: number;
}

export class KeyService {
  readonly registry: KeyRegistry;
  readonly external: ExternalRoots;

  constructor(
    db: D1Database,
    readonly keyring: MasterKeyring,
    private readonly region: string,
    private readonly ttlMs: number,
    external: ExternalOptions = { env: {}, cacheMs: 300_000, timeoutMs: 5000 },
  ) {
    this.registry = new KeyRegistry(db);
    this.external = new ExternalRoots({
      db,
      env: external.env,
      cacheMs: external.cacheMs,
      timeoutMs: external.timeoutMs,
      writeVersion: keyring.writeVersion,
      sealKey: (v) => this.externalSealKey(v),
    });
  }

  /**
   * Resolves the CMK for a write into `bucket`, owned by `tenantId`. SSE-KMS without a key
   * id uses the tenant's default key for the region, created on first use; SSE-S3 uses
   * the tenant's service key. A CMK rooted in an external KMS wraps under the bucket's
   * bucket key for its current version (made on the bucket's first such write).
   */
  async forWrite(tenantId: string, bucket: string, mode: SseMode, keyId?: string): Promise<WriteKey> {
    // SSE-C data keys are wrapped under the customer's key (objects/object-keys.ts), never a CMK.
    if (mode === "SSE-C") throw new Error("SSE-C writes have no CMK");
    let key: KmsKey;
    if (mode === "AES256") key = await this.cachedKind(tenantId, "service");
    else if (keyId === undefined || keyId === "") key = await this.cachedKind(tenantId, "default");
    else key = await this.resolve(tenantId, keyId);
    assertUsable(key);
    const masterVersion = this.keyring.writeVersion;
    if (key.origin === "EXTERNAL_KEY_STORE") {
      return { key, keyVersion: key.currentVersion, masterVersion, kek: await this.bucketKek(key, key.currentVersion, bucket, masterVersion, true), bucketKey: true };
    }
    return { key, keyVersion: key.currentVersion, masterVersion, kek: await this.kek(key, key.currentVersion, masterVersion), bucketKey: false };
  }

  /** Resolves a client-supplied key id (ARN, uuid or alias) of `tenantId`'s keys. */
  async resolve(tenantId: string, input: string): Promise<KmsKey> {
    const ref = parseKeyReference(input);
    if (ref.kind === "invalid") throw Errors.KmsNotFound({}, `Invalid keyId '${input}'`);
    if (ref.tenantId !== undefined && ref.tenantId !== tenantId) {
      // Keys of another tenant are never usable here, whatever their state.
      throw Errors.AccessDenied({}, `Access to KMS key '${input}' is not allowed`);
    }
    if (ref.region !== undefined && ref.region !== this.region) throw Errors.KmsNotFound({}, `Invalid keyId '${input}'`);
    let key: KmsKey | null;
    if (ref.kind === "alias") {
      key = ref.alias === "alias/aws/s3" ? await this.cachedKind(tenantId, "default") : await this.registry.getByAlias(tenantId, this.region, ref.alias);
    } else {
      key = await this.cachedRow(ref.id);
    }
    if (!key || key.tenantId !== tenantId || key.region !== this.region || key.kind === "service" || key.state === "Destroyed") {
      throw Errors.KmsNotFound({}, `Invalid keyId '${input}'`);
    }
    return key;
  }

  /**
   * KEK to unwrap an object's data key. Reads of object bodies need an Enabled key;
   * metadata-only reads (HEAD, audit) pass requireEnabled=false, as AWS answers HEAD
   * without calling KMS — destroyed key material fails either way. `bucketKey`: the bucket
   * whose bucket key the data key is wrapped under (envelope `bk`), or null for the CMK
   * version's KEK (local CMKs, and objects written under an external CMK before bucket keys).
   */
  async forRead(tenantId: string, keyArn: string, keyVersion: number, masterVersion: number, requireEnabled: boolean, bucketKey: string | null): Promise<CryptoKey> {
    const ref = parseKeyReference(keyArn);
    if (ref.kind !== "id" || ref.tenantId !== tenantId) throw Errors.AccessDenied();
    const key = await this.cachedRow(ref.id);
    if (!key || key.tenantId !== tenantId) throw Errors.KmsNotFound({}, `Key '${keyArn}' does not exist`);
    if (requireEnabled || key.state === "Destroyed") assertUsable(key);
    if (bucketKey === null) return this.kek(key, keyVersion, masterVersion);
    // Only external CMKs have bucket keys; the flag is under the MAC, checked after the unwrap.
    if (key.origin !== "EXTERNAL_KEY_STORE") throw new IntegrityError("the envelope names a bucket key of a CMK that has none");
    return this.bucketKek(key, keyVersion, bucketKey, masterVersion, false);
  }

  /**
   * KEK of an external CMK's objects in `bucket`: from the bucket key (asked for every time,
   * a map lookup within the cache period) and the master secret. Cached on the bucket key's
   * entry, so it dies with it, like keys derived from a version root.
   */
  private async bucketKek(key: KmsKey, keyVersion: number, bucket: string, masterVersion: number, create: boolean): Promise<CryptoKey> {
    this.assertConfigured(masterVersion);
    const root = await this.external.bucketKey(key, keyVersion, bucket, create);
    let cache = externalDerived.get(root);
    if (!cache) externalDerived.set(root, (cache = new Map()));
    const name = `bkek:${masterVersion}`;
    const hit = cache.get(name);
    if (hit) return hit;
    const made = await deriveBucketKek(this.keyring.secret(masterVersion), root.material, key.arn, bucket, keyVersion, masterVersion);
    cache.set(name, made);
    return made;
  }

  /** Per-tenant key that seals object facts (ETag, checksum) in R2 metadata. */
  sealKey(tenantId: string, masterVersion: number): Promise<CryptoKey> {
    const name = `seal:${tenantId}:${masterVersion}`;
    this.assertConfigured(masterVersion);
    const hit = derived.get(name);
    if (hit) return Promise.resolve(hit);
    return deriveSealKey(this.keyring.secret(masterVersion), INFO.seal, tenantId).then((k) => remember(name, k));
  }

  /** Key that seals secret access keys in D1. */
  accessKeySealKey(masterVersion: number): Promise<CryptoKey> {
    const name = `access:${masterVersion}`;
    this.assertConfigured(masterVersion);
    const hit = derived.get(name);
    if (hit) return Promise.resolve(hit);
    return deriveSealKey(this.keyring.secret(masterVersion), INFO.accessKey).then((k) => remember(name, k));
  }

  /** Key that seals an external CMK's credentials in D1 (AAD: the CMK id). */
  externalSealKey(masterVersion: number): Promise<CryptoKey> {
    const name = `external:${masterVersion}`;
    this.assertConfigured(masterVersion);
    const hit = derived.get(name);
    if (hit) return Promise.resolve(hit);
    return deriveSealKey(this.keyring.secret(masterVersion), INFO.external).then((k) => remember(name, k));
  }

  kek(key: KmsKey, keyVersion: number, masterVersion: number): Promise<CryptoKey> {
    return this.derive("kek", deriveKek, key, keyVersion, masterVersion);
  }

  /** Key of the KMS API's ciphertext blobs (Encrypt, GenerateDataKey, …) for one CMK version. */
  apiKey(key: KmsKey, keyVersion: number, masterVersion: number): Promise<CryptoKey> {
    return this.derive("api", deriveApiKey, key, keyVersion, masterVersion);
  }

  private async derive(
    label: "kek" | "api",
    fn: (master: Uint8Array, material: Uint8Array, arn: string, kv: number, mv: number) => Promise<CryptoKey>,
    key: KmsKey,
    keyVersion: number,
    masterVersion: number,
  ): Promise<CryptoKey> {
    const name = `${label}:${key.id}:${keyVersion}:${masterVersion}`;
    this.assertConfigured(masterVersion);
    if (key.origin === "EXTERNAL_KEY_STORE") {
      // Asked for every time (a map lookup within the cache period): a derived key must not
      // outlive the external KMS's consent to use it.
      const root = await this.external.material(key, keyVersion);
      let cache = externalDerived.get(root);
      if (!cache) externalDerived.set(root, (cache = new Map()));
      const hit = cache.get(name);
      if (hit) return hit;
      const made = await fn(this.keyring.secret(masterVersion), root.material, key.arn, keyVersion, masterVersion);
      cache.set(name, made);
      return made;
    }
    const hit = derived.get(name);
    if (hit) return hit;
    const material = await this.localMaterial(key, keyVersion);
    return remember(name, await fn(this.keyring.secret(masterVersion), material, key.arn, keyVersion, masterVersion));
  }

  private async localMaterial(key: KmsKey, keyVersion: number): Promise<Uint8Array> {
    const materialName = `${key.id}:${keyVersion}`;
    let material = materials.get(materialName);
    if (!material) {
      const loaded = await this.registry.material(key.id, keyVersion);
      if (!loaded) throw Errors.KmsNotFound({}, `Key '${key.arn}' version ${keyVersion} does not exist; its key material was destroyed`);
      material = loaded;
      materials.set(materialName, material);
    }
    return material;
  }

  /**
   * Derived keys are cached per isolate across requests; one derived from a master secret
   * that is no longer configured must not keep working from the cache.
   */
  private assertConfigured(masterVersion: number): void {
    if (!this.keyring.has(masterVersion)) throw new MasterKeyMissingError(masterVersion);
  }

  private async cachedRow(id: string): Promise<KmsKey | null> {
    const hit = rows.get(id);
    if (hit && Date.now() - hit.at < this.ttlMs) return hit.key;
    const key = await this.registry.get(id);
    if (key) rows.set(id, { key, at: Date.now() });
    else rows.delete(id);
    return key;
  }

  private async cachedKind(tenantId: string, kind: "default" | "service"): Promise<KmsKey> {
    const name = `${tenantId}:${this.region}:${kind}`;
    const id = kinds.get(name);
    if (id) {
      const key = await this.cachedRow(id);
      if (key) return key;
    }
    const key = await this.registry.ensureOfKind(tenantId, this.region, kind);
    kinds.set(name, key.id);
    rows.set(key.id, { key, at: Date.now() });
    return key;
  }
}

/** AWS's answers for keys that exist but may not be used. */
export function assertUsable(key: KmsKey): void {
  switch (key.state) {
    case "Enabled":
      return;
    case "Disabled":
      throw Errors.KmsDisabled({}, `${key.arn} is disabled.`);
    case "PendingDeletion":
      throw Errors.KmsInvalidState({}, `${key.arn} is pending deletion.`);
    case "Destroyed":
      throw Errors.KmsNotFound({}, `Key '${key.arn}' does not exist; it was deleted and its key material destroyed`);
  }
}

export function isKmsError(error: unknown): boolean {
  return error instanceof S3Error && error.code.startsWith("KMS.");
}
