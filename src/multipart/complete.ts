import type { Tag } from "../store/object-tags";
import { CHECKSUMS, checksumTypeOf, createMd5, type ChecksumAlgorithm } from "../checksum";
import { joinCustomMetadata, signEnvelope } from "../crypto/envelope";
import { sealFacts, unsealFacts, type ObjectFacts } from "../crypto/facts";
import { encryptedSize } from "../crypto/format";
import { deriveCustomerKek, openUploadMacKey, type CustomerKey } from "../crypto/customer-key";
import { IntegrityError } from "../crypto/errors";
import { deriveMacKey, unwrapDataKey } from "../crypto/keys";
import { unwrapCheckedDataKey } from "../kms/data-keys";
import type { KeyService } from "../kms/service";
import { objectR2Key } from "../objects/location";
import { encodeManifest, manifestHash, type Manifest } from "../objects/manifest";
import { sealPartChecksums } from "../objects/part-checksums";
import { partR2Key, uploadPrefix } from "../objects/parts";
import { Errors } from "../errors";
import type { SseMode } from "../crypto/envelope";
import { concatBytes, fromBase64, fromHex, timingSafeEqual, toHex, utf8 } from "../util/bytes";
import { objectChecksum } from "./checksum";
import { normalizeEtag, openCompletion, partListDigest, sealCompletion } from "./completion";
import { manifestIsLive, markKeysDead, recoverStaleComplete, STALE_COMPLETE_MS } from "./lifecycle";
import type { ChecksumType, CompletionRecord, PartRecord, UploadRecord, UploadStore } from "./store";

export { normalizeEtag };

/** S3's minimum size for every part but the last. */
export const MIN_PART_BYTES = 5 * 1024 * 1024;

export interface CompleteDeps {
  r2: R2Bucket;
  keys: KeyService;
  store: UploadStore;
  /**
   * How long a completed upload answers retried Completes (MULTIPART_COMPLETION_RETENTION_HOURS).
   * 0: no completion record is kept (uploads no client can retry, or the feature turned off).
   */
  retentionMs: number;
  /** How long to wait for another Complete holding the upload (default COMPLETE_WAIT_MS). */
  waitMs?: number;
}

/**
 * How long a Complete waits for another Complete holding the same upload (a racing
 * duplicate, or the original of a retry whose response was lost) before 409
 * OperationAborted. A complete holds its upload for one manifest put and one D1 batch.
 * MULTIPART_COMPLETE_WAIT_SECONDS overrides it.
 */
export const COMPLETE_WAIT_MS = 10_000;

/** One <Part> of the CompleteMultipartUpload document. */
export interface RequestedPart {
  partNumber: number;
  etag: string;
  checksums: Partial<Record<ChecksumAlgorithm, string>>;
}

/** The upload's encryption, as the response headers state it. */
export interface CompletedSse {
  mode: SseMode;
  keyArn: string;
  context?: string;
  bucketKeyEnabled: boolean;
}

/** What CompleteMultipartUpload answers: the same for the Complete that wrote and for its retries. */
export interface CompleteAnswer {
  etag: string;
  checksum?: { algorithm: ChecksumAlgorithm; value: string };
  checksumType?: ChecksumType;
  sse: CompletedSse;
}

/** This request wrote the object. */
export interface Completed extends CompleteAnswer {
  kind: "written";
  size: number;
  uploaded: Date;
  /** R2's etag of the manifest object (the version identity its tags are keyed by). */
  r2Etag: string;
  /** x-amz-tagging given at Create, for the caller to record against r2Etag. */
  tags?: Tag[];
}

/** An earlier Complete of the same part list wrote it; nothing was written now. */
export interface Replayed extends CompleteAnswer {
  kind: "replayed";
}

/** R2's condition and the client header it answers to; null: the gateway's tenant guard (s3/write-guard.ts). */
type WriteCondition = { onlyIf: R2Conditional; header: "If-None-Match" | "If-Match" | null };

/** Where a part's facts are sealed: a namespace no bucket can have ("_"), the part number as key. */
export function partFactsLocation(uploadId: string, partNumber: number): [string, string] {
  return [`_mpu/${uploadId}`, String(partNumber)];
}

