import { joinCustomMetadata, signEnvelope } from "../crypto/envelope";
import { sealFacts } from "../crypto/facts";
import { deriveMacKey, rewrapDataKey } from "../crypto/keys";
import { Errors } from "../errors";
import { copyReencrypted } from "./copy-reencrypted";
import { objectR2Key } from "./location";
import type { CopyRequest } from "./copy-request";
import type { ObjectInfo } from "./object-info";
import { authenticate } from "./read";
import { WritePreconditionFailed, type ObjectDeps, type WrittenObject } from "./write";


/**
 * CopyObject, without re-encryption between SSE-KMS and SSE-S3. A stream's key depends only on the data key, salt,
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
    // Into or out of SSE-C the data is re-encrypted under a fresh data key: sharing one
    // with the source would let the source's key holder (the CMK, or the old customer
    // key) decrypt the copy. Multipart-layout sources are re-encrypted anyway, and so is a
    // copy asking for another checksum algorithm (the plaintext must pass a hasher).
    if (auth.envelope.layout.kind === "multipart" || auth.envelope.mode === "SSE-C" || req.sse.mode === "SSE-C" || req.checksumAlgorithm) {
      return await copyReencrypted(deps, req, auth, object);
    }
    const src = auth.envelope;
    const srcKek = await deps.keys.forRead(source.bucket.tenantId, src.keyArn, src.keyVersion, src.masterVersion, true, src.externalBucketKey ? source.bucket.name : null);
    const wk = await deps.keys.forWrite(target.bucket.tenantId, target.bucket.name, req.sse.mode, req.sse.keyId);
    // A bucket KEK is per bucket: a data key wrapped for the source bucket is never carried
    // into another one (nor one under the version root into a bucket-key envelope).
    const sameRoot = wk.bucketKey ? src.externalBucketKey === true && source.bucket.name === target.bucket.name : src.externalBucketKey !== true;
    const sameKek = sameRoot && wk.key.arn === src.keyArn && wk.keyVersion === src.keyVersion && wk.masterVersion === src.masterVersion;
    const wrappedKey = sameKek ? src.wrappedKey : await rewrapDataKey(srcKek, wk.kek, src.wrappedKey);
    const meta = req.metadata ?? { http: src.http, userMetadata: auth.info.userMetadata };
    // The source's facts as they are (ETag, checksum or the trailer record's algorithm): the
    // chunks and the trailer record are copied unchanged.
    const facts = { ...auth.facts, length: src.length };
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
        ...(wk.bucketKey ? { externalBucketKey: true as const } : {}),
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

