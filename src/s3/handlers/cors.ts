import type { Services } from "../../services";
import type { Bucket } from "../../store/buckets";
import { parseAddress } from "../addressing";
import { requireBucket, type S3Context } from "../context";
import { addActualCorsHeaders, bucketCorsRules, corsConfigurationXml, corsHeaders, matchCorsRule, parseCorsConfiguration, parseRequestHeaderList } from "../cors";
import { Errors } from "../../errors";
import { xmlResponse } from "../xml";
import { readBodyXml, requireIntegrityHeader } from "./body-text";

/** PutBucketCors: validates the document and stores the rules (JSON) in the bucket row. */
export async function putBucketCors(ctx: S3Context): Promise<Response> {
  const bucket = requireBucket(ctx);
  // S3 insists on Content-MD5 (or a flexible checksum) for PutBucketCors.
  requireIntegrityHeader(ctx.request.headers);
  const rules = parseCorsConfiguration(await readBodyXml(ctx, "CORSConfiguration"));
  await ctx.services.buckets.setSetting(bucket.name, "cors", JSON.stringify(rules));
  return new Response(null, { status: 200 });
}

export async function getBucketCors(ctx: S3Context): Promise<Response> {
  const bucket = requireBucket(ctx);
  const rules = bucketCorsRules(bucket);
  if (!rules) throw Errors.NoSuchCORSConfiguration({ BucketName: bucket.name });
  return xmlResponse("CORSConfiguration", corsConfigurationXml(rules));
}

export async function deleteBucketCors(ctx: S3Context): Promise<Response> {
  const bucket = requireBucket(ctx);
  await ctx.services.buckets.setSetting(bucket.name, "cors", null);
  return new Response(null, { status: 204 });
}

const NOT_ALLOWED =
  "This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.";

/**
 * Preflight OPTIONS on a bucket or object URL, answered from the bucket's rules before
 * (and without) authentication, as S3 does: browsers send no credentials on preflights,
 * and a preflight for a presigned URL carries that URL's query, signed for another method.
 */
export async function handlePreflight(request: Request, services: Services): Promise<Response> {
  const address = parseAddress(request, services.config.baseDomain);
  if (address.bucket === null) throw Errors.MethodNotAllowed({ Method: "OPTIONS", ResourceType: "SERVICE" });
  const bucket = await services.buckets.get(address.bucket);
  if (!bucket) throw Errors.NoSuchBucket({ BucketName: address.bucket });
  const headers = request.headers;
  const origin = headers.get("origin");
  if (origin === null) throw Errors.BadRequest({}, "Insufficient information. Origin request header needed.");
  const method = headers.get("access-control-request-method");
  if (method === null || method.trim() === "") throw Errors.BadRequest({}, `Invalid Access-Control-Request-Method: ${method ?? "null"}`);
  const rules = bucketCorsRules(bucket);
  if (!rules) throw Errors.CORSResponse();
  const requested = parseRequestHeaderList(headers.get("access-control-request-headers"));
  const match = matchCorsRule(rules, origin, method.trim(), requested);
  if (!match) throw Errors.CORSResponse({}, NOT_ALLOWED);
  return new Response(null, { status: 200, headers: corsHeaders(match, origin, { allowHeaders: requested }) });
}

/**
 * The app-level hook every S3 response (errors included) passes through: adds the
 * bucket's CORS headers to actual requests. Preflights set their own. Cheap when the
 * request has no Origin or the bucket no rules (the bucket row is cached per isolate).
 */
export async function applyCorsHeaders(request: Request, target: Headers, services: Services, known?: Bucket): Promise<void> {
  if (request.method === "OPTIONS") return;
  let bucket: Bucket | null = known ?? null;
  if (!bucket) {
    let bucketName: string | null;
    try {
      bucketName = parseAddress(request, services.config.baseDomain).bucket;
    } catch {
      return;
    }
    if (!bucketName) return;
    bucket = await services.buckets.get(bucketName);
  }
  const rules = bucket ? bucketCorsRules(bucket) : null;
  if (!rules) return;
  addActualCorsHeaders(target, rules, request.headers.get("origin"), request.method);
}
