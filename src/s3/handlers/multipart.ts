import { openBody } from "../../auth/body";
import { CHECKSUMS, checksumForHeader, createMd5, parseChecksumAlgorithm, type ChecksumAlgorithm } from "../../checksum";
import type { PlaintextSource } from "../../crypto/encrypt";
import { sealFacts, type ObjectFacts } from "../../crypto/facts";
import { customerKeyMatches, deriveCustomerKek, macKeyBytes, sealUploadMacKey, type CustomerKey } from "../../crypto/customer-key";
import { newDataKey, randomBytes, unwrapDataKey } from "../../crypto/keys";
import { unwrapCheckedDataKey } from "../../kms/data-keys";
import { writeKeyFor } from "../../objects/object-keys";
import { partR2Key, writePart, MAX_PART_BYTES } from "../../objects/parts";
import { readObject } from "../../objects/read";
import type { ObjectRead } from "../../objects/object-info";
import { hashingSource } from "../../objects/write";
import { assertChecksumType, defaultChecksumType } from "../../multipart/checksum";
import { completeUpload, completionApplies, partFactsLocation, type CompleteDeps, type RequestedPart } from "../../multipart/complete";
import { isUploadId, newUploadId } from "../../multipart/ids";
import { abortUpload } from "../../multipart/lifecycle";
import { UploadStore, type ChecksumType, type CompletionRecord, type SseCUpload, type UploadRecord } from "../../multipart/store";
import type { Bucket } from "../../store/buckets";
import { toBase64, toHex } from "../../util/bytes";
import { BytesReader, ExactReader } from "../../util/exact-reader";
import { assertAllowed } from "../access";
import { evaluateConditions, readConditions } from "../conditions";
import { requireBucket, requireKey, type S3Context } from "../context";
import { Errors } from "../../errors";
import { SSE, SSE_BUCKET_KEY, SSE_CONTEXT, SSE_KEY_ID, sseResponseHeaders, type SseChoice } from "../sse";
import { assertMayRead, assertMayReplace, assertMayWriteWith, assertNoSseHeaders } from "../sse-rules";
import { assertCustomerKeyTransport, customerKeyFrom, customerKeyGate, hasCustomerKeyHeaders, SSE_C_MESSAGES } from "../sse-c";
import { guardedWriteCondition, translateWriteError } from "../write-guard";
import { childArray, childText, childToken, xmlResponse } from "../xml";
import { readBodyXml } from "./body-text";
import { tagStore } from "./object-tagging";
import { assertMayReadSource, newObjectIntent, parseCopySource, recordNewTags } from "./objects";

/**
 * Multipart upload operations (docs/multipart.md). CreateMultipartUpload is the only one
 * that takes encryption settings, metadata and content type; they are recorded with the
 * upload (D1) under one data key, and every part is encrypted as its own stream under it.
 */

export function uploadStore(ctx: S3Context): UploadStore {
  return new UploadStore(ctx.services.env.DB);
}

function uploadSse(upload: UploadRecord | CompletionRecord, customerKey?: CustomerKey | null): SseChoice & { keyArn: string } {
  return {
    mode: upload.mode,
    keyArn: upload.keyArn,
    ...(upload.context !== undefined ? { context: upload.context } : {}),
    bucketKeyEnabled: upload.bucketKeyEnabled,
    ...(customerKey ? { customerKey } : {}),
    explicit: false,
  };
}

/**
 * The customer key an UploadPart (or UploadPartCopy's target, or Complete) sends for
 * `upload`, checked against the upload's verifier: an SSE-C upload needs its own key on
 * every part (400 without it or with another), any other upload takes none.
 */
