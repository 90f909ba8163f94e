import { decodeEnvelope, ENVELOPE_KEY } from "../crypto/envelope";
import { plaintextSize } from "../crypto/format";
import { readConfig, type Env } from "../env";
import { scheduledJobs } from "../jobs";
import { abortUpload, markDeadAfter, type CleanupDeps } from "../multipart/lifecycle";
import { UploadStore } from "../multipart/store";
import { bucketR2Prefix } from "../objects/location";
import { ObjectTagStore } from "../store/object-tags";
import { commonPrefix, DAY_MS, expiresAt, filterMatches, parseStoredRules, type LifecycleRule } from "./rules";

/**
 * The scheduled lifecycle job (README, "Lifecycle rules"), on every cron tick. For each
 * bucket with rules, fairly in turn (least recently served first):
 * 1. AbortIncompleteMultipartUpload: uploads due are aborted as AbortMultipartUpload does;
 * 2. Expiration: a pass lists the bucket's objects a page at a time, resuming after the
 *    last R2 key it finished with (lifecycle_progress), and deletes the expired ones as
 *    DeleteObject does (a multipart object's part data goes after the release grace). A
 *    finished pass starts again once LIFECYCLE_PASS_INTERVAL_MINUTES have gone by.
 * Every run stays within a fixed budget of R2 list pages, deletes and aborts, well under
 * one invocation's subrequest and CPU limits, so a bucket of millions of objects is
 * worked through over several runs.
 */
export interface LifecycleBudget {
  /** R2 list pages per run, over all buckets. */
  listPages: number;
  /** Objects per list page (R2 allows up to 1000). */
  pageSize: number;
  /** Objects deleted per run (batched: one R2 delete and one D1 lookup per page). */
  deletes: number;
  /** Of those, multipart objects (each also costs an R2 head and a D1 write to mark its part data dead). */
  multipartDeletes: number;
  /** Uploads aborted per run (each costs a few D1 and R2 calls). */
  aborts: number;
  /** Object tag sets read per run (one D1 query each), for rules with a Tag filter. */
  tagLookups: number;
}

/**
 * Per run: at most 20 list calls (up to 20,000 keys; 2,000 when size filters need each
 * object's envelope), each with a D1 progress write, an R2 delete and two D1 lookups;
 * 5000 deletes (LIFECYCLE_DELETES_PER_RUN), of which 250 multipart objects (an R2 head and
 * a D1 write each); 30 abort units (a lookup, or an abort of about five calls); a D1 write
 * for each of at most BUCKETS_PER_RUN buckets — under 900 subrequests at worst, below the
 * paid plan's 1000 per invocation.
 */
/** Buckets served per run (each costs at least a D1 write); the least recently served go first. */
const BUCKETS_PER_RUN = 100;

const NO_TAGS: ReadonlyMap<string, string> = new Map();

export const DEFAULT_BUDGET: LifecycleBudget = { listPages: 20, pageSize: 1000, deletes: 5000, multipartDeletes: 250, aborts: 30, tagLookups: 500 };

export interface LifecycleReport {
  buckets: number;
  listed: number;
  expired: number;
  aborted: number;
  /** Buckets whose pass over all objects ended in this run. */
  passesFinished: number;
  /** The budget ran out before every bucket was served. */
  budgetExhausted: boolean;
}

interface BucketRow {
  name: string;
  lifecycle: string;
  after_key: string | null;
  pass_started_at: number | null;
  last_pass_at: number | null;
}

