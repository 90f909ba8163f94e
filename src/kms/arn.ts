/** KMS key ids: `arn:aws:kms:<region>:<tenant>:key/<uuid>`, a bare uuid, or an alias. */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const KEY_ARN = /^arn:aws:kms:([a-z0-9-]+):([A-Za-z0-9]+):key\/(.+)$/;
const ALIAS_ARN = /^arn:aws:kms:([a-z0-9-]+):([A-Za-z0-9]+):(alias\/.+)$/;

export type KeyReference =
  | { kind: "id"; id: string; region?: string; tenantId?: string }
  | { kind: "alias"; alias: string; region?: string; tenantId?: string }
  | { kind: "invalid" };

export function parseKeyReference(input: string): KeyReference {
  const text = input.trim();
  if (UUID.test(text)) return { kind: "id", id: text.toLowerCase() };
  let m = KEY_ARN.exec(text);
  if (m) return UUID.test(m[3]!) ? { kind: "id", id: m[3]!.toLowerCase(), region: m[1]!, tenantId: m[2]! } : { kind: "invalid" };
  m = ALIAS_ARN.exec(text);
  if (m) return { kind: "alias", alias: m[3]!, region: m[1]!, tenantId: m[2]! };
  if (text.startsWith("alias/") && text.length > 6) return { kind: "alias", alias: text };
  return { kind: "invalid" };
}

export function keyArn(region: string, tenantId: string, id: string): string {
  return `arn:aws:kms:${region}:${tenantId}:key/${id}`;
}

export function aliasArn(region: string, tenantId: string, alias: string): string {
  return `arn:aws:kms:${region}:${tenantId}:${alias}`;
}
