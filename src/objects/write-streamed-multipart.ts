/**
 * The large half of writeStreamed: an object of unknown length that outgrew one buffer is
 * stored in the multipart layout (docs/multipart.md) through the multipart module's own
 * pieces — an upload record in D1, parts written with writePart and recorded, then
 * completeUpload (manifest, envelope MAC over part count, sizes and manifest hash) — so
 * such an object is read, listed, copied, replaced and garbage-collected exactly like one
 * a client uploaded in parts. Any failure aborts the upload: nothing is left behind.
 *
 * Parts are exactly `partBytes` long except the last. The next part is read from the
 * client while the current one is encrypted into R2, so at most two part buffers are held.
 */
import { CHECKSUMS, createMd5, type ChecksumAlgorithm } from "../checksum";
import { sealFacts } from "../crypto/facts";
import { macKeyBytes, sealUploadMacKey } from "../crypto/customer-key";
import { newDataKey, randomBytes } from "../crypto/keys";
import { writeKeyFor } from "./object-keys";
import { completeUpload, partFactsLocation, type RequestedPart } from "../multipart/complete";
import { newUploadId } from "../multipart/ids";
import { abortUpload } from "../multipart/lifecycle";
import type { UploadStore } from "../multipart/store";
import { Errors } from "../errors";
import { toBase64, toHex } from "../util/bytes";
import { writePart } from "./parts";
import type { ObjectDeps, WrittenObject } from "./write";
import { prepend, readBuffer, type BufferedPlaintext, type BufferedPlaintextWithMore, type StreamedWriteRequest } from "./write-streamed";

/** The algorithms whose part values combine into a whole-object value (multipart/checksum.ts). */
const FULL_OBJECT_ALGORITHMS = new Set<ChecksumAlgorithm>(["CRC32", "CRC32C", "CRC64NVME"]);

export interface MultipartLayoutDeps extends ObjectDeps {
  store: UploadStore;
}