export async function runLifecycle(env: Env, now = Date.now(), budget?: LifecycleBudget): Promise<LifecycleReport> {
  const deps: CleanupDeps = { r2: env.OBJECTS, store: new UploadStore(env.DB) };
  const config = readConfig(env);
  const passIntervalMs = config.lifecyclePassIntervalMinutes * 60 * 1000;
  const report: LifecycleReport = { buckets: 0, listed: 0, expired: 0, aborted: 0, passesFinished: 0, budgetExhausted: false };
  const left = { ...(budget ?? { ...DEFAULT_BUDGET, deletes: config.lifecycleDeletesPerRun }) };
  // Progress of buckets that lost their rules (or were deleted) is dropped.
  await env.DB.prepare("DELETE FROM lifecycle_progress WHERE bucket NOT IN (SELECT name FROM buckets WHERE lifecycle IS NOT NULL)").run();
  const { results } = await env.DB.prepare(
    `SELECT b.name, b.lifecycle, p.after_key, p.pass_started_at, p.last_pass_at
     FROM buckets b LEFT JOIN lifecycle_progress p ON p.bucket = b.name
     WHERE b.lifecycle IS NOT NULL ORDER BY COALESCE(p.updated_at, 0), b.name LIMIT ?`,
  )
    .bind(BUCKETS_PER_RUN)
    .all<BucketRow>();
  for (const row of results) {
    if (left.listPages <= 0 || left.deletes <= 0 || left.multipartDeletes <= 0) {
      report.budgetExhausted = true;
      break;
    }
    const rules = parseStoredRules(row.lifecycle).filter((r) => r.enabled);
    report.buckets++;
    report.aborted += await abortDueUploads(deps, env.DB, row.name, rules, now, left);
    await expireObjects(deps, env.DB, row, rules, now, passIntervalMs, left, report);
  }
  if (report.expired + report.aborted > 0) console.log(JSON.stringify({ event: "lifecycle", ...report }));
  return report;
}

/** Uploads initiated before the rule's cut-off: due once `initiated + days`, rounded up to midnight, has passed. */
async function abortDueUploads(deps: CleanupDeps, db: D1Database, bucket: string, rules: LifecycleRule[], now: number, left: LifecycleBudget): Promise<number> {
  let aborted = 0;
  const today = Math.floor(now / DAY_MS) * DAY_MS;
  for (const rule of rules) {
    if (rule.abortAfterDays === undefined || left.aborts <= 0) continue;
    const prefix = rule.filter.prefix;
    const { results } = await db
      .prepare(
        `SELECT upload_id FROM multipart_uploads
         WHERE bucket = ?1 AND state = 'active' AND created_at < ?2 AND substr(object_key, 1, length(?3)) = ?3
         ORDER BY created_at LIMIT ?4`,
      )
      .bind(bucket, today - rule.abortAfterDays * DAY_MS, prefix, left.aborts)
      .all<{ upload_id: string }>();
    left.aborts--; // the query itself
    for (const { upload_id } of results) {
      if (left.aborts <= 0) break;
      left.aborts--;
      if ((await abortUpload(deps, upload_id, now)) === "aborted") aborted++;
    }
  }
  return aborted;
}

