import { joinCustomMetadata, signEnvelope } from "../crypto/envelope";
import { sealFacts } from "../crypto/facts";
import { deriveMacKey, rewrapDataKey } from "../crypto/keys";
import { Errors } from "../errors";
import { copyMultipartObject } from "./copy-multipart";
import { objectR2Key } from "./location";
import type { CopyRequest } from "./copy-request";
import type { ObjectInfo } from "./object-info";
import { authenticate } from "./read";
import { WritePreconditionFailed, writeObject, type ObjectDeps, type WrittenObject } from "./write";
import { decryptingStream } from "../crypto/decrypt";
import { chunkCount } from "../crypto/format";
import { ExactReader } from "../util/exact-reader";
import type { Authenticated } from "./object-info";


/**
 * CopyObject without re-encryption. A stream's key depends only on the data key, salt,
 * part number and length — not on bucket, key or CMK — so the stored chunks are copied
 * byte for byte; only the envelope changes: the data key is re-wrapped when the target
 * KEK differs, and the MAC is recomputed for the new location and metadata.
 */
export async function copyObject(deps: ObjectDeps, req: CopyRequest): Promise<WrittenObject & { info: ObjectInfo }> {
  const { source, target } = req;
  const object = await deps.r2.get(objectR2Key(source.bucket.name, source.key));
  if (!object) throw Errors.NoSuchKey({ Key: source.key });
  try {
    const auth = await authenticate(deps, source.bucket, source.key, object, true, req.gate);
    req.check(auth.info);
    if (auth.envelope.layout.kind === "multipart") return await copyMultipartObject(deps, req, auth, object);
    // Another checksum algorithm asked for: the plaintext must pass through a hasher.
    if (req.checksumAlgorithm) return await reencrypt(deps, req, auth, object);
    const src = auth.envelope;
    const srcKek = await deps.keys.forRead(source.bucket.tenantId, src.keyArn, src.keyVersion, src.masterVersion);
    const wk = await deps.keys.forWrite(target.bucket.tenantId, req.sse.mode, req.sse.keyId);
    const sameKek = wk.key.arn === src.keyArn && wk.keyVersion === src.keyVersion && wk.masterVersion === src.masterVersion;
    const wrappedKey = sameKek ? src.wrappedKey : await rewrapDataKey(srcKek, wk.kek, src.wrappedKey);
    const meta = req.metadata ?? { http: src.http, userMetadata: auth.info.userMetadata };
    const facts = { etag: auth.info.etag, ...(auth.info.checksum ? { checksum: auth.info.checksum } : {}), length: src.length };
    const sealed = await sealFacts(await deps.keys.sealKey(target.bucket.tenantId, wk.masterVersion), target.bucket.name, target.key, facts);
    const envelope = await signEnvelope(
      await deriveMacKey(auth.dataKey),
      {
        version: 1,
        mode: req.sse.mode,
        keyArn: wk.key.arn,
        keyVersion: wk.keyVersion,
        masterVersion: wk.masterVersion,
        wrappedKey,
        length: src.length,
        layout: src.layout,
        ...(req.sse.context !== undefined ? { context: req.sse.context } : {}),
        bucketKeyEnabled: req.sse.bucketKeyEnabled,
        sealed,
        http: meta.http,
        // The trailer record is copied with the chunks: it is sealed under the stream key,
        // which depends on neither the location nor the CMK.
        ...(src.trailer ? { trailer: true as const } : {}),
      },
      { bucket: target.bucket.name, key: target.key, userMetadata: meta.userMetadata },
    );
    const fixed = new FixedLengthStream(object.size);
    const piping = object.body.pipeTo(fixed.writable);
    piping.catch(() => {}); // observed here: a failed put below would otherwise leave it unhandled
    const put = await deps.r2.put(objectR2Key(target.bucket.name, target.key), fixed.readable, {
      customMetadata: joinCustomMetadata(envelope, meta.userMetadata),
      ...(req.onlyIf ? { onlyIf: req.onlyIf } : {}),
    });
    // R2 refused the condition without reading the body; the catch below cancels the source.
    if (put === null) throw new WritePreconditionFailed();
    await piping;
    return {
      etag: facts.etag,
      size: src.length,
      keyArn: wk.key.arn,
      mode: req.sse.mode,
      bucketKeyEnabled: req.sse.bucketKeyEnabled,
      ...(req.sse.context !== undefined ? { context: req.sse.context } : {}),
      uploaded: put.uploaded,
      r2Etag: put.etag,
      info: auth.info,
    };
  } catch (error) {
    await object.body.cancel().catch(() => {});
    throw error;
  }
}

/**
 * CopyObject with x-amz-checksum-algorithm: decrypted and encrypted again under a fresh
 * data key, the new checksum computed as the plaintext passes (S3 recomputes it too).
 */
async function reencrypt(deps: ObjectDeps, req: CopyRequest, auth: Authenticated, object: R2ObjectBody): Promise<WrittenObject & { info: ObjectInfo }> {
  const { envelope } = auth;
  if (envelope.layout.kind !== "single") throw new Error("single layout expected");
  const length = envelope.length;
  const plan = {
    header: { partNumber: 0, length, salt: envelope.layout.salt },
    includesHeader: true,
    firstChunk: 0,
    lastChunk: chunkCount(length) - 1,
    skip: 0,
    take: length,
    trailer: envelope.trailer === true,
  };
  const reader = new ExactReader(decryptingStream(object.body, auth.dataKey, plan));
  const meta = req.metadata ?? { http: envelope.http, userMetadata: auth.info.userMetadata };
  const written = await writeObject(deps, {
    bucket: req.target.bucket,
    key: req.target.key,
    source: { read: (max) => reader.read(max), cancel: (reason) => reader.cancel(reason) },
    length,
    sse: req.sse,
    http: meta.http,
    userMetadata: meta.userMetadata,
    facts: { etag: auth.info.etag },
    checksum: { compute: req.checksumAlgorithm! },
    ...(req.onlyIf ? { onlyIf: req.onlyIf } : {}),
  });
  return { ...written, info: auth.info };
}
