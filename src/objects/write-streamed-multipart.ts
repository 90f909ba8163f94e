/**
 * The large half of writeStreamed: an object of unknown length that outgrew one buffer is
 * stored in the multipart layout (docs/multipart.md) through the multipart module's own
 * pieces — an upload record in D1, parts written with writePart and recorded, then
 * completeUpload (manifest, envelope MAC over part count, sizes and manifest hash) — so
 * such an object is read, listed, copied, replaced and garbage-collected exactly like one
 * a client uploaded in parts. Any failure aborts the upload: nothing is left behind.
 *
 * Parts are exactly `partBytes` long except the last, however they are written:
 *
 * - writeMultipartLayout (no length hint): from buffers. The next part is read from the
 *   client while the current one is encrypted into R2, so at most two part buffers are held.
 * - writeMultipartLayoutStreamed (the form's Content-Length predicts the file's length):
 *   each part streams from the client into R2 with the length the hint predicts, so
 *   nothing is buffered. The prediction can be wrong only at the file's end (fields or an
 *   epilogue after the file make it shorter; a closing delimiter without its CRLF, a few
 *   bytes longer), and then only the part holding the end is affected: it is completed
 *   anyway (padded with zeros if the file ended early — R2 commits only complete streams),
 *   then rewritten with its real length from what R2 holds (decrypted back, plus the few
 *   extra bytes), and the padded attempt deleted. A file that turns out to fit one part is
 *   rewritten the same way as a single-stream object, as the buffered path would store it.
 *   Nothing is visible before the manifest (or that single object) is written, which
 *   happens only after the source's end has verified every check.
 */
import { CHECKSUMS, createMd5, type ChecksumAlgorithm, type Hasher } from "../checksum";
import { decryptingStream } from "../crypto/decrypt";
import type { EncryptBuffering, PlaintextSource } from "../crypto/encrypt";
import { CHUNK_SIZE, TAG_SIZE, chunkOffset, chunkPlainLength } from "../crypto/format";
import { ExactReader } from "../util/exact-reader";
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
import { writePart, type WrittenPart } from "./parts";
import { writeObject, type ObjectDeps, type WrittenObject } from "./write";
import { prepend, readBuffer, READ_PIECE, type BufferedPlaintext, type BufferedPlaintextWithMore, type LengthHint, type StreamedWriteRequest } from "./write-streamed";

/**
 * How a streamed part's encryption buffers (crypto/encrypt.ts): 256 KiB steps and one step
 * queued, against PUT's 1 MiB and two. Many of these run at once in one isolate (16
 * concurrent browser POSTs in bench/post-object.mjs), and what each holds in flight is
 * multiplied by them. 256 KiB is what the form reader keeps read ahead (s3/post-form.ts),
 * so a step takes what is already there. The worst RSS growth of 16 concurrent 50 MiB
 * POSTs went from +61..+75 MiB to +31..+48 MiB for under 3% of CPU (docs/performance.md).
 * A part rewritten after a wrong prediction (rewritePart) is rare and keeps the defaults.
 */
export const STREAMED_PART_BUFFERING: EncryptBuffering = { stepChunks: 4, highWaterMark: 1 };

/** The algorithms whose part values combine into a whole-object value (multipart/checksum.ts). */
const FULL_OBJECT_ALGORITHMS = new Set<ChecksumAlgorithm>(["CRC32", "CRC32C", "CRC64NVME"]);

export interface MultipartLayoutDeps extends ObjectDeps {
  store: UploadStore;
}

/** An upload record opened for one streamed write, and how to record, complete or abort it. */
interface OpenUpload {
  uploadId: string;
  dataKey: CryptoKey;
  /** Per part: a fresh MD5 (for the part's ETag) and CRC (combined at Complete). */
  hashers(): { md5: Hasher; crc: Hasher };
  /** Records a written part; returns what Complete is asked for. */
  record(partNumber: number, written: WrittenPart, size: number, md5: Hasher, crc: Hasher): Promise<RequestedPart>;
  complete(parts: RequestedPart[]): Promise<WrittenObject>;
  abort(): Promise<void>;
}

async function openUpload(deps: MultipartLayoutDeps, req: StreamedWriteRequest): Promise<OpenUpload> {
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

  return {
    uploadId,
    dataKey,
    hashers: () => ({ md5: createMd5(), crc: CHECKSUMS[sentCrc ?? "CRC64NVME"].create() }),
    async record(partNumber, written, size, md5, crc) {
      // SSE-C: no plaintext MD5 in part ETags (they make the object's ETag).
      const etag = req.sse.mode === "SSE-C" ? toHex(randomBytes(16)) : toHex(await md5.digest());
      const value = toBase64(await crc.digest());
      const recorded = await deps.store.recordPart(uploadId, {
        partNumber,
        attempt: written.attempt,
        size,
        salt: written.salt,
        facts: await sealFacts(sealKey, ...partFactsLocation(uploadId, partNumber), sentCrc ? { etag, checksum: { algorithm: sentCrc, value } } : { etag, crc64: value }),
        uploadedAt: written.uploaded.getTime(),
      });
      if (!recorded.recorded) {
        // Aborted meanwhile: this attempt is not referenced by anything, remove it.
        await deps.r2.delete(written.r2Key);
        throw Errors.NoSuchUpload({ UploadId: uploadId });
      }
      return { partNumber, etag, checksums: {} };
    },
    async complete(parts) {
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
    },
    async abort() {
      await abortUpload({ r2: deps.r2, store: deps.store }, uploadId).catch((e: unknown) => {
        console.error(JSON.stringify({ event: "post-object-abort-failed", uploadId, message: String(e) }));
      });
    },
  };
}

