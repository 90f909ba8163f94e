import { parseQuery, splitRawUrl } from "../auth/presign";
import { actionLevel } from "../policy";
import type { Services } from "../services";
import type { Bucket } from "../store/buckets";
import { assertAllowed, isOwner } from "./access";
import { parseAddress } from "./addressing";
import { authenticate } from "./authenticate";
import { refuseOversizedBody } from "./body-limit";
import type { S3Context } from "./context";
import { Errors } from "../errors";
import { policyUsesExistingTags } from "./handlers/object-tagging";
import { assertKeyFits } from "./handlers/objects";
import { resolveOperation, type Operation } from "./operations";

/**
 * The S3 REST surface: address → operation → authentication → bucket → authorization → handler.
 * `seen.bucket` is set once the addressed bucket is loaded for a data operation, so the
 * caller's CORS step need not address and look it up again.
 */
export async function handleS3(request: Request, services: Services, requestId: string, seen: { bucket?: Bucket } = {}): Promise<Response> {
  const url = new URL(request.url);
  const address = parseAddress(request, services.config.baseDomain);
  const operation = resolveOperation(request.method, address, url.searchParams, request.headers);
  // Before anything else, as Cloudflare's edge would: nothing of the body is read.
  if (operation.uploadsData) refuseOversizedBody(request, services.config.maxRequestBodyBytes);
  const { auth, verified, principal } = await authenticate(request, services, address);
  if (auth.kind === "query" || (auth.kind === "v2" && auth.via === "query")) request = withHoistedHeaders(request);
  const ctx: S3Context = { request, url, requestId, services, address, auth, verified, principal, bucket: null };
  if (operation.needsBucket) {
    const bucket = await services.buckets.get(address.bucket!);
    if (!bucket) throw Errors.NoSuchBucket({ BucketName: address.bucket! });
    ctx.bucket = bucket;
    // A configuration call may change or delete what CORS reads; the caller looks it up afresh.
    if (!operation.config) seen.bucket = bucket;
    authorizeOperation(ctx, operation);
    // No object can have a longer key (PutObject refuses it alike); R2 would fail any other
    // operation on it with a 500.
    if (address.key !== null) assertKeyFits(bucket, address.key);
  }
  return operation.handler(ctx);
}

/**
 * Presigners (the AWS SDKs, boto3) move x-amz-* request headers such as
 * x-amz-server-side-encryption or x-amz-meta-* into the signed query string; S3 treats
 * them as headers. The signature has already been verified over them (SigV4: the
 * canonical query; SigV2: stringToSignV2 signs them as headers), so they are as
 * trustworthy as signed headers.
 */
function withHoistedHeaders(request: Request): Request {
  let headers: Headers | null = null;
  // The query as authentication parsed it (parseQuery keeps its last answer): iterating
  // url.searchParams cost a presigned request more than the rest of this function.
  for (const { name, value } of parseQuery(splitRawUrl(request.url).query)) {
    if (name.length < 6 || (name.charCodeAt(0) | 0x20) !== 0x78) continue; // not "x-amz-…"
    const lower = name.toLowerCase();
    if (!lower.startsWith("x-amz-") || AUTH_PARAMS.has(lower) || request.headers.has(lower)) continue;
    // An SSE-C key must travel in a (signed) header: in a URL it ends up in logs, browser
    // history and proxies. Refused rather than used (README, "SSE-C").
    if (CUSTOMER_KEY_PARAMS.has(lower)) {
      throw Errors.InvalidArgument(
        { ArgumentName: lower },
        "Requests specifying Server Side Encryption with Customer provided keys must send the key in the request header, not in the query string.",
      );
    }
    headers ??= new Headers(request.headers);
    headers.set(lower, value);
  }
  return headers ? new Request(request, { headers }) : request;
}

const CUSTOMER_KEY_PARAMS = new Set(["x-amz-server-side-encryption-customer-key", "x-amz-copy-source-server-side-encryption-customer-key"]);

const AUTH_PARAMS = new Set(["x-amz-algorithm", "x-amz-credential", "x-amz-date", "x-amz-expires", "x-amz-signedheaders", "x-amz-signature", "x-amz-security-token"]);

function authorizeOperation(ctx: S3Context, operation: Operation): void {
  const bucket = ctx.bucket!;
  if (!operation.action) return;
  if (operation.config) {
    if (!isOwner(ctx, bucket)) throw Errors.AccessDenied();
    // Like an AWS account's root user, the owner's tenant_admin can always manage the
    // bucket policy, so a policy can never lock its own tenant out.
    if (operation.config === "policy" && ctx.principal?.role === "tenant_admin") return;
  }
  // The handler authorizes with the object's tags (handlers/object-tagging.ts authorizedObject).
  if (operation.existingTags && policyUsesExistingTags(bucket)) return;
  const key = actionLevel(operation.action) === "object" ? (ctx.address.key ?? undefined) : undefined;
  assertAllowed(ctx, bucket, operation.action, key);
}
