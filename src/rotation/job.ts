import type { Env } from "../env";
import { makeServices, type Services } from "../services";
import { mapPool } from "../util/pool";
import { claimedMasterVersion, rewrapObject, splitR2Key, type RewrapOutcome } from "./rewrap";

/**
 * The master-secret rewrap job: passes over every object in R2, moving each to the write
 * master version (rewrap.ts) and counting where every object ends up (the census). State
 * lives in D1 (migrations/0003): a pass resumes from `after_key` after any interruption,
 * and re-running work is harmless because an object already on the target is skipped.
 * A lease keeps the cron and an operator-driven run from working one pass at once.
 */
export interface Census {
  [masterVersion: string]: { objects: number; unreadable: number };
}

export interface Pass {
  id: number;
  targetVersion: number;
  status: "running" | "completed" | "cancelled";
  afterKey: string | null;
  scanned: number;
  rewrapped: number;
  current: number;
  conflicts: number;
  failed: number;
  census: Census;
  startedBy: string;
  startedAt: number;
  updatedAt: number;
  finishedAt: number | null;
}

interface PassRow {
  id: number;
  target_version: number;
  status: Pass["status"];
  after_key: string | null;
  scanned: number;
  rewrapped: number;
  current: number;
  conflicts: number;
  failed: number;
  census: string;
  started_by: string;
  started_at: number;
  updated_at: number;
  finished_at: number | null;
}

const fromRow = (r: PassRow): Pass => ({
  id: r.id,
  targetVersion: r.target_version,
  status: r.status,
  afterKey: r.after_key,
  scanned: r.scanned,
  rewrapped: r.rewrapped,
  current: r.current,
  conflicts: r.conflicts,
  failed: r.failed,
  census: JSON.parse(r.census) as Census,
  startedBy: r.started_by,
  startedAt: r.started_at,
  updatedAt: r.updated_at,
  finishedAt: r.finished_at,
});

export interface StepBudget {
  /** Objects to visit in this step (objects already on the target cost nothing but the listing). */
  maxObjects: number;
  /** Objects to move: each costs an R2 get and an R2 put (see MAX_MOVES_PER_CALL). */
  maxMoves: number;
  /** Wall-clock budget; a step stops at the first page boundary after it. */
  maxMs: number;
}

/**
 * Moves per invocation. Workers cap the subrequests (R2 and D1 calls included) one
 * invocation may make — 1,000 on the paid plan for a long time, more today — so a step
 * does at most 400 moves (800 R2 calls) plus its listing and D1 bookkeeping.
 */
export const MAX_MOVES_PER_CALL = 400;

export interface StepResult {
  pass: Pass | null;
  /** "busy": another runner holds the lease; "idle": no pass is running. */
  outcome: "progressed" | "completed" | "busy" | "idle" | "cancelled";
  visited: number;
  resealedAccessKeys: number;
}

const LEASE_MS = 120_000;
const PAGE = 100;
const RESEAL_BATCH = 100;
/**
 * Objects moved concurrently, each an R2 get streamed into a put. Measured locally: 8 → 16
 * took 4 KiB objects from ~110 to ~185 per second; past the platform's six simultaneous
 * connections further calls just queue.
 */
const CONCURRENCY = 16;

export class RewrapJob {
  private readonly db: D1Database;
  readonly services: Services;

  constructor(env: Env) {
    this.services = makeServices(env);
    this.db = env.DB;
  }

  get target(): number {
    return this.services.keys.keyring.writeVersion;
  }

  async running(): Promise<Pass | null> {
    const row = await this.db.prepare("SELECT * FROM rewrap_passes WHERE status = 'running'").first<PassRow>();
    return row ? fromRow(row) : null;
  }

  async latest(status?: Pass["status"]): Promise<Pass | null> {
    const row = status
      ? await this.db.prepare("SELECT * FROM rewrap_passes WHERE status = ? ORDER BY id DESC LIMIT 1").bind(status).first<PassRow>()
      : await this.db.prepare("SELECT * FROM rewrap_passes ORDER BY id DESC LIMIT 1").first<PassRow>();
    return row ? fromRow(row) : null;
  }

  async get(id: number): Promise<Pass | null> {
    const row = await this.db.prepare("SELECT * FROM rewrap_passes WHERE id = ?").bind(id).first<PassRow>();
    return row ? fromRow(row) : null;
  }

