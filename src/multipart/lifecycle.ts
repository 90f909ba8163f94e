import { decodeEnvelope, ENVELOPE_KEY } from "../crypto/envelope";
import { deletePrefix, uploadPrefix } from "../objects/parts";
import { objectR2Key } from "../objects/location";
import { timingSafeEqual } from "../util/bytes";
import type { MultipartObjectRecord, UploadRecord, UploadStore } from "./store";

/**
 * Transitions that free part data (docs/multipart.md, "Clean-up"). Part data under
 * "_mpu/<id>/" is owned either by an upload in progress (multipart_uploads) or by the
 * completed object whose manifest references it (multipart_objects); it is deleted when
 * its owner goes away, and never while a live manifest may reference it.
 */

/** A complete holding an upload longer than this has died (a complete takes seconds). */
export const STALE_COMPLETE_MS = 15 * 60 * 1000;

export interface CleanupDeps {
  r2: R2Bucket;
  store: UploadStore;
}

/**
 * Does the object at (bucket, key) currently carry this manifest? Judged from the
 * envelope's manifest hash, which also survives re-puts by the master-key rewrap job.
 */
export async function manifestIsLive(r2: R2Bucket, bucket: string, key: string, hash: Uint8Array): Promise<boolean> {
  const head = await r2.head(objectR2Key(bucket, key));
  if (!head) return false;
  try {
    const layout = decodeEnvelope(head.customMetadata?.[ENVELOPE_KEY]).layout;
    return layout.kind === "multipart" && timingSafeEqual(layout.manifestHash, hash);
  } catch {
    return false;
  }
}

export type AbortOutcome = "aborted" | "gone" | "busy";

/** AbortMultipartUpload and expiry: removes the rows first, then every R2 object under the prefix. */
export async function abortUpload(deps: CleanupDeps, uploadId: string, now = Date.now()): Promise<AbortOutcome> {
  let upload = await deps.store.get(uploadId);
  if (!upload) return "gone";
  if (upload.state === "completing") {
    if (now - (upload.completingAt ?? 0) < STALE_COMPLETE_MS) return "busy";
    if ((await recoverStaleComplete(deps, upload)) === "completed") return "gone";
    upload = await deps.store.get(uploadId);
    if (!upload) return "gone";
  }
  if (!(await deps.store.remove(uploadId))) return (await deps.store.get(uploadId)) ? "busy" : "gone";
  // A part upload still in flight finds its upload gone when it records itself and
  // deletes its own object; the sweep catches anything a crash leaves here.
  await deletePrefix(deps.r2, uploadPrefix(uploadId));
  return "aborted";
}

/**
 * A complete that claimed an upload and died: if its manifest made it to R2 (and is still
 * the object there), finish the bookkeeping; otherwise give the upload back to its client.
 */
export async function recoverStaleComplete(deps: CleanupDeps, upload: UploadRecord): Promise<"completed" | "reverted"> {
  if (upload.manifestHash && (await manifestIsLive(deps.r2, upload.bucket, upload.key, upload.manifestHash))) {
    await deps.store.finish(upload, upload.manifestHash, upload.completingAt ?? Date.now());
    return "completed";
  }
  await deps.store.unclaim(upload.uploadId, upload.completingAt ?? 0);
  return "reverted";
}

/** Frees the part data of completed objects that are no longer the object at their key. */
export async function releaseIfDead(deps: CleanupDeps, rows: MultipartObjectRecord[]): Promise<number> {
  let released = 0;
  for (const row of rows) {
    if (await manifestIsLive(deps.r2, row.bucket, row.key, row.manifestHash)) continue;
    // Data first, row last: a crash in between leaves the row, and the sweep retries.
    await deletePrefix(deps.r2, uploadPrefix(row.uploadId));
    await deps.store.forgetObject(row.uploadId);
    released++;
  }
  return released;
}

/** After DeleteObject(s) or an overwrite: release what the keys' old manifests referenced. */
export async function releaseKeys(deps: CleanupDeps, bucket: string, keys: string[]): Promise<number> {
  return releaseIfDead(deps, await deps.store.objectsAt(bucket, keys));
}

/**
 * DeleteBucket: S3 deletes a bucket with uploads in progress (they go with it), so abort
 * them all; completed objects are gone already (the bucket is empty), so release theirs.
 */
export async function releaseBucket(deps: CleanupDeps, bucket: string): Promise<void> {
  for (;;) {
    const ids = await deps.store.uploadIdsIn(bucket, 100);
    if (ids.length === 0) break;
    let progressed = false;
    for (const id of ids) if ((await abortUpload(deps, id)) !== "busy") progressed = true;
    // Uploads being completed right now are left to the scheduled clean-up.
    if (!progressed) break;
  }
  for (;;) {
    const rows = await deps.store.objectsIn(bucket, 100);
    if (rows.length === 0 || (await releaseIfDead(deps, rows)) === 0) break;
  }
}

/**
 * For DeleteObject(s): looks up the keys' completed-object rows while `mutation` (the R2
 * delete) runs, then releases what it left unreferenced. The object is gone either way;
 * a failure here is left to the sweep.
 */
export async function releaseAfter(deps: CleanupDeps, bucket: string, keys: string[], mutation: Promise<unknown>): Promise<void> {
  const lookup = deps.store.objectsAt(bucket, keys).catch((error: unknown) => error as Error);
  await mutation;
  const rows = await lookup;
  if (rows instanceof Error) return logReleaseFailure(bucket, rows);
  if (rows.length > 0) await releaseIfDead(deps, rows).catch((error: unknown) => logReleaseFailure(bucket, error));
}

function logReleaseFailure(bucket: string, error: unknown): void {
  console.error(JSON.stringify({ event: "multipart-release-failed", bucket, message: error instanceof Error ? error.message : String(error) }));
}
