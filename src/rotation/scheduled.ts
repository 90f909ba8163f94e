import type { Env } from "../env";
import { scheduledJobs } from "../jobs";
import { MAX_MOVES_PER_CALL, RewrapJob } from "./job";

/** Per cron tick (every 15 minutes): bounded so the tick stays well inside Workers limits. */
export const CRON_BUDGET = { maxObjects: 5000, maxMoves: MAX_MOVES_PER_CALL, maxMs: 20_000 };

/**
 * Moves objects to the write master version in the background. A pass starts on its own
 * when no pass has targeted the current write version yet (i.e. after a new master secret
 * was deployed); one an operator cancelled is left cancelled.
 */
export async function runRewrapTick(env: Env, owner: string): Promise<void> {
  const job = new RewrapJob(env);
  if (!(await job.running())) {
    const last = await job.latest();
    if (last && last.targetVersion === job.target) return;
    await job.start("cron");
  }
  const result = await job.step(owner, CRON_BUDGET);
  if (result.visited > 0 || result.outcome === "completed") {
    const p = result.pass;
    console.log(JSON.stringify({ event: "master-rewrap", outcome: result.outcome, visited: result.visited, pass: p?.id, target: p?.targetVersion, rewrapped: p?.rewrapped, failed: p?.failed }));
  }
}

scheduledJobs.push({
  name: "master-rewrap",
  run: (env: Env) => runRewrapTick(env, `cron:${crypto.randomUUID()}`),
});