/**
 * CompleteMultipartUpload, after the request was parsed and authorized:
 * 1. check the listed parts against the recorded ones (InvalidPart, EntityTooSmall) and
 *    against what R2 holds under the upload's prefix, and compute the object's ETag and
 *    checksum (BadDigest);
 * 2. claim the upload in D1 — only if no part changed since step 1 — with the sealed
 *    result, so no part can be replaced or the upload aborted while its manifest is
 *    written, and whoever settles this complete can record its result;
 * 3. write the manifest object (envelope MAC'd like any object, with the manifest hash,
 *    part count and total length bound in);
 * 4. hand the part data over to the object (multipart_objects), keep the result for
 *    retries (multipart_completions) and drop the upload rows;
 * 5. delete attempts and parts the manifest does not use, and mark the multipart object
 *    this one replaced dead (the sweep releases its parts after the grace, so reads
 *    already streaming it finish).
 *
 * An upload that is already complete (or completes while this request waits for another
 * Complete holding it) is answered from its completion record when the part list is the
 * same — the object is not written again — and NoSuchUpload otherwise, as S3 does.
 */
export async function completeUpload(
  deps: CompleteDeps,
  req: {
    uploadId: string;
    bucket: string;
    key: string;
    /** The bucket's owner: an upload or record of another tenant (a bucket re-created by it) is not this one. */
    tenantId: string;
    parts: RequestedPart[];
    fullChecksum?: { algorithm: ChecksumAlgorithm; value: string };
    /**
     * If-None-Match: * / If-Match: the manifest is written only if R2's condition holds
     * (atomic with the write). Asked for only when this request is about to write: a
     * retry answers what the write it repeats answered.
     */
    condition?: () => Promise<WriteCondition | undefined>;
    /**
     * The upload's data key when the caller holds it (a streamed POST), or the customer key
     * of an SSE-C upload when the Complete sent it (already checked against the upload's).
     * Otherwise the data key is unwrapped here, except for SSE-C, whose Complete then signs
     * with the upload's sealed MAC key and cannot seal part checksums (S3 requires the key
     * when the upload has them; the handler does too).
     */
    dataKey?: CryptoKey;
    customerKey?: CustomerKey;
  },
): Promise<Completed | Replayed> {
  const digest = await partListDigest(req.parts);
  let waitUntil: number | undefined;
  let pause = 25;
  let condition: Promise<WriteCondition | undefined> | undefined;
  for (let claims = 0; ; ) {
    const upload = await deps.store.get(req.uploadId);
    if (!upload || upload.bucket !== req.bucket || upload.key !== req.key || upload.tenantId !== req.tenantId) return replay(deps, req, digest);
    if (upload.state === "completing") {
      if (Date.now() - (upload.completingAt ?? 0) >= STALE_COMPLETE_MS) {
        // A complete that died holding the upload: finished if its manifest landed, else given back.
        if ((await recoverStaleComplete(deps, upload)) === "completed") return replay(deps, req, digest);
        continue;
      }
      // Another Complete holds it. If its manifest is already the object, the upload is
      // complete (its bookkeeping pending, or it failed after an ambiguous R2 error):
      // settle it here and answer as a retry.
      if (upload.manifestHash && (await manifestIsLive(deps.r2, upload.bucket, upload.key, upload.manifestHash))) {
        await deps.store.finish(upload, upload.manifestHash, upload.completingAt ?? Date.now());
        await markKeysDead(deps, upload.bucket, [upload.key]).catch((error: unknown) =>
          console.error(JSON.stringify({ event: "multipart-complete-mark-failed", uploadId: upload.uploadId, message: String(error) })),
        );
        return replay(deps, req, digest);
      }
      waitUntil ??= Date.now() + (deps.waitMs ?? COMPLETE_WAIT_MS);
      if (Date.now() >= waitUntil) throw Errors.OperationAborted();
      await new Promise((resolve) => setTimeout(resolve, pause));
      pause = Math.min(pause * 2, 500);
      continue;
    }
    for (let i = 1; i < req.parts.length; i++) if (req.parts[i]!.partNumber <= req.parts[i - 1]!.partNumber) throw Errors.InvalidPartOrder();
    condition ??= req.condition?.() ?? Promise.resolve(undefined);
    const onlyIf = await condition;
    const plan = await planCompletion(deps, upload, req.parts);
    const facts = await objectFacts(upload, plan, req.fullChecksum);
    const keys = await uploadKeys(deps, upload, req);
    if (plan.partChecksums && keys.dataKey) {
      plan.manifest.checksums = await sealPartChecksums(keys.dataKey, upload.uploadId, { algorithm: upload.checksumAlgorithm!, values: plan.partChecksums });
    }
    const bytes = encodeManifest(plan.manifest);
    const hash = await manifestHash(bytes);
    const record =
      deps.retentionMs > 0
        ? await sealCompletion(await deps.keys.sealKey(upload.tenantId, upload.masterVersion), upload.uploadId, upload.bucket, upload.key, {
            etag: facts.etag,
            ...(facts.checksum ? { checksum: facts.checksum } : {}),
            parts: digest,
          })
        : undefined;
    const now = Date.now();
    if (!(await deps.store.claim(upload.uploadId, upload.partsVersion, hash, now, record))) {
      // A part was recorded (or the upload aborted, or another complete began) meanwhile.
      if (++claims < 3) continue;
      throw Errors.OperationAborted();
    }
    let done: Completed;
    try {
      done = await writeManifest(deps, upload, plan, bytes, hash, facts, onlyIf, keys.mac);
    } catch (error) {
      // Give the upload back — unless the manifest did land (an ambiguous storage error):
      // then the object exists and its parts must stay.
      if (!(await manifestIsLive(deps.r2, upload.bucket, upload.key, hash).catch(() => true))) {
        await deps.store.unclaim(upload.uploadId, now).catch(() => {});
      }
      throw error;
    }
    // The object is complete from here on. Should the bookkeeping fail, the upload stays
    // claimed and a retry or the scheduled clean-up finishes it (recoverStaleComplete).
    try {
      await deps.store.finish(upload, hash, now);
      await cleanUp(deps, upload, plan);
    } catch (error) {
      console.error(JSON.stringify({ event: "multipart-complete-bookkeeping-failed", uploadId: upload.uploadId, message: String(error) }));
    }
    return done;
  }
}

