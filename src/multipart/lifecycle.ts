import { decodeEnvelope, ENVELOPE_KEY } from "../crypto/envelope";
import { deletePrefix, uploadPrefix } from "../objects/parts";
import { objectR2Key } from "../objects/location";
import { timingSafeEqual } from "../util/bytes";
import type { MultipartObjectRecord, UploadRecord, UploadStore } from "./store";

/**
 * Transitions that free part data (docs/multipart.md, "Clean-up"). Part data under
 * "_mpu/<id>/" is owned either by an upload in progress (multipart_uploads) or by the
 * completed object whose manifest references it (multipart_objects); it is deleted when
 * its owner goes away (a completed object's only after a grace period, for reads still
 * streaming it), and never while a live manifest may reference it.
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
  // deletes its own object. The upload is gone once its rows are: data left by a failed
  // delete is unowned, and the sweep's orphan pass deletes it.
  await deletePrefix(deps.r2, uploadPrefix(uploadId)).catch((error: unknown) =>
    console.error(JSON.stringify({ event: "multipart-abort-delete-failed", uploadId, message: error instanceof Error ? error.message : String(error) })),
  );
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

/**
 * Settles completed-object rows against what R2 holds now: a live manifest's mark (if any)
 * is cleared; a dead one is marked dead (first sighting) and its part data released once
 * it has been dead for `graceMs`. The grace lets a GET that opened the old manifest before
 * it was replaced or deleted read the parts it has not opened yet (S3 lets it finish).
 * The request paths pass Infinity (mark only); the scheduled sweep releases.
 */
export async function settleObjects(deps: CleanupDeps, rows: MultipartObjectRecord[], now: number, graceMs: number): Promise<{ marked: number; released: number }> {
  const out = { marked: 0, released: 0 };
  for (const row of rows) {
    if (await manifestIsLive(deps.r2, row.bucket, row.key, row.manifestHash)) {
      if (row.deadSince !== undefined) await deps.store.clearDead(row.uploadId, row.deadSince);
      continue;
    }
    let since = row.deadSince;
    if (since === undefined) {
      await deps.store.markDead(row.uploadId, now);
      since = now;
      out.marked++;
    }
    if (now - since < graceMs) continue;
    // Data first, row last: a crash in between leaves the row, and the sweep retries.
    await deletePrefix(deps.r2, uploadPrefix(row.uploadId));
    await deps.store.forgetObject(row.uploadId);
    out.released++;
  }
  return out;
}

/** After an overwrite by Complete: marks the keys' old manifests dead (released by the sweep after the grace). */
export async function markKeysDead(deps: CleanupDeps, bucket: string, keys: string[], now = Date.now()): Promise<number> {
  return (await settleObjects(deps, await deps.store.objectsAt(bucket, keys), now, Infinity)).marked;
}

/**
 * DeleteBucket: S3 deletes a bucket with uploads in progress (they go with it), so abort
 * them at once (nobody can read an incomplete upload). Completed objects are gone already
 * (the bucket is empty) but a GET of one may still be streaming, so their rows are only
 * marked dead, as DeleteObject does: the sweep releases them after the grace.
 * Completion records of its uploads (kept for retried Completes) are deleted.
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
  const now = Date.now();
  for (;;) {
    const rows = await deps.store.unmarkedObjectsIn(bucket, 100);
    // Rows left unmarked are live (a Complete racing the delete): the sweep judges them.
    if (rows.length === 0 || (await settleObjects(deps, rows, now, Infinity)).marked === 0) break;
  }
  // Retries of Completes in a deleted bucket are NoSuchBucket; in a bucket re-created
  // under the same name they must not answer for objects of the old one.
  await deps.store.forgetCompletionsIn(bucket);
}

/**
 * For DeleteObject(s): looks up the keys' completed-object rows while `mutation` (the R2
 * delete) runs, then marks those it left unreferenced dead; the sweep releases their part
 * data after the grace. The object is gone either way; a failure here is left to the
 * sweep (which marks what it finds dead).
 */
export async function markDeadAfter(deps: CleanupDeps, bucket: string, keys: string[], mutation: Promise<unknown>): Promise<void> {
  const lookup = deps.store.objectsAt(bucket, keys).catch((error: unknown) => error as Error);
  await mutation;
  const rows = await lookup;
  if (rows instanceof Error) return logMarkFailure(bucket, rows);
  if (rows.length > 0) await settleObjects(deps, rows, Date.now(), Infinity).catch((error: unknown) => logMarkFailure(bucket, error));
}

function logMarkFailure(bucket: string, error: unknown): void {
  console.error(JSON.stringify({ event: "multipart-mark-dead-failed", bucket, message: error instanceof Error ? error.message : String(error) }));
}
