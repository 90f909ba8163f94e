import type { Env } from "./env";

/** A background job run by the cron trigger (wrangler.toml [triggers]). */
export interface ScheduledJob {
  name: string;
  run(env: Env, controller: ScheduledController): Promise<void>;
}

/** Jobs run in order on every tick; one failing job does not stop the others. */
export const scheduledJobs: ScheduledJob[] = [];

export async function runScheduledJobs(env: Env, controller: ScheduledController): Promise<void> {
  for (const job of scheduledJobs) {
    try {
      await job.run(env, controller);
    } catch (error) {
      console.error(JSON.stringify({ event: "scheduled-job-failed", job: job.name, message: error instanceof Error ? error.message : String(error) }));
    }
  }
}
