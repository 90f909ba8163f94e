import { authorize, bucketArn, buildConditionContext, getCompiledPolicy, objectArn, type S3Action } from "../policy";
import type { ConditionContext, PolicyPrincipal } from "../policy/types";
import type { Bucket } from "../store/buckets";
import type { S3Context } from "./context";
import { Errors } from "../errors";
import { publicPolicyRestricted } from "./public-access";
import { tagMap, tagsFromHeader } from "./tagging";

export function policyPrincipal(ctx: S3Context): PolicyPrincipal {
  const p = ctx.principal;
  return p ? { tenantId: p.tenantId, userName: p.userName, userId: p.userId, isTenantAdmin: p.role === "tenant_admin" } : "anonymous";
}

/** Condition keys for this request, computed once (policies may be evaluated several times). */
const contexts = new WeakMap<S3Context, ConditionContext>();

export interface TagFacts {
  /** The object's current tags (s3:ExistingObjectTag/<key>). */
  existing?: Record<string, string>;
  /** The tags the request sets (s3:RequestObjectTag/<key>, s3:RequestObjectTagKeys); else x-amz-tagging's. */
  request?: Record<string, string>;
}

/** x-amz-tagging as condition values; a malformed header gives none (the handler refuses it with S3's error). */
function headerTags(headers: Headers): Record<string, string> | undefined {
  try {
    const tags = tagsFromHeader(headers);
    return tags ? tagMap(tags) : undefined;
  } catch {
    return undefined;
  }
}

export function conditionContext(ctx: S3Context, extra?: Record<string, string | undefined>, tags?: TagFacts): ConditionContext {
  if (!extra && !tags) {
    const hit = contexts.get(ctx);
    if (hit) return hit;
  }
  const auth = ctx.auth;
  const built = buildConditionContext({
    headers: ctx.request.headers,
    sourceIp: ctx.request.headers.get("cf-connecting-ip") ?? undefined,
    secureTransport: ctx.url.protocol === "https:",
    principal: policyPrincipal(ctx),
    query: ctx.url.searchParams,
    ...(auth.kind === "header" || auth.kind === "query"
      ? { authType: auth.kind === "header" ? "REST-HEADER" : "REST-QUERY-STRING", signatureVersion: "AWS4-HMAC-SHA256", signatureAgeMs: Math.max(0, Date.now() - auth.time) }
      : auth.kind === "v2"
        ? { authType: auth.via === "header" ? "REST-HEADER" : "REST-QUERY-STRING", signatureVersion: "AWS" }
        : {}),
    ...(tags?.existing ? { existingObjectTags: tags.existing } : {}),
    ...((tags?.request ?? headerTags(ctx.request.headers)) ? { requestObjectTags: tags?.request ?? headerTags(ctx.request.headers)! } : {}),
    ...(extra ? { extra } : {}),
  });
  if (!extra && !tags) contexts.set(ctx, built);
  return built;
}

/**
 * AWS's decision for one action: the bucket-owning tenant's users pass unless the bucket
 * policy denies; anyone else needs an explicit Allow. `ownerOnly` (SSE-KMS objects) keeps
 * every other tenant and anonymous callers out whatever the policy says, and so does
 * Block Public Access's RestrictPublicBuckets on a bucket whose policy is public.
 */
export function isAllowed(
  ctx: S3Context,
  bucket: Bucket,
  action: S3Action,
  key?: string,
  options: { ownerOnly?: boolean; extra?: Record<string, string | undefined>; tags?: TagFacts } = {},
): boolean {
  const policy = getCompiledPolicy(bucket.name, bucket.policy);
  return authorize({
    policy,
    request: {
      action,
      resource: key === undefined ? bucketArn(bucket.name) : objectArn(bucket.name, key),
      principal: policyPrincipal(ctx),
      // Built only when a statement reads it: a bucket without a policy never does, and the
      // context (headers, query, tags) was a visible share of a small request's CPU.
      get context() {
        return conditionContext(ctx, options.extra, options.tags);
      },
    },
    isOwner: ctx.principal?.tenantId === bucket.tenantId,
    ownerOnly: (options.ownerOnly ?? false) || publicPolicyRestricted(bucket),
  });
}

export function assertAllowed(
  ctx: S3Context,
  bucket: Bucket,
  action: S3Action,
  key?: string,
  options: { ownerOnly?: boolean; extra?: Record<string, string | undefined>; tags?: TagFacts } = {},
): void {
  if (!isAllowed(ctx, bucket, action, key, options)) throw Errors.AccessDenied();
}

/** Bucket configuration (policy, encryption, CORS, deletion) belongs to the owning tenant. */
export function isOwner(ctx: S3Context, bucket: Bucket): boolean {
  return ctx.principal?.tenantId === bucket.tenantId;
}
