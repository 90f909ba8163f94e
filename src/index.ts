import { createApp } from "./app";
import type { Env } from "./env";
import { runScheduledJobs } from "./jobs";
import "./kms/scheduled";
import "./lifecycle/job";
import "./multipart/cleanup-job";
import "./rotation/scheduled";

const app = createApp();

export default {
  fetch: app.fetch,
  async scheduled(controller: ScheduledController, env: Env, ctx: ExecutionContext): Promise<void> {
    ctx.waitUntil(runScheduledJobs(env, controller));
  },
} satisfies ExportedHandler<Env>;