function sseOf(r: UploadRecord | CompletionRecord): CompletedSse {
  return { mode: r.mode, keyArn: r.keyArn, ...(r.context !== undefined ? { context: r.context } : {}), bucketKeyEnabled: r.bucketKeyEnabled };
}

/**
 * The upload is no longer in progress: answer a retry of the Complete that finished it,
 * from its record, if this request lists the same parts. Anything else is NoSuchUpload,
 * as S3 answers for a completed upload (and for one it never knew).
 */
async function replay(deps: CompleteDeps, req: { uploadId: string; bucket: string; key: string; tenantId: string; fullChecksum?: { algorithm: ChecksumAlgorithm; value: string } }, digest: Uint8Array): Promise<Replayed> {
  const missing = () => Errors.NoSuchUpload({ UploadId: req.uploadId });
  const record = await deps.store.getCompletion(req.uploadId);
  if (!record || !completionApplies(record, req, Date.now(), deps.retentionMs)) throw missing();
  let result;
  try {
    result = await openCompletion(await deps.keys.sealKey(record.tenantId, record.masterVersion), record.uploadId, record.bucket, record.key, record.result);
  } catch (error) {
    // Unreadable (its master version no longer configured, or tampered with): as if expired.
    console.error(JSON.stringify({ event: "multipart-completion-unreadable", uploadId: record.uploadId, message: error instanceof Error ? error.message : String(error) }));
    throw missing();
  }
  if (!timingSafeEqual(result.parts, digest)) throw missing();
  const full = req.fullChecksum;
  if (full && result.checksum && (full.algorithm !== result.checksum.algorithm || full.value.trim() !== result.checksum.value)) {
    // As the Complete being repeated would have answered.
    throw Errors.BadDigest({}, `The ${full.algorithm.toLowerCase()} you specified did not match the calculated checksum.`);
  }
  return {
    kind: "replayed",
    etag: result.etag,
    ...(result.checksum ? { checksum: result.checksum, checksumType: record.checksumType ?? checksumTypeOf(result.checksum.value) } : {}),
    sse: sseOf(record),
  };
}