export async function writeMultipartLayout(
  deps: MultipartLayoutDeps,
  req: StreamedWriteRequest,
  head: BufferedPlaintextWithMore,
  partBytes: number,
): Promise<WrittenObject> {
  const tenantId = req.bucket.tenantId;
  const wk = await writeKeyFor(deps, req.bucket, req.key, req.sse);
  const { wrapped, dataKey } = await newDataKey(wk.kek);
  const sealKey = await deps.keys.sealKey(tenantId, wk.masterVersion);
  const uploadId = newUploadId();
  // The object's checksum: the client's when its algorithm combines across parts (the CRCs:
  // FULL_OBJECT, from each part's CRC, checked against the client's value at Complete),
  // else S3's default FULL_OBJECT CRC64NVME from per-part CRC64NVMEs.
  const plan = req.checksum;
  const sentCrc = "from" in plan && FULL_OBJECT_ALGORITHMS.has(plan.algorithm) ? plan.algorithm : null;
  // SSE-C: Complete signs with the MAC key sealed here (as for a client's upload).
  const customer = wk.customer ? { ...wk.customer, sealedMacKey: await sealUploadMacKey(sealKey, uploadId, await macKeyBytes(dataKey)) } : undefined;
  await deps.store.create({
    uploadId,
    bucket: req.bucket.name,
    key: req.key,
    tenantId,
    initiatorId: req.initiator?.id ?? "anonymous",
    initiatorName: req.initiator?.name ?? "anonymous",
    mode: req.sse.mode,
    keyArn: wk.keyArn,
    keyVersion: wk.keyVersion,
    masterVersion: wk.masterVersion,
    wrappedKey: wrapped,
    ...(customer ? { customer } : {}),
    ...(wk.externalBucketKey ? { externalBucketKey: true as const } : {}),
    ...(req.sse.context !== undefined ? { context: req.sse.context } : {}),
    bucketKeyEnabled: req.sse.bucketKeyEnabled,
    http: req.http,
    userMetadata: req.userMetadata,
    ...(sentCrc ? { checksumAlgorithm: sentCrc, checksumType: "FULL_OBJECT" as const } : {}),
    createdAt: Date.now(),
  });

  const storePart = async (partNumber: number, plain: BufferedPlaintext): Promise<RequestedPart> => {
    const md5 = createMd5();
    // Each part's CRC: Complete combines them into the object's full-object checksum.
    const crc = CHECKSUMS[sentCrc ?? "CRC64NVME"].create();
    for (const piece of plain.pieces) {
      md5.update(piece);
      crc.update(piece);
    }
    const written = await writePart(deps.r2, { uploadId, partNumber, dataKey, source: plain.source(), length: plain.length });
    // SSE-C: no plaintext MD5 in part ETags (they make the object's ETag).
    const etag = req.sse.mode === "SSE-C" ? toHex(randomBytes(16)) : toHex(await md5.digest());
    const recorded = await deps.store.recordPart(uploadId, {
      partNumber,
      attempt: written.attempt,
      size: plain.length,
      salt: written.salt,
      facts: await sealFacts(sealKey, ...partFactsLocation(uploadId, partNumber), sentCrc ? { etag, checksum: { algorithm: sentCrc, value: toBase64(await crc.digest()) } } : { etag, crc64: toBase64(await crc.digest()) }),
      uploadedAt: written.uploaded.getTime(),
    });
    if (!recorded.recorded) {
      // Aborted meanwhile: this attempt is not referenced by anything, remove it.
      await deps.r2.delete(written.r2Key);
      throw Errors.NoSuchUpload({ UploadId: uploadId });
    }
    return { partNumber, etag, checksums: {} };
  };

  const parts: RequestedPart[] = [];
  /** The part being written while the next is read; settled before any abort. */
  let inflight: Promise<unknown> = Promise.resolve();
  try {
    let current: BufferedPlaintext = head;
    let rest = prepend(head.more, req.source);
    for (let partNumber = 1; ; partNumber++) {
      if (partNumber > 10_000) throw Errors.EntityTooLarge({ MaxSizeAllowed: String(partBytes * 10_000) });
      const writing = storePart(partNumber, current);
      inflight = writing;
      if (current.ended) {
        parts.push(await writing);
        break;
      }
      // Read the next part while this one is encrypted into R2 (errors of either surface here).
      const reading = readBuffer(rest, partBytes);
      reading.catch(() => {});
      writing.catch(() => {});
      const [part, next] = await Promise.all([writing, reading]);
      parts.push(part);
      current = next;
      if (!next.ended) rest = prepend((next as BufferedPlaintextWithMore).more, rest);
    }
    // A fresh upload only this request knows: no client can retry its Complete, so no
    // completion record is kept (retentionMs 0).
    const done = await completeUpload({ r2: deps.r2, keys: deps.keys, store: deps.store, retentionMs: 0 }, {
      uploadId,
      bucket: req.bucket.name,
      key: req.key,
      tenantId,
      parts,
      // The source has ended (and verified the client's value): Complete must agree with it.
      ...(sentCrc && "from" in plan ? { fullChecksum: { algorithm: sentCrc, value: plan.from().value } } : {}),
      ...(req.onlyIf ? { condition: async () => ({ onlyIf: req.onlyIf!, header: null }) } : {}),
      dataKey,
    });
    if (done.kind !== "written") throw new Error("streamed multipart write was not written");
    return {
      etag: done.etag,
      ...(done.checksum ? { checksum: { ...done.checksum, type: done.checksumType ?? "FULL_OBJECT" } } : {}),
      size: done.size,
      keyArn: wk.keyArn,
      mode: req.sse.mode,
      ...(req.sse.customerKey ? { customerKey: req.sse.customerKey } : {}),
      bucketKeyEnabled: req.sse.bucketKeyEnabled,
      ...(req.sse.context !== undefined ? { context: req.sse.context } : {}),
      uploaded: done.uploaded,
      r2Etag: done.r2Etag,
    };
  } catch (error) {
    await req.source.cancel(error).catch(() => {});
    // A part still streaming into R2 would land after the abort's clean-up: let it finish first.
    await inflight.catch(() => {});
    await abortUpload({ r2: deps.r2, store: deps.store }, uploadId).catch((e: unknown) => {
      console.error(JSON.stringify({ event: "post-object-abort-failed", uploadId, message: String(e) }));
    });
    throw error;
  }
}
