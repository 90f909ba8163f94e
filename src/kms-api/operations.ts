import { DAY_MS, DEFAULT_KEY_ROTATION_DAYS, MAX_ON_DEMAND_ROTATIONS } from "../kms/lifecycle";
import type { KmsKey } from "../kms/registry";
import { forgetKey } from "../kms/service";
import {
  DEFAULT_ALIAS,
  RESERVED_ALIAS_PREFIX,
  aliasArnOf,
  assertCustomerManaged,
  assertEnabledForRotation,
  resolveKey,
  type KmsContext,
} from "./context";
import { DATA_PLANE } from "./data-plane";
import { KmsErrors, validationError } from "./errors";
import { keyIdRule, markerRule, optionalBool, optionalInt, optionalString, requiredString, type Input } from "./input";
import { epochSeconds, keyMaterialId, keyMetadata } from "./shapes";

/** An operation returns its JSON output, or null for AWS's empty 200 response. */
export type KmsOperation = (ctx: KmsContext, input: Input) => Promise<Record<string, unknown> | null>;

/** Customer keys per tenant and region (AWS's default quota is far higher; this bounds abuse). */
export const MAX_KEYS_PER_TENANT = 10_000;
const ALIAS_NAME = /^[a-zA-Z0-9:/_-]+$/;
const ALIAS_BODY = /^alias\/[a-zA-Z0-9/_-]+$/;
const KEY_SPECS = ["RSA_2048", "RSA_3072", "RSA_4096", "ECC_NIST_P256", "ECC_NIST_P384", "ECC_NIST_P521", "ECC_SECG_P256K1", "SYMMETRIC_DEFAULT", "HMAC_224", "HMAC_256", "HMAC_384", "HMAC_512", "SM2", "ML_DSA_44", "ML_DSA_65", "ML_DSA_87", "ECC_NIST_EDWARDS25519"];
const KEY_USAGES = ["SIGN_VERIFY", "ENCRYPT_DECRYPT", "GENERATE_VERIFY_MAC", "KEY_AGREEMENT"];
const ORIGINS = ["AWS_KMS", "EXTERNAL", "AWS_CLOUDHSM", "EXTERNAL_KEY_STORE"];

const keyIdOf = (input: Input) => requiredString(input, "KeyId", keyIdRule);
const limitOf = (input: Input, fallback: number) => optionalInt(input, "Limit", 1, 1000) ?? fallback;

// ---- keys -------------------------------------------------------------------------

const createKey: KmsOperation = async (ctx, input) => {
  const description = optionalString(input, "Description", { min: 0, max: 8192 }) ?? "";
  const usage = optionalString(input, "KeyUsage", { enum: KEY_USAGES });
  const spec = optionalString(input, "KeySpec", { enum: KEY_SPECS });
  const legacySpec = optionalString(input, "CustomerMasterKeySpec", { enum: KEY_SPECS });
  const origin = optionalString(input, "Origin", { enum: ORIGINS });
  const policy = optionalString(input, "Policy", { min: 1, max: 131072 });
  optionalBool(input, "BypassPolicyLockoutSafetyCheck");
  const multiRegion = optionalBool(input, "MultiRegion");
  if (spec !== undefined && legacySpec !== undefined) throw KmsErrors.Validation("You cannot specify KeySpec and CustomerMasterKeySpec in the same request. CustomerMasterKeySpec is deprecated.");
  if ((spec ?? legacySpec ?? "SYMMETRIC_DEFAULT") !== "SYMMETRIC_DEFAULT" || (usage ?? "ENCRYPT_DECRYPT") !== "ENCRYPT_DECRYPT") {
    throw KmsErrors.UnsupportedOperation("This endpoint supports only symmetric encryption keys (KeySpec SYMMETRIC_DEFAULT, KeyUsage ENCRYPT_DECRYPT).");
  }
  if ((origin ?? "AWS_KMS") !== "AWS_KMS" || input["CustomKeyStoreId"] !== undefined || input["XksKeyId"] !== undefined) {
    throw KmsErrors.UnsupportedOperation("This endpoint creates key material itself (Origin AWS_KMS); imported key material and custom key stores are not supported.");
  }
  if (multiRegion) throw KmsErrors.UnsupportedOperation("Multi-Region keys are not supported by this endpoint.");
  // Refused rather than ignored: a caller relying on a key policy must not believe it applies.
  if (policy !== undefined) throw KmsErrors.UnsupportedOperation("Key policies are not supported: access to keys is governed by the tenant_admin role.");
  const tags = input["Tags"];
  if (tags !== undefined && tags !== null && (!Array.isArray(tags) || tags.length > 0)) throw KmsErrors.UnsupportedOperation("Tags on keys are not supported by this endpoint.");

  const count = await ctx.services.env.DB.prepare("SELECT count(*) AS n FROM kms_keys WHERE tenant_id = ? AND region = ? AND kind = 'customer' AND state != 'Destroyed'")
    .bind(ctx.principal.tenantId, ctx.region)
    .first<{ n: number }>();
  if ((count?.n ?? 0) >= MAX_KEYS_PER_TENANT) throw KmsErrors.LimitExceeded(`The request was rejected because a quota was exceeded: at most ${MAX_KEYS_PER_TENANT} keys per account and Region.`);
  const key = await ctx.services.keys.registry.create({ tenantId: ctx.principal.tenantId, region: ctx.region, kind: "customer", description, now: ctx.now });
  return { KeyMetadata: await keyMetadata(key) };
};