/** A completion record answers for (bucket, key) of this tenant, within the retention. */
export function completionApplies(record: CompletionRecord, at: { bucket: string; key: string; tenantId: string }, now: number, retentionMs: number): boolean {
  return record.bucket === at.bucket && record.key === at.key && record.tenantId === at.tenantId && now - record.completedAt < retentionMs;
}

interface Plan {
  manifest: Manifest;
  parts: PartRecord[];
  etags: string[];
  digests: Array<{ digest: Uint8Array; length: number }> | null;
  /**
   * Upload without an algorithm: every part's CRC64NVME (computed by the gateway), for the
   * object's default full-object checksum; null when a part has none (stored before).
   */
  defaultDigests: Array<{ digest: Uint8Array; length: number }> | null;
  /** Upload with an algorithm: each part's checksum (base64), in manifest order, for the manifest. */
  partChecksums: string[] | null;
  /** R2 keys under the upload's prefix the manifest does not use. */
  garbage: string[];
}

async function planCompletion(deps: CompleteDeps, upload: UploadRecord, requested: RequestedPart[]): Promise<Plan> {
  const recorded = new Map((await deps.store.allParts(upload.uploadId)).map((p) => [p.partNumber, p]));
  const sealKey = await deps.keys.sealKey(upload.tenantId, upload.masterVersion);
  const algorithm = upload.checksumAlgorithm;
  const parts: PartRecord[] = [];
  const etags: string[] = [];
  const digests: Array<{ digest: Uint8Array; length: number }> = [];
  const partChecksums: string[] = [];
  let defaultDigests: Array<{ digest: Uint8Array; length: number }> | null = algorithm ? null : [];
  const invalid = (p: RequestedPart) => Errors.InvalidPart({ UploadId: upload.uploadId, PartNumber: String(p.partNumber), ETag: p.etag });

  for (const [i, p] of requested.entries()) {
    const part = recorded.get(p.partNumber);
    if (!part) throw invalid(p);
    const facts = await unsealFacts(sealKey, ...partFactsLocation(upload.uploadId, p.partNumber), part.facts);
    if (normalizeEtag(p.etag) !== facts.etag) throw invalid(p);
    for (const [alg, value] of Object.entries(p.checksums) as Array<[ChecksumAlgorithm, string]>) {
      // A checksum the client lists must be the one the part was stored with.
      const stored = alg === facts.checksum?.algorithm ? facts.checksum.value : alg === "CRC64NVME" ? facts.crc64 : undefined;
      if (stored === undefined || value.trim() !== stored) throw invalid(p);
    }
    if (i < requested.length - 1 && part.size < MIN_PART_BYTES) {
      throw Errors.EntityTooSmall({ ProposedSize: String(part.size), MinSizeAllowed: String(MIN_PART_BYTES), PartNumber: String(p.partNumber), ETag: p.etag });
    }
    parts.push(part);
    etags.push(facts.etag);
    if (algorithm) {
      const digest = facts.checksum?.algorithm === algorithm ? fromBase64(facts.checksum.value) : null;
      if (!digest || digest.byteLength !== CHECKSUMS[algorithm].digestLength) throw invalid(p);
      digests.push({ digest, length: part.size });
      partChecksums.push(facts.checksum!.value);
    } else if (defaultDigests) {
      const crc = facts.crc64 ?? (facts.checksum?.algorithm === "CRC64NVME" ? facts.checksum.value : undefined);
      const digest = crc !== undefined ? fromBase64(crc) : null;
      if (digest && digest.byteLength === CHECKSUMS.CRC64NVME.digestLength) defaultDigests.push({ digest, length: part.size });
      else defaultDigests = null;
    }
  }

  // R2 must hold every part the manifest will reference, at its exact stored size.
  const stored = await listPrefix(deps.r2, uploadPrefix(upload.uploadId));
  const used = new Set<string>();
  for (const [i, part] of parts.entries()) {
    const key = partR2Key(upload.uploadId, part.partNumber, part.attempt);
    if (stored.get(key) !== encryptedSize(part.size)) throw invalid(requested[i]!);
    used.add(key);
  }
  const manifest: Manifest = {
    uploadId: upload.uploadId,
    parts: parts.map((p) => ({ number: p.partNumber, length: p.size, salt: p.salt, r2Key: partR2Key(upload.uploadId, p.partNumber, p.attempt) })),
  };
  return { manifest, parts, etags, digests: algorithm ? digests : null, defaultDigests, partChecksums: algorithm ? partChecksums : null, garbage: [...stored.keys()].filter((k) => !used.has(k)) };
}