export async function writeMultipartLayout(
  deps: MultipartLayoutDeps,
  req: StreamedWriteRequest,
  head: BufferedPlaintextWithMore,
  partBytes: number,
): Promise<WrittenObject> {
  const upload = await openUpload(deps, req);
  const storePart = async (partNumber: number, plain: BufferedPlaintext): Promise<RequestedPart> => {
    const { md5, crc } = upload.hashers();
    for (const piece of plain.pieces) {
      md5.update(piece);
      crc.update(piece);
    }
    const written = await writePart(deps.r2, { uploadId: upload.uploadId, partNumber, dataKey: upload.dataKey, source: plain.source(), length: plain.length });
    return upload.record(partNumber, written, plain.length, md5, crc);
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
    return await upload.complete(parts);
  } catch (error) {
    await req.source.cancel(error).catch(() => {});
    // A part still streaming into R2 would land after the abort's clean-up: let it finish first.
    await inflight.catch(() => {});
    await upload.abort();
    throw error;
  }
}

/** A part as streamed: where it is, the length it was written with, and what of it is the file's. */
interface StreamedPart {
  written: WrittenPart;
  /** The stream's plaintext length (the prediction). */
  length: number;
  /** The file's bytes in it: `length` unless the file ended early and the rest is padding. */
  real: number;
  md5: Hasher;
  crc: Hasher;
}

/**
 * Streams the source into the multipart layout with no part buffer (see the module
 * comment). `hint.expected` predicts the file's length, `hint.max` bounds it.
 */
export async function writeMultipartLayoutStreamed(deps: MultipartLayoutDeps, req: StreamedWriteRequest, hint: LengthHint, partBytes: number): Promise<WrittenObject> {
  const upload = await openUpload(deps, req);
  /** `length`: the stored stream's plaintext length; `size`: the file's bytes in it (fewer only in a padded first part). */
  const parts: Array<{ written: WrittenPart; length: number; size: number; md5: Hasher; crc: Hasher }> = [];
  const source = req.source;
  let ended = false;
  /** Bytes read past a full part: the next part's first. */
  let carry: Uint8Array | null = null;
  try {
    for (let partNumber = 1, at = 0; !ended; partNumber++, at += partBytes) {
      if (partNumber > 10_000) throw Errors.EntityTooLarge({ MaxSizeAllowed: String(partBytes * 10_000) });
      // A part is begun only once its first byte is here: a file ending on a part boundary has no empty part.
      const first = carry ?? (await source.read(READ_PIECE));
      carry = null;
      if (first.byteLength === 0) break;
      // A short first read is the file's end (reads return what they are asked for but at
      // the end): the part's length is known. Else the hint's prediction, never less than
      // what is already here; a wrong one is caught and fixed below.
      const predicted = at < hint.expected ? hint.expected - at : hint.max - at;
      const length = first.byteLength < READ_PIECE ? first.byteLength : Math.min(partBytes, Math.max(predicted, first.byteLength));
      const part = await streamPart(deps.r2, upload, partNumber, length, prepend(first, source));
      if (part.real < part.length) {
        // The file ended inside this part, earlier than predicted. A first part is read back
        // into a single stream below, so it is not rewritten as a part first.
        ended = true;
        if (partNumber === 1) parts.push({ ...part, size: part.real });
        else parts.push({ ...part, written: await rewritePart(deps.r2, upload, partNumber, part, []), length: part.real, size: part.real });
        continue;
      }
      if (part.length === partBytes) {
        parts.push({ ...part, size: part.length });
        continue;
      }
      // The predicted last part is complete: the file must end here, or a few bytes later.
      const extra: Uint8Array[] = [];
      let extraBytes = 0;
      while (part.length + extraBytes < partBytes) {
        const more = await source.read(Math.min(READ_PIECE, partBytes - part.length - extraBytes));
        if (more.byteLength === 0) {
          ended = true;
          break;
        }
        part.md5.update(more);
        part.crc.update(more);
        extra.push(more);
        extraBytes += more.byteLength;
      }
      const written = extraBytes === 0 ? part.written : await rewritePart(deps.r2, upload, partNumber, part, extra);
      parts.push({ ...part, written, length: part.length + extraBytes, size: part.length + extraBytes });
    }
    if (parts.length <= 1) {
      // At most one part's worth: a single-stream object with its MD5 as ETag, as when buffered.
      const only = parts[0];
      const length = only?.size ?? 0;
      const md5 = only ? await only.md5.digest() : await createMd5().digest();
      const plain = only ? await readBack(deps.r2, upload.dataKey, 1, only.written, only.length, length) : emptySource();
      const written = await writeObject(deps, { ...req, source: plain, length, facts: req.facts({ md5 }) });
      await upload.abort();
      return written;
    }
    const requested: RequestedPart[] = [];
    for (const [i, part] of parts.entries()) requested.push(await upload.record(i + 1, part.written, part.size, part.md5, part.crc));
    return await upload.complete(requested);
  } catch (error) {
    await source.cancel(error).catch(() => {});
    await upload.abort();
    throw error;
  }
}

