import { listObjects, type ListedObject, type ListPage } from "../../objects/list";
import { fromBase64, toBase64 } from "../../util/bytes";
import { requireBucket, type S3Context } from "../context";
import { Errors } from "../../errors";
import { encodingType, keyEncoder, listLimit } from "../list-params";
import { inOwningTenant } from "../sse-rules";
import { xmlResponse } from "../xml";

/**
 * A marker that names a common prefix ("photos/") must skip every key under it, which R2's
 * startAfter alone would list again: continue after the largest key with that prefix.
 * Only a marker that is one of this listing's common prefixes (prefix, then text, then
 * the first delimiter) qualifies: a marker equal to the prefix itself skips nothing.
 */
function startAfterFor(marker: string, delimiter: string | undefined, prefix: string): string {
  if (!delimiter || !marker.startsWith(prefix) || marker.length <= prefix.length) return marker;
  const first = marker.indexOf(delimiter, prefix.length);
  return first >= 0 && first + delimiter.length === marker.length ? marker + "\u{10FFFF}" : marker;
}

/** Continuation tokens wrap R2's cursor so they are opaque and validated on the way back. */
function encodeToken(cursor: string): string {
  return toBase64(new TextEncoder().encode(`v1:${cursor}`));
}

function decodeToken(token: string): string {
  const bytes = fromBase64(token);
  const text = bytes ? new TextDecoder().decode(bytes) : "";
  if (!text.startsWith("v1:")) throw Errors.InvalidArgument({ ArgumentName: "continuation-token", ArgumentValue: token }, "The continuation token provided is incorrect");
  return text.slice(3);
}

function owner(tenantId: string) {
  return { ID: tenantId, DisplayName: tenantId };
}

/** ChecksumAlgorithm and ChecksumType as S3 lists them (after ETag), when the object has a checksum. */
function checksumElements(o: ListedObject): { ChecksumAlgorithm?: string; ChecksumType?: string } {
  return o.checksum ? { ChecksumAlgorithm: o.checksum.algorithm, ChecksumType: o.checksum.type } : {};
}

function contents(page: ListPage, enc: (s: string) => string, withOwner: string | null) {
  return page.objects.map((o) => ({
    Key: enc(o.key),
    LastModified: o.lastModified.toISOString(),
    ETag: `"${o.etag}"`,
    ...checksumElements(o),
    Size: o.size,
    StorageClass: "STANDARD",
    ...(withOwner ? { Owner: owner(withOwner) } : {}),
  }));
}

export async function listObjectsV2(ctx: S3Context): Promise<Response> {
  const bucket = requireBucket(ctx);
  const q = ctx.url.searchParams;
  const prefix = q.get("prefix") ?? "";
  const delimiter = q.get("delimiter") || undefined;
  const limit = listLimit(q, "max-keys");
  const type = encodingType(q);
  const enc = keyEncoder(type);
  // An empty continuation-token is the same as none (AWS lists from the start).
  const token = q.get("continuation-token") || null;
  const startAfter = q.get("start-after") ?? undefined;
  const page = await listObjects(ctx.services.objects, bucket, {
    prefix,
    maxKeys: limit,
    opaqueKmsEtags: !inOwningTenant(ctx, bucket),
    ...(delimiter ? { delimiter } : {}),
    ...(token !== null ? { cursor: decodeToken(token) } : startAfter ? { startAfter } : {}),
  });
  return xmlResponse("ListBucketResult", {
    Name: bucket.name,
    Prefix: enc(prefix),
    ...(delimiter ? { Delimiter: enc(delimiter) } : {}),
    MaxKeys: limit,
    ...(type ? { EncodingType: type } : {}),
    KeyCount: page.objects.length + page.commonPrefixes.length,
    IsTruncated: page.truncated,
    ...(token !== null ? { ContinuationToken: token } : {}),
    ...(page.cursor ? { NextContinuationToken: encodeToken(page.cursor) } : {}),
    ...(startAfter ? { StartAfter: enc(startAfter) } : {}),
    Contents: contents(page, enc, q.get("fetch-owner") === "true" ? bucket.tenantId : null),
    CommonPrefixes: page.commonPrefixes.map((p) => ({ Prefix: enc(p) })),
  });
}

