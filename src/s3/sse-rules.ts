import type { SseMode } from "../crypto/envelope";
import type { Bucket } from "../store/buckets";
import type { S3Context } from "./context";
import { Errors } from "./errors";
import type { SseChoice } from "./sse";

/**
 * SSE-KMS rules from the OBS SSE-KMS page and AWS: SigV4 and TLS are required; only the
 * bucket-owning tenant's principals can create or read SSE-KMS objects (no policy can
 * grant another tenant access); only tenant_admin may ask for SSE-KMS explicitly.
 */
export function assertKmsTransport(ctx: S3Context): void {
  if (ctx.auth.kind === "v2") {
    throw Errors.InvalidArgument(
      { ArgumentName: "Authorization", ArgumentValue: "null" },
      "Requests specifying Server Side Encryption with AWS KMS managed keys require AWS Signature Version 4.",
    );
  }
  if (ctx.services.config.requireTlsForSseKms && ctx.url.protocol !== "https:") {
    throw Errors.InvalidArgument(
      { ArgumentName: "x-amz-server-side-encryption", ArgumentValue: "aws:kms" },
      "Requests specifying Server Side Encryption with AWS KMS managed keys must be made over a secure connection.",
    );
  }
}

/** Checks a write's encryption choice (PUT, POST, Copy target, CreateMultipartUpload). */
export function assertMayWriteWith(ctx: S3Context, bucket: Bucket, sse: SseChoice): void {
  if (sse.mode !== "aws:kms") return;
  assertKmsTransport(ctx);
  const p = ctx.principal;
  if (!p || p.tenantId !== bucket.tenantId) {
    throw Errors.AccessDenied({}, "SSE-KMS objects can only be created by principals of the tenant that owns the bucket.");
  }
  if (sse.explicit && p.role !== "tenant_admin") {
    throw Errors.AccessDenied({}, "Only users with the tenant_admin role can use SSE-KMS.");
  }
}

/** Checks a read of an object encrypted with `mode` (GET, HEAD, copy source). */
export function assertMayRead(ctx: S3Context, bucket: Bucket, mode: SseMode): void {
  if (mode !== "aws:kms") return;
  if (ctx.principal?.tenantId !== bucket.tenantId) throw Errors.AccessDenied();
  assertKmsTransport(ctx);
}

/** SSE request headers are only for writes; on reads S3 answers InvalidArgument. */
export function assertNoSseHeaders(headers: Headers): void {
  for (const name of ["x-amz-server-side-encryption", "x-amz-server-side-encryption-aws-kms-key-id", "x-amz-server-side-encryption-context"]) {
    const value = headers.get(name);
    if (value !== null) throw Errors.InvalidArgument({ ArgumentName: name, ArgumentValue: value }, `The ${name} header is not supported for this operation.`);
  }
}
