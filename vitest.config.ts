import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { defineConfig, type Plugin } from "vitest/config";

/**
 * @cloud-copilot/iam-* (test/unit/policy-differential.test.ts) ship source-map comments
 * whose sources are not in the package; vite would print one warning per module. Loading
 * them without the comment keeps the test output readable.
 */
const withoutDanglingSourceMaps: Plugin = {
  name: "without-dangling-source-maps",
  enforce: "pre",
  load(id) {
    if (!/\/node_modules\/@cloud-copilot\/[^?]+\.js$/.test(id)) return null;
    return readFileSync(id, "utf8").replace(/\/\/# sourceMappingURL=\S+\s*$/, "");
  },
};

// Two projects: "workers" runs unit + integration tests inside workerd with local R2/D1;
// "e2e" runs in Node and drives the worker on a real socket with real S3 clients.
export default defineConfig({
  test: {
    // Vitest runs one file at a time on a 2-core machine (its default is cores − 1). Much of
    // an e2e file's time is spent waiting for other processes (workerd, aws-cli, boto3,
    // chromium), and each workers-project file starts its own workerd: three files at once
    // keep both cores busy. Measured on 2 cores: 78 files one at a time 437 s; 90 files two
    // at a time 343 s, three at a time 309 s (CPU ≈ 545 s either way: ≈ 275 s is the floor).
    maxWorkers: Math.max(3, availableParallelism() - 1),
    projects: [
      {
        plugins: [
          withoutDanglingSourceMaps,
          cloudflareTest(async () => ({
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: {
              bindings: {
                TEST_MIGRATIONS: await readD1Migrations("./migrations"),
                // Fixed test-only master secrets (never used outside tests).
                MASTER_KEY_V1: "dGVzdC1tYXN0ZXIta2V5LXZlcnNpb24tb25lLTMyYnk=",
                ADMIN_TOKEN: "test-admin-token",
                REQUIRE_TLS_FOR_SSE_KMS: "false",
                // Cases per fuzz property (test/fuzz; `npm run fuzz` raises it) and a seed to replay a failure.
                FUZZ_RUNS: process.env.FUZZ_RUNS ?? "",
                FUZZ_SEED: process.env.FUZZ_SEED ?? "",
                // Mutations of the tamper campaign (test/fuzz/tamper-campaign.test.ts; `npm run tamper`).
                TAMPER_RUNS: process.env.TAMPER_RUNS ?? "",
                // Model-based test (test/model; `npm run model`): runs, commands per run, seed to replay.
                MODEL_RUNS: process.env.MODEL_RUNS ?? "",
                MODEL_COMMANDS: process.env.MODEL_COMMANDS ?? "",
                MODEL_SEED: process.env.MODEL_SEED ?? "",
                MODEL_EXCLUDE: process.env.MODEL_EXCLUDE ?? "",
                MODEL_MIN_COMMANDS: process.env.MODEL_MIN_COMMANDS ?? "",
              },
            },
          })),
        ],
        test: {
          name: "workers",
          include: ["test/unit/**/*.test.ts", "test/integration/**/*.test.ts", "test/fuzz/**/*.test.ts", "test/model/**/*.test.ts"],
          setupFiles: ["./test/support/apply-migrations.ts"],
        },
      },
      {
        test: {
          name: "e2e",
          environment: "node",
          include: ["test/e2e/**/*.test.ts"],
          exclude: ["test/e2e/**/*.soak.test.ts"],
          globalSetup: ["./test/e2e/global-setup.ts"],
          testTimeout: 300_000,
          hookTimeout: 300_000,
          fileParallelism: true,
        },
      },
      {
        // Long end-to-end runs kept out of `npm test` (its budget is 6 minutes on 2 cores):
        // 64 concurrent clients, and a 300 MB upload in Chromium. `npm run test:soak`; CI
        // runs them after npm test.
        test: {
          name: "soak",
          environment: "node",
          include: ["test/e2e/**/*.soak.test.ts"],
          globalSetup: ["./test/e2e/global-setup.ts"],
          testTimeout: 300_000,
          hookTimeout: 300_000,
          fileParallelism: true,
        },
      },
    ],
  },
});
