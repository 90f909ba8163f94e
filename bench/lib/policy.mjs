// Times bucket-policy evaluation by bundling the evaluator (TypeScript) with esbuild.
// bench/run.mjs imports policyEvaluationMicros(); `node bench/lib/policy.mjs` prints it alone.
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

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const r = await policyEvaluationMicros();
  console.log(`policy evaluate: ${r.microsPerEvaluation.toFixed(2)} µs mean over ${Object.values(r.decisions).reduce((a, b) => a + b, 0)} evaluations of a ${r.statements}-statement policy`, r.decisions);
}