const describeKey: KmsOperation = async (ctx, input) => {
  const key = await resolveKey(ctx, keyIdOf(input), true);
  return { KeyMetadata: await keyMetadata(key, await ctx.services.keys.external.info(key)) };
};

const listKeys: KmsOperation = async (ctx, input) => {
  const limit = limitOf(input, 100);
  const marker = optionalString(input, "Marker", markerRule);
  if (marker !== undefined && !/^[0-9a-f-]{36}$/.test(marker)) throw KmsErrors.InvalidMarker("Invalid marker");
  const keys = await ctx.lifecycle.list(ctx.principal.tenantId, ctx.region, marker ?? null, limit + 1);
  const page = keys.slice(0, limit);
  const truncated = keys.length > limit;
  return {
    Keys: page.map((k) => ({ KeyId: k.id, KeyArn: k.arn })),
    Truncated: truncated,
    ...(truncated ? { NextMarker: page[page.length - 1]!.id } : {}),
  };
};

/** EnableKey / DisableKey: idempotent in the target state, refused while deletion is pending. */
function setEnabled(enabled: boolean): KmsOperation {
  return async (ctx, input) => {
    const key = await resolveKey(ctx, keyIdOf(input), false);
    assertCustomerManaged(ctx, key);
    if (key.state === "PendingDeletion") throw KmsErrors.InvalidState(`${key.arn} is pending deletion.`);
    await ctx.lifecycle.transition(key.id, enabled ? ["Disabled"] : ["Enabled"], enabled ? "Enabled" : "Disabled", ctx.now);
    // This isolate stops trusting its cached row at once; others within KEY_CACHE_TTL_SECONDS.
    forgetKey(key.id);
    await assertTransitioned(ctx, key, enabled ? "Enabled" : "Disabled");
    return null;
  };
}

/** A concurrent ScheduleKeyDeletion can win the race; then say what AWS would have said. */
async function assertTransitioned(ctx: KmsContext, key: KmsKey, wanted: string): Promise<void> {
  const now = await ctx.services.keys.registry.get(key.id);
  if (now?.state === wanted) return;
  if (now?.state === "PendingDeletion") throw KmsErrors.InvalidState(`${key.arn} is pending deletion.`);
  throw KmsErrors.NotFound(`Key '${key.arn}' does not exist`);
}