async function uploadCustomerKey(ctx: S3Context, upload: UploadRecord, required: boolean): Promise<CustomerKey | null> {
  const ck = await customerKeyFrom(ctx.request.headers);
  if (upload.mode !== "SSE-C") {
    if (ck) throw Errors.InvalidRequest({}, SSE_C_MESSAGES.partMismatch);
    return null;
  }
  if (!ck) {
    if (required) throw Errors.InvalidRequest({}, SSE_C_MESSAGES.partMissing);
    return null;
  }
  assertCustomerKeyTransport(ctx);
  const scope = { tenantId: upload.tenantId, bucket: upload.bucket, key: upload.key };
  if (!upload.customer || !(await customerKeyMatches(ck, upload.customer, scope))) throw Errors.InvalidRequest({}, SSE_C_MESSAGES.partMismatch);
  return ck;
}

/**
 * The upload a request names, authorized as s3:PutObject. These requests carry no SSE
 * headers, so the policy sees the encryption the upload was created with (a policy that
 * denies unencrypted PutObject must not break uploads created with aws:kms). An unknown
 * upload is authorized on the request alone, so AccessDenied never depends on it.
 */
async function writableUpload(ctx: S3Context, bucket: Bucket, key: string): Promise<UploadRecord> {
  const uploadId = ctx.url.searchParams.get("uploadId") ?? "";
  const found = isUploadId(uploadId) ? await uploadStore(ctx).get(uploadId) : null;
  const upload = found && found.bucket === bucket.name && found.key === key && found.tenantId === bucket.tenantId ? found : null;
  authorizeUploadWrite(ctx, bucket, key, upload);
  if (!upload) throw Errors.NoSuchUpload({ UploadId: uploadId });
  return upload;
}

/**
 * s3:PutObject with the policy keys set from the upload's recorded encryption, then the
 * SSE-KMS tenant rules for it. `upload` null (unknown to this bucket): the request alone
 * is authorized, and the caller answers NoSuchUpload.
 */
function authorizeUploadWrite(ctx: S3Context, bucket: Bucket, key: string, upload: UploadRecord | CompletionRecord | null): void {
  const extra = upload
    ? {
        "s3:x-amz-server-side-encryption": upload.mode === "SSE-C" ? undefined : upload.mode,
        "s3:x-amz-server-side-encryption-aws-kms-key-id": upload.mode === "aws:kms" ? upload.keyArn : undefined,
        "s3:x-amz-server-side-encryption-customer-algorithm": upload.mode === "SSE-C" ? "AES256" : undefined,
      }
    : undefined;
  assertAllowed(ctx, bucket, "s3:PutObject", key, extra ? { extra } : {});
  if (upload) assertMayWriteWith(ctx, bucket, uploadSse(upload));
}

function completeDeps(ctx: S3Context): CompleteDeps {
  return {
    r2: ctx.services.objects.r2,
    keys: ctx.services.keys,
    store: uploadStore(ctx),
    retentionMs: ctx.services.config.multipartCompletionRetentionHours * 3600 * 1000,
    waitMs: ctx.services.config.multipartCompleteWaitMs,
  };
}

/**
 * The upload a Complete names, authorized exactly as a first Complete: an upload in
 * progress, or one already completed whose record is kept for retries (same policy keys
 * from its recorded encryption, same SSE-KMS tenant rules), so a retry tells another
 * principal nothing a first Complete would not.
 */
async function completableUpload(ctx: S3Context, bucket: Bucket, key: string): Promise<{ uploadId: string; active: UploadRecord | null }> {
  const uploadId = ctx.url.searchParams.get("uploadId") ?? "";
  const store = uploadStore(ctx);
  const here = { bucket: bucket.name, key, tenantId: bucket.tenantId };
  let target: UploadRecord | CompletionRecord | null = null;
  if (isUploadId(uploadId)) {
    const found = await store.get(uploadId);
    if (found && found.bucket === bucket.name && found.key === key && found.tenantId === bucket.tenantId) target = found;
    else if (!found) {
      const record = await store.getCompletion(uploadId);
      if (record && completionApplies(record, here, Date.now(), completeDeps(ctx).retentionMs)) target = record;
    }
  }
  authorizeUploadWrite(ctx, bucket, key, target);
  if (!target) throw Errors.NoSuchUpload({ UploadId: uploadId });
  return { uploadId, active: "partsVersion" in target ? target : null };
}

