// Times bucket-policy evaluation by bundling the evaluator (TypeScript) with esbuild.
import { build } from "esbuild";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

export async function policyEvaluationMicros() {
  const dir = mkdtempSync(join(tmpdir(), "policy-bench-"));
  try {
    const outfile = join(dir, "policy.mjs");
    await build({ entryPoints: [fileURLToPath(new URL("./policy-entry.ts", import.meta.url))], bundle: true, format: "esm", platform: "neutral", outfile, logLevel: "error" });
    const { measure } = await import(pathToFileURL(outfile).href);
    return measure();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
