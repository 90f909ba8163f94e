import type { TestProject } from "vitest/node";
// @ts-expect-error plain ESM helper shared with scripts/
import { startTestWorker } from "../../scripts/lib/worker.mjs";

declare module "vitest" {
  export interface ProvidedContext {
    endpoint: string;
    adminToken: string;
    persist: string;
  }
}

/** One worker for the whole e2e run, on a real socket, with fresh local R2 and D1. */
export default async function setup(project: TestProject) {
  const worker = await startTestWorker();
  project.provide("endpoint", worker.endpoint);
  project.provide("adminToken", worker.adminToken);
  project.provide("persist", worker.persist);
  return async () => {
    await worker.dispose();
  };
}