/** The upload a request names (Abort, ListParts: the dispatcher already authorized them). */
export async function namedUpload(ctx: S3Context, bucket: Bucket, key: string): Promise<UploadRecord> {
  const uploadId = ctx.url.searchParams.get("uploadId") ?? "";
  const found = isUploadId(uploadId) ? await uploadStore(ctx).get(uploadId) : null;
  if (!found || found.bucket !== bucket.name || found.key !== key || found.tenantId !== bucket.tenantId) throw Errors.NoSuchUpload({ UploadId: uploadId });
  return found;
}

function parsePartNumber(raw: string | null): number {
  if (raw === null || !/^\d{1,5}$/.test(raw) || Number(raw) < 1 || Number(raw) > 10_000) {
    throw Errors.InvalidArgument({ ArgumentName: "partNumber", ArgumentValue: raw ?? "" }, "Part number must be an integer between 1 and 10000, inclusive");
  }
  return Number(raw);
}

// ---- CreateMultipartUpload -------------------------------------------------------------

export async function createMultipartUpload(ctx: S3Context): Promise<Response> {
  const { bucket, key, headers, sse, http, userMetadata, tags } = await newObjectIntent(ctx);
  const { algorithm, type } = checksumSettings(headers);

  const wk = await writeKeyFor(ctx.services.objects, bucket, key, sse);
  const { wrapped, dataKey } = await newDataKey(wk.kek);
  const uploadId = newUploadId();
  let customer: SseCUpload | undefined;
  if (wk.customer) {
    // SSE-C: the verifier every part's key must match, and the object's MAC key for Complete.
    const macKey = await macKeyBytes(dataKey);
    const sealedMacKey = await sealUploadMacKey(await ctx.services.keys.sealKey(bucket.tenantId, wk.masterVersion), uploadId, macKey);
    macKey.fill(0);
    customer = { ...wk.customer, sealedMacKey };
  }
  await uploadStore(ctx).create({
    uploadId,
    bucket: bucket.name,
    key,
    tenantId: bucket.tenantId,
    initiatorId: ctx.principal?.userId ?? "anonymous",
    initiatorName: ctx.principal?.userName ?? "anonymous",
    mode: sse.mode,
    keyArn: wk.keyArn,
    keyVersion: wk.keyVersion,
    masterVersion: wk.masterVersion,
    wrappedKey: wrapped,
    ...(customer ? { customer } : {}),
    ...(wk.externalBucketKey ? { externalBucketKey: true as const } : {}),
    ...(sse.context !== undefined ? { context: sse.context } : {}),
    bucketKeyEnabled: sse.bucketKeyEnabled,
    http,
    userMetadata,
    ...(algorithm ? { checksumAlgorithm: algorithm, checksumType: type! } : {}),
    createdAt: Date.now(),
  });
  // Applied to the object at Complete; one more D1 write only when there are tags.
  if (tags.length > 0) await tagStore(ctx).putUploadTags(uploadId, tags);
  const out = new Headers(sseResponseHeaders({ ...sse, keyArn: wk.keyArn }));
  if (algorithm) {
    out.set("x-amz-checksum-algorithm", algorithm);
    out.set("x-amz-checksum-type", type!);
  }
  return xmlResponse("InitiateMultipartUploadResult", { Bucket: bucket.name, Key: key, UploadId: uploadId }, { headers: out });
}