const scheduleKeyDeletion: KmsOperation = async (ctx, input) => {
  const key = await resolveKey(ctx, keyIdOf(input), false);
  const days = optionalInt(input, "PendingWindowInDays", 1, 365) ?? 30;
  assertCustomerManaged(ctx, key);
  if (days < 7) throw validationError("PendingWindowInDays", days, "Member must have value greater than or equal to 7");
  if (days > 30) throw validationError("PendingWindowInDays", days, "Member must have value less than or equal to 30");
  if (key.state === "PendingDeletion") throw KmsErrors.InvalidState(`${key.arn} is pending deletion.`);
  const deletionAt = ctx.now + days * DAY_MS;
  const scheduled = await ctx.lifecycle.scheduleDeletion(key.id, deletionAt, ctx.now);
  forgetKey(key.id);
  if (!scheduled) await assertTransitioned(ctx, key, "PendingDeletion");
  return { KeyId: key.arn, DeletionDate: epochSeconds(deletionAt), KeyState: "PendingDeletion", PendingWindowInDays: days };
};

const cancelKeyDeletion: KmsOperation = async (ctx, input) => {
  const key = await resolveKey(ctx, keyIdOf(input), false);
  assertCustomerManaged(ctx, key);
  if (key.state !== "PendingDeletion" || !(await ctx.lifecycle.cancelDeletion(key.id, ctx.now))) {
    throw KmsErrors.InvalidState(`${key.arn} is not pending deletion.`);
  }
  forgetKey(key.id);
  return { KeyId: key.arn };
};

// ---- rotation ---------------------------------------------------------------------

const getKeyRotationStatus: KmsOperation = async (ctx, input) => {
  const key = await resolveKey(ctx, keyIdOf(input), false);
  if (key.kind === "default") {
    // AWS-managed keys rotate every year, always (the lifecycle job does it).
    return {
      KeyRotationEnabled: true,
      KeyId: key.arn,
      RotationPeriodInDays: DEFAULT_KEY_ROTATION_DAYS,
      NextRotationDate: epochSeconds(await ctx.lifecycle.defaultKeyNextRotation(key.id)),
    };
  }
  return {
    KeyRotationEnabled: key.rotationEnabled,
    KeyId: key.arn,
    ...(key.rotationEnabled && key.rotationPeriodDays !== null ? { RotationPeriodInDays: key.rotationPeriodDays } : {}),
    ...(key.rotationEnabled && key.nextRotationAt !== null ? { NextRotationDate: epochSeconds(key.nextRotationAt) } : {}),
  };
};

/** AWS: keys in a custom key store do not rotate (UnsupportedOperationException). */
function assertRotatable(key: KmsKey): void {
  if (key.origin === "EXTERNAL_KEY_STORE") throw KmsErrors.UnsupportedOperation(`${key.arn} is rooted in an external key store; its rotation is managed there.`);
}

function setRotation(enabled: boolean): KmsOperation {
  return async (ctx, input) => {
    const key = await resolveKey(ctx, keyIdOf(input), false);
    const period = enabled ? (optionalInt(input, "RotationPeriodInDays", 90, 2560) ?? DEFAULT_KEY_ROTATION_DAYS) : null;
    assertCustomerManaged(ctx, key);
    assertRotatable(key);
    assertEnabledForRotation(key);
    await ctx.lifecycle.setRotation(key.id, enabled, period, ctx.now);
    forgetKey(key.id);
    return null;
  };
}

const rotateKeyOnDemand: KmsOperation = async (ctx, input) => {
  const key = await resolveKey(ctx, keyIdOf(input), false);
  assertCustomerManaged(ctx, key);
  assertRotatable(key);
  assertEnabledForRotation(key);
  if ((await ctx.lifecycle.onDemandRotations(key.id)) >= MAX_ON_DEMAND_ROTATIONS) {
    throw KmsErrors.LimitExceeded(`${key.arn} has reached the maximum of ${MAX_ON_DEMAND_ROTATIONS} on-demand rotations.`);
  }
  const version = await ctx.lifecycle.rotate(key.id, "ON_DEMAND", ctx.now);
  // New writes in this isolate use the new version at once; elsewhere within the cache TTL.
  forgetKey(key.id);
  if (version === null) await assertTransitioned(ctx, key, "Enabled");
  return { KeyId: key.arn };
};

