import { decryptingStream } from "../crypto/decrypt";
import { decodeEnvelope, splitCustomMetadata, verifyEnvelope } from "../crypto/envelope";
import { IntegrityError } from "../crypto/errors";
import { unsealFacts } from "../crypto/facts";
import { CHUNK_SIZE, ENCRYPTED_CHUNK_SIZE, chunkCount, chunkOffset, chunkSpan, encryptedSize } from "../crypto/format";
import { deriveMacKey, unwrapDataKey } from "../crypto/keys";
import { readKekFor } from "./object-keys";
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
    dataKey = await unwrapDataKey(kek, envelope.wrappedKey);
  } catch {
    throw new IntegrityError("data key failed to unwrap");
  }
  await verifyEnvelope(await deriveMacKey(dataKey), envelope, { bucket: bucket.name, key, userMetadata });
  // A multipart-layout object's body is its manifest, checked against the hash in the
  // envelope when it is read (read-multipart.ts).
  if (envelope.layout.kind === "single" && object.size !== encryptedSize(envelope.length)) throw new IntegrityError("stored size does not match the authenticated length");
  const facts = await unsealFacts(await deps.keys.sealKey(bucket.tenantId, envelope.masterVersion), bucket.name, key, envelope.sealed);
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
    ...(facts.checksum ? { checksum: facts.checksum } : {}),
    ...(envelope.mode === "SSE-C" && customerKey ? { customerKey } : {}),
    version: { r2Etag: object.etag, uploaded: object.uploaded.getTime() },
  };
  return { info, envelope, dataKey };
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

/** HEAD: authenticated metadata, no body, no requirement that the key be Enabled. */
export async function statObject(deps: ObjectDeps, bucket: Bucket, key: string, gate: Gate = () => {}): Promise<ObjectInfo> {
  const object = await deps.r2.head(objectR2Key(bucket.name, key));
  if (!object) throw Errors.NoSuchKey({ Key: key });
  return (await authenticate(deps, bucket, key, object, false, gate)).info;
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
): Promise<ObjectRead> {
  // A read takes several R2 calls; a writer replacing the object between them must not
  // turn the read into an error. Nothing has been sent yet, so start over on the version
  // that is there now (S3 answers a read racing an overwrite with one of the versions).
  for (let attempt = 1; ; attempt++) {
    try {
      return await readObjectOnce(deps, bucket, key, range, gate, check, partNumber);
    } catch (error) {
      if (!(error instanceof ObjectChangedError) || attempt >= READ_ATTEMPTS) throw error;
    }
  }
}

/** Reads started over because the object changed underneath (each sees a newer version). */
const READ_ATTEMPTS = 3;

async function readObjectOnce(
  deps: ObjectDeps,
  bucket: Bucket,
  key: string,
  range: RangeRequest | null,
  gate: Gate,
  check: (info: ObjectInfo) => void,
  partNumber: number | undefined,
): Promise<ObjectRead> {
  const r2Key = objectR2Key(bucket.name, key);
  const object = await getRanged(deps.r2, r2Key, range);
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
  try {
    auth = await authenticate(deps, bucket, key, object, true, gate);
    if (auth.envelope.layout.kind === "single") check(auth.info);
  } catch (error) {
    await object.body.cancel().catch(() => {});
    throw error;
  }
  if (auth.envelope.layout.kind === "multipart") {
    // The stored-span guess was made before the layout was known: a whole read fetched
    // the manifest itself, a ranged one only a slice of it (refetched in full).
    if (range) await object.body.cancel().catch(() => {});
    try {
      return await readMultipartObject({ r2: deps.r2, r2Key, object, body: range ? null : object.body, auth }, { range, partNumber, check });
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
      await object.body.cancel().catch(() => {});
      throw Errors.InvalidPartNumber();
    }
    const plan = { header, includesHeader: true, firstChunk: 0, lastChunk: chunkCount(envelope.length) - 1, skip: 0, take: envelope.length };
    const body = decryptingStream(object.body, dataKey, plan);
    return partNumber !== undefined && envelope.length > 0 ? { info, body, span: { first: 0, last: envelope.length - 1 } } : { info, body };
  }

  const span = resolveRange(range, envelope.length);
  if (span === "unsatisfiable") {
    await object.body.cancel().catch(() => {});
    throw invalidRange(envelope.length);
  }
  const chunks = chunkSpan(span.first, span.last, envelope.length);
  const served = (object as R2ObjectBody & { range?: R2Range }).range;
  const servedOffset = served && "offset" in served && served.offset !== undefined ? served.offset : served && "suffix" in served && served.suffix !== undefined ? object.size - served.suffix : 0;
  const servedEnd = served && "length" in served && served.length !== undefined ? servedOffset + served.length : object.size;
  let body = object.body;
  if (servedOffset > chunks.offset || servedEnd < chunks.offset + chunks.size) {
    // The single guessed read did not cover the chunks (cannot happen for well-formed
    // objects, but sizes come from storage): read exactly the span instead.
    await body.cancel().catch(() => {});
    const exact = await deps.r2.get(r2Key, { range: { offset: chunks.offset, length: chunks.size } });
    if (!exact) throw Errors.NoSuchKey({ Key: key });
    if (exact.etag !== object.etag) {
      await exact.body.cancel().catch(() => {});
      throw new ObjectChangedError();
    }
    body = exact.body;
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
  };
  return { info, body: decryptingStream(body, dataKey, plan), span };
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