function checksumSettings(headers: Headers): { algorithm?: ChecksumAlgorithm; type?: ChecksumType } {
  const rawAlgorithm = headers.get("x-amz-checksum-algorithm");
  const rawType = headers.get("x-amz-checksum-type");
  if (rawAlgorithm === null) {
    if (rawType !== null) throw Errors.InvalidRequest({}, "The x-amz-checksum-type header can only be used with the x-amz-checksum-algorithm header.");
    return {};
  }
  const algorithm = parseChecksumAlgorithm(rawAlgorithm);
  if (!algorithm) {
    throw Errors.InvalidRequest({}, "Checksum algorithm provided is unsupported. Please try again with any of the valid types: [CRC32, CRC32C, CRC64NVME, SHA1, SHA256]");
  }
  const upper = rawType?.trim().toUpperCase();
  if (upper !== undefined && upper !== "COMPOSITE" && upper !== "FULL_OBJECT") {
    throw Errors.InvalidRequest({}, "Value for x-amz-checksum-type header is invalid.");
  }
  const type = (upper as ChecksumType | undefined) ?? defaultChecksumType(algorithm);
  assertChecksumType(algorithm, type);
  return { algorithm, type };
}

// ---- UploadPart and UploadPartCopy -------------------------------------------------------

/** The checksum algorithm a request body announces (header or trailer), if any. */
function announcedChecksum(headers: Headers): ChecksumAlgorithm | undefined {
  for (const [name] of headers) {
    const info = checksumForHeader(name);
    if (info && name !== "x-amz-checksum-algorithm" && name !== "x-amz-checksum-type") return info.algorithm;
  }
  const trailer = headers.get("x-amz-trailer");
  return trailer ? checksumForHeader(trailer.split(",")[0]!.trim())?.algorithm : undefined;
}


async function uploadDataKey(ctx: S3Context, upload: UploadRecord, customerKey: CustomerKey | null): Promise<CryptoKey> {
  if (upload.mode === "SSE-C") {
    // The key was checked against the upload's verifier (uploadCustomerKey).
    const scope = { tenantId: upload.tenantId, bucket: upload.bucket, key: upload.key };
    return unwrapDataKey(await deriveCustomerKek(customerKey!, upload.customer!.salt, scope), upload.wrappedKey);
  }
  // The upload's bucket: its parts are wrapped for it, whatever bucket a part's copy source is in.
  const kek = await ctx.services.keys.forRead(upload.tenantId, upload.keyArn, upload.keyVersion, upload.masterVersion, true, upload.externalBucketKey ? upload.bucket : null);
  return unwrapCheckedDataKey(kek, upload.wrappedKey);
}

/** Stores one part attempt and records it; the attempt it replaces is deleted afterwards. */
async function storePart(
  ctx: S3Context,
  upload: UploadRecord,
  partNumber: number,
  length: number,
  source: PlaintextSource,
  facts: () => Promise<ObjectFacts>,
  customerKey: CustomerKey | null,
): Promise<{ facts: ObjectFacts; uploaded: Date }> {
  const r2 = ctx.services.objects.r2;
  let written;
  try {
    written = await writePart(r2, { uploadId: upload.uploadId, partNumber, dataKey: await uploadDataKey(ctx, upload, customerKey), source, length });
  } catch (error) {
    throw translateWriteError(error);
  }
  const partFacts = await facts();
  const sealKey = await ctx.services.keys.sealKey(upload.tenantId, upload.masterVersion);
  const sealed = await sealFacts(sealKey, ...partFactsLocation(upload.uploadId, partNumber), partFacts);
  const recorded = await uploadStore(ctx).recordPart(upload.uploadId, {
    partNumber,
    attempt: written.attempt,
    size: length,
    salt: written.salt,
    facts: sealed,
    uploadedAt: written.uploaded.getTime(),
  });
  if (!recorded.recorded) {
    // Aborted, completed or being completed while this part streamed in.
    await r2.delete(written.r2Key);
    if (await uploadStore(ctx).get(upload.uploadId)) throw Errors.OperationAborted();
    throw Errors.NoSuchUpload({ UploadId: upload.uploadId });
  }
  if (recorded.replaced) {
    // The new attempt is recorded: the part upload succeeded. A superseded attempt left
    // behind is deleted by Complete (unused attempts) or Abort (the whole prefix).
    await r2.delete(partR2Key(upload.uploadId, partNumber, recorded.replaced)).catch((error: unknown) => {
      console.error(JSON.stringify({ event: "multipart-part-cleanup-failed", uploadId: upload.uploadId, partNumber, message: error instanceof Error ? error.message : String(error) }));
    });
  }
  return { facts: partFacts, uploaded: written.uploaded };
}

