import { CHECKSUMS, type ChecksumAlgorithm, type StoredChecksum } from "../checksum";
import { encryptingStream, type PlaintextSource } from "../crypto/encrypt";
import { joinCustomMetadata, signEnvelope, type HttpMetadata } from "../crypto/envelope";
import { sealFacts, type ObjectFacts } from "../crypto/facts";
import { encryptedSize, SALT_SIZE } from "../crypto/format";
import type { CustomerKey } from "../crypto/customer-key";
import { deriveMacKey, newDataKey, randomBytes } from "../crypto/keys";
import { TRAILER_SIZE } from "../crypto/trailer";
import { toBase64 } from "../util/bytes";
import type { KeyService } from "../kms/service";
import type { SseChoice } from "./sse-choice";
import type { Bucket } from "../store/buckets";
import { objectR2Key } from "./location";
import { writeKeyFor, type ObjectWriteKey } from "./object-keys";

export interface ObjectDeps {
  r2: R2Bucket;
  keys: KeyService;
}

export interface WriteRequest {
  bucket: Bucket;
  key: string;
  source: PlaintextSource;
  length: number;
  sse: SseChoice;
  http: HttpMetadata;
  userMetadata: Record<string, string>;
  facts: ObjectFacts;
  /**
   * The object's checksum, kept in its trailer record (FORMAT.md §3a): the client's, read
   * from the source once it has ended and verified, or one computed here as the
   * plaintext streams (CRC64NVME when the client sent none, as S3 does).
   */
  checksum: ChecksumPlan;
  /** Passed to R2 so a conditional write is atomic with the check. */
  onlyIf?: R2Conditional;
}

/**
 * `from`: the client's checksum of `algorithm` (known before the body), its value read once
 * the source has ended and verified it. `compute`: computed here as the plaintext streams.
 */
export type ChecksumPlan = { algorithm: ChecksumAlgorithm; from: () => StoredChecksum } | { compute: ChecksumAlgorithm };

export interface WrittenObject {
  etag: string;
  size: number;
  keyArn: string;
  mode: SseChoice["mode"];
  bucketKeyEnabled: boolean;
  context?: string;
  /** SSE-C: the request's key (its MD5 is echoed in the response). */
  customerKey?: CustomerKey;
  uploaded: Date;
  /** R2's etag of what was stored (ciphertext or manifest): the version identity tags are keyed by. */
  r2Etag: string;
  /** The checksum stored with the object, if it has one. */
  checksum?: StoredChecksum;
}

/** Outcome of a conditional write whose R2 precondition did not hold. */
export class WritePreconditionFailed extends Error {}

/**
 * Encrypts the source into R2 under a fresh data key. R2 receives exactly
 * encryptedSize(length) bytes through a FixedLengthStream; if the source fails
 * verification the stream errors before its final chunk and R2 commits nothing, leaving
 * any previous object at the key untouched. Small objects are encrypted in memory first
 * and put as bytes (same guarantee: a failing source stops before the put).
 */