const listKeyRotations: KmsOperation = async (ctx, input) => {
  const key = await resolveKey(ctx, keyIdOf(input), false);
  const include = optionalString(input, "IncludeKeyMaterial", { enum: ["ALL_KEY_MATERIAL", "ROTATIONS_ONLY"] }) ?? "ROTATIONS_ONLY";
  const limit = limitOf(input, 100);
  const marker = optionalString(input, "Marker", markerRule);
  if (marker !== undefined && !/^[1-9][0-9]{0,9}$/.test(marker)) throw KmsErrors.InvalidMarker("Invalid marker");
  const after = marker === undefined ? 0 : Number(marker);
  const versions = (await ctx.lifecycle.versions(key.id)).filter((v) => v.version > after && (include === "ALL_KEY_MATERIAL" || v.rotationType !== null));
  const page = versions.slice(0, limit);
  const truncated = versions.length > limit;
  const rotations = await Promise.all(
    page.map(async (v) => ({
      KeyId: key.arn,
      KeyMaterialId: await keyMaterialId(key.id, v.version),
      KeyMaterialState: v.version === key.currentVersion ? "CURRENT" : "NON_CURRENT",
      ...(v.rotationType !== null ? { RotationDate: epochSeconds(v.createdAt), RotationType: v.rotationType } : {}),
    })),
  );
  return { Rotations: rotations, Truncated: truncated, ...(truncated ? { NextMarker: String(page[page.length - 1]!.version) } : {}) };
};

// ---- aliases ----------------------------------------------------------------------

function aliasNameOf(ctx: KmsContext, input: Input): string {
  const name = requiredString(input, "AliasName", { min: 1, max: 256, pattern: ALIAS_NAME });
  if (!name.startsWith("alias/")) throw KmsErrors.Validation("Alias must start with the prefix \"alias/\". Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html");
  if (name.startsWith(RESERVED_ALIAS_PREFIX)) {
    throw KmsErrors.NotAuthorized(`The alias prefix ${RESERVED_ALIAS_PREFIX} is reserved for AWS managed keys; ${name} cannot be created, changed or deleted.`);
  }
  if (!ALIAS_BODY.test(name)) throw KmsErrors.InvalidAliasName(`Alias ${aliasArnOf(ctx, name)} contains invalid characters for an alias.`);
  return name;
}

