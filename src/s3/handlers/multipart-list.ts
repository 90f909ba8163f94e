import { unsealFacts } from "../../crypto/facts";
import { partFactsLocation } from "../../multipart/complete";
import { AFTER_ALL_IDS } from "../../multipart/ids";
import type { UploadRecord } from "../../multipart/store";
import { requireBucket, requireKey, type S3Context } from "../context";
import { Errors } from "../../errors";
import { encodingType, keyEncoder, listLimit } from "../list-params";
import { xmlResponse } from "../xml";
import { namedUpload, uploadStore } from "./multipart";
import { assertMayRead } from "../sse-rules";

/** ListParts and ListMultipartUploads, with S3's markers and limits. */

function initiator(upload: UploadRecord) {
  return { ID: upload.initiatorId, DisplayName: upload.initiatorName };
}

function owner(tenantId: string) {
  return { ID: tenantId, DisplayName: tenantId };
}

export async function listParts(ctx: S3Context): Promise<Response> {
  const bucket = requireBucket(ctx);
  const key = requireKey(ctx);
  const q = ctx.url.searchParams;
  const maxParts = listLimit(q, "max-parts");
  const rawMarker = q.get("part-number-marker") ?? "0";
  if (!/^\d{1,9}$/.test(rawMarker)) {
    throw Errors.InvalidArgument({ ArgumentName: "part-number-marker", ArgumentValue: rawMarker }, "Provided part-number-marker not an integer or within integer range");
  }
  const marker = Number(rawMarker);
  const enc = keyEncoder(encodingType(q));
  const upload = await namedUpload(ctx, bucket, key);
  // Part ETags (plaintext MD5s) and checksums of an SSE-KMS upload: its tenant's admins only.
  assertMayRead(ctx, bucket, upload.mode);

  const rows = maxParts === 0 ? [] : await uploadStore(ctx).listParts(upload.uploadId, marker, maxParts + 1);
  const truncated = rows.length > maxParts;
  const page = rows.slice(0, maxParts);
  const sealKey = await ctx.services.keys.sealKey(upload.tenantId, upload.masterVersion);
  const parts = await Promise.all(
    page.map(async (p) => {
      const facts = await unsealFacts(sealKey, ...partFactsLocation(upload.uploadId, p.partNumber), p.facts);
      return {
        PartNumber: p.partNumber,
        LastModified: new Date(p.uploadedAt).toISOString(),
        ETag: `"${facts.etag}"`,
        Size: p.size,
        ...(facts.checksum ? { [`Checksum${facts.checksum.algorithm}`]: facts.checksum.value } : {}),
      };
    }),
  );
  return xmlResponse("ListPartsResult", {
    Bucket: bucket.name,
    Key: enc(key),
    UploadId: upload.uploadId,
    PartNumberMarker: marker,
    NextPartNumberMarker: page.length > 0 ? page[page.length - 1]!.partNumber : marker,
    MaxParts: maxParts,
    IsTruncated: truncated,
    Part: parts,
    Initiator: initiator(upload),
    Owner: owner(upload.tenantId),
    StorageClass: "STANDARD",
    ...(upload.checksumAlgorithm ? { ChecksumAlgorithm: upload.checksumAlgorithm, ChecksumType: upload.checksumType } : {}),
    ...(q.has("encoding-type") ? { EncodingType: "url" } : {}),
  });
}

/**
 * Rows per D1 query (max-uploads + 1 for a full page and the sign of more), and queries per
 * ListMultipartUploads request: at most 3,003 rows read.
 */
const UPLOAD_PAGE = 1001;
const MAX_UPLOAD_QUERIES = 3;

/**
 * The least string greater than every string that starts with `prefix` (code point order,
 * which is SQLite's byte order of UTF-8), or null when there is none. "photos/" → "photos0".
 */
export function prefixEnd(prefix: string): string | null {
  const cps = Array.from(prefix);
  while (cps.length > 0) {
    const last = cps.pop()!.codePointAt(0)!;
    if (last < 0x10ffff) return cps.join("") + String.fromCodePoint(last + 1 === 0xd800 ? 0xe000 : last + 1);
  }
  return null;
}

