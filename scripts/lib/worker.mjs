// Starts the worker on a real socket with its own local R2/D1 state (e2e tests, benchmarks).
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { applyMigrations, DEFAULT_IDENTITIES, ROOT, seedIdentities } from "./local.mjs";

export const TEST_ADMIN_TOKEN = "e2e-admin-token";
// Test-only master secrets; never used outside local test runs.
export const TEST_MASTER_KEYS = {
  MASTER_KEY_V1: Buffer.from("e2e-master-key-version-one-32byt").toString("base64"),
};

/**
 * Starts the worker with wrangler's unstable_startWorker on 127.0.0.1 (random port), with
 * a throwaway persistence directory, migrations applied and the local identities seeded.
 * `persist` reuses an existing state directory instead (kept on dispose), so a test can
 * restart the worker on the same R2/D1 with other vars; a var set to undefined is removed.
 * `inspectorPort` opens the DevTools inspector there (bench/profile.mjs takes CPU profiles).
 * `secure` serves HTTPS with wrangler's self-signed local certificate (clients that refuse
 * SSE-C over plain HTTP, such as rclone, need it).
 */
export async function startTestWorker({ vars = {}, config = `${ROOT}/wrangler.toml`, persist: reuse, inspectorPort, secure = false } = {}) {
  process.env.CLOUDFLARE_CF_FETCH_ENABLED = "false";
  process.env.WRANGLER_SEND_METRICS = "false";
  const { unstable_startWorker } = await import("wrangler");
  const dir = mkdtempSync(join(tmpdir(), "sse-gw-e2e-"));
  const persist = reuse ?? join(dir, "state");
  const envFile = join(dir, "test.vars");
  // The upload page (/_upload) is on in tests, acting as the local tenant-A admin; LOCAL_DEV
  // lets it run without UPLOAD_PAGE_TOKEN, as under `npm run dev`.
  const allVars = { ...TEST_MASTER_KEYS, ADMIN_TOKEN: TEST_ADMIN_TOKEN, REQUIRE_TLS_FOR_SSE: "false", LOCAL_DEV: "true", UPLOAD_PAGE_ACCESS_KEY_ID: "LOCALADMINA", ...vars };
  writeFileSync(envFile, Object.entries(allVars).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${v}`).join("\n") + "\n");
  await applyMigrations(persist);
  const worker = await unstable_startWorker({
    config,
    envFiles: [envFile],
    dev: { server: { hostname: "127.0.0.1", port: 0, secure }, inspector: inspectorPort ? { hostname: "127.0.0.1", port: inspectorPort } : false, persist, watch: false, logLevel: "warn" },
  });
  await worker.ready;
  const url = await worker.url;
  const endpoint = url.origin;
  if (secure) {
    // The local certificate is self-signed: trusted for the seeding calls only.
    const before = process.env.NODE_TLS_REJECT_UNAUTHORIZED;
    process.env.NODE_TLS_REJECT_UNAUTHORIZED = "0";
    try {
      await seedIdentities(endpoint, TEST_ADMIN_TOKEN, DEFAULT_IDENTITIES);
    } finally {
      if (before === undefined) delete process.env.NODE_TLS_REJECT_UNAUTHORIZED;
      else process.env.NODE_TLS_REJECT_UNAUTHORIZED = before;
    }
  } else {
    await seedIdentities(endpoint, TEST_ADMIN_TOKEN, DEFAULT_IDENTITIES);
  }
  return {
    endpoint,
    adminToken: TEST_ADMIN_TOKEN,
    persist,
    identities: DEFAULT_IDENTITIES,
    async dispose() {
      await worker.dispose();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
