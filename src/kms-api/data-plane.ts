import { assertUsable } from "../kms/service";
import type { KmsKey } from "../kms/registry";
import { fromBase64, toBase64 } from "../util/bytes";
import { encodeHeader, openBlob, parseHeader, sealBlob } from "./ciphertext";
import { accessDenied, resolveKey, type KmsContext } from "./context";
import { KmsErrors, validationError } from "./errors";
import { keyIdRule, optionalBool, optionalInt, optionalString, requiredString, type Input } from "./input";
import type { KmsOperation } from "./operations";

/**
 * The KMS data-plane operations (Encrypt, Decrypt, ReEncrypt, GenerateDataKey,
 * GenerateDataKeyWithoutPlaintext, GenerateRandom) with AWS's request and response shapes,
 * so a tenant's own applications can do client-side envelope encryption under the same
 * CMKs. Ciphertext blobs: FORMAT.md, "KMS ciphertext blobs". Rules as for S3 use: only a
 * tenant_admin (handler), only the tenant's customer keys (the AWS-managed aws/s3 key's
 * policy admits only S3, as in AWS), Enabled keys only, AWS's error names.
 */
const ALGORITHMS = ["SYMMETRIC_DEFAULT", "RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256", "SM2PKE"] as const;
const DATA_KEY_SPECS: Record<string, number> = { AES_256: 32, AES_128: 16 };
const MAX_PLAINTEXT = 4096;
const MAX_CIPHERTEXT = 6144;
/** AWS's own bound on an encryption context: 8 KiB of keys and values together. */
const MAX_CONTEXT_CHARS = 8192;

function blobOf(input: Input, name: string, max: number): Uint8Array | undefined {
  const value = input[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string") throw KmsErrors.Serialization(`BLOB_VALUE can not be converted from ${typeof value} at '${name}'`);
  const bytes = fromBase64(value);
  if (!bytes) throw KmsErrors.Serialization(`Base64 encoded value of '${name}' is not valid`);
  if (bytes.byteLength < 1) throw validationError(name, "", "Member must have length greater than or equal to 1");
  if (bytes.byteLength > max) throw validationError(name, "[blob]", `Member must have length less than or equal to ${max}`);
  return bytes;
}

function requiredBlob(input: Input, name: string, max: number): Uint8Array {
  const bytes = blobOf(input, name, max);
  if (!bytes) throw validationError(name, null, "Member must not be null");
  return bytes;
}

/** An EncryptionContext member: a JSON object of strings (absent = empty). */
function contextOf(input: Input, name: string): Record<string, string> {
  const value = input[name];
  if (value === undefined || value === null) return {};
  if (typeof value !== "object" || Array.isArray(value)) throw KmsErrors.Serialization(`Start of structure or map not found at '${name}'`);
  let chars = 0;
  const context: Record<string, string> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (typeof v !== "string") throw KmsErrors.Serialization(`STRING_VALUE can not be converted from ${typeof v} at '${name}.${k}'`);
    chars += k.length + v.length;
    context[k] = v;
  }
  if (chars > MAX_CONTEXT_CHARS) throw KmsErrors.Validation(`Encryption context exceeds the maximum size of ${MAX_CONTEXT_CHARS} characters.`);
  return context;
}

/** Only SYMMETRIC_DEFAULT exists for symmetric keys; the asymmetric names are AWS's InvalidKeyUsage. */
function algorithmOf(input: Input, name: string, key?: KmsKey): string {
  const algorithm = optionalString(input, name, { enum: ALGORITHMS }) ?? "SYMMETRIC_DEFAULT";
  if (algorithm !== "SYMMETRIC_DEFAULT") {
    throw KmsErrors.InvalidKeyUsage(`${key?.arn ?? "The key"} key usage is ENCRYPT_DECRYPT with key spec SYMMETRIC_DEFAULT, which does not support ${algorithm}.`);
  }
  return algorithm;
}

