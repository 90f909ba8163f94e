import { createApp } from "./app";
import type { Env } from "./env";

const app = createApp();

export default {
  fetch: app.fetch,
  async scheduled(_controller: ScheduledController, _env: Env, _ctx: ExecutionContext): Promise<void> {
    // Background jobs (multipart expiry, rewrap) register here as they land.
  },
} satisfies ExportedHandler<Env>;