/**
 * SSE headers on UploadPart(Copy): the encryption is the upload's, set at Create. Clients
 * that copy Create's headers onto every request exist, so headers that state the upload's
 * own settings are accepted and ignored, as AWS does; only a conflicting one is 400.
 * The key id may name the upload's key by ARN or by its bare id.
 */
function assertSseHeadersMatch(headers: Headers, upload: UploadRecord): void {
  const conflict = (name: string, value: string) =>
    Errors.InvalidArgument({ ArgumentName: name, ArgumentValue: value }, `The ${name} header does not match the encryption of the multipart upload.`);
  const algorithm = headers.get(SSE);
  if (algorithm !== null && (algorithm !== upload.mode || upload.mode === "SSE-C")) throw conflict(SSE, algorithm);
  const keyId = headers.get(SSE_KEY_ID);
  if (keyId !== null) {
    const matches = upload.mode === "aws:kms" && (keyId === upload.keyArn || upload.keyArn.endsWith(`:key/${keyId}`));
    if (!matches) throw conflict(SSE_KEY_ID, keyId);
  }
  const context = headers.get(SSE_CONTEXT);
  if (context !== null && context !== upload.context) throw conflict(SSE_CONTEXT, context);
  const bucketKey = headers.get(SSE_BUCKET_KEY);
  if (bucketKey !== null && bucketKey.toLowerCase() !== String(upload.bucketKeyEnabled)) throw conflict(SSE_BUCKET_KEY, bucketKey);
}

/** UploadPart and UploadPartCopy: the part number, a writable upload, SSE headers only if they match it. */
async function partTarget(ctx: S3Context) {
  const bucket = requireBucket(ctx);
  const key = requireKey(ctx);
  const headers = ctx.request.headers;
  const partNumber = parsePartNumber(ctx.url.searchParams.get("partNumber"));
  const upload = await writableUpload(ctx, bucket, key);
  assertSseHeadersMatch(headers, upload);
  const customerKey = await uploadCustomerKey(ctx, upload, true);
  return { headers, partNumber, upload, customerKey };
}

