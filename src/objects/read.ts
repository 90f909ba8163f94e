import { decryptBytes, decryptingStream } from "../crypto/decrypt";
import { decodeEnvelope, splitCustomMetadata, verifyEnvelope } from "../crypto/envelope";
import { IntegrityError } from "../crypto/errors";
import { unsealFacts } from "../crypto/facts";
import { CHUNK_SIZE, CHUNKS_PER_STEP, ENCRYPTED_CHUNK_SIZE, HEADER_SIZE, chunkCount, chunkOffset, chunkSpan, encodeHeader, encryptedSize } from "../crypto/format";
import { deriveMacKey, deriveStreamKey, unwrapDataKey } from "../crypto/keys";
import { openTrailer, TRAILER_SIZE } from "../crypto/trailer";
import { openPartChecksums } from "./part-checksums";
import { memoFacts, memoTrailer, metadataIdentity, rememberVerified, trailerPlan, verifiedBefore } from "./verified-memo";
import { checksumTypeOf } from "../checksum";
import { readKekFor } from "./object-keys";
import { unwrapCheckedDataKey } from "../kms/data-keys";
import { Errors } from "../errors";
import { resolveRange, type RangeRequest } from "../util/range";
import type { Bucket } from "../store/buckets";
import { ObjectChangedError } from "./changed";
import type { Authenticated, Gate, ObjectInfo, ObjectRead } from "./object-info";
import { objectR2Key } from "./location";
import { loadManifest, partSpan, readMultipartObject } from "./read-multipart";
import type { ObjectDeps } from "./write";


/**
 * Verifies an R2 object's envelope before anything about it is used: the KEK is derived
 * (the key must be usable), the data key unwrapped (AES-KW integrity), the metadata MAC
 * checked (binds bucket, key, sizes, user metadata; commits to the data key), the stored
 * size matched against the authenticated length, and the sealed facts opened.
 */
export async function authenticate(deps: ObjectDeps, bucket: Bucket, key: string, object: R2Object, requireEnabled: boolean, gate: Gate): Promise<Authenticated> {
  const { envelope: text, userMetadata, unknown } = splitCustomMetadata(object.customMetadata);
  if (unknown.length > 0) throw new IntegrityError("object carries metadata this format does not define");
  const envelope = decodeEnvelope(text);
  // Access rules that depend on the encryption mode run before any key is touched; a
  // forged mode cannot widen access because the MAC below would then fail.
  const customerKey = gate(envelope.mode) ?? undefined;
  // SSE-C: the key is checked against the envelope's verifier before anything is unwrapped.
  const kek = await readKekFor(deps, bucket, key, envelope, requireEnabled, customerKey);
  let dataKey: CryptoKey;
  try {
    // SSE-C's KEK is this request's own; a CMK's KEK came through forRead's state check
    // just now, which is what lets its unwrapped keys be cached (kms/data-keys.ts).
    dataKey = envelope.mode === "SSE-C" ? await unwrapDataKey(kek, envelope.wrappedKey) : await unwrapCheckedDataKey(kek, envelope.wrappedKey);
  } catch {
    throw new IntegrityError("data key failed to unwrap");
  }
  // A CMK's data key comes from the data-key cache: the same object read again verified
  // the same stored metadata before, and that answer stands (verified-memo.ts).
  const identity = envelope.mode === "SSE-C" ? null : metadataIdentity(bucket.name, key, object.customMetadata);
  let memo = identity === null ? undefined : verifiedBefore(dataKey, identity);
  if (!memo) {
    await verifyEnvelope(await deriveMacKey(dataKey), envelope, { bucket: bucket.name, key, userMetadata });
    if (identity !== null) memo = rememberVerified(dataKey, identity);
  }
  // A multipart-layout object's body is its manifest, checked against the hash in the
  // envelope when it is read (read-multipart.ts).
  if (envelope.layout.kind === "single" && object.size !== encryptedSize(envelope.length) + (envelope.trailer ? TRAILER_SIZE : 0)) {
    throw new IntegrityError("stored size does not match the authenticated length");
  }
  const sealKey = await deps.keys.sealKey(bucket.tenantId, envelope.masterVersion);
  const facts = await memoFacts(memo, sealKey, () => unsealFacts(sealKey, bucket.name, key, envelope.sealed));
  // Both are under the MAC here; they disagree only if the writer was wrong. Listings trust the sealed one.
  if (facts.length !== undefined && facts.length !== envelope.length) throw new IntegrityError("sealed length does not match the authenticated length");
  const info: ObjectInfo = {
    key,
    etag: facts.etag,
    size: envelope.length,
    lastModified: envelope.lastModified !== undefined ? new Date(envelope.lastModified) : object.uploaded,
    mode: envelope.mode,
    keyArn: envelope.keyArn,
    bucketKeyEnabled: envelope.bucketKeyEnabled,
    ...(envelope.context !== undefined ? { context: envelope.context } : {}),
    http: envelope.http,
    userMetadata,
    // Multipart objects (and single objects from before trailer records) keep it in the
    // sealed facts; a trailer record, when present, is read only when asked for (withTrailer).
    ...(facts.checksum ? { checksum: { ...facts.checksum, type: checksumTypeOf(facts.checksum.value) } } : {}),
    ...(envelope.mode === "SSE-C" && customerKey ? { customerKey } : {}),
    version: { r2Etag: object.etag, uploaded: object.uploaded.getTime() },
  };
  return { info, envelope, dataKey, facts, ...(memo ? { memo } : {}) };
}