  /**
   * Starts a pass towards the current write version unless one is running (that one is
   * returned). A running pass towards another version (the write version changed under
   * it) is cancelled first: its census would describe the wrong target.
   */
  async start(startedBy: string, now = Date.now()): Promise<Pass> {
    const running = await this.running();
    if (running && running.targetVersion === this.target) return running;
    if (running) await this.cancel(now);
    // The partial unique index admits one running pass; a concurrent starter's insert is a no-op.
    await this.db
      .prepare("INSERT INTO rewrap_passes (target_version, status, started_by, started_at, updated_at) VALUES (?, 'running', ?, ?, ?) ON CONFLICT DO NOTHING")
      .bind(this.target, startedBy, now, now)
      .run();
    return (await this.running())!;
  }

  async cancel(now = Date.now()): Promise<Pass | null> {
    const running = await this.running();
    if (!running) return null;
    await this.db.prepare("UPDATE rewrap_passes SET status = 'cancelled', finished_at = ?, updated_at = ?, lease_owner = NULL, lease_until = NULL WHERE id = ? AND status = 'running'").bind(now, now, running.id).run();
    return this.get(running.id);
  }

  /** Runs the running pass for at most `budget`; safe to call from any number of places. */
  async step(owner: string, budget: StepBudget): Promise<StepResult> {
    const started = Date.now();
    const running = await this.running();
    if (!running) return { pass: await this.latest(), outcome: "idle", visited: 0, resealedAccessKeys: 0 };
    if (running.targetVersion !== this.target) return { pass: await this.cancel(), outcome: "cancelled", visited: 0, resealedAccessKeys: 0 };
    if (!(await this.acquire(running.id, owner, started))) return { pass: running, outcome: "busy", visited: 0, resealedAccessKeys: 0 };

    let pass = running;
    let visited = 0;
    let moved = 0;
    const progressed = (): StepResult => ({ pass, outcome: "progressed", visited, resealedAccessKeys: 0 });
    try {
      for (;;) {
        const room = budget.maxObjects - visited;
        if (room <= 0 || moved >= budget.maxMoves || Date.now() - started >= budget.maxMs) return progressed();
        const page = await this.services.objects.r2.list({
          limit: Math.min(PAGE, room),
          include: ["customMetadata"],
          ...(pass.afterKey !== null ? { startAfter: pass.afterKey } : {}),
        });
        // Take the page up to the object that would exceed the move budget.
        let objects = page.objects;
        let moves = 0;
        const over = objects.findIndex((o) => this.needsMove(o) && ++moves > budget.maxMoves - moved);
        if (over >= 0) {
          objects = objects.slice(0, over);
          moves = budget.maxMoves - moved;
        }
        const outcomes = await mapPool(objects, CONCURRENCY, (o) => this.visit(o));
        visited += objects.length;
        moved += moves;
        const last = objects[objects.length - 1]?.key ?? pass.afterKey;
        const saved = await this.save(pass, owner, last, objects, outcomes);
        if (!saved) return { pass: await this.get(pass.id), outcome: "busy", visited, resealedAccessKeys: 0 };
        pass = saved;
        if (over >= 0) return progressed();
        if (!page.truncated) {
          // Access keys (and external KMS credentials, README "Keys rooted in your KMS") are
          // re-sealed in bounded batches; the pass completes with the last one.
          const resealed = await this.services.identities.resealSecrets(RESEAL_BATCH);
          if (resealed === RESEAL_BATCH) return { ...progressed(), resealedAccessKeys: resealed };
          if ((await this.services.keys.external.resealCredentials(this.target, RESEAL_BATCH)) === RESEAL_BATCH) return { ...progressed(), resealedAccessKeys: resealed };
          await this.db
            .prepare("UPDATE rewrap_passes SET status = 'completed', finished_at = ?, updated_at = ?, lease_owner = NULL, lease_until = NULL WHERE id = ? AND lease_owner = ?")
            .bind(Date.now(), Date.now(), pass.id, owner)
            .run();
          return { pass: await this.get(pass.id), outcome: "completed", visited, resealedAccessKeys: resealed };
        }
      }
    } finally {
      await this.db.prepare("UPDATE rewrap_passes SET lease_owner = NULL, lease_until = NULL WHERE id = ? AND lease_owner = ?").bind(pass.id, owner).run();
    }
  }

