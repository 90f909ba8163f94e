import { openBody, type BodySource } from "../../auth/body";
import { checksumTypeOf, parseChecksumAlgorithm, type ChecksumAlgorithm, type ChecksumType } from "../../checksum";
import { randomBytes } from "../../crypto/keys";
import { copyObject } from "../../objects/copy";
import { maxKeyBytes, objectR2Key } from "../../objects/location";
import { readObject, statObject } from "../../objects/read";
import { writeObject, type ChecksumPlan } from "../../objects/write";
import type { Bucket } from "../../store/buckets";
import { fromBase64, toHex } from "../../util/bytes";
import { markDeadAfter } from "../../multipart/lifecycle";
import { UploadStore } from "../../multipart/store";
import { assertAllowed } from "../access";
import { assertOwnerOnlyAclHeaders } from "../acl";
import { evaluateConditions, readConditions } from "../conditions";
import { requireBucket, requireKey, type S3Context } from "../context";
import { Errors, S3Error } from "../../errors";
import { applyResponseOverrides, httpMetadataFrom, objectResponseHeaders, userMetadataFrom } from "../object-headers";
import { parseRange, resolveRange } from "../../util/range";
import { chooseSse, parseDefaultEncryption, sseFromHeaders, sseResponseHeaders, type SseChoice } from "../sse";
import { customerKeyFrom, customerKeyGate } from "../sse-c";
import { assertMayRead, assertMayWriteWith, assertNoSseHeaders } from "../sse-rules";
import type { Tag } from "../../store/object-tags";
import { tagsFromHeader } from "../tagging";
import { assertMayDeleteKey, guardedWriteCondition, translateWriteError } from "../write-guard";
import { authorizedObject, policyUsesExistingTags, tagsOf, tagStore } from "./object-tagging";
import { buildXml } from "../xml";
import { headPart, partNumberParam } from "./object-parts";
import { setExpiration, setTaggingCount } from "./object-read-headers";

/** Largest single PUT S3 accepts; bigger objects must be multipart uploads. */
export const MAX_PUT_BYTES = 5 * 1024 ** 3;

const encoder = new TextEncoder();

export function assertKeyFits(bucket: Bucket, key: string): void {
  if (encoder.encode(key).byteLength > maxKeyBytes(bucket.name)) throw Errors.KeyTooLongError({ Size: String(encoder.encode(key).byteLength), MaxSizeAllowed: String(maxKeyBytes(bucket.name)) });
}

/**
 * The ETag is decided before the first byte reaches R2 (R2 takes metadata with the put):
 * the client's Content-MD5 when it sent one — verified against the body before the write
 * commits, so it is the MD5 of the object, as AWS's ETags are. Otherwise the MD5 is not
 * known in time, and the ETag is an opaque value in the "<hex>-1" form that S3 clients
 * (s3cmd, rclone) already read as "not an MD5 of the body" instead of failing a check.
 */
export function chooseEtag(headers: Headers, sse?: Pick<SseChoice, "mode">): string {
  // S3 never gives an SSE-C object the MD5 of its plaintext as ETag: it would tell anyone
  // who may list the bucket (and R2, through the facts) something about data only the
  // key holder may read.
  if (sse?.mode === "SSE-C") return opaqueEtag();
  const md5 = headers.get("content-md5");
  const bytes = md5 ? fromBase64(md5.trim()) : null;
  return bytes && bytes.byteLength === 16 ? toHex(bytes) : opaqueEtag();
}

/** An ETag that is not an MD5 of anything ("<32 random hex>-1", read by clients as such). */
export function opaqueEtag(): string {
  return `${toHex(randomBytes(16))}-1`;
}

/**
 * What every request creating an object states up front (PutObject,
 * CreateMultipartUpload): where it goes, its encryption — request headers, else the
 * bucket default, checked against the SSE-KMS rules — and its metadata.
 */
