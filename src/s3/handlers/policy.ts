import { invalidatePolicy, isPublic, MAX_POLICY_BYTES, parsePolicy } from "../../policy";
import { requireBucket, type S3Context } from "../context";
import { Errors } from "../../errors";
import { xmlResponse } from "../xml";
import { readBodyText } from "./body-text";

/** Put/Get/DeleteBucketPolicy and GetBucketPolicyStatus. Policies are stored as sent. */
export async function putBucketPolicy(ctx: S3Context): Promise<Response> {
  const bucket = requireBucket(ctx);
  let text: string;
  try {
    text = await readBodyText(ctx, MAX_POLICY_BYTES);
  } catch (error) {
    if (error instanceof Error && "code" in error && error.code === "MaxMessageLengthExceeded") {
      throw Errors.MalformedPolicy({}, "Policy exceeds the maximum allowed document size.");
    }
    throw error;
  }
  parsePolicy(text, bucket.name); // throws MalformedPolicy naming the problem
  await ctx.services.buckets.setSetting(bucket.name, "policy", text);
  invalidatePolicy(bucket.name);
  return new Response(null, { status: 204 });
}

export async function getBucketPolicy(ctx: S3Context): Promise<Response> {
  const bucket = requireBucket(ctx);
  if (!bucket.policy) throw Errors.NoSuchBucketPolicy({ BucketName: bucket.name });
  return new Response(bucket.policy, { status: 200, headers: { "Content-Type": "application/json" } });
}

export async function deleteBucketPolicy(ctx: S3Context): Promise<Response> {
  const bucket = requireBucket(ctx);
  await ctx.services.buckets.setSetting(bucket.name, "policy", null);
  invalidatePolicy(bucket.name);
  return new Response(null, { status: 204 });
}

export async function getBucketPolicyStatus(ctx: S3Context): Promise<Response> {
  const bucket = requireBucket(ctx);
  if (!bucket.policy) throw Errors.NoSuchBucketPolicy({ BucketName: bucket.name });
  return xmlResponse("PolicyStatus", { IsPublic: isPublic(parsePolicy(bucket.policy, bucket.name)) });
}