  private async acquire(id: number, owner: string, now: number): Promise<boolean> {
    const result = await this.db
      .prepare("UPDATE rewrap_passes SET lease_owner = ?, lease_until = ? WHERE id = ? AND status = 'running' AND (lease_until IS NULL OR lease_until < ? OR lease_owner = ?)")
      .bind(owner, now + LEASE_MS, id, now, owner)
      .run();
    return result.meta.changes > 0;
  }

  private async visit(object: R2Object): Promise<{ outcome: RewrapOutcome; endsOn: number | null }> {
    if (splitR2Key(object.key) === null) return { outcome: { kind: "current", masterVersion: 0 }, endsOn: null };
    const outcome = await rewrapObject({ ...this.services.objects, buckets: this.services.buckets }, object.key, object, this.target);
    switch (outcome.kind) {
      case "current":
      case "rewrapped":
        return { outcome, endsOn: this.target };
      case "failed":
        return { outcome, endsOn: outcome.masterVersion };
      case "conflict": {
        // A newer write replaced (or deleted) the object: count what is there now.
        const now = await this.services.objects.r2.head(object.key);
        return { outcome, endsOn: now ? claimedMasterVersion(now) : null };
      }
    }
  }

  /** Records a page's results and the new resume point; false if the lease was lost. */
  private async save(pass: Pass, owner: string, afterKey: string | null, objects: R2Object[], results: Array<{ outcome: RewrapOutcome; endsOn: number | null }>): Promise<Pass | null> {
    const census: Census = structuredClone(pass.census);
    const counts = { scanned: 0, rewrapped: 0, current: 0, conflicts: 0, failed: 0 };
    const failures: D1PreparedStatement[] = [];
    const now = Date.now();
    results.forEach(({ outcome, endsOn }, i) => {
      const key = objects[i]!.key;
      if (splitR2Key(key) === null) return; // internal data (multipart parts): not an object
      counts.scanned++;
      if (outcome.kind === "rewrapped") counts.rewrapped++;
      else if (outcome.kind === "current") counts.current++;
      else if (outcome.kind === "conflict") counts.conflicts++;
      else counts.failed++;
      const version = endsOn === null ? "unknown" : String(endsOn);
      if (outcome.kind === "conflict" && endsOn === null) return; // deleted meanwhile
      const entry = (census[version] ??= { objects: 0, unreadable: 0 });
      entry.objects++;
      if (outcome.kind === "failed") {
        if (!outcome.blocking) entry.unreadable++;
        failures.push(
          this.db
            .prepare("INSERT OR REPLACE INTO rewrap_failures (pass_id, r2_key, master_version, reason, detail, blocking, at) VALUES (?, ?, ?, ?, ?, ?, ?)")
            .bind(pass.id, key, outcome.masterVersion, outcome.reason, outcome.detail, outcome.blocking ? 1 : 0, now),
        );
      }
    });
    const [update] = await this.db.batch([
      this.db
        .prepare(
          `UPDATE rewrap_passes SET after_key = ?, scanned = scanned + ?, rewrapped = rewrapped + ?, current = current + ?, conflicts = conflicts + ?,
             failed = failed + ?, census = ?, updated_at = ?, lease_until = ? WHERE id = ? AND lease_owner = ? AND status = 'running'`,
        )
        .bind(afterKey, counts.scanned, counts.rewrapped, counts.current, counts.conflicts, counts.failed, JSON.stringify(census), now, now + LEASE_MS, pass.id, owner),
      ...failures,
    ]);
    if (!update || update.meta.changes === 0) return null;
    return this.get(pass.id);
  }

  private needsMove(object: R2Object): boolean {
    return splitR2Key(object.key) !== null && claimedMasterVersion(object) !== this.target;
  }

  async failures(passId: number, afterKey: string | null, limit: number): Promise<Array<{ r2Key: string; masterVersion: number | null; reason: string; detail: string; blocking: boolean }>> {
    const { results } = await this.db
      .prepare("SELECT * FROM rewrap_failures WHERE pass_id = ? AND r2_key > ? ORDER BY r2_key LIMIT ?")
      .bind(passId, afterKey ?? "", limit)
      .all<{ r2_key: string; master_version: number | null; reason: string; detail: string; blocking: number }>();
    return results.map((r) => ({ r2Key: r.r2_key, masterVersion: r.master_version, reason: r.reason, detail: r.detail, blocking: r.blocking === 1 }));
  }
}