/**
 * An object's version and facts for requests that neither read nor replace its data
 * (object tagging): S3 answers them for an SSE-C object without its key, so for SSE-C
 * this cannot check the MAC (its key derives from the data key). What it returns is then
 * authenticated as far as the tenant's seal key reaches, as in a listing; the tags are
 * keyed by R2's own version identity anyway. Other modes are fully authenticated.
 */
export async function statObjectMetadata(deps: ObjectDeps, bucket: Bucket, key: string, gate: Gate = () => {}): Promise<ObjectInfo> {
  const object = await deps.r2.head(objectR2Key(bucket.name, key));
  if (!object) throw Errors.NoSuchKey({ Key: key });
  const { envelope: text, userMetadata, unknown } = splitCustomMetadata(object.customMetadata);
  if (unknown.length > 0) throw new IntegrityError("object carries metadata this format does not define");
  const envelope = decodeEnvelope(text);
  if (envelope.mode !== "SSE-C") return (await authenticate(deps, bucket, key, object, false, gate)).info;
  gate(envelope.mode);
  const facts = await unsealFacts(await deps.keys.sealKey(bucket.tenantId, envelope.masterVersion), bucket.name, key, envelope.sealed);
  return {
    key,
    etag: facts.etag,
    size: facts.length ?? envelope.length,
    lastModified: envelope.lastModified !== undefined ? new Date(envelope.lastModified) : object.uploaded,
    mode: envelope.mode,
    keyArn: "",
    bucketKeyEnabled: false,
    http: envelope.http,
    userMetadata,
    version: { r2Etag: object.etag, uploaded: object.uploaded.getTime() },
  };
}

/**
 * The checksum in an authenticated single-layout object's trailer record, from the
 * record's stored bytes (the last TRAILER_SIZE of the object), into `auth.info`.
 */
export async function withTrailer(auth: Authenticated, record: Uint8Array): Promise<void> {
  const { envelope } = auth;
  if (envelope.layout.kind !== "single" || !envelope.trailer) return;
  const header = { partNumber: 0, length: envelope.length, salt: envelope.layout.salt };
  auth.info.checksum = await memoTrailer(auth.memo, record, async () => openTrailer(await deriveStreamKey(auth.dataKey, header.salt, 0, header.length), encodeHeader(header), record));
}

/**
 * A single-layout object's trailer record read on its own (an R2 suffix get) into
 * `auth.info`: a copy that re-encrypts needs the source's checksum algorithm up front.
 */
export async function loadTrailer(r2: R2Bucket, r2Key: string, auth: Authenticated): Promise<void> {
  if (auth.envelope.layout.kind !== "single" || !auth.envelope.trailer) return;
  const record = await getSuffix(r2, r2Key);
  if (!record || !("body" in record) || record.etag !== auth.info.version.r2Etag) {
    if (record && "body" in record) await record.body.cancel().catch(() => {});
    throw new ObjectChangedError("the object changed between its reads");
  }
  await withTrailer(auth, new Uint8Array(await record.arrayBuffer()));
}