/** The object's ETag and checksum (checked against a full-object checksum the client sent). */
async function objectFacts(
  upload: UploadRecord,
  plan: Plan,
  fullChecksum: { algorithm: ChecksumAlgorithm; value: string } | undefined,
): Promise<{ etag: string; checksum?: { algorithm: ChecksumAlgorithm; value: string } }> {
  const etag = await multipartEtag(plan.etags);
  if (!upload.checksumAlgorithm) {
    // S3 gives an upload created without an algorithm a full-object CRC64NVME.
    if (!plan.defaultDigests) return { etag };
    const value = await objectChecksum("CRC64NVME", "FULL_OBJECT", plan.defaultDigests);
    if (fullChecksum?.algorithm === "CRC64NVME" && fullChecksum.value.trim() !== value) {
      throw Errors.BadDigest({}, "The crc64nvme you specified did not match the calculated checksum.");
    }
    return { etag, checksum: { algorithm: "CRC64NVME", value } };
  }
  if (!plan.digests) return { etag };
  const value = await objectChecksum(upload.checksumAlgorithm, upload.checksumType ?? "COMPOSITE", plan.digests);
  if (fullChecksum && (fullChecksum.algorithm !== upload.checksumAlgorithm || fullChecksum.value.trim() !== value)) {
    throw Errors.BadDigest({}, `The ${fullChecksum.algorithm.toLowerCase()} you specified did not match the calculated checksum.`);
  }
  return { etag, checksum: { algorithm: upload.checksumAlgorithm, value } };
}

async function writeManifest(
  deps: CompleteDeps,
  upload: UploadRecord,
  plan: Plan,
  bytes: Uint8Array,
  hash: Uint8Array,
  computed: { etag: string; checksum?: { algorithm: ChecksumAlgorithm; value: string } },
  condition: WriteCondition | undefined,
  macKey: CryptoKey,
): Promise<Completed> {
  const length = plan.parts.reduce((n, p) => n + p.size, 0);
  const facts: ObjectFacts = { etag: computed.etag, length, ...(computed.checksum ? { checksum: computed.checksum } : {}) };
  const sealKey = await deps.keys.sealKey(upload.tenantId, upload.masterVersion);
  const sealed = await sealFacts(sealKey, upload.bucket, upload.key, facts);
  const envelope = await signEnvelope(
    macKey,
    {
      version: 1,
      mode: upload.mode,
      keyArn: upload.keyArn,
      keyVersion: upload.keyVersion,
      masterVersion: upload.masterVersion,
      wrappedKey: upload.wrappedKey,
      length,
      layout: { kind: "multipart", parts: plan.parts.length, manifestHash: hash },
      ...(upload.context !== undefined ? { context: upload.context } : {}),
      bucketKeyEnabled: upload.bucketKeyEnabled,
      sealed,
      http: upload.http,
      ...(upload.customer ? { customer: { salt: upload.customer.salt, verifier: upload.customer.verifier } } : {}),
      ...(upload.externalBucketKey ? { externalBucketKey: true as const } : {}),
    },
    { bucket: upload.bucket, key: upload.key, userMetadata: upload.userMetadata },
  );
  const put = await deps.r2.put(objectR2Key(upload.bucket, upload.key), bytes, {
    customMetadata: joinCustomMetadata(envelope, upload.userMetadata),
    ...(condition ? { onlyIf: condition.onlyIf } : {}),
  });
  // The client's own condition is 412; the gateway's tenant guard (header null) means the
  // object changed while we checked it: 409, retry.
  if (!put) throw condition?.header === null ? Errors.OperationAborted() : Errors.PreconditionFailed({ Condition: condition?.header ?? "If-None-Match" });
  return {
    kind: "written",
    etag: computed.etag,
    ...(computed.checksum ? { checksum: computed.checksum, checksumType: upload.checksumType ?? checksumTypeOf(computed.checksum.value) } : {}),
    sse: sseOf(upload),
    size: length,
    uploaded: put.uploaded,
    r2Etag: put.etag,
    ...(upload.tags ? { tags: upload.tags } : {}),
  };
}

