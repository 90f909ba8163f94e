// Object-level headers every GET/HEAD answer carries, whole object or part: shared by
// objects.ts and object-parts.ts.
import type { ObjectInfo } from "../../objects/object-info";
import type { Bucket } from "../../store/buckets";
import type { S3Context } from "../context";
import { expirationHeader } from "./lifecycle";
import { tagsOf } from "./object-tagging";

/** x-amz-expiration when a lifecycle rule covers the object. */
export function setExpiration(headers: Headers, bucket: Bucket, key: string, size: number, lastModified: Date): void {
  const value = expirationHeader(bucket, key, size, lastModified);
  if (value !== null) headers.set("x-amz-expiration", value);
}

/** x-amz-tagging-count on GET/HEAD: one D1 query, only in buckets where tags were ever set. */
export async function setTaggingCount(ctx: S3Context, bucket: Bucket, info: ObjectInfo, out: Headers): Promise<void> {
  const tags = await tagsOf(ctx, bucket, info);
  if (tags.length > 0) out.set("x-amz-tagging-count", String(tags.length));
}