export async function newObjectIntent(ctx: S3Context) {
  const bucket = requireBucket(ctx);
  const key = requireKey(ctx);
  assertKeyFits(bucket, key);
  const headers = ctx.request.headers;
  assertOwnerOnlyAclHeaders(headers, bucket.tenantId);
  const sse = await chooseSse(headers, parseDefaultEncryption(bucket.encryption));
  assertMayWriteWith(ctx, bucket, sse);
  const tags = tagsFromHeader(headers);
  // Setting tags with the object needs s3:PutObjectTagging as well, as on AWS.
  if (tags && tags.length > 0) assertAllowed(ctx, bucket, "s3:PutObjectTagging", key);
  return { bucket, key, headers, sse, http: httpMetadataFrom(headers), userMetadata: userMetadataFrom(headers), tags: tags ?? [] };
}

/**
 * Records the tags a new object was created with (a D1 row keyed by its R2 etag). An
 * object created without tags needs no row: a row of an earlier object at the key names
 * another etag and reads as no tags.
 */
export async function recordNewTags(ctx: S3Context, bucket: Bucket, key: string, written: { r2Etag: string; uploaded: Date }, tags: Tag[], always = false): Promise<void> {
  if (tags.length === 0 && !always) return;
  await tagStore(ctx).put(bucket.name, key, { r2Etag: written.r2Etag, uploaded: written.uploaded.getTime() }, tags);
  if (!bucket.hasObjectTags) ctx.services.buckets.forget(bucket.name);
}

export async function putObject(ctx: S3Context): Promise<Response> {
  const { bucket, key, headers, sse, http, userMetadata, tags } = await newObjectIntent(ctx);
  const body = openBody(ctx.request, ctx.verified, { computeMd5: false });
  if (body.length === null) throw Errors.MissingContentLength();
  if (body.length > MAX_PUT_BYTES) throw Errors.EntityTooLarge({ ProposedSize: String(body.length), MaxSizeAllowed: String(MAX_PUT_BYTES) });

  const condition = await guardedWriteCondition(ctx, bucket, key);
  let written;
  try {
    written = await writeObject(ctx.services.objects, {
      bucket,
      key,
      source: body,
      length: body.length,
      sse,
      http,
      userMetadata,
      facts: { etag: chooseEtag(headers, sse) },
      checksum: bodyChecksumPlan(body),
      ...(condition ? { onlyIf: condition.onlyIf } : {}),
    });
  } catch (error) {
    // A write refused before its body was read (KMS key errors) must still release the
    // request body, or the runtime cannot drain it ("Failed to drain the unused request body").
    await body.cancel(error).catch(() => {});
    throw translateWriteError(error, condition);
  }
  await recordNewTags(ctx, bucket, key, written, tags);
  const response = new Headers({ ETag: `"${written.etag}"`, ...sseResponseHeaders(written) });
  setExpiration(response, bucket, key, body.length, new Date());
  setChecksumHeaders(response, written.checksum);
  return new Response(null, { status: 200, headers: response });
}

/**
 * The checksum a new object keeps: the one the client sent (header or aws-chunked
 * trailer, verified when the body ends), else CRC64NVME computed as it streams, as S3
 * gives every new object.
 */
export function bodyChecksumPlan(body: BodySource): ChecksumPlan {
  if (!body.checksumAlgorithm) return { compute: "CRC64NVME" };
  return { algorithm: body.checksumAlgorithm, from: () => ({ ...body.result.checksum!, type: "FULL_OBJECT" }) };
}

/** x-amz-checksum-<alg> and x-amz-checksum-type of a stored checksum (PutObject, GET/HEAD with checksum mode). */
export function setChecksumHeaders(headers: Headers, checksum: { algorithm: string; value: string; type?: ChecksumType } | undefined): void {
  if (!checksum) return;
  headers.set(`x-amz-checksum-${checksum.algorithm.toLowerCase()}`, checksum.value);
  headers.set("x-amz-checksum-type", checksum.type ?? checksumTypeOf(checksum.value));
}

export async function getObject(ctx: S3Context): Promise<Response> {
  return readResponse(ctx, false);
}

export async function headObject(ctx: S3Context): Promise<Response> {
  return readResponse(ctx, true);
}