/**
 * HEAD: authenticated metadata, no body, no requirement that the key be Enabled. With
 * `checksum`, one R2 get of the object's last TRAILER_SIZE bytes instead of a head (same
 * metadata, plus the trailer record).
 */
export async function statObject(deps: ObjectDeps, bucket: Bucket, key: string, gate: Gate = () => {}, checksum = false): Promise<ObjectInfo> {
  return (await statAuthenticated(deps, bucket, key, gate, checksum)).info;
}

/** statObject, with the verified envelope (GetObjectAttributes needs the layout). */
export async function statAuthenticated(deps: ObjectDeps, bucket: Bucket, key: string, gate: Gate, checksum: boolean): Promise<Authenticated> {
  const r2Key = objectR2Key(bucket.name, key);
  if (!checksum) {
    const object = await deps.r2.head(r2Key);
    if (!object) throw Errors.NoSuchKey({ Key: key });
    return authenticate(deps, bucket, key, object, false, gate);
  }
  const object = await getSuffix(deps.r2, r2Key);
  if (!object) throw Errors.NoSuchKey({ Key: key });
  const bytes = "body" in object ? new Uint8Array(await object.arrayBuffer()) : new Uint8Array(0);
  const auth = await authenticate(deps, bucket, key, object, false, gate);
  await withTrailer(auth, bytes);
  return auth;
}

/** The object's last TRAILER_SIZE bytes (its trailer record when it has one), with its metadata. */
async function getSuffix(r2: R2Bucket, r2Key: string): Promise<R2Object | R2ObjectBody | null> {
  try {
    return await r2.get(r2Key, { range: { suffix: TRAILER_SIZE } });
  } catch {
    // An object shorter than the suffix (only an empty object from before records): its metadata.
    return r2.head(r2Key);
  }
}

/**
 * GetObjectAttributes' ObjectParts of an authenticated object (statAuthenticated): null for
 * a single-layout object (it has no parts, as on S3); else the part count and, for uploads
 * created with a checksum algorithm, each part's number, size and checksum (S3 lists Part
 * elements only then), from the manifest — fetched only if it is still the object whose
 * envelope was authenticated.
 */
export async function objectParts(
  deps: ObjectDeps,
  bucket: Bucket,
  key: string,
  auth: Authenticated,
): Promise<{ count: number; parts?: Array<{ number: number; size: number; checksum: { algorithm: string; value: string } }> } | null> {
  if (auth.envelope.layout.kind !== "multipart") return null;
  const r2Key = objectR2Key(bucket.name, key);
  const manifest = await loadManifest({ r2: deps.r2, r2Key, object: { etag: auth.info.version.r2Etag, size: 0 }, body: null, auth });
  if (!manifest.checksums) return { count: manifest.parts.length };
  const sums = await openPartChecksums(auth.dataKey, manifest.uploadId, manifest.checksums, manifest.parts.length);
  return {
    count: manifest.parts.length,
    parts: manifest.parts.map((p, i) => ({ number: p.number, size: p.length, checksum: { algorithm: sums.algorithm, value: sums.values[i]! } })),
  };
}

/**
 * HEAD with ?partNumber=N: the part's plaintext span and, for multipart-layout objects,
 * the part count. An object uploaded in one piece has exactly one part, itself.
 */
export async function statObjectPart(
  deps: ObjectDeps,
  bucket: Bucket,
  key: string,
  partNumber: number,
  gate: Gate = () => {},
): Promise<{ info: ObjectInfo; span: { first: number; last: number } | null; partsCount?: number }> {
  const r2Key = objectR2Key(bucket.name, key);
  const object = await deps.r2.head(r2Key);
  if (!object) throw Errors.NoSuchKey({ Key: key });
  const auth = await authenticate(deps, bucket, key, object, false, gate);
  if (auth.envelope.layout.kind === "multipart") {
    const manifest = await loadManifest({ r2: deps.r2, r2Key, object, body: null, auth });
    return { info: auth.info, span: partSpan(manifest, partNumber), partsCount: manifest.parts.length };
  }
  if (partNumber !== 1) throw Errors.InvalidPartNumber();
  return { info: auth.info, span: auth.info.size > 0 ? { first: 0, last: auth.info.size - 1 } : null };
}

