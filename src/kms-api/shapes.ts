import type { ExternalBindingInfo } from "../kms/external";
import type { KmsKey } from "../kms/registry";
import { toHex, utf8 } from "../util/bytes";

/** AWS JSON timestamps are epoch seconds (numbers). */
export function epochSeconds(ms: number): number {
  return ms / 1000;
}

/**
 * A stable public identifier of one key version's material (KeyMetadata.CurrentKeyMaterialId,
 * ListKeyRotations' KeyMaterialId: 64 hex digits). A hash of the key id and version, never of
 * the material itself, so it reveals nothing about the secret.
 */
export async function keyMaterialId(keyId: string, version: number): Promise<string> {
  return toHex(await crypto.subtle.digest("SHA-256", utf8(`s3-sse-gw/key-material-id\0${keyId}\0${version}`)));
}

/**
 * KeyMetadata as AWS KMS returns it for a symmetric encryption key. A key rooted in an
 * external KMS is shown as AWS shows a key in an external key store: Origin
 * EXTERNAL_KEY_STORE, a CustomKeyStoreId naming the external KMS, and XksKeyConfiguration
 * with the external key's id (never the credentials).
 */
export async function keyMetadata(key: KmsKey, external: ExternalBindingInfo | null = null): Promise<Record<string, unknown>> {
  const metadata: Record<string, unknown> = {
    AWSAccountId: key.tenantId,
    KeyId: key.id,
    Arn: key.arn,
    CreationDate: epochSeconds(key.createdAt),
    Enabled: key.state === "Enabled",
    Description: key.description,
    KeyUsage: "ENCRYPT_DECRYPT",
    KeyState: key.state,
    Origin: key.origin,
    KeyManager: key.kind === "default" ? "AWS" : "CUSTOMER",
    CustomerMasterKeySpec: "SYMMETRIC_DEFAULT",
    KeySpec: "SYMMETRIC_DEFAULT",
    EncryptionAlgorithms: ["SYMMETRIC_DEFAULT"],
    MultiRegion: false,
    CurrentKeyMaterialId: await keyMaterialId(key.id, key.currentVersion),
  };
  if (external) {
    metadata["CustomKeyStoreId"] = external.customKeyStoreId;
    metadata["XksKeyConfiguration"] = { Id: external.externalKeyId };
  }
  if (key.state === "PendingDeletion" && key.deletionAt !== null) metadata["DeletionDate"] = epochSeconds(key.deletionAt);
  return metadata;
}