function unsupportedMembers(input: Input): void {
  // A Recipient attestation asks KMS to encrypt the answer for a Nitro enclave: refused, not ignored.
  if (input["Recipient"] !== undefined && input["Recipient"] !== null) throw KmsErrors.UnsupportedOperation("Recipient (Nitro Enclaves attestation) is not supported by this endpoint.");
}

/** DryRun: AWS checks permissions and parameters, then answers DryRunOperationException. */
function dryRun(input: Input): void {
  if (optionalBool(input, "DryRun")) throw KmsErrors.DryRunOperation("The request would have succeeded, but the DryRun option is set.");
}

/** A key a data-plane call may use: the caller's customer key, Enabled (AWS's state errors otherwise). */
async function usableKey(ctx: KmsContext, keyInput: string): Promise<KmsKey> {
  const key = await resolveKey(ctx, keyInput, true);
  // AWS-managed keys' policies allow cryptographic use only through the service (kms:ViaService).
  if (key.kind !== "customer") throw accessDenied(ctx, key.arn);
  assertUsable(key);
  return key;
}

async function encryptUnder(ctx: KmsContext, key: KmsKey, context: Record<string, string>, plaintext: Uint8Array): Promise<Uint8Array> {
  const keys = ctx.services.keys;
  const masterVersion = keys.keyring.writeVersion;
  const header = encodeHeader(key.id, key.currentVersion, masterVersion);
  return sealBlob(await keys.apiKey(key, key.currentVersion, masterVersion), header, context, plaintext);
}

/**
 * Opens a blob: the key it names must be one of the caller's usable keys (and the given
 * KeyId, if any); the context must be the one it was sealed with.
 */
async function decryptBlob(ctx: KmsContext, blob: Uint8Array, context: Record<string, string>, keyInput: string | undefined): Promise<{ key: KmsKey; plaintext: Uint8Array }> {
  const header = parseHeader(blob);
  if (!header) throw KmsErrors.InvalidCiphertext("");
  const key = await ctx.services.keys.registry.get(header.keyId);
  if (key && key.tenantId !== ctx.principal.tenantId) throw accessDenied(ctx, key.arn);
  if (!key || key.region !== ctx.region || key.kind !== "customer" || key.state === "Destroyed") throw KmsErrors.InvalidCiphertext("");
  if (keyInput !== undefined) {
    const named = await resolveKey(ctx, keyInput, true);
    if (named.id !== key.id) throw KmsErrors.IncorrectKey("The key ID in the request does not identify a CMK that can perform this operation.");
  }
  assertUsable(key);
  if (header.keyVersion > key.currentVersion || !ctx.services.keys.keyring.has(header.masterVersion)) throw KmsErrors.InvalidCiphertext("");
  const plaintext = await openBlob(await ctx.services.keys.apiKey(key, header.keyVersion, header.masterVersion), blob, context);
  if (!plaintext) throw KmsErrors.InvalidCiphertext("");
  return { key, plaintext };
}

const encrypt: KmsOperation = async (ctx, input) => {
  const keyInput = requiredString(input, "KeyId", keyIdRule);
  const plaintext = requiredBlob(input, "Plaintext", MAX_PLAINTEXT);
  const context = contextOf(input, "EncryptionContext");
  const key = await usableKey(ctx, keyInput);
  const algorithm = algorithmOf(input, "EncryptionAlgorithm", key);
  dryRun(input);
  const blob = await encryptUnder(ctx, key, context, plaintext);
  return { CiphertextBlob: toBase64(blob), KeyId: key.arn, EncryptionAlgorithm: algorithm };
};

