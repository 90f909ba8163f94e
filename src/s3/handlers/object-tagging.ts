import type { ObjectInfo } from "../../objects/object-info";
import { statObjectMetadata } from "../../objects/read";
import type { S3Action } from "../../policy";
import type { Bucket } from "../../store/buckets";
import { ObjectTagStore, type Tag } from "../../store/object-tags";
import { assertAllowed } from "../access";
import { requireBucket, requireKey, type S3Context } from "../context";
import { Errors, S3Error } from "../../errors";
import { assertMayRead, assertMayReplace } from "../sse-rules";
import { tagMap, taggingXml, tagsFromXml } from "../tagging";
import { readBodyText, requireIntegrityHeader } from "./body-text";

/**
 * Put/Get/DeleteObjectTagging (`?tagging` on a key). Tags live in D1, keyed by the object
 * version they belong to (store/object-tags.ts). These handlers authorize themselves:
 * the policy may name the object's current tags (s3:ExistingObjectTag/<key>) and, for
 * PutObjectTagging, the tags in the body (s3:RequestObjectTag/<key>). The tenant rules of
 * SSE-KMS objects apply: reading tags is a read of the object (assertMayRead), changing
 * them a change of it (assertMayReplace).
 */

export function tagStore(ctx: S3Context): ObjectTagStore {
  return new ObjectTagStore(ctx.services.env.DB);
}

/** True when the bucket policy may test s3:ExistingObjectTag (then requests must load the tags first). */
export function policyUsesExistingTags(bucket: Bucket): boolean {
  return bucket.policy !== null && /existingobjecttag/i.test(bucket.policy);
}

/** The tags of the object version `info` describes; 0 queries in a bucket that never had tags unless `always`. */
export async function tagsOf(ctx: S3Context, bucket: Bucket, info: ObjectInfo, always = false): Promise<Tag[]> {
  if (!always && !bucket.hasObjectTags) return [];
  return tagStore(ctx).get(bucket.name, info.key, info.version);
}

/**
 * Authorizes `action` on an existing object with its tags as s3:ExistingObjectTag, and
 * returns the object and its tags. Without such a condition in the policy the decision is
 * made before the object is looked at; with one, a missing object is authorized with no
 * tags before NoSuchKey is answered, so a refused caller learns nothing.
 */
export async function authorizedObject(
  ctx: S3Context,
  bucket: Bucket,
  key: string,
  action: S3Action,
  gate: (mode: ObjectInfo["mode"]) => void,
  request?: Tag[],
): Promise<{ info: ObjectInfo; tags: Tag[] }> {
  const requestTags = request ? { request: tagMap(request) } : {};
  const deferred = policyUsesExistingTags(bucket);
  if (!deferred) assertAllowed(ctx, bucket, action, key, { tags: requestTags });
  let info: ObjectInfo;
  try {
    // Tagging needs no SSE-C key, as on S3 (the object's data is not read).
    info = await statObjectMetadata(ctx.services.objects, bucket, key, gate);
  } catch (error) {
    if (deferred && error instanceof S3Error && error.code === "NoSuchKey") assertAllowed(ctx, bucket, action, key, { tags: { ...requestTags, existing: {} } });
    throw error;
  }
  const tags = await tagsOf(ctx, bucket, info, true);
  if (deferred) assertAllowed(ctx, bucket, action, key, { tags: { ...requestTags, existing: tagMap(tags) } });
  return { info, tags };
}

export async function getObjectTagging(ctx: S3Context): Promise<Response> {
  const bucket = requireBucket(ctx);
  const key = requireKey(ctx);
  assertNullVersion(ctx);
  const { tags } = await authorizedObject(ctx, bucket, key, "s3:GetObjectTagging", (mode) => assertMayRead(ctx, bucket, mode));
  return new Response(taggingXml(tags), { status: 200, headers: { "Content-Type": "application/xml" } });
}

export async function putObjectTagging(ctx: S3Context): Promise<Response> {
  const bucket = requireBucket(ctx);
  const key = requireKey(ctx);
  assertNullVersion(ctx);
  // botocore marks PutObjectTagging "requestChecksumRequired", as S3 requires one.
  requireIntegrityHeader(ctx.request.headers);
  const tags = tagsFromXml(await readBodyText(ctx, 64 * 1024));
  const { info } = await authorizedObject(ctx, bucket, key, "s3:PutObjectTagging", (mode) => assertMayReplace(ctx, bucket, mode), tags);
  await tagStore(ctx).put(bucket.name, key, info.version, tags);
  ctx.services.buckets.forget(bucket.name);
  return new Response(null, { status: 200 });
}

export async function deleteObjectTagging(ctx: S3Context): Promise<Response> {
  const bucket = requireBucket(ctx);
  const key = requireKey(ctx);
  assertNullVersion(ctx);
  const { info, tags } = await authorizedObject(ctx, bucket, key, "s3:DeleteObjectTagging", (mode) => assertMayReplace(ctx, bucket, mode));
  if (tags.length > 0) await tagStore(ctx).put(bucket.name, key, info.version, []);
  return new Response(null, { status: 204 });
}

/** Buckets are unversioned: versionId=null is the object itself; another version does not exist. */
function assertNullVersion(ctx: S3Context): void {
  const versionId = ctx.url.searchParams.get("versionId");
  if (versionId !== null && versionId !== "null") throw Errors.NoSuchVersion({ Key: ctx.address.key ?? "", VersionId: versionId });
}
