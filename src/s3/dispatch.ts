import { actionLevel } from "../policy";
import type { Services } from "../services";
import { assertAllowed, isOwner } from "./access";
import { parseAddress } from "./addressing";
import { authenticate } from "./authenticate";
import type { S3Context } from "./context";
import { Errors } from "./errors";
import { resolveOperation, type Operation } from "./operations";

/** The S3 REST surface: address → operation → authentication → bucket → authorization → handler. */
export async function handleS3(request: Request, services: Services, requestId: string): Promise<Response> {
  const url = new URL(request.url);
  const address = parseAddress(request, services.config.baseDomain);
  const operation = resolveOperation(request.method, address, url.searchParams, request.headers);
  const { auth, verified, principal } = await authenticate(request, services, address);
  const ctx: S3Context = { request, url, requestId, services, address, auth, verified, principal, bucket: null };
  if (operation.needsBucket) {
    const bucket = await services.buckets.get(address.bucket!);
    if (!bucket) throw Errors.NoSuchBucket({ BucketName: address.bucket! });
    ctx.bucket = bucket;
    authorizeOperation(ctx, operation);
  }
  return operation.handler(ctx);
}

function authorizeOperation(ctx: S3Context, operation: Operation): void {
  const bucket = ctx.bucket!;
  if (!operation.action) return;
  if (operation.config) {
    if (!isOwner(ctx, bucket)) throw Errors.AccessDenied();
    // Like an AWS account's root user, the owner's tenant_admin can always manage the
    // bucket policy, so a policy can never lock its own tenant out.
    if (operation.config === "policy" && ctx.principal?.role === "tenant_admin") return;
  }
  const key = actionLevel(operation.action) === "object" ? (ctx.address.key ?? undefined) : undefined;
  assertAllowed(ctx, bucket, operation.action, key);
}
