import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
// @ts-expect-error plain ESM helper shared with scripts/
import { startTestWorker } from "../../scripts/lib/worker.mjs";
import { detectPrograms, skipSummary } from "./support/programs";

declare module "vitest" {
  export interface ProvidedContext {
    endpoint: string;
    adminToken: string;
    persist: string;
  }
}

/**
 * One worker for the whole e2e run, on a real socket, with fresh local R2 and D1; the
 * external programs found once (support/programs.ts), and at the end one line naming
 * every program whose absence made tests skip.
 */
export default async function setup(project: TestProject) {
  const logDir = mkdtempSync(join(tmpdir(), "sse-gw-e2e-skips-"));
  const skipLog = join(logDir, "skipped.jsonl");
  writeFileSync(skipLog, "");
  project.provide("programs", detectPrograms());
  project.provide("skipLog", skipLog);
  const worker = await startTestWorker();
  project.provide("endpoint", worker.endpoint);
  project.provide("adminToken", worker.adminToken);
  project.provide("persist", worker.persist);
  return async () => {
    await worker.dispose();
    const summary = skipSummary(readFileSync(skipLog, "utf8"));
    if (summary) console.warn(`\n${summary}\n`);
    rmSync(logDir, { recursive: true, force: true });
  };
}