async function expireObjects(
  deps: CleanupDeps,
  db: D1Database,
  row: BucketRow,
  allRules: LifecycleRule[],
  now: number,
  passIntervalMs: number,
  left: LifecycleBudget,
  report: LifecycleReport,
): Promise<void> {
  const rules = allRules.filter((r) => r.expiration !== undefined);
  let { after_key: afterKey, pass_started_at: started } = row;
  if (rules.length === 0) return saveProgress(db, row.name, null, null, row.last_pass_at, now);
  if (started === null) {
    if (row.last_pass_at !== null && now - row.last_pass_at < passIntervalMs) return saveProgress(db, row.name, null, null, row.last_pass_at, now);
    started = now;
    afterKey = null;
  }
  const root = bucketR2Prefix(row.name);
  const tagStore = new ObjectTagStore(db);
  const prefix = root + commonPrefix(rules);
  // R2 lists 1000 keys a page, but only about 100 with their metadata: read the envelopes
  // (plaintext size, Last-Modified) only when a size filter needs them. Without them an
  // object is judged by R2's upload time, which is never earlier than its Last-Modified
  // (the master-secret rewrap re-puts objects keeping Last-Modified): an object can only
  // be judged due later than AWS would, never earlier.
  const needsEnvelope = rules.some((r) => r.filter.sizeGreaterThan !== undefined || r.filter.sizeLessThan !== undefined);
  while (left.listPages > 0 && left.deletes > 0 && left.multipartDeletes > 0) {
    left.listPages--;
    const listing = await deps.r2.list({
      prefix,
      limit: Math.max(1, Math.min(left.pageSize, 1000)),
      ...(needsEnvelope ? { include: ["customMetadata"] as ("customMetadata" | "httpMetadata")[] } : {}),
      ...(afterKey !== null && afterKey >= prefix ? { startAfter: afterKey } : {}),
    });
    // Objects are judged in key order until the delete budget would be exceeded; the page
    // is finished up to the last object judged, and the next run resumes after it.
    let expired: string[] = [];
    /** Index in the page of each expired object. */
    let at: number[] = [];
    let judged = 0;
    let tagBudgetOut = false;
    for (const object of listing.objects) {
      const key = object.key.slice(root.length);
      const { size, lastModified } = describe(object);
      // Rules due for this object on everything but tags; its tag set (one D1 query, keyed
      // by this stored version) only when one of them filters on tags.
      const due = rules.filter((rule) => (expiresAt(rule, lastModified) ?? Infinity) <= now && filterMatches({ ...rule.filter, tags: [] }, key, size));
      let tags: ReadonlyMap<string, string> = NO_TAGS;
      if (due.some((rule) => rule.filter.tags.length > 0)) {
        if (left.tagLookups <= 0) {
          tagBudgetOut = true; // resume at this object next run
          break;
        }
        left.tagLookups--;
        const set = await tagStore.get(row.name, key, { r2Etag: object.etag, uploaded: object.uploaded.getTime() });
        tags = new Map(set.map((t) => [t.key, t.value]));
      }
      if (due.some((rule) => filterMatches(rule.filter, key, size, tags))) {
        if (expired.length === left.deletes) break;
        expired.push(key);
        at.push(judged);
      }
      judged++;
    }
    // A multipart object costs more (its part data is marked dead: an R2 head and a D1
    // write each): those have their own budget; the page ends before the first one over it.
    if (expired.length > 0) {
      const multipart = new Set((await deps.store.objectsAt(row.name, expired)).map((r) => r.key));
      let count = 0;
      const cut = expired.findIndex((k) => multipart.has(k) && ++count > left.multipartDeletes);
      if (cut >= 0) {
        judged = at[cut]!;
        expired = expired.slice(0, cut);
        at = at.slice(0, cut);
      }
      left.multipartDeletes -= Math.min(count, left.multipartDeletes);
    }
    report.listed += judged;
    if (expired.length > 0) {
      // Exactly as DeleteObject: the objects go at once; a multipart object's part data is
      // marked dead and released by the multipart sweep after the grace.
      await markDeadAfter(deps, row.name, expired, deps.r2.delete(expired.map((k) => root + k)));
      left.deletes -= expired.length;
      report.expired += expired.length;
    }
    const whole = judged === listing.objects.length;
    if (whole && !listing.truncated) {
      report.passesFinished++;
      return saveProgress(db, row.name, null, null, now, now);
    }
    const last = listing.objects[judged - 1];
    if (last) afterKey = last.key;
    await saveProgress(db, row.name, afterKey, started, row.last_pass_at, now);
    if (tagBudgetOut) break;
  }
  report.budgetExhausted = true;
}

/**
 * Plaintext size and S3 Last-Modified from the envelope when listed with it; else (or if it
 * does not decode: the GET refuses such an object anyway) R2's own values.
 */
function describe(object: R2Object): { size: number; lastModified: number } {
  if (!object.customMetadata) return { size: Math.max(0, plaintextSize(object.size)), lastModified: object.uploaded.getTime() };
  try {
    const envelope = decodeEnvelope(object.customMetadata?.[ENVELOPE_KEY]);
    return { size: envelope.length, lastModified: envelope.lastModified ?? object.uploaded.getTime() };
  } catch {
    return { size: Math.max(0, plaintextSize(object.size)), lastModified: object.uploaded.getTime() };
  }
}

async function saveProgress(db: D1Database, bucket: string, afterKey: string | null, started: number | null, lastPass: number | null, now: number): Promise<void> {
  await db
    .prepare(
      `INSERT INTO lifecycle_progress (bucket, after_key, pass_started_at, last_pass_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)
       ON CONFLICT (bucket) DO UPDATE SET after_key = ?2, pass_started_at = ?3, last_pass_at = ?4, updated_at = ?5`,
    )
    .bind(bucket, afterKey, started, lastPass, now)
    .run();
}

scheduledJobs.push({ name: "lifecycle", run: (env) => runLifecycle(env).then(() => undefined) });