/**
 * The MAC key of the object an upload becomes, and its data key when it can be had: the
 * caller's, else unwrapped with the CMK — or for SSE-C without the customer's key (the only
 * key that unwraps it), the MAC key sealed with the upload at Create, so Complete needs no
 * key (as on S3) and the data key is not available.
 */
async function uploadKeys(
  deps: CompleteDeps,
  upload: UploadRecord,
  given: { dataKey?: CryptoKey; customerKey?: CustomerKey },
): Promise<{ mac: CryptoKey; dataKey: CryptoKey | null }> {
  if (given.dataKey) return { mac: await deriveMacKey(given.dataKey), dataKey: given.dataKey };
  if (upload.mode === "SSE-C") {
    if (!upload.customer) throw new IntegrityError("SSE-C upload has no key record");
    if (given.customerKey) {
      const kek = await deriveCustomerKek(given.customerKey, upload.customer.salt, { tenantId: upload.tenantId, bucket: upload.bucket, key: upload.key });
      const dataKey = await unwrapDataKey(kek, upload.wrappedKey).catch(() => {
        throw new IntegrityError("SSE-C upload's data key failed to unwrap");
      });
      return { mac: await deriveMacKey(dataKey), dataKey };
    }
    const sealKey = await deps.keys.sealKey(upload.tenantId, upload.masterVersion);
    try {
      return { mac: await openUploadMacKey(sealKey, upload.uploadId, upload.customer.sealedMacKey), dataKey: null };
    } catch {
      throw new IntegrityError("SSE-C upload's MAC key failed authentication");
    }
  }
  const kek = await deps.keys.forRead(upload.tenantId, upload.keyArn, upload.keyVersion, upload.masterVersion, true, upload.externalBucketKey ? upload.bucket : null);
  const dataKey = await unwrapCheckedDataKey(kek, upload.wrappedKey);
  return { mac: await deriveMacKey(dataKey), dataKey };
}

async function cleanUp(deps: CompleteDeps, upload: UploadRecord, plan: Plan): Promise<void> {
  for (let i = 0; i < plan.garbage.length; i += 1000) await deps.r2.delete(plan.garbage.slice(i, i + 1000));
  // The object this one replaced, if it was a multipart object too.
  await markKeysDead(deps, upload.bucket, [upload.key]);
}

/**
 * S3's multipart ETag: MD5 of the concatenated binary part ETags, "-", the part count. An
 * opaque part ETag ("<hex>-1", see chooseEtag) contributes its hex digits.
 */
export async function multipartEtag(etags: string[]): Promise<string> {
  const md5 = createMd5();
  md5.update(concatBytes(etags.map((e) => fromHex(e.replace(/-1$/, "")) ?? utf8(e))));
  return `${toHex(await md5.digest())}-${etags.length}`;
}

async function listPrefix(r2: R2Bucket, prefix: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  let cursor: string | undefined;
  do {
    const page = await r2.list({ prefix, limit: 1000, ...(cursor ? { cursor } : {}) });
    for (const o of page.objects) out.set(o.key, o.size);
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  return out;
}
