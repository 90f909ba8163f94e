import type { Env } from "../env";
import { scheduledJobs } from "../jobs";
import { KeyLifecycle } from "./lifecycle";
import { forgetKey } from "./service";

/** Keys handled per tick; the cron runs every 15 minutes, so a backlog drains quickly. */
const BATCH = 100;

export interface LifecycleRun {
  destroyed: string[];
  rotated: string[];
}

/**
 * The key lifecycle tick: destroys keys whose deletion window has ended (crypto-shredding)
 * and rotates keys whose automatic rotation is due. `now` is the cron's scheduled time.
 */
export async function runKeyLifecycle(db: D1Database, now: number): Promise<LifecycleRun> {
  const lifecycle = new KeyLifecycle(db);
  const destroyed: string[] = [];
  for (const id of await lifecycle.dueForDestruction(now, BATCH)) {
    if (await lifecycle.destroy(id, now)) destroyed.push(id);
    forgetKey(id);
  }
  const rotated: string[] = [];
  for (const id of await lifecycle.dueForRotation(now, BATCH)) {
    if ((await lifecycle.rotate(id, "AUTOMATIC", now)) !== null) rotated.push(id);
    forgetKey(id);
  }
  if (destroyed.length > 0 || rotated.length > 0) {
    // Key ids are not secret; operators need this trail for audits.
    console.log(JSON.stringify({ event: "kms-key-lifecycle", destroyed, rotated }));
  }
  return { destroyed, rotated };
}

scheduledJobs.push({
  name: "kms-key-lifecycle",
  // The cron's scheduled time, not the wall clock: a delayed tick still acts for its slot.
  run: async (env: Env, controller: ScheduledController) => {
    await runKeyLifecycle(env.DB, controller.scheduledTime);
  },
});
