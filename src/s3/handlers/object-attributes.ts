import { objectParts, statAuthenticated } from "../../objects/read";
import type { ObjectInfo } from "../../objects/object-info";
import { Errors } from "../../errors";
import { requireBucket, requireKey, type S3Context } from "../context";
import { assertMayRead, assertNoSseHeaders } from "../sse-rules";
import { customerKeyFrom, customerKeyGate } from "../sse-c";
import { xmlResponse } from "../xml";

/**
 * GetObjectAttributes (GET /key?attributes): the attributes named in
 * x-amz-object-attributes, from the object's authenticated metadata — no body is read,
 * only the trailer record when the checksum is asked for (as HEAD with checksum mode).
 */
const ATTRIBUTES = ["ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"] as const;
type Attribute = (typeof ATTRIBUTES)[number];

function requestedAttributes(headers: Headers): Set<Attribute> {
  const raw = headers.get("x-amz-object-attributes");
  const names = (raw ?? "").split(",").map((n) => n.trim()).filter((n) => n !== "");
  if (names.length === 0) {
    throw Errors.InvalidArgument({ ArgumentName: "x-amz-object-attributes", ArgumentValue: raw ?? "" }, "Empty attribute header: x-amz-object-attributes.");
  }
  const out = new Set<Attribute>();
  for (const name of names) {
    if (!(ATTRIBUTES as readonly string[]).includes(name)) {
      throw Errors.InvalidArgument({ ArgumentName: "x-amz-object-attributes", ArgumentValue: name }, "Invalid attribute name specified.");
    }
    out.add(name as Attribute);
  }
  return out;
}

/** x-amz-max-parts / x-amz-part-number-marker: non-negative integers (max-parts ≤ 1000, as ListParts). */
function partPaging(headers: Headers): { maxParts: number; marker: number } {
  const count = (name: string, fallback: number) => {
    const raw = headers.get(name);
    if (raw === null) return fallback;
    if (!/^\d{1,9}$/.test(raw.trim())) throw Errors.InvalidArgument({ ArgumentName: name, ArgumentValue: raw }, `Provided ${name} not an integer or within integer range`);
    return Number(raw.trim());
  };
  return { maxParts: Math.min(count("x-amz-max-parts", 1000), 1000), marker: count("x-amz-part-number-marker", 0) };
}

function checksumElement(checksum: NonNullable<ObjectInfo["checksum"]>): Record<string, string> {
  return { [`Checksum${checksum.algorithm}`]: checksum.value, ChecksumType: checksum.type };
}

/**
 * ObjectParts in AWS's element order. Part elements only for an object uploaded with a
 * checksum algorithm (as S3: "if an additional checksum isn't applied to the object …, the
 * response doesn't return the Part element"), paged by part number like ListParts.
 */
function objectPartsElement(
  parts: NonNullable<Awaited<ReturnType<typeof objectParts>>>,
  paging: { maxParts: number; marker: number },
): Record<string, unknown> {
  const after = (parts.parts ?? []).filter((p) => p.number > paging.marker);
  const page = after.slice(0, paging.maxParts);
  const truncated = after.length > page.length;
  return {
    IsTruncated: truncated,
    MaxParts: paging.maxParts,
    ...(page.length > 0 ? { NextPartNumberMarker: page[page.length - 1]!.number } : {}),
    PartNumberMarker: paging.marker,
    ...(parts.parts ? { Part: page.map((p) => ({ [`Checksum${p.checksum.algorithm}`]: p.checksum.value, PartNumber: p.number, Size: p.size })) } : {}),
    PartsCount: parts.count,
  };
}

export async function getObjectAttributes(ctx: S3Context): Promise<Response> {
  const bucket = requireBucket(ctx);
  const key = requireKey(ctx);
  const headers = ctx.request.headers;
  assertNoSseHeaders(headers);
  const wanted = requestedAttributes(headers);
  const paging = partPaging(headers);
  if (ctx.url.searchParams.has("versionId") && ctx.url.searchParams.get("versionId") !== "null") {
    throw Errors.NotImplemented({}, "Object versions are not supported: buckets are unversioned");
  }
  // The SSE-KMS read rules apply: the checksum and ETag derive from the plaintext. An
  // SSE-C object needs its key, as for HEAD (S3 takes the same three headers here).
  const gate = customerKeyGate(ctx, await customerKeyFrom(headers), (mode) => assertMayRead(ctx, bucket, mode));
  const auth = await statAuthenticated(ctx.services.objects, bucket, key, gate, wanted.has("Checksum"));
  const { info, envelope } = auth;
  const body: Record<string, unknown> = {};
  // As AWS answers GetObjectAttributes: the ETag without its quotes.
  if (wanted.has("ETag")) body.ETag = info.etag;
  if (wanted.has("Checksum") && info.checksum) body.Checksum = checksumElement(info.checksum);
  if (wanted.has("ObjectParts") && envelope.layout.kind === "multipart") {
    const parts = await objectParts(ctx.services.objects, bucket, key, auth);
    if (parts) body.ObjectParts = objectPartsElement(parts, paging);
  }
  if (wanted.has("StorageClass")) body.StorageClass = "STANDARD";
  if (wanted.has("ObjectSize")) body.ObjectSize = info.size;
  return xmlResponse("GetObjectAttributesResponse", body, { headers: { "Last-Modified": info.lastModified.toUTCString() } });
}
