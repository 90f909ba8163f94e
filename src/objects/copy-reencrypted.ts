import type { ChecksumAlgorithm } from "../checksum";
import { decryptingStream } from "../crypto/decrypt";
import { chunkCount, encryptedSize } from "../crypto/format";
import { randomBytes } from "../crypto/keys";
import { toHex } from "../util/bytes";
import { Errors } from "../errors";
import { ExactReader } from "../util/exact-reader";
import type { CopyRequest } from "./copy-request";
import { objectR2Key } from "./location";
import { largestPlaintextWithin, R2_MAX_PUT_BYTES } from "./parts";
import type { Authenticated, ObjectInfo } from "./object-info";
import { loadManifest, multipartStream } from "./read-multipart";
import { loadTrailer } from "./read";
import { writeObject, type ObjectDeps, type WrittenObject } from "./write";

/**
 * CopyObject that re-encrypts: a multipart-layout source, a copy into or out of SSE-C, or
 * a copy asking for another checksum algorithm (single-layout sources are decrypted as
 * one stream). A multipart-layout source is
 * decrypted part after part and re-encrypted
 * into one single-layout stream under a fresh data key (docs/multipart.md, "Copy").
 * Copying the manifest alone would make two objects share part data (deleting one would
 * break the other); copying the part objects would need bookkeeping for a second set of
 * parts. CopyObject sources are at most 5 GiB, which one stream holds — except the last
 * megabytes below that, where R2's single-put limit is reached: those need UploadPartCopy.
 * The ETag carries over (except into SSE-C); the checksum is computed again as it streams.
 */
export async function copyReencrypted(deps: ObjectDeps, req: CopyRequest, auth: Authenticated, object: R2ObjectBody): Promise<WrittenObject & { info: ObjectInfo }> {
  const length = auth.envelope.length;
  if (encryptedSize(length) > R2_MAX_PUT_BYTES) {
    await object.body.cancel().catch(() => {});
    throw Errors.InvalidRequest(
      {},
      `The specified copy source is larger than the maximum allowable size for a copy source: ${largestPlaintextWithin(R2_MAX_PUT_BYTES)}`,
    );
  }
  // The copy's checksum is computed as the plaintext passes: the algorithm asked for, else
  // the source's (a single-layout source keeps it in its trailer record, read here), else
  // CRC64NVME (S3 gives copies one too).
  if (!req.checksumAlgorithm) await loadTrailer(deps.r2, objectR2Key(req.source.bucket.name, req.source.key), auth);
  const algorithm = req.checksumAlgorithm ?? (auth.info.checksum?.algorithm as ChecksumAlgorithm | undefined) ?? "CRC64NVME";
  let plaintext: ReadableStream<Uint8Array>;
  if (auth.envelope.layout.kind === "multipart") {
    const r2Key = objectR2Key(req.source.bucket.name, req.source.key);
    const manifest = await loadManifest({ r2: deps.r2, r2Key, object, body: object.body, auth });
    plaintext = await multipartStream(deps.r2, manifest, auth.dataKey);
  } else {
    const header = { partNumber: 0, length, salt: auth.envelope.layout.salt };
    plaintext = decryptingStream(object.body, auth.dataKey, {
      header,
      includesHeader: true,
      firstChunk: 0,
      lastChunk: chunkCount(length) - 1,
      skip: 0,
      take: length,
      trailer: auth.envelope.trailer === true,
    });
  }
  const reader = new ExactReader(plaintext);
  const meta = req.metadata ?? { http: auth.envelope.http, userMetadata: auth.info.userMetadata };
  const written = await writeObject(deps, {
    bucket: req.target.bucket,
    key: req.target.key,
    source: { read: (max) => reader.read(max), cancel: (reason) => reader.cancel(reason) },
    length,
    sse: req.sse,
    http: meta.http,
    userMetadata: meta.userMetadata,
    // An SSE-C copy never carries an ETag that may be a plaintext MD5 (see chooseEtag).
    facts: { etag: req.sse.mode === "SSE-C" ? `${toHex(randomBytes(16))}-1` : auth.info.etag },
    checksum: { compute: algorithm },
    ...(req.onlyIf ? { onlyIf: req.onlyIf } : {}),
  });
  return { ...written, info: auth.info };
}