/**
 * GET, whole or ranged. A range is served from one ranged R2 read covering only the
 * chunks it touches: chunk offsets do not depend on the object's length, so the stored
 * span can be computed before the metadata is known. `check` runs on the authenticated
 * metadata before any byte is decrypted (conditional headers).
 */
export async function readObject(
  deps: ObjectDeps,
  bucket: Bucket,
  key: string,
  range: RangeRequest | null,
  gate: Gate = () => {},
  check: (info: ObjectInfo) => void = () => {},
  /** GET ?partNumber=N (never together with a range). */
  partNumber?: number,
  /** x-amz-checksum-mode: ENABLED on a whole-object read: the trailer record is fetched too (in parallel). */
  checksum = false,
): Promise<ObjectRead> {
  // A read takes several R2 calls; a writer replacing the object between them must not
  // turn the read into an error. Nothing has been sent yet, so start over on the version
  // that is there now (S3 answers a read racing an overwrite with one of the versions).
  for (let attempt = 1; ; attempt++) {
    try {
      return await readObjectOnce(deps, bucket, key, range, gate, check, partNumber, checksum && !range && partNumber === undefined);
    } catch (error) {
      if (!(error instanceof ObjectChangedError) || attempt >= READ_ATTEMPTS) throw error;
    }
  }
}

/** Reads started over because the object changed underneath (each sees a newer version). */
const READ_ATTEMPTS = 3;

/** Stored objects up to one decryption step (about 1 MiB) may be read whole into memory. */
const BUFFERED_READ_BYTES = HEADER_SIZE + CHUNKS_PER_STEP * ENCRYPTED_CHUNK_SIZE + TRAILER_SIZE;

/**
 * Stored sizes of objects this isolate has read whole, by R2 key: only a hint for whether a
 * checksum-mode GET needs a separate trailer read (a wrong hint costs one sequential get,
 * never a wrong answer: the record is always checked against the body's version).
 */
const sizeHints = new Map<string, number>();
const MAX_SIZE_HINTS = 4096;

function hintSize(r2Key: string, size: number): void {
  sizeHints.delete(r2Key);
  if (sizeHints.size >= MAX_SIZE_HINTS) sizeHints.delete(sizeHints.keys().next().value!);
  sizeHints.set(r2Key, size);
}