/**
 * ListMultipartUploads: uploads in (key, initiation time) order after (key-marker,
 * upload-id-marker); with a delimiter, keys sharing a prefix up to it roll up into one
 * CommonPrefixes entry, which counts against max-uploads like an upload does.
 *
 * Work per request is bounded: each query is a range scan of the tenant's own rows (index
 * multipart_uploads_by_tenant_key, keys within the prefix's range) of at most UPLOAD_PAGE
 * rows, a page that ends inside a rolled-up prefix resumes past every key under it, and
 * after MAX_UPLOAD_QUERIES queries the answer is truncated where it stands (IsTruncated with
 * the next markers, possibly with fewer than max-uploads entries, as S3 allows).
 */
export async function listMultipartUploads(ctx: S3Context): Promise<Response> {
  const bucket = requireBucket(ctx);
  const q = ctx.url.searchParams;
  const prefix = q.get("prefix") ?? "";
  const delimiter = q.get("delimiter") || undefined;
  const keyMarker = q.get("key-marker") ?? "";
  // upload-id-marker only means something next to a key-marker; without one, a key-marker
  // skips every upload of that key.
  const uploadIdMarker = keyMarker ? q.get("upload-id-marker") || AFTER_ALL_IDS : "";
  const maxUploads = listLimit(q, "max-uploads");
  const type = encodingType(q);
  const enc = keyEncoder(type);
  const store = uploadStore(ctx);

  const uploads: UploadRecord[] = [];
  const prefixes: string[] = [];
  let truncated = false;
  let next: { key: string; uploadId?: string } | null = null;
  const before = prefixEnd(prefix);
  let cursor: { key: string; uploadId: string } | null = { key: keyMarker, uploadId: uploadIdMarker };
  // A marker naming a common prefix ("photos/") skips every key under it.
  if (delimiter && keyMarker.startsWith(prefix) && keyMarker.endsWith(delimiter)) {
    const end = prefixEnd(keyMarker);
    cursor = end === null ? null : { key: end, uploadId: "" };
  }
  let lastPrefix: string | null = null;
  const limit = Math.min(UPLOAD_PAGE, maxUploads + 1);
  let queries = 0;
  scan: while (cursor !== null) {
    if (queries === MAX_UPLOAD_QUERIES) {
      truncated = next !== null;
      break;
    }
    queries++;
    const rows = await store.listUploads(bucket.name, bucket.tenantId, { afterKey: cursor.key, afterUploadId: cursor.uploadId, from: prefix, before: prefix === "" ? null : before, limit });
    for (const row of rows) {
      let common: string | null = null;
      if (delimiter) {
        const at = row.key.indexOf(delimiter, prefix.length);
        if (at >= 0) common = row.key.slice(0, at + delimiter.length);
      }
      if (common === null || common !== lastPrefix) {
        if (uploads.length + prefixes.length >= maxUploads) {
          truncated = true;
          break scan;
        }
        if (common !== null) {
          prefixes.push(common);
          lastPrefix = common;
          next = { key: common };
        } else {
          uploads.push(row);
          next = { key: row.key, uploadId: row.uploadId };
        }
      }
      cursor = { key: row.key, uploadId: row.uploadId };
    }
    if (rows.length < limit) break;
    // The page ended inside a rolled-up prefix: go on after every key under it.
    if (lastPrefix !== null && cursor.key.startsWith(lastPrefix)) {
      const end = prefixEnd(lastPrefix);
      cursor = end === null ? null : { key: end, uploadId: "" };
    }
  }

  return xmlResponse("ListMultipartUploadsResult", {
    Bucket: bucket.name,
    KeyMarker: enc(keyMarker),
    UploadIdMarker: q.get("upload-id-marker") ?? "",
    ...(truncated && next ? { NextKeyMarker: enc(next.key), NextUploadIdMarker: next.uploadId ?? "" } : {}),
    ...(delimiter ? { Delimiter: enc(delimiter) } : {}),
    Prefix: enc(prefix),
    MaxUploads: maxUploads,
    IsTruncated: truncated,
    Upload: uploads.map((u) => ({
      Key: enc(u.key),
      UploadId: u.uploadId,
      Initiator: initiator(u),
      Owner: owner(u.tenantId),
      StorageClass: "STANDARD",
      Initiated: new Date(u.createdAt).toISOString(),
      ...(u.checksumAlgorithm ? { ChecksumAlgorithm: u.checksumAlgorithm, ChecksumType: u.checksumType } : {}),
    })),
    CommonPrefixes: prefixes.map((p) => ({ Prefix: enc(p) })),
    ...(type ? { EncodingType: "url" } : {}),
  });
}
