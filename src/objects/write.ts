import { encryptingStream, type PlaintextSource } from "../crypto/encrypt";
import { joinCustomMetadata, signEnvelope, type HttpMetadata } from "../crypto/envelope";
import { sealFacts, type ObjectFacts } from "../crypto/facts";
import { encryptedSize, SALT_SIZE } from "../crypto/format";
import type { CustomerKey } from "../crypto/customer-key";
import { deriveMacKey, newDataKey, randomBytes } from "../crypto/keys";
import type { KeyService } from "../kms/service";
import type { SseChoice } from "./sse-choice";
import type { Bucket } from "../store/buckets";
import { objectR2Key } from "./location";
import { writeKeyFor } from "./object-keys";

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
  /** Passed to R2 so a conditional write is atomic with the check. */
  onlyIf?: R2Conditional;
}

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
}

/** Outcome of a conditional write whose R2 precondition did not hold. */
export class WritePreconditionFailed extends Error {}

/**
 * Encrypts the source into R2 under a fresh data key. R2 receives exactly
 * encryptedSize(length) bytes through a FixedLengthStream; if the source fails
 * verification the stream errors before its final chunk and R2 commits nothing, leaving
 * any previous object at the key untouched.
 */
export async function writeObject(deps: ObjectDeps, req: WriteRequest): Promise<WrittenObject> {
  const tenantId = req.bucket.tenantId;
  const wk = await writeKeyFor(deps, req.bucket, req.key, req.sse);
  const { wrapped, dataKey } = await newDataKey(wk.kek);
  const salt = randomBytes(SALT_SIZE);
  const sealed = await sealFacts(await deps.keys.sealKey(tenantId, wk.masterVersion), req.bucket.name, req.key, { ...req.facts, length: req.length });
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
      ...(wk.customer ? { customer: wk.customer } : {}),
    },
    { bucket: req.bucket.name, key: req.key, userMetadata: req.userMetadata },
  );

  const fixed = new FixedLengthStream(encryptedSize(req.length));
  const piping = encryptingStream(req.source, dataKey, { partNumber: 0, length: req.length, salt }).pipeTo(fixed.writable);
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