async function readObjectOnce(
  deps: ObjectDeps,
  bucket: Bucket,
  key: string,
  range: RangeRequest | null,
  gate: Gate,
  check: (info: ObjectInfo) => void,
  partNumber: number | undefined,
  checksum: boolean,
): Promise<ObjectRead> {
  const r2Key = objectR2Key(bucket.name, key);
  // Checksum mode (the AWS SDKs ask for it on every GetObject): the trailer record ends the
  // stored object, but the headers that carry its checksum go out before the body. A small
  // object is read whole anyway, so its record comes from that one read; a larger one needs
  // a suffix get, started alongside the body's so it adds no latency. The size is unknown
  // until the body's get answers, so a hint from this isolate's earlier reads of the key
  // decides; without one the suffix get is started (as for any large object).
  const recordGet = checksum && (sizeHints.get(r2Key) ?? Infinity) > BUFFERED_READ_BYTES ? getSuffix(deps.r2, r2Key) : null;
  recordGet?.catch(() => {});
  const dropRecord = async () => {
    const got = await recordGet?.catch(() => null);
    if (got && "body" in got) await got.body.cancel().catch(() => {});
  };
  let object: Awaited<ReturnType<typeof getRanged>>;
  try {
    object = await getRanged(deps.r2, r2Key, range);
  } catch (error) {
    await dropRecord();
    throw error;
  }
  if (object && object !== "unsatisfiable" && !range) hintSize(r2Key, object.size);
  if (!object || object === "unsatisfiable" || object.size <= BUFFERED_READ_BYTES) await dropRecord();
  if (object === "unsatisfiable") {
    // The guessed stored range missed the object entirely: answer from its metadata.
    const head = await deps.r2.head(r2Key);
    if (!head) throw Errors.NoSuchKey({ Key: key });
    const auth = await authenticate(deps, bucket, key, head, true, gate);
    if (auth.envelope.layout.kind === "multipart") return readMultipartObject({ r2: deps.r2, r2Key, object: head, body: null, auth }, { range, partNumber, check });
    check(auth.info);
    // The ranged get failed although the object now there has the range: it failed on a
    // version that has been replaced since (or R2 failed otherwise) — read again.
    if (range && resolveRange(range, auth.info.size) !== "unsatisfiable") throw new ObjectChangedError("the ranged read failed on an object that has the range");
    throw invalidRange(auth.info.size);
  }
  if (!object) throw Errors.NoSuchKey({ Key: key });

  let auth: Authenticated;
  let body = object.body;
  // A small single-layout object (or the chunks of a small range) is read whole and
  // decrypted in memory: no stream plumbing, and a damaged one is refused before the response.
  let stored: Uint8Array | null = null;
  try {
    auth = await authenticate(deps, bucket, key, object, true, gate);
    if (auth.envelope.layout.kind === "single") {
      check(auth.info);
      if (servedSize(object) <= BUFFERED_READ_BYTES) stored = new Uint8Array(await object.arrayBuffer());
    }
    if (checksum && auth.envelope.trailer) {
      if (stored) {
        await withTrailer(auth, stored.subarray(Math.max(0, stored.byteLength - TRAILER_SIZE)));
      } else if (object.size <= BUFFERED_READ_BYTES) {
        // A multipart-layout object has no trailer record (its checksum is in the sealed facts).
        const whole = new Uint8Array(await object.arrayBuffer());
        await withTrailer(auth, whole.subarray(Math.max(0, whole.byteLength - TRAILER_SIZE)));
        body = new Response(whole).body!;
      } else {
        // Started above unless a stale hint said small: then it starts now.
        const record = await (recordGet ?? getSuffix(deps.r2, r2Key));
        if (!record || !("body" in record) || record.etag !== object.etag) {
          if (record && "body" in record) await record.body.cancel().catch(() => {});
          throw new ObjectChangedError("the object changed between its body and trailer reads");
        }
        await withTrailer(auth, new Uint8Array(await record.arrayBuffer()));
      }
    } else {
      await dropRecord();
    }
  } catch (error) {
    await object.body.cancel().catch(() => {});
    await dropRecord();
    throw error;
  }
  if (auth.envelope.layout.kind === "multipart") {
    // The stored-span guess was made before the layout was known: a whole read fetched
    // the manifest itself, a ranged one only a slice of it (refetched in full).
    if (range) await object.body.cancel().catch(() => {});
    try {
      return await readMultipartObject({ r2: deps.r2, r2Key, object, body: range ? null : body, auth }, { range, partNumber, check });
    } catch (error) {
      // A missing part of a manifest that is no longer the object at the key was released
      // by the write that replaced it: a race, not tampering.
      if (error instanceof IntegrityError && (await replaced(deps.r2, r2Key, object.etag))) throw new ObjectChangedError();
      throw error;
    }
  }
  const { info, envelope, dataKey } = auth;
  const header = { partNumber: 0, length: envelope.length, salt: (envelope.layout as { salt: Uint8Array }).salt };

  if (!range) {
    // An object uploaded in one piece has one part, the whole object, served as a range.
    if (partNumber !== undefined && partNumber !== 1) {
      if (!stored) await body.cancel().catch(() => {});
      throw Errors.InvalidPartNumber();
    }
    const plan = { header, includesHeader: true, firstChunk: 0, lastChunk: chunkCount(envelope.length) - 1, skip: 0, take: envelope.length, trailer: envelope.trailer === true, ...trailerPlan(auth.memo) };
    const plaintext = stored ? await decryptBytes(stored, dataKey, plan) : decryptingStream(body, dataKey, plan);
    return partNumber !== undefined && envelope.length > 0 ? { info, body: plaintext, span: { first: 0, last: envelope.length - 1 } } : { info, body: plaintext };
  }

  const span = resolveRange(range, envelope.length);
  if (span === "unsatisfiable") {
    if (!stored) await object.body.cancel().catch(() => {});
    throw invalidRange(envelope.length);
  }
  const chunks = chunkSpan(span.first, span.last, envelope.length);
  const { offset: servedOffset, end: servedEnd } = servedSpan(object);
  if (servedOffset > chunks.offset || servedEnd < chunks.offset + chunks.size) {
    // The single guessed read did not cover the chunks (cannot happen for well-formed
    // objects, but sizes come from storage): read exactly the span instead.
    if (!stored) await body.cancel().catch(() => {});
    stored = null;
    const exact = await deps.r2.get(r2Key, { range: { offset: chunks.offset, length: chunks.size } });
    if (!exact) throw Errors.NoSuchKey({ Key: key });
    if (exact.etag !== object.etag) {
      await exact.body.cancel().catch(() => {});
      throw new ObjectChangedError();
    }
    body = exact.body;
  } else if (stored) {
    stored = stored.subarray(chunks.offset - servedOffset);
  } else if (servedOffset < chunks.offset) {
    body = body.pipeThrough(skipBytes(chunks.offset - servedOffset));
  }
  const plan = {
    header,
    includesHeader: false,
    firstChunk: chunks.firstChunk,
    lastChunk: chunks.lastChunk,
    skip: chunks.skip,
    take: span.last - span.first + 1,
    trailer: envelope.trailer === true,
  };
  return { info, body: stored ? await decryptBytes(stored, dataKey, plan) : decryptingStream(body, dataKey, plan), span };
}

