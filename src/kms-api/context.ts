import { AliasStore } from "../kms/aliases";
import { keyArn, parseKeyReference } from "../kms/arn";
import { KeyLifecycle } from "../kms/lifecycle";
import type { KmsKey } from "../kms/registry";
import type { Services } from "../services";
import type { Principal } from "../store/identities";
import { KmsErrors } from "./errors";

/** One authenticated KMS API call. */
export interface KmsContext {
  services: Services;
  principal: Principal;
  /** "CreateKey", "DescribeKey", ... (for AWS-style authorization messages). */
  operation: string;
  region: string;
  lifecycle: KeyLifecycle;
  aliases: AliasStore;
  now: number;
}

export function makeContext(services: Services, principal: Principal, operation: string): KmsContext {
  return {
    services,
    principal,
    operation,
    region: services.config.region,
    lifecycle: new KeyLifecycle(services.env.DB),
    aliases: new AliasStore(services.env.DB),
    now: Date.now(),
  };
}

export const DEFAULT_ALIAS = "alias/aws/s3";
export const RESERVED_ALIAS_PREFIX = "alias/aws/";

function userArn(p: Principal): string {
  return `arn:aws:iam::${p.tenantId}:user/${p.userName}`;
}

/** AWS's message when no policy lets the caller act (on a resource, when there is one). */
export function accessDenied(ctx: KmsContext, resource?: string): Error {
  const action = `kms:${ctx.operation}`;
  return resource
    ? KmsErrors.AccessDenied(`User: ${userArn(ctx.principal)} is not authorized to perform: ${action} on resource: ${resource} because no resource-based policy allows the ${action} action`)
    : KmsErrors.AccessDenied(`User: ${userArn(ctx.principal)} is not authorized to perform: ${action} because no identity-based policy allows the ${action} action`);
}

/**
 * Resolves a KeyId member to one of the caller's visible keys. Key ids and key ARNs work
 * everywhere; alias names and alias ARNs only where AWS accepts them (DescribeKey).
 * Another tenant's ARN is AccessDenied whether or not the key exists (no existence
 * oracle); a bare id is looked up in the caller's tenant only, so another tenant's key
 * id is simply NotFound, as in AWS where a bare id names a key in the caller's account.
 * The SSE-S3 service key and destroyed keys do not exist as far as clients can tell.
 */
export async function resolveKey(ctx: KmsContext, input: string, allowAlias: boolean): Promise<KmsKey> {
  const ref = parseKeyReference(input);
  if (ref.kind === "invalid") {
    if (input.startsWith("arn:")) throw KmsErrors.InvalidArn(`${input} is not a valid ARN`);
    throw KmsErrors.NotFound(`Invalid keyId '${input}'`);
  }
  if (ref.tenantId !== undefined && ref.tenantId !== ctx.principal.tenantId) throw accessDenied(ctx, input);
  // Keys live in one region: an ARN of another region names nothing here.
  if (ref.region !== undefined && ref.region !== ctx.region) throw KmsErrors.NotFound(`Key '${input}' does not exist`);
  const registry = ctx.services.keys.registry;
  let key: KmsKey | null;
  if (ref.kind === "alias") {
    if (!allowAlias) throw KmsErrors.NotFound(`Invalid keyId '${input}'`);
    // As in AWS, naming the predefined alias creates the AWS-managed key on first use.
    key =
      ref.alias === DEFAULT_ALIAS
        ? await registry.ensureOfKind(ctx.principal.tenantId, ctx.region, "default")
        : await registry.getByAlias(ctx.principal.tenantId, ctx.region, ref.alias);
    if (!key) throw KmsErrors.NotFound(`Alias ${aliasArnOf(ctx, ref.alias)} is not found.`);
  } else {
    key = await registry.get(ref.id);
  }
  if (!key || key.tenantId !== ctx.principal.tenantId || key.region !== ctx.region || key.kind === "service" || key.state === "Destroyed") {
    // Named as AWS names it: the id read as a key of the caller's account and region.
    const shown = ref.kind === "id" ? keyArn(ctx.region, ctx.principal.tenantId, ref.id) : input;
    throw KmsErrors.NotFound(`Key '${shown}' does not exist`);
  }
  return key;
}

export function aliasArnOf(ctx: KmsContext, alias: string): string {
  return `arn:aws:kms:${ctx.region}:${ctx.principal.tenantId}:${alias}`;
}

/**
 * AWS-managed keys (the tenant's default key behind `alias/aws/s3`) can be described and
 * listed but not managed: their key policy grants the account only Describe/Get/List.
 */
export function assertCustomerManaged(ctx: KmsContext, key: KmsKey): void {
  if (key.kind !== "customer") throw accessDenied(ctx, key.arn);
}

/** AWS's state errors for operations that need an Enabled key (rotation operations). */
export function assertEnabledForRotation(key: KmsKey): void {
  if (key.state === "Disabled") throw KmsErrors.Disabled(`${key.arn} is disabled.`);
  if (key.state === "PendingDeletion") throw KmsErrors.InvalidState(`${key.arn} is pending deletion.`);
}