/**
 * The marker-paged listings (V1 and ObjectVersions): the query's prefix, delimiter, limit
 * and encoding, one page after `marker`, and the last key or common prefix it holds (the
 * next marker when truncated).
 */
async function markerPage(ctx: S3Context, marker: string) {
  const bucket = requireBucket(ctx);
  const q = ctx.url.searchParams;
  const prefix = q.get("prefix") ?? "";
  const delimiter = q.get("delimiter") || undefined;
  const limit = listLimit(q, "max-keys");
  const type = encodingType(q);
  const page = await listObjects(ctx.services.objects, bucket, {
    prefix,
    maxKeys: limit,
    opaqueKmsEtags: !inOwningTenant(ctx, bucket),
    ...(delimiter ? { delimiter } : {}),
    ...(marker ? { startAfter: startAfterFor(marker, delimiter, prefix) } : {}),
  });
  const last = [...page.objects.map((o) => o.key), ...page.commonPrefixes].sort().at(-1);
  return { bucket, q, prefix, delimiter, limit, type, enc: keyEncoder(type), page, last };
}

export async function listObjectsV1(ctx: S3Context): Promise<Response> {
  const marker = ctx.url.searchParams.get("marker") ?? "";
  const { bucket, prefix, delimiter, limit, type, enc, page, last } = await markerPage(ctx, marker);
  // encoding-type=url encodes Delimiter, Marker, NextMarker, Key and CommonPrefixes'
  // Prefix in V1 — AWS leaves the top-level Prefix as sent (unlike V2).
  return xmlResponse("ListBucketResult", {
    Name: bucket.name,
    Prefix: prefix,
    Marker: enc(marker),
    ...(page.truncated && delimiter && last !== undefined ? { NextMarker: enc(last) } : {}),
    MaxKeys: limit,
    ...(delimiter ? { Delimiter: enc(delimiter) } : {}),
    ...(type ? { EncodingType: type } : {}),
    IsTruncated: page.truncated,
    Contents: contents(page, enc, bucket.tenantId),
    CommonPrefixes: page.commonPrefixes.map((p) => ({ Prefix: enc(p) })),
  });
}

/** ListObjectVersions on an unversioned bucket: every object is its only ("null") version. */
export async function listObjectVersions(ctx: S3Context): Promise<Response> {
  const keyMarker = ctx.url.searchParams.get("key-marker") ?? "";
  const { bucket, q, prefix, delimiter, limit, type, enc, page, last } = await markerPage(ctx, keyMarker);
  return xmlResponse("ListVersionsResult", {
    Name: bucket.name,
    Prefix: enc(prefix),
    KeyMarker: enc(keyMarker),
    VersionIdMarker: q.get("version-id-marker") ?? "",
    ...(page.truncated && last !== undefined ? { NextKeyMarker: enc(last), NextVersionIdMarker: "null" } : {}),
    MaxKeys: limit,
    ...(delimiter ? { Delimiter: enc(delimiter) } : {}),
    ...(type ? { EncodingType: type } : {}),
    IsTruncated: page.truncated,
    Version: page.objects.map((o) => ({
      Key: enc(o.key),
      VersionId: "null",
      IsLatest: true,
      LastModified: o.lastModified.toISOString(),
      ETag: `"${o.etag}"`,
      ...checksumElements(o),
      Size: o.size,
      StorageClass: "STANDARD",
      Owner: owner(bucket.tenantId),
    })),
    CommonPrefixes: page.commonPrefixes.map((p) => ({ Prefix: enc(p) })),
  });
}