export async function writeObject(deps: ObjectDeps, req: WriteRequest): Promise<WrittenObject> {
  const tenantId = req.bucket.tenantId;
  const wk = await writeKeyFor(deps, req.bucket, req.key, req.sse);
  const { wrapped, dataKey } = await newDataKey(wk.kek);
  const salt = randomBytes(SALT_SIZE);
  const plan = req.checksum;
  const facts: ObjectFacts = { ...req.facts, length: req.length };
  if (!facts.checksum) facts.trailerAlgorithm = "compute" in plan ? plan.compute : plan.algorithm;
  const sealed = await sealFacts(await deps.keys.sealKey(tenantId, wk.masterVersion), req.bucket.name, req.key, facts);
  const envelope = await signEnvelope(
    await deriveMacKey(dataKey),
    {
      version: 1,
      mode: req.sse.mode,
      keyArn: wk.keyArn,
      keyVersion: wk.keyVersion,
      masterVersion: wk.masterVersion,
      wrappedKey: wrapped,
      length: req.length,
      layout: { kind: "single", salt },
      ...(req.sse.context !== undefined ? { context: req.sse.context } : {}),
      bucketKeyEnabled: req.sse.bucketKeyEnabled,
      sealed,
      http: req.http,
      trailer: true,
      ...(wk.customer ? { customer: wk.customer } : {}),
      ...(wk.externalBucketKey ? { externalBucketKey: true as const } : {}),
    },
    { bucket: req.bucket.name, key: req.key, userMetadata: req.userMetadata },
  );

  const hasher = "compute" in plan ? CHECKSUMS[plan.compute].create() : null;
  const source = hasher ? hashingSource(req.source, hasher) : req.source;
  let checksum: StoredChecksum | undefined;
  const trailer = async (): Promise<StoredChecksum> => {
    checksum = "from" in plan ? plan.from() : { algorithm: plan.compute, value: toBase64(await hasher!.digest()), type: "FULL_OBJECT" };
    return checksum;
  };
  const stored = encryptedSize(req.length) + TRAILER_SIZE;
  const ciphertext = encryptingStream(source, dataKey, { partNumber: 0, length: req.length, salt }, trailer);
  if (stored <= BUFFERED_WRITE_BYTES) {
    // A small object is encrypted whole (its body read and verified to the end) before R2
    // sees a byte: one put of bytes, no stream for the runtime to pump into R2, and a body
    // that fails verification never reaches R2 at all.
    const bytes = await new Response(ciphertext).arrayBuffer();
    const put = await deps.r2.put(objectR2Key(req.bucket.name, req.key), bytes, {
      customMetadata: joinCustomMetadata(envelope, req.userMetadata),
      ...(req.onlyIf ? { onlyIf: req.onlyIf } : {}),
    });
    if (put === null) throw new WritePreconditionFailed();
    return written(req, wk, put, checksum);
  }
  const fixed = new FixedLengthStream(stored);
  const piping = ciphertext.pipeTo(fixed.writable);
  // A failing source (BadDigest, SignatureDoesNotMatch…) rejects `piping` while R2 is still
  // reading; mark it observed now, or the runtime reports an unhandled rejection before the
  // code below gets to it (it is still awaited/inspected there).
  piping.catch(() => {});
  const putting = deps.r2.put(objectR2Key(req.bucket.name, req.key), fixed.readable, {
    customMetadata: joinCustomMetadata(envelope, req.userMetadata),
    ...(req.onlyIf ? { onlyIf: req.onlyIf } : {}),
  });
  let put: R2Object | null;
  try {
    put = await putting;
  } catch (storageError) {
    // The source's own error (BadDigest, SignatureDoesNotMatch, IncompleteBody…) explains a
    // failed write better than the storage error it caused downstream.
    throw (await rejectionOf(piping)) ?? storageError;
  }
  if (put === null) {
    // R2 refused the precondition without reading the body: stop the source.
    piping.catch(() => {});
    await req.source.cancel(new WritePreconditionFailed());
    throw new WritePreconditionFailed();
  }
  await piping;
  return written(req, wk, put, checksum);
}

/** Stored objects up to one encryption step (about 1 MiB) are encrypted in memory and put as bytes. */
const BUFFERED_WRITE_BYTES = 1024 * 1024 + 64 * 1024;

function written(req: WriteRequest, wk: ObjectWriteKey, put: R2Object, checksum: StoredChecksum | undefined): WrittenObject {
  return {
    etag: req.facts.etag,
    size: req.length,
    keyArn: wk.keyArn,
    mode: req.sse.mode,
    bucketKeyEnabled: req.sse.bucketKeyEnabled,
    ...(req.sse.context !== undefined ? { context: req.sse.context } : {}),
    ...(req.sse.customerKey ? { customerKey: req.sse.customerKey } : {}),
    uploaded: put.uploaded,
    r2Etag: put.etag,
    ...(checksum ? { checksum } : {}),
  };
}

/** Feeds what passes through to a hasher (a checksum the client did not send: objects, parts, copies). */
export function hashingSource(source: PlaintextSource, hasher: { update(bytes: Uint8Array): void }): PlaintextSource {
  return {
    async read(max) {
      const bytes = await source.read(max);
      hasher.update(bytes);
      return bytes;
    },
    cancel: (reason) => source.cancel(reason),
  };
}

/** The rejection reason of `p` if it settles as rejected within a moment, else undefined. */
async function rejectionOf(p: Promise<unknown>): Promise<unknown> {
  let timer = 0;
  const late = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), 1000)));
  const settled = p.then(
    () => undefined,
    (error: unknown) => error,
  );
  try {
    return await Promise.race([settled, late]);
  } finally {
    clearTimeout(timer);
  }
}