async function readResponse(ctx: S3Context, headOnly: boolean): Promise<Response> {
  const bucket = requireBucket(ctx);
  const key = requireKey(ctx);
  const headers = ctx.request.headers;
  assertNoSseHeaders(headers);
  const partNumber = partNumberParam(ctx.url.searchParams, headers);
  const conditions = readConditions(headers);
  const gate = customerKeyGate(ctx, await customerKeyFrom(headers), (mode) => assertMayRead(ctx, bucket, mode));
  const checksumMode = headers.get("x-amz-checksum-mode")?.toUpperCase() === "ENABLED";
  const rangeHeader = headers.get("range");
  const range = parseRange(rangeHeader);

  // A policy testing s3:ExistingObjectTag: the dispatcher left authorization to us.
  if (operationDeferred(bucket)) await authorizedObject(ctx, bucket, key, "s3:GetObject", gate);

  if (headOnly) {
    if (partNumber !== undefined) return headPart(ctx, bucket, key, partNumber, gate, conditions);
    // Only a whole-object answer carries the checksum (as S3): a range HEAD does not fetch it.
    const info = await statObject(ctx.services.objects, bucket, key, gate, checksumMode && !range);
    evaluateConditions(conditions, info);
    const out = objectResponseHeaders(info, checksumMode && !range);
    await setTaggingCount(ctx, bucket, info, out);
    setExpiration(out, bucket, key, info.size, info.lastModified);
    applyResponseOverrides(out, ctx.url.searchParams, ctx.principal === null);
    if (range) {
      const span = resolveRange(range, info.size);
      if (span === "unsatisfiable") throw withRange(Errors.InvalidRange({ ActualObjectSize: String(info.size) }), rangeHeader);
      out.set("Content-Range", `bytes ${span.first}-${span.last}/${info.size}`);
      out.set("Content-Length", String(span.last - span.first + 1));
      return new Response(null, { status: 206, headers: out });
    }
    out.set("Content-Length", String(info.size));
    return new Response(null, { status: 200, headers: out });
  }

  let read;
  try {
    read = await readObject(ctx.services.objects, bucket, key, range, gate, (info) => evaluateConditions(conditions, info), partNumber, checksumMode);
  } catch (error) {
    throw error instanceof S3Error && error.code === "InvalidRange" ? withRange(error, rangeHeader) : error;
  }
  const out = objectResponseHeaders(read.info, checksumMode && !read.span);
  try {
    await setTaggingCount(ctx, bucket, read.info, out);
  } catch (error) {
    if (!(read.body instanceof Uint8Array)) await read.body.cancel().catch(() => {});
    throw error;
  }
  if (read.partsCount !== undefined) out.set("x-amz-mp-parts-count", String(read.partsCount));
  setExpiration(out, bucket, key, read.info.size, read.info.lastModified);
  applyResponseOverrides(out, ctx.url.searchParams, ctx.principal === null);
  const length = read.span ? read.span.last - read.span.first + 1 : read.info.size;
  if (read.span) out.set("Content-Range", `bytes ${read.span.first}-${read.span.last}/${read.info.size}`);
  const status = read.span ? 206 : 200;
  // A small object's plaintext was decrypted and checked in memory: a fixed body.
  if (read.body instanceof Uint8Array) return new Response(length === 0 ? null : read.body, { status, headers: withLength(out, length) });
  if (length === 0) {
    // An empty object is still one sealed chunk: verify it before answering. Streamed
    // through a FixedLengthStream(0), a failure would make the runtime fail the whole
    // request (no S3 error at all) instead of answering 500 InternalError.
    await new Response(read.body).arrayBuffer();
    return new Response(null, { status: 200, headers: withLength(out, 0) });
  }
  // A FixedLengthStream makes the response carry Content-Length; if decryption fails
  // mid-way the stream errors, so the client sees a truncated body, never a clean end.
  const fixed = new FixedLengthStream(length);
  read.body.pipeTo(fixed.writable).catch((error) => logIntegrity(ctx, key, error));
  return new Response(fixed.readable, { status, headers: out });
}

