// `npm run fuzz`: the property-based fuzz suites (test/fuzz, docs/testing.md "Fuzzing") at
// full size inside workerd. FUZZ_RUNS (cases per unit of property weight, default 2000,
// about 113,000 cases in all) and FUZZ_SEED (replay a failure) pass through to workerd via
// vitest.config.ts. Prints every property's case count and time, then the totals; fails if
// vitest fails, or if a default-size run did fewer than 100,000 cases.
import { spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const FILES = ["objects", "sigv4", "aws-chunked", "xml-bodies", "bucket-policy", "post-form", "regressions"].map((f) => `test/fuzz/${f}.test.ts`);
const MIN_TOTAL = 100_000;
const runs = process.env.FUZZ_RUNS ?? "2000";

const started = Date.now();
const child = spawn(join(ROOT, "node_modules/.bin/vitest"), ["run", "--project", "workers", ...FILES], {
  cwd: ROOT,
  env: { ...process.env, FUZZ_RUNS: runs },
  stdio: ["ignore", "pipe", "pipe"],
});

const NOISE = ["contains non-ASCII characters", "Consider encoding this string in ASCII", "identity-transform-stream.c++", "bin/workerd@", "Network connection lost."];
const results = [];
let quirks = 0;
const line = /\[fuzz\] ([^:]+): (\d+) cases in (\d+) ms( FAILED)?(?:; responses: (.*))?/;

function relay(stream, out) {
  let rest = "";
  stream.on("data", (chunk) => {
    const lines = (rest + chunk.toString()).split("\n");
    rest = lines.pop();
    for (const l of lines) {
      // workerd's own chatter about what the fuzzers do on purpose: non-ASCII header values,
      // request bodies cancelled when a request is refused mid-upload.
      if (NOISE.some((n) => l.includes(n))) {
        quirks++;
        continue;
      }
      const m = line.exec(l);
      if (m) results.push({ name: m[1], cases: Number(m[2]), ms: Number(m[3]), failed: m[4] !== undefined, responses: m[5] ?? "" });
      out.write(l + "\n");
    }
  });
  stream.on("end", () => rest && out.write(rest + "\n"));
}
relay(child.stdout, process.stdout);
relay(child.stderr, process.stderr);

child.on("close", (code) => {
  const total = results.reduce((n, r) => n + r.cases, 0);
  const seconds = ((Date.now() - started) / 1000).toFixed(0);
  console.log("\nFuzzing summary (FUZZ_RUNS=" + runs + ")");
  for (const r of results) console.log(`  ${r.name.padEnd(28)} ${String(r.cases).padStart(7)} cases ${(r.ms / 1000).toFixed(1).padStart(7)} s${r.failed ? "  FAILED" : ""}`);
  console.log(`  ${"total".padEnd(28)} ${String(total).padStart(7)} cases in ${seconds} s wall time (${results.length} properties)`);
  if (quirks > 0) console.log(`  (${quirks} lines of workerd chatter hidden: warnings about non-ASCII header values and cancelled request bodies, which the fuzzers cause on purpose)`);
  if (code === 0 && process.env.FUZZ_RUNS === undefined && total < MIN_TOTAL) {
    console.error(`fewer than ${MIN_TOTAL} cases ran`);
    process.exit(1);
  }
  process.exit(code ?? 1);
});