export async function uploadPart(ctx: S3Context): Promise<Response> {
  const { headers, partNumber, upload, customerKey } = await partTarget(ctx);
  const sent = announcedChecksum(headers);
  if (upload.checksumAlgorithm && sent && sent !== upload.checksumAlgorithm) {
    throw Errors.InvalidRequest(
      {},
      `Checksum Type mismatch occurred, expected checksum Type: ${upload.checksumAlgorithm.toLowerCase()}, actual checksum Type: ${sent.toLowerCase()}`,
    );
  }
  // The part's ETag is the MD5 of its plaintext, as S3's: computed while the body streams
  // (the response is sent after it), so an identical part sent again gets the same ETag.
  const body = openBody(ctx.request, ctx.verified, { computeMd5: true });
  if (body.length === null) throw Errors.MissingContentLength();
  if (body.length > MAX_PART_BYTES) throw Errors.EntityTooLarge({ ProposedSize: String(body.length), MaxSizeAllowed: String(MAX_PART_BYTES) });
  // With an upload checksum the client did not send for this part, compute it ourselves.
  const own = upload.checksumAlgorithm && !sent ? CHECKSUMS[upload.checksumAlgorithm].create() : null;
  // Without an upload algorithm, the part's CRC64NVME for the object's default checksum.
  const crc = !upload.checksumAlgorithm && sent !== "CRC64NVME" ? CHECKSUMS.CRC64NVME.create() : null;
  let source: PlaintextSource = own ? hashingSource(body, own) : body;
  if (crc) source = hashingSource(source, crc);
  const stored = await storePart(ctx, upload, partNumber, body.length, source, async () => {
    const checksum = own ? { algorithm: upload.checksumAlgorithm!, value: toBase64(await own.digest()) } : body.result.checksum;
    return { etag: partEtag(upload, body.result.md5!), ...(checksum ? { checksum } : {}), ...(crc ? { crc64: toBase64(await crc.digest()) } : {}) };
  }, customerKey);
  const out = new Headers({ ETag: `"${stored.facts.etag}"`, ...sseResponseHeaders(uploadSse(upload, customerKey)) });
  const checksum = stored.facts.checksum;
  if (checksum) out.set(`x-amz-checksum-${checksum.algorithm.toLowerCase()}`, checksum.value);
  // An upload without an algorithm: S3 answers the part's CRC64NVME it computed (the default
  // integrity protection), which Complete combines into the object's.
  else if (stored.facts.crc64 !== undefined) out.set("x-amz-checksum-crc64nvme", stored.facts.crc64);
  return new Response(null, { status: 200, headers: out });
}

/**
 * A part's ETag: the MD5 of its plaintext, as S3's — except in an SSE-C upload, where S3
 * gives no plaintext MD5 (it would leak into the object's ETag and listings): there a
 * random value, unique per attempt, which Complete checks like any other.
 */
function partEtag(upload: UploadRecord, md5: Uint8Array): string {
  return upload.mode === "SSE-C" ? toHex(randomBytes(16)) : toHex(md5);
}

/** x-amz-copy-source-range: "bytes=first-last", both required (S3 accepts no other form). */
function parseCopyRange(raw: string | null): { first: number; last: number } | null {
  if (raw === null) return null;
  const m = /^bytes=(\d+)-(\d+)$/.exec(raw.trim());
  if (!m || Number(m[2]) < Number(m[1])) {
    throw Errors.InvalidArgument(
      { ArgumentName: "x-amz-copy-source-range", ArgumentValue: raw },
      "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy",
    );
  }
  return { first: Number(m[1]), last: Number(m[2]) };
}

/** A read's plaintext, streamed or in memory, as a plaintext source (exact-size reads). */
function plaintextSource(body: ObjectRead["body"]): PlaintextSource {
  const reader = body instanceof Uint8Array ? new BytesReader(body) : new ExactReader(body);
  return { read: (max) => reader.read(max), cancel: (reason) => reader.cancel(reason) };
}

/**
 * UploadPartCopy: the source range is decrypted (with the source's own authentication,
 * access rules and copy-source conditions) and encrypted again as the part.
 */