/**
 * Writes one part of `length` plaintext bytes from `source`, hashing the file's bytes. If
 * the source ends first, the rest is zeros so that R2 commits the stream: the caller then
 * rewrites the part with its real length (the padding is never part of an object).
 */
async function streamPart(r2: R2Bucket, upload: OpenUpload, partNumber: number, length: number, source: PlaintextSource): Promise<StreamedPart> {
  const { md5, crc } = upload.hashers();
  let delivered = 0;
  let real = 0;
  let ended = false;
  const limited: PlaintextSource = {
    async read(max) {
      const n = Math.min(max, length - delivered);
      if (n === 0) return new Uint8Array(0);
      let out: Uint8Array | null = null;
      let filled = 0;
      while (!ended && filled < n) {
        const bytes = await source.read(n - filled);
        if (bytes.byteLength === 0) {
          ended = true;
          break;
        }
        md5.update(bytes);
        crc.update(bytes);
        real += bytes.byteLength;
        if (filled === 0 && bytes.byteLength === n) {
          out = bytes;
          filled = n;
          break;
        }
        out ??= new Uint8Array(n);
        out.set(bytes, filled);
        filled += bytes.byteLength;
      }
      out ??= new Uint8Array(n); // zeros: padding after an early end
      delivered += n;
      return out;
    },
    cancel: (reason) => source.cancel(reason),
  };
  const written = await writePart(r2, { uploadId: upload.uploadId, partNumber, dataKey: upload.dataKey, source: limited, length, buffering: STREAMED_PART_BUFFERING });
  return { written, length, real, md5, crc };
}

/**
 * Replaces a part written with the wrong length: its first `part.real` bytes, decrypted
 * back from R2, then `extra`, as a new attempt; the old attempt is deleted.
 */
async function rewritePart(r2: R2Bucket, upload: OpenUpload, partNumber: number, part: StreamedPart, extra: Uint8Array[]): Promise<WrittenPart> {
  const extraBytes = extra.reduce((n, piece) => n + piece.byteLength, 0);
  const stored = await readBack(r2, upload.dataKey, partNumber, part.written, part.length, part.real);
  let index = 0;
  const source: PlaintextSource = {
    async read(max) {
      const bytes = await stored.read(max);
      if (bytes.byteLength === max) return bytes;
      // The stored bytes are done: the extra pieces follow (each read returns max bytes, fewer only at the end).
      const out = new Uint8Array(max);
      out.set(bytes);
      let filled = bytes.byteLength;
      while (filled < max && index < extra.length) {
        const piece = extra[index]!;
        const take = Math.min(max - filled, piece.byteLength);
        out.set(piece.subarray(0, take), filled);
        filled += take;
        if (take === piece.byteLength) index++;
        else extra[index] = piece.subarray(take);
      }
      return filled === max ? out : out.subarray(0, filled);
    },
    cancel: (reason) => stored.cancel(reason),
  };
  const written = await writePart(r2, { uploadId: upload.uploadId, partNumber, dataKey: upload.dataKey, source, length: part.real + extraBytes });
  await r2.delete(part.written.r2Key);
  return written;
}

/** The first `take` plaintext bytes of a part stream of `length` bytes, decrypted from R2. */
async function readBack(r2: R2Bucket, dataKey: CryptoKey, partNumber: number, written: WrittenPart, length: number, take: number): Promise<PlaintextSource> {
  if (take === 0) return emptySource();
  const lastChunk = Math.floor((take - 1) / CHUNK_SIZE);
  const end = chunkOffset(lastChunk) + chunkPlainLength(lastChunk, length) + TAG_SIZE;
  const object = await r2.get(written.r2Key, { range: { offset: 0, length: end } });
  if (!object) throw new Error("a part written moments ago is missing");
  const plain = decryptingStream(object.body, dataKey, {
    header: { partNumber, length, salt: written.salt },
    includesHeader: true,
    firstChunk: 0,
    lastChunk,
    skip: 0,
    take,
  });
  const reader = new ExactReader(plain);
  return { read: (max) => reader.read(max), cancel: (reason) => reader.cancel(reason) };
}

function emptySource(): PlaintextSource {
  return { read: async () => new Uint8Array(0), cancel: async () => {} };
}