const decrypt: KmsOperation = async (ctx, input) => {
  const blob = requiredBlob(input, "CiphertextBlob", MAX_CIPHERTEXT);
  const context = contextOf(input, "EncryptionContext");
  const keyInput = optionalString(input, "KeyId", keyIdRule);
  const algorithm = algorithmOf(input, "EncryptionAlgorithm");
  unsupportedMembers(input);
  const { key, plaintext } = await decryptBlob(ctx, blob, context, keyInput);
  dryRun(input);
  return { KeyId: key.arn, Plaintext: toBase64(plaintext), EncryptionAlgorithm: algorithm };
};

const reEncrypt: KmsOperation = async (ctx, input) => {
  const blob = requiredBlob(input, "CiphertextBlob", MAX_CIPHERTEXT);
  const sourceContext = contextOf(input, "SourceEncryptionContext");
  const sourceKeyInput = optionalString(input, "SourceKeyId", keyIdRule);
  const destinationInput = requiredString(input, "DestinationKeyId", keyIdRule);
  const destinationContext = contextOf(input, "DestinationEncryptionContext");
  const sourceAlgorithm = algorithmOf(input, "SourceEncryptionAlgorithm");
  const destinationAlgorithm = algorithmOf(input, "DestinationEncryptionAlgorithm");
  const { key: source, plaintext } = await decryptBlob(ctx, blob, sourceContext, sourceKeyInput);
  const destination = await usableKey(ctx, destinationInput);
  dryRun(input);
  const rewrapped = await encryptUnder(ctx, destination, destinationContext, plaintext);
  plaintext.fill(0);
  return {
    CiphertextBlob: toBase64(rewrapped),
    SourceKeyId: source.arn,
    KeyId: destination.arn,
    SourceEncryptionAlgorithm: sourceAlgorithm,
    DestinationEncryptionAlgorithm: destinationAlgorithm,
  };
};

/** GenerateDataKey[WithoutPlaintext]: NumberOfBytes or KeySpec, exactly one. */
function generateDataKey(withPlaintext: boolean): KmsOperation {
  return async (ctx, input) => {
    const keyInput = requiredString(input, "KeyId", keyIdRule);
    const context = contextOf(input, "EncryptionContext");
    const spec = optionalString(input, "KeySpec", { enum: Object.keys(DATA_KEY_SPECS) });
    const count = optionalInt(input, "NumberOfBytes", 1, 1024);
    if (withPlaintext) unsupportedMembers(input);
    if (spec !== undefined && count !== undefined) throw KmsErrors.Validation("KeySpec and NumberOfBytes are mutually exclusive.");
    if (spec === undefined && count === undefined) throw KmsErrors.Validation("Please specify either number of bytes or key spec.");
    const key = await usableKey(ctx, keyInput);
    dryRun(input);
    const dataKey = crypto.getRandomValues(new Uint8Array(count ?? DATA_KEY_SPECS[spec!]!));
    const blob = await encryptUnder(ctx, key, context, dataKey);
    const output: Record<string, unknown> = { CiphertextBlob: toBase64(blob), KeyId: key.arn };
    if (withPlaintext) output["Plaintext"] = toBase64(dataKey);
    dataKey.fill(0);
    return output;
  };
}

const generateRandom: KmsOperation = async (_ctx, input) => {
  const count = optionalInt(input, "NumberOfBytes", 1, 1024);
  if (input["CustomKeyStoreId"] !== undefined && input["CustomKeyStoreId"] !== null) {
    throw KmsErrors.UnsupportedOperation("GenerateRandom in a custom key store is not supported by this endpoint.");
  }
  unsupportedMembers(input);
  if (count === undefined) throw validationError("NumberOfBytes", null, "Member must not be null");
  return { Plaintext: toBase64(crypto.getRandomValues(new Uint8Array(count))) };
};

export const DATA_PLANE: Record<string, KmsOperation> = {
  Encrypt: encrypt,
  Decrypt: decrypt,
  ReEncrypt: reEncrypt,
  GenerateDataKey: generateDataKey(true),
  GenerateDataKeyWithoutPlaintext: generateDataKey(false),
  GenerateRandom: generateRandom,
};