function withLength(headers: Headers, length: number): Headers {
  headers.set("Content-Length", String(length));
  return headers;
}

/** CopyObject's x-amz-checksum-algorithm: the copy's checksum is recomputed with it. */
function copyChecksumAlgorithm(headers: Headers): ChecksumAlgorithm | undefined {
  const raw = headers.get("x-amz-checksum-algorithm");
  if (raw === null) return undefined;
  const algorithm = parseChecksumAlgorithm(raw);
  if (!algorithm) {
    throw Errors.InvalidRequest({}, "Checksum algorithm provided is unsupported. Please try again with any of the valid types: [CRC32, CRC32C, CRC64NVME, SHA1, SHA256]");
  }
  return algorithm;
}

const operationDeferred = policyUsesExistingTags;

function withRange(error: S3Error, header: string | null): S3Error {
  return new S3Error(error.code, error.status, error.message, { RangeRequested: header ?? "", ...error.details });
}

function logIntegrity(ctx: S3Context, key: string, error: unknown): void {
  const reason = error instanceof Error ? error.message : String(error);
  console.error(JSON.stringify({ event: "object-stream-aborted", requestId: ctx.requestId, bucket: ctx.bucket?.name, key, reason }));
}

export async function deleteObject(ctx: S3Context): Promise<Response> {
  const bucket = requireBucket(ctx);
  const key = requireKey(ctx);
  // A multipart object's part data goes with it, after a grace for reads still streaming it (docs/multipart.md, "Clean-up").
  await assertMayDeleteKey(ctx, bucket, key);
  const r2 = ctx.services.objects.r2;
  await markDeadAfter({ r2, store: new UploadStore(ctx.services.env.DB) }, bucket.name, [key], r2.delete(objectR2Key(bucket.name, key)));
  return new Response(null, { status: 204 });
}

/**
 * s3:GetObject on a copy source (CopyObject, UploadPartCopy). When the source bucket's
 * policy tests s3:ExistingObjectTag, the source's tags are loaded first: a copy must not
 * read what a GET may not.
 */
export async function assertMayReadSource(ctx: S3Context, sourceBucket: Bucket, key: string): Promise<void> {
  if (!policyUsesExistingTags(sourceBucket)) return assertAllowed(ctx, sourceBucket, "s3:GetObject", key);
  await authorizedObject(ctx, sourceBucket, key, "s3:GetObject", (mode) => assertMayRead(ctx, sourceBucket, mode));
}

/** x-amz-copy-source: "[/]bucket/key[?versionId=…]", URL-encoded. */
export function parseCopySource(ctx: S3Context): { bucket: string; key: string } {
  const raw = ctx.request.headers.get("x-amz-copy-source")!;
  const [path, query] = raw.split("?", 2) as [string, string | undefined];
  if (query !== undefined && /(^|&)versionId=/.test(query) && !/(^|&)versionId=null(&|$)/.test(query)) {
    throw Errors.NotImplemented({}, "Versioned copy sources are not supported: buckets are unversioned");
  }
  let decoded: string;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    throw Errors.InvalidArgument({ ArgumentName: "x-amz-copy-source", ArgumentValue: raw }, "Invalid copy source encoding");
  }
  const trimmed = decoded.startsWith("/") ? decoded.slice(1) : decoded;
  const slash = trimmed.indexOf("/");
  if (slash <= 0 || slash === trimmed.length - 1) {
    throw Errors.InvalidArgument({ ArgumentName: "x-amz-copy-source", ArgumentValue: raw }, "Copy Source must mention the source bucket and key: sourcebucket/sourcekey");
  }
  const bucket = trimmed.slice(0, slash);
  const key = trimmed.slice(slash + 1);
  // A source no object can have (R2 would fail the read with a 500).
  if (encoder.encode(key).byteLength > maxKeyBytes(bucket)) throw Errors.NoSuchKey({ Key: key });
  return { bucket, key };
}

