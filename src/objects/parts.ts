import { encryptingStream, type EncryptBuffering, type PlaintextSource } from "../crypto/encrypt";
import { encryptedSize, SALT_SIZE } from "../crypto/format";
import { randomBytes } from "../crypto/keys";
import { toHex } from "../util/bytes";

/**
 * Where multipart part data lives in R2 (docs/multipart.md, "Layout"):
 * "_mpu/<upload id>/<part number, 5 digits>/<attempt>". Bucket names cannot start with
 * "_", so no listing of a bucket ever sees these keys; every attempt gets its own key, so
 * a retried part never overwrites data a finished manifest may still reference.
 */
export const PARTS_ROOT = "_mpu/";

export function uploadPrefix(uploadId: string): string {
  return `${PARTS_ROOT}${uploadId}/`;
}

export function partR2Key(uploadId: string, partNumber: number, attempt: string): string {
  return `${uploadPrefix(uploadId)}${String(partNumber).padStart(5, "0")}/${attempt}`;
}

/** The upload id a part key or upload prefix belongs to, or null for anything else. */
export function uploadIdOf(r2Key: string): string | null {
  if (!r2Key.startsWith(PARTS_ROOT)) return null;
  const rest = r2Key.slice(PARTS_ROOT.length);
  const slash = rest.indexOf("/");
  return slash > 0 ? rest.slice(0, slash) : null;
}

/**
 * R2's limit for one put (5 GiB minus 5 MiB). Every part is one put of its encrypted
 * stream, so a part's plaintext may be at most the largest L with E(L) within it.
 */
export const R2_MAX_PUT_BYTES = 5 * 1024 ** 3 - 5 * 1024 ** 2;
export const MAX_PART_BYTES = largestPlaintextWithin(R2_MAX_PUT_BYTES);

export function largestPlaintextWithin(storedLimit: number): number {
  let length = storedLimit; // E(L) > L, so this is an upper bound; walk down by chunks
  while (encryptedSize(length) > storedLimit) length -= Math.max(1, encryptedSize(length) - storedLimit);
  while (encryptedSize(length + 1) <= storedLimit) length++;
  return length;
}

export interface WrittenPart {
  r2Key: string;
  attempt: string;
  salt: Uint8Array;
  uploaded: Date;
}

/**
 * Encrypts one part as its own stream (part number in the header and in the stream key,
 * a fresh salt on every attempt, so a retried part never reuses a key and nonce) into a
 * new R2 object. As with single objects, a source that fails verification errors the
 * stream before its final chunk and R2 commits nothing.
 */
export async function writePart(
  r2: R2Bucket,
  req: { uploadId: string; partNumber: number; dataKey: CryptoKey; source: PlaintextSource; length: number; buffering?: EncryptBuffering },
): Promise<WrittenPart> {
  const attempt = toHex(randomBytes(8));
  const salt = randomBytes(SALT_SIZE);
  const r2Key = partR2Key(req.uploadId, req.partNumber, attempt);
  const fixed = new FixedLengthStream(encryptedSize(req.length));
  const piping = encryptingStream(req.source, req.dataKey, { partNumber: req.partNumber, length: req.length, salt }, undefined, req.buffering).pipeTo(fixed.writable);
  // Observed at once: a refused body rejects this while R2 is still reading (it is still
  // awaited below), and must not surface as an unhandled rejection meanwhile.
  piping.catch(() => {});
  let put: R2Object | null;
  try {
    put = await r2.put(r2Key, fixed.readable);
  } catch (storageError) {
    // The source's own error (BadDigest, IncompleteBody, a failed copy source…) explains
    // the failure better than the storage error it caused downstream.
    throw (await settledError(piping)) ?? storageError;
  }
  await piping;
  return { r2Key, attempt, salt, uploaded: put!.uploaded };
}

/** The rejection reason of `p` if it settles as rejected within a moment, else undefined. */
async function settledError(p: Promise<unknown>): Promise<unknown> {
  let timer = 0;
  const late = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), 1000)));
  try {
    return await Promise.race([p.then(() => undefined, (error: unknown) => error), late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Deletes every R2 object under `prefix` (1000 keys per list and per batch delete). */
export async function deletePrefix(r2: R2Bucket, prefix: string): Promise<number> {
  let deleted = 0;
  for (;;) {
    // Always list from the start: what was listed is deleted before the next page.
    const page = await r2.list({ prefix, limit: 1000 });
    if (page.objects.length === 0) return deleted;
    await r2.delete(page.objects.map((o) => o.key));
    deleted += page.objects.length;
    if (!page.truncated) return deleted;
  }
}