export async function uploadPartCopy(ctx: S3Context): Promise<Response> {
  const { headers, partNumber, upload, customerKey } = await partTarget(ctx);
  const sourceKey = await customerKeyFrom(headers, "source");
  const src = parseCopySource(ctx);
  const sourceBucket = await ctx.services.buckets.get(src.bucket);
  if (!sourceBucket) throw Errors.NoSuchBucket({ BucketName: src.bucket });
  await assertMayReadSource(ctx, sourceBucket, src.key);
  const range = parseCopyRange(headers.get("x-amz-copy-source-range"));
  const conditions = readConditions(headers, "x-amz-copy-source-");

  const read = await readObject(
    ctx.services.objects,
    sourceBucket,
    src.key,
    range ? { kind: "bounded", ...range } : null,
    customerKeyGate(ctx, sourceKey, (mode) => assertMayRead(ctx, sourceBucket, mode)),
    (info) => {
      // A range outside the source: 416 InvalidRange, as AWS answers UploadPartCopy.
      if (range && range.last >= info.size) throw Errors.InvalidRange({ ActualObjectSize: String(info.size), RangeRequested: headers.get("x-amz-copy-source-range")! });
      evaluateConditions(conditions, info, true);
      const length = range ? range.last - range.first + 1 : info.size;
      if (length > MAX_PART_BYTES) throw Errors.InvalidRequest({}, `The specified copy source is larger than the maximum allowable size for a copy source: ${MAX_PART_BYTES}`);
    },
  );
  const length = read.span ? read.span.last - read.span.first + 1 : read.info.size;
  // The upload's algorithm, else CRC64NVME for the object's default checksum.
  const own = CHECKSUMS[upload.checksumAlgorithm ?? "CRC64NVME"].create();
  // A copied part's ETag is the MD5 of the bytes it holds, as S3's, hashed as they pass.
  const md5 = createMd5();
  const source = hashingSource(plaintextSource(read.body), md5);
  const stored = await storePart(ctx, upload, partNumber, length, hashingSource(source, own), async () => {
    const etag = partEtag(upload, await md5.digest());
    const value = toBase64(await own.digest());
    return upload.checksumAlgorithm ? { etag, checksum: { algorithm: upload.checksumAlgorithm, value } } : { etag, crc64: value };
  }, customerKey);
  const result: Record<string, unknown> = { LastModified: stored.uploaded.toISOString(), ETag: `"${stored.facts.etag}"` };
  if (stored.facts.checksum) result[`Checksum${stored.facts.checksum.algorithm}`] = stored.facts.checksum.value;
  else if (stored.facts.crc64 !== undefined) result["ChecksumCRC64NVME"] = stored.facts.crc64;
  return xmlResponse("CopyPartResult", result, { headers: sseResponseHeaders(uploadSse(upload, customerKey)) });
}

// ---- CompleteMultipartUpload and AbortMultipartUpload --------------------------------------

const PART_CHECKSUMS: ChecksumAlgorithm[] = ["CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"];

/**
 * The document's parts: PartNumber and ETag required. Their order is checked by
 * completeUpload (InvalidPartOrder when it writes; a retry of a completed upload that
 * lists them otherwise is another list: NoSuchUpload).
 */
function requestedParts(doc: Record<string, unknown>): RequestedPart[] {
  const entries = childArray(doc, "Part");
  if (entries.length === 0 || entries.length > 10_000) throw Errors.MalformedXML();
  const parts: RequestedPart[] = [];
  for (const entry of entries) {
    const number = childToken(entry, "PartNumber");
    // The ETag is compared as sent (after its quotes are stripped), never trimmed.
    const etag = childText(entry, "ETag");
    if (number === undefined || !/^\d{1,5}$/.test(number) || etag === undefined) throw Errors.MalformedXML();
    const partNumber = Number(number);
    if (partNumber < 1 || partNumber > 10_000) {
      throw Errors.InvalidArgument({ ArgumentName: "partNumber", ArgumentValue: number }, "Part number must be an integer between 1 and 10000, inclusive");
    }
    const checksums: RequestedPart["checksums"] = {};
    for (const alg of PART_CHECKSUMS) {
      const value = childText(entry, `Checksum${alg}`);
      if (value !== undefined) checksums[alg] = value;
    }
    parts.push({ partNumber, etag, checksums });
  }
  return parts;
}

/**
 * Complete's x-amz-checksum-<alg> header is the client's full-object checksum, not a
 * checksum of the XML body: read the body without it (its SHA-256/Content-MD5 still hold).
 */
