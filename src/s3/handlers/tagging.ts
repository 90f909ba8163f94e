import { requireBucket, type S3Context } from "../context";
import { Errors, S3Error } from "../../errors";
import { childArray, childText, xmlResponse } from "../xml";
import { readBodyXml, requireIntegrityHeader } from "./body-text";

/**
 * Put/Get/DeleteBucketTagging, with AWS's limits: at most 50 tags, keys of 1–128 and
 * values of 0–256 Unicode characters from letters, digits, whitespace and `_ . : / = + - @`,
 * unique keys, none in the reserved `aws:` namespace. Stored as JSON `[{Key, Value}]`,
 * values exactly as sent.
 */
export interface Tag {
  Key: string;
  Value: string;
}

const MAX_TAGS = 50;
const ALLOWED = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u;
const chars = (s: string) => [...s].length;

export async function putBucketTagging(ctx: S3Context): Promise<Response> {
  const bucket = requireBucket(ctx);
  // S3 requires Content-MD5 (or a flexible checksum) on PutBucketTagging.
  requireIntegrityHeader(ctx.request.headers);
  const doc = await readBodyXml(ctx, "Tagging");
  if (doc["TagSet"] === undefined) throw Errors.MalformedXML();
  const tags = childArray(doc["TagSet"], "Tag").map((node): Tag => {
    const Key = childText(node, "Key");
    const Value = childText(node, "Value");
    if (Key === undefined || Value === undefined) throw Errors.MalformedXML();
    return { Key, Value };
  });
  validateTags(tags);
  await ctx.services.buckets.setSetting(bucket.name, "tagging", tags.length > 0 ? JSON.stringify(tags) : null);
  return new Response(null, { status: 204 });
}

export async function getBucketTagging(ctx: S3Context): Promise<Response> {
  const bucket = requireBucket(ctx);
  if (bucket.tagging === null) throw Errors.NoSuchTagSet({ BucketName: bucket.name });
  const tags = JSON.parse(bucket.tagging) as Tag[];
  return xmlResponse("Tagging", { TagSet: { Tag: tags.map((t) => ({ Key: t.Key, Value: t.Value })) } });
}

export async function deleteBucketTagging(ctx: S3Context): Promise<Response> {
  const bucket = requireBucket(ctx);
  await ctx.services.buckets.setSetting(bucket.name, "tagging", null);
  return new Response(null, { status: 204 });
}

/** The first violation, in AWS's order: the count, then each tag in turn. */
function validateTags(tags: Tag[]): void {
  if (tags.length > MAX_TAGS) throw new S3Error("BadRequest", 400, `Bucket tag count cannot be greater than ${MAX_TAGS}`);
  const seen = new Set<string>();
  for (const { Key, Value } of tags) {
    if (chars(Key) < 1 || chars(Key) > 128 || !ALLOWED.test(Key)) throw Errors.InvalidTag({ TagKey: Key }, "The TagKey you have provided is invalid");
    if (chars(Value) > 256 || !ALLOWED.test(Value)) throw Errors.InvalidTag({ TagKey: Key, TagValue: Value }, "The TagValue you have provided is invalid");
    if (Key.toLowerCase().startsWith("aws:")) throw Errors.InvalidTag({ TagKey: Key }, "Your TagKey cannot be prefixed with aws:");
    if (seen.has(Key)) throw Errors.InvalidTag({ TagKey: Key }, "Cannot provide multiple Tags with the same key");
    seen.add(Key);
  }
}
