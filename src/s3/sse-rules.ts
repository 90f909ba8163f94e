import type { SseMode } from "../crypto/envelope";
import type { Bucket } from "../store/buckets";
import type { S3Context } from "./context";
import { Errors } from "../errors";
import type { SseChoice } from "./sse";
import { assertCustomerKeyTransport } from "./sse-c";

/**
 * The bucket's SSE-C switch (PutBucketEncryption BlockedEncryptionTypes, as AWS): buckets
 * created since SSE-C arrived block it until their owner unblocks it (README, "SSE-C").
 */
export function sseCBlocked(bucket: Bucket): boolean {
  return bucket.blockedEncryptionTypes.includes("SSE-C");
}

const SSE_C_BLOCKED_MESSAGE = "Server side encryption with customer provided keys (SSE-C) is blocked for this bucket.";

/**
 * SSE-KMS rules from the OBS SSE-KMS page and AWS (README, "Who may do what"). They apply
 * after the bucket policy and can only refuse, never allow:
 *
 * - SSE-KMS needs SigV4 and, when configured, TLS.
 * - Only the owning tenant's tenant_admin may use SSE-KMS: create (header or bucket
 *   default), read, copy or re-key an SSE-KMS object, write into or list an SSE-KMS
 *   upload, set or remove a KMS bucket default — as AWS refuses a principal without KMS
 *   permissions. Members may still delete and overwrite within their tenant.
 * - No other tenant (nor anonymous) reaches an SSE-KMS object in any way, whatever any
 *   policy says: no read, copy, overwrite or delete (guards in write-guard.ts).
 */
export function assertKmsTransport(ctx: S3Context): void {
  if (ctx.auth.kind === "v2") {
    throw Errors.InvalidArgument(
      { ArgumentName: "Authorization", ArgumentValue: "null" },
      "Requests specifying Server Side Encryption with AWS KMS managed keys require AWS Signature Version 4.",
    );
  }
  if (ctx.services.config.requireTlsForSse && ctx.url.protocol !== "https:") {
    throw Errors.InvalidArgument(
      { ArgumentName: "x-amz-server-side-encryption", ArgumentValue: "aws:kms" },
      "Requests specifying Server Side Encryption with AWS KMS managed keys must be made over a secure connection.",
    );
  }
}

export const KMS_ROLE_MESSAGE = "Only users with the tenant_admin role can use SSE-KMS.";
const KMS_TENANT_MESSAGE = "SSE-KMS objects can only be created by principals of the tenant that owns the bucket.";

/** True for principals of the tenant that owns the bucket (any role). */
export function inOwningTenant(ctx: S3Context, bucket: Bucket): boolean {
  return ctx.principal !== null && ctx.principal.tenantId === bucket.tenantId;
}

/**
 * The owning tenant's tenant_admin, or 403. Another tenant hears a plain "Access Denied"
 * on reads (nothing about what the key holds); a member hears the rule.
 */
function assertKmsUser(ctx: S3Context, bucket: Bucket, foreignMessage?: string): void {
  if (!inOwningTenant(ctx, bucket)) throw Errors.AccessDenied({}, foreignMessage);
  if (ctx.principal!.role !== "tenant_admin") throw Errors.AccessDenied({}, KMS_ROLE_MESSAGE);
}

/**
 * A write's encryption choice (PUT, POST, Copy target, CreateMultipartUpload, UploadPart and
 * Complete of an upload). SSE-C is open to every role (it is not an SSE-KMS interface), but
 * needs TLS when the TLS setting is on and is refused (403) where the bucket blocks it.
 */
export function assertMayWriteWith(ctx: S3Context, bucket: Bucket, sse: Pick<SseChoice, "mode">): void {
  if (sse.mode === "SSE-C") {
    if (sseCBlocked(bucket)) throw Errors.AccessDenied({}, SSE_C_BLOCKED_MESSAGE);
    assertCustomerKeyTransport(ctx);
    return;
  }
  if (sse.mode !== "aws:kms") return;
  assertKmsTransport(ctx);
  assertKmsUser(ctx, bucket, KMS_TENANT_MESSAGE);
}

/**
 * Whether data stored with `mode` follows the bucket policy alone (SSE-S3, SSE-C), rather
 * than the SSE-KMS rules on top of it. "unknown" (an envelope that does not decode) is
 * protected like SSE-KMS. The one place this is decided: reads, overwrites and deletes.
 */
export function isPolicyOnlyMode(mode: SseMode | "unknown"): boolean {
  return mode === "AES256" || mode === "SSE-C";
}

/** A read of an object (or an upload's parts) encrypted with `mode`: GET, HEAD, copy source, ListParts. */
export function assertMayRead(ctx: S3Context, bucket: Bucket, mode: SseMode | "unknown"): void {
  if (isPolicyOnlyMode(mode)) return;
  assertKmsUser(ctx, bucket);
  assertKmsTransport(ctx);
}

/**
 * Removing or replacing an object stored with `mode` (DeleteObject(s), overwrites, Abort of
 * an upload): the owning tenant may, whatever the role; nobody else may touch SSE-KMS data.
 * "unknown" (an envelope that does not decode) is protected like SSE-KMS.
 */
export function assertMayReplace(ctx: S3Context, bucket: Bucket, mode: SseMode | "unknown"): void {
  if (isPolicyOnlyMode(mode) || inOwningTenant(ctx, bucket)) return;
  throw Errors.AccessDenied();
}

/** Put/DeleteBucketEncryption: setting or removing an SSE-KMS default is an SSE-KMS interface. */
export function assertMayChangeDefault(ctx: S3Context, bucket: Bucket, current: SseMode | null, next: SseMode | null): void {
  if (current !== "aws:kms" && next !== "aws:kms") return;
  if (next === "aws:kms") assertKmsTransport(ctx);
  assertKmsUser(ctx, bucket);
}

/** SSE request headers are only for writes; on reads S3 answers InvalidArgument. */
export function assertNoSseHeaders(headers: Headers): void {
  for (const name of ["x-amz-server-side-encryption", "x-amz-server-side-encryption-aws-kms-key-id", "x-amz-server-side-encryption-context"]) {
    const value = headers.get(name);
    if (value !== null) throw Errors.InvalidArgument({ ArgumentName: name, ArgumentValue: value }, `The ${name} header is not supported for this operation.`);
  }
}