/** An alias may point only at a key id/ARN (not another alias) of a customer key not pending deletion. */
async function aliasTarget(ctx: KmsContext, input: Input): Promise<KmsKey> {
  const target = requiredString(input, "TargetKeyId", keyIdRule);
  if (target.startsWith("alias/") || /^arn:aws:kms:[^:]*:[^:]*:alias\//.test(target)) throw KmsErrors.Validation("Aliases must refer to keys. Not aliases");
  const key = await resolveKey(ctx, target, false);
  assertCustomerManaged(ctx, key);
  if (key.state === "PendingDeletion") throw KmsErrors.InvalidState(`${key.arn} is pending deletion.`);
  return key;
}

const createAlias: KmsOperation = async (ctx, input) => {
  const name = aliasNameOf(ctx, input);
  const key = await aliasTarget(ctx, input);
  if (!(await ctx.aliases.create(ctx.principal.tenantId, ctx.region, name, key.id, ctx.now))) {
    throw KmsErrors.AlreadyExists(`An alias with the name ${aliasArnOf(ctx, name)} already exists`);
  }
  return null;
};

const updateAlias: KmsOperation = async (ctx, input) => {
  const name = aliasNameOf(ctx, input);
  const key = await aliasTarget(ctx, input);
  if (!(await ctx.aliases.retarget(ctx.principal.tenantId, ctx.region, name, key.id, ctx.now))) {
    throw KmsErrors.NotFound(`Alias ${aliasArnOf(ctx, name)} is not found.`);
  }
  return null;
};

const deleteAlias: KmsOperation = async (ctx, input) => {
  const name = aliasNameOf(ctx, input);
  if (!(await ctx.aliases.delete(ctx.principal.tenantId, ctx.region, name))) throw KmsErrors.NotFound(`Alias ${aliasArnOf(ctx, name)} is not found.`);
  return null;
};

const listAliases: KmsOperation = async (ctx, input) => {
  const keyInput = optionalString(input, "KeyId", keyIdRule);
  const limit = limitOf(input, 50);
  const marker = optionalString(input, "Marker", markerRule);
  if (marker !== undefined && !marker.startsWith("alias/")) throw KmsErrors.InvalidMarker("Invalid marker");
  const filter = keyInput === undefined ? null : await resolveKey(ctx, keyInput, false);
  const stored = await ctx.aliases.list(ctx.principal.tenantId, ctx.region, filter?.id ?? null, marker ?? null, limit + 1);
  const entries: Array<{ name: string; keyId?: string; createdAt?: number; updatedAt?: number }> = stored.map((a) => ({ ...a }));
  // The predefined alias is always listed, with its target once the default key exists.
  const defaultKey = await ctx.services.keys.registry.getOfKind(ctx.principal.tenantId, ctx.region, "default");
  if ((filter === null || filter.id === defaultKey?.id) && (marker === undefined || DEFAULT_ALIAS > marker)) {
    entries.push(defaultKey ? { name: DEFAULT_ALIAS, keyId: defaultKey.id, createdAt: defaultKey.createdAt, updatedAt: defaultKey.createdAt } : { name: DEFAULT_ALIAS });
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const page = entries.slice(0, limit);
  const truncated = entries.length > limit;
  return {
    Aliases: page.map((a) => ({
      AliasName: a.name,
      AliasArn: aliasArnOf(ctx, a.name),
      ...(a.keyId !== undefined ? { TargetKeyId: a.keyId } : {}),
      ...(a.createdAt !== undefined ? { CreationDate: epochSeconds(a.createdAt) } : {}),
      ...(a.updatedAt !== undefined ? { LastUpdatedDate: epochSeconds(a.updatedAt) } : {}),
    })),
    Truncated: truncated,
    ...(truncated ? { NextMarker: page[page.length - 1]!.name } : {}),
  };
};

export const OPERATIONS: Record<string, KmsOperation> = {
  CreateKey: createKey,
  DescribeKey: describeKey,
  ListKeys: listKeys,
  EnableKey: setEnabled(true),
  DisableKey: setEnabled(false),
  ScheduleKeyDeletion: scheduleKeyDeletion,
  CancelKeyDeletion: cancelKeyDeletion,
  GetKeyRotationStatus: getKeyRotationStatus,
  EnableKeyRotation: setRotation(true),
  DisableKeyRotation: setRotation(false),
  RotateKeyOnDemand: rotateKeyOnDemand,
  ListKeyRotations: listKeyRotations,
  CreateAlias: createAlias,
  UpdateAlias: updateAlias,
  DeleteAlias: deleteAlias,
  ListAliases: listAliases,
  ...DATA_PLANE,
};

/** Other AWS KMS operations: answered UnsupportedOperationException rather than "unknown". */
export const UNSUPPORTED = new Set([
  "ConnectCustomKeyStore", "CreateCustomKeyStore", "CreateGrant", "DeleteCustomKeyStore",
  "DeleteImportedKeyMaterial", "DeriveSharedSecret", "DescribeCustomKeyStores", "DisconnectCustomKeyStore",
  "GenerateDataKeyPair", "GenerateDataKeyPairWithoutPlaintext",
  "GenerateMac", "GetKeyPolicy", "GetParametersForImport", "GetPublicKey", "ImportKeyMaterial",
  "ListGrants", "ListKeyPolicies", "ListResourceTags", "ListRetirableGrants", "PutKeyPolicy", "ReplicateKey",
  "RetireGrant", "RevokeGrant", "Sign", "TagResource", "UntagResource", "UpdateCustomKeyStore", "UpdateKeyDescription",
  "UpdatePrimaryRegion", "Verify", "VerifyMac",
]);