/** The stored bytes R2 answered with: [offset, end) of the object. */
function servedSpan(object: R2ObjectBody): { offset: number; end: number } {
  const served = (object as R2ObjectBody & { range?: R2Range }).range;
  const offset = served && "offset" in served && served.offset !== undefined ? served.offset : served && "suffix" in served && served.suffix !== undefined ? object.size - served.suffix : 0;
  const end = served && "length" in served && served.length !== undefined ? offset + served.length : object.size;
  return { offset, end: Math.min(end, object.size) };
}

function servedSize(object: R2ObjectBody): number {
  const { offset, end } = servedSpan(object);
  return end - offset;
}

/** R2 read covering the chunks a plaintext range needs, computed without the object's length. */
async function getRanged(r2: R2Bucket, r2Key: string, range: RangeRequest | null): Promise<R2ObjectBody | null | "unsatisfiable"> {
  if (!range) return r2.get(r2Key);
  let r2Range: R2Range;
  if (range.kind === "suffix") {
    r2Range = { suffix: (Math.ceil(range.length / CHUNK_SIZE) + 1) * ENCRYPTED_CHUNK_SIZE };
  } else {
    const first = Math.floor(range.first / CHUNK_SIZE);
    r2Range =
      range.kind === "bounded"
        ? { offset: chunkOffset(first), length: (Math.floor(range.last / CHUNK_SIZE) - first + 1) * ENCRYPTED_CHUNK_SIZE }
        : { offset: chunkOffset(first) };
  }
  try {
    const object = await r2.get(r2Key, { range: r2Range });
    if (object && !("body" in object)) return "unsatisfiable";
    return object;
  } catch {
    // R2 rejects ranges that start past the end of the stored object.
    return "unsatisfiable";
  }
}

/** Whether the object at `r2Key` is no longer the one with `etag` (replaced or deleted). */
async function replaced(r2: R2Bucket, r2Key: string, etag: string): Promise<boolean> {
  const head = await r2.head(r2Key);
  return head?.etag !== etag;
}

function invalidRange(size: number) {
  return Errors.InvalidRange({ ActualObjectSize: String(size) });
}

function skipBytes(count: number): TransformStream<Uint8Array, Uint8Array> {
  let left = count;
  return new TransformStream({
    transform(chunk, controller) {
      if (left >= chunk.byteLength) {
        left -= chunk.byteLength;
        return;
      }
      controller.enqueue(left > 0 ? chunk.subarray(left) : chunk);
      left = 0;
    },
  });
}
