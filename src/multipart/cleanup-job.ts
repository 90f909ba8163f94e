import { readConfig, type Env } from "../env";
import { scheduledJobs } from "../jobs";
import { deletePrefix, PARTS_ROOT, uploadIdOf, uploadPrefix } from "../objects/parts";
import { uploadIdTime } from "./ids";
import { abortUpload, recoverStaleComplete, settleObjects, STALE_COMPLETE_MS, type CleanupDeps } from "./lifecycle";
import { UploadStore } from "./store";

/**
 * The scheduled multipart clean-up (docs/multipart.md, "Clean-up"), on every cron tick:
 * 1. retire uploads: abort those older than MULTIPART_EXPIRY_HOURS or whose bucket is
 *    gone, and settle completes that died holding their upload;
 * 2. sweep "_mpu/" a page at a time (resuming where the last tick stopped): completed
 *    objects whose manifest is no longer live are marked dead when first seen so (PutObject,
 *    CopyObject, POST overwrite without telling us) and their part data is released once
 *    dead for MULTIPART_RELEASE_GRACE_MINUTES; prefixes no D1 row owns (a crash between
 *    steps) are deleted;
 * 3. delete completion records (answers for retried Completes) older than
 *    MULTIPART_COMPLETION_RETENTION_HOURS.
 * Each tick does a bounded amount of work, so a backlog drains over several ticks.
 */
const RETIRE_PER_TICK = 100;
const SWEEP_PAGE = 200;
const SWEEP_PAGES_PER_TICK = 5;
/** An unowned prefix younger than this may belong to an upload being created. */
const ORPHAN_GRACE_MS = 60 * 60 * 1000;
const SWEEP = "parts";
/** Completion records deleted per tick at most (one D1 statement each batch). */
const EXPIRE_COMPLETIONS_PER_TICK = 1000;

export interface CleanupReport {
  aborted: number;
  settled: number;
  /** Completed objects first seen dead by this run (released on a later one, after the grace). */
  marked: number;
  released: number;
  orphans: number;
  /** Completion records past MULTIPART_COMPLETION_RETENTION_HOURS deleted (retries of those Completes are NoSuchUpload). */
  expired: number;
  sweepDone: boolean;
}

export async function runMultipartCleanup(env: Env, now = Date.now()): Promise<CleanupReport> {
  const deps: CleanupDeps = { r2: env.OBJECTS, store: new UploadStore(env.DB) };
  const config = readConfig(env);
  const expiryMs = config.multipartExpiryHours * 3600 * 1000;
  const graceMs = config.multipartReleaseGraceMinutes * 60 * 1000;
  const retentionMs = config.multipartCompletionRetentionHours * 3600 * 1000;
  const report: CleanupReport = { aborted: 0, settled: 0, marked: 0, released: 0, orphans: 0, expired: 0, sweepDone: false };

  for (const upload of await deps.store.dueForCleanup(now - expiryMs, now - STALE_COMPLETE_MS, RETIRE_PER_TICK)) {
    if (upload.state === "completing") {
      if (now - (upload.completingAt ?? 0) < STALE_COMPLETE_MS) continue; // its bucket went away mid-complete: next tick
      await recoverStaleComplete(deps, upload);
      report.settled++;
      continue;
    }
    if ((await abortUpload(deps, upload.uploadId, now)) === "aborted") report.aborted++;
  }

  let cursor = await deps.store.sweepCursor(SWEEP);
  for (let page = 0; page < SWEEP_PAGES_PER_TICK; page++) {
    const listing = await deps.r2.list({ prefix: PARTS_ROOT, delimiter: "/", limit: SWEEP_PAGE, ...(cursor ? { cursor } : {}) });
    const ids = listing.delimitedPrefixes.map((p) => uploadIdOf(p)).filter((id): id is string => id !== null);
    const known = await deps.store.lookup(ids);
    const completed = ids.map((id) => known.objects.get(id)).filter((row) => row !== undefined);
    const settled = await settleObjects(deps, completed, now, graceMs);
    report.marked += settled.marked;
    report.released += settled.released;
    for (const id of ids) {
      if (known.uploads.has(id) || known.objects.has(id)) continue;
      const created = uploadIdTime(id);
      if (created !== null && now - created < ORPHAN_GRACE_MS) continue;
      await deletePrefix(deps.r2, uploadPrefix(id));
      report.orphans++;
    }
    cursor = listing.truncated ? listing.cursor : null;
    await deps.store.saveSweepCursor(SWEEP, cursor, now);
    if (!cursor) {
      report.sweepDone = true;
      break;
    }
  }
  report.expired = await deps.store.expireCompletions(now - retentionMs, EXPIRE_COMPLETIONS_PER_TICK);

  if (report.aborted + report.settled + report.marked + report.released + report.orphans + report.expired > 0) {
    console.log(JSON.stringify({ event: "multipart-cleanup", ...report }));
  }
  return report;
}

scheduledJobs.push({ name: "multipart-cleanup", run: (env) => runMultipartCleanup(env).then(() => undefined) });