export async function copyObjectHandler(ctx: S3Context): Promise<Response> {
  const target = requireBucket(ctx);
  const key = requireKey(ctx);
  assertKeyFits(target, key);
  const headers = ctx.request.headers;
  assertOwnerOnlyAclHeaders(headers, target.tenantId);
  const src = parseCopySource(ctx);
  const sourceBucket = await ctx.services.buckets.get(src.bucket);
  if (!sourceBucket) throw Errors.NoSuchBucket({ BucketName: src.bucket });
  await assertMayReadSource(ctx, sourceBucket, src.key);

  const directive = (headers.get("x-amz-metadata-directive") ?? "COPY").toUpperCase();
  if (directive !== "COPY" && directive !== "REPLACE") {
    throw Errors.InvalidArgument({ ArgumentName: "x-amz-metadata-directive", ArgumentValue: directive }, "Unknown metadata directive.");
  }
  const taggingDirective = (headers.get("x-amz-tagging-directive") ?? "COPY").toUpperCase();
  if (taggingDirective !== "COPY" && taggingDirective !== "REPLACE") {
    throw Errors.InvalidArgument({ ArgumentName: "x-amz-tagging-directive", ArgumentValue: taggingDirective }, "Unknown tagging directive.");
  }
  const replacedTags = taggingDirective === "REPLACE" ? (tagsFromHeader(headers) ?? []) : null;
  if (replacedTags && replacedTags.length > 0) assertAllowed(ctx, target, "s3:PutObjectTagging", key);
  const explicitSse = await sseFromHeaders(headers);
  const sse = explicitSse ?? (await chooseSse(headers, parseDefaultEncryption(target.encryption)));
  const sourceKey = await customerKeyFrom(headers, "source");
  assertMayWriteWith(ctx, target, sse);
  const sameObject = sourceBucket.name === target.name && src.key === key;
  if (sameObject && directive === "COPY" && !explicitSse && !headers.has("x-amz-storage-class")) {
    throw Errors.InvalidRequest(
      {},
      "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.",
    );
  }
  const conditions = readConditions(headers, "x-amz-copy-source-");
  const checksumAlgorithm = copyChecksumAlgorithm(headers);
  const guard = await guardedWriteCondition(ctx, target, key);
  const result = await copyObject(ctx.services.objects, {
    source: { bucket: sourceBucket, key: src.key },
    target: { bucket: target, key },
    sse,
    metadata: directive === "REPLACE" ? { http: httpMetadataFrom(headers), userMetadata: userMetadataFrom(headers) } : null,
    ...(checksumAlgorithm ? { checksumAlgorithm } : {}),
    gate: customerKeyGate(ctx, sourceKey, (mode) => assertMayRead(ctx, sourceBucket, mode)),
    check: (info) => {
      if (info.size > MAX_PUT_BYTES) {
        throw Errors.InvalidRequest({}, `The specified copy source is larger than the maximum allowable size for a copy source: ${MAX_PUT_BYTES}`);
      }
      evaluateConditions(conditions, info, true);
    },
    ...(guard ? { onlyIf: guard.onlyIf } : {}),
  }).catch((error: unknown) => {
    throw translateWriteError(error, guard);
  });
  // COPY takes the source version's tags. A copy can store the very ciphertext (R2 etag)
  // an earlier object at the target key had, so in a bucket with tags the target's row is
  // always written, even empty.
  // The source's tags are always read (one query per copy), so a stale "has tags" flag of
  // this isolate never drops them.
  const tags = replacedTags ?? (await tagsOf(ctx, sourceBucket, result.info, true));
  await recordNewTags(ctx, target, key, result, tags, target.hasObjectTags);
  const copied: Record<string, string> = { LastModified: result.uploaded.toISOString(), ETag: `"${result.etag}"` };
  if (result.checksum) {
    copied.ChecksumType = result.checksum.type;
    copied[`Checksum${result.checksum.algorithm}`] = result.checksum.value;
  }
  const body = buildXml("CopyObjectResult", copied);
  return new Response(body, { status: 200, headers: { "Content-Type": "application/xml", ...sseResponseHeaders(result) } });
}