async function completeDocument(ctx: S3Context): Promise<{ doc: Record<string, unknown>; full?: { algorithm: ChecksumAlgorithm; value: string } }> {
  const headers = new Headers(ctx.request.headers);
  let full: { algorithm: ChecksumAlgorithm; value: string } | undefined;
  for (const [name, value] of ctx.request.headers) {
    const info = checksumForHeader(name);
    if (!info || name === "x-amz-checksum-algorithm" || name === "x-amz-checksum-type") continue;
    full = { algorithm: info.algorithm, value };
    headers.delete(name);
  }
  if (full) headers.delete("x-amz-sdk-checksum-algorithm");
  const request = full ? new Request(ctx.request, { headers }) : ctx.request;
  const doc = await readBodyXml({ ...ctx, request }, "CompleteMultipartUpload");
  return full ? { doc, full } : { doc };
}

/**
 * CompleteMultipartUpload. A retry of a Complete that succeeded (same part list) gets the
 * same answer — body and headers — from the upload's completion record, without writing
 * the object again (docs/multipart.md, "Complete and its retries").
 */
export async function completeMultipartUpload(ctx: S3Context): Promise<Response> {
  const bucket = requireBucket(ctx);
  const key = requireKey(ctx);
  assertNoSseHeaders(ctx.request.headers);
  const { uploadId, active } = await completableUpload(ctx, bucket, key);
  // S3 takes SSE-C headers on Complete; when sent they must be the upload's key. They are
  // required only for an upload created with a checksum algorithm (S3 keeps part checksums
  // under the customer key; here they are sealed like any part's facts, but the request
  // is answered as S3 documents it). A retry of a completed upload is answered from its record.
  let customerKey: CustomerKey | null = null;
  if (active?.mode === "SSE-C") {
    if (active.checksumAlgorithm && !hasCustomerKeyHeaders(ctx.request.headers)) {
      throw Errors.InvalidRequest({}, "The object was stored using a form of Server Side Encryption. Correct SSE-C request parameters are required for this request when specifying checksums for each part.");
    }
    customerKey = await uploadCustomerKey(ctx, active, false);
  } else if (active && hasCustomerKeyHeaders(ctx.request.headers)) {
    await uploadCustomerKey(ctx, active, false);
  }
  const { doc, full } = await completeDocument(ctx);
  const parts = requestedParts(doc);
  const done = await completeUpload(completeDeps(ctx), {
    uploadId,
    bucket: bucket.name,
    key,
    tenantId: bucket.tenantId,
    parts,
    // If-None-Match: * (only if the key is free) or If-Match (only over that version), as
    // PutObject; evaluated only if this request writes (a retry answers the original's result).
    condition: () => guardedWriteCondition(ctx, bucket, key),
    ...(full ? { fullChecksum: full } : {}),
    // Seals the part checksums in the manifest (a key-less SSE-C Complete has none to seal).
    ...(customerKey ? { customerKey } : {}),
  });
  if (done.kind === "written") await recordNewTags(ctx, bucket, key, done, done.tags ?? []);
  const result: Record<string, unknown> = { Location: `${ctx.url.origin}${ctx.url.pathname}`, Bucket: bucket.name, Key: key, ETag: `"${done.etag}"` };
  const out = new Headers(sseResponseHeaders(done.sse));
  if (done.checksum) {
    result[`Checksum${done.checksum.algorithm}`] = done.checksum.value;
    result.ChecksumType = done.checksumType ?? "COMPOSITE";
  }
  return xmlResponse("CompleteMultipartUploadResult", result, { headers: out });
}

export async function abortMultipartUpload(ctx: S3Context): Promise<Response> {
  const bucket = requireBucket(ctx);
  const key = requireKey(ctx);
  const upload = await namedUpload(ctx, bucket, key);
  assertMayReplace(ctx, bucket, upload.mode);
  const outcome = await abortUpload({ r2: ctx.services.objects.r2, store: uploadStore(ctx) }, upload.uploadId);
  if (outcome === "gone") throw Errors.NoSuchUpload({ UploadId: upload.uploadId });
  if (outcome === "busy") throw Errors.OperationAborted();
  return new Response(null, { status: 204 });
}
