import { expect, it } from "vitest";
import { buildConditionContext, evaluate, objectArn, parsePolicy, type PolicyRequest } from "../../src/policy";
import { BENCH_BUCKET, BENCH_TENANT, twentyStatementPolicy } from "../support/policy-fixture";

const BUCKET = BENCH_BUCKET;
const T = BENCH_TENANT;
const policyText = twentyStatementPolicy;

it("evaluates a 20-statement policy in well under 1 ms", () => {
  const policy = parsePolicy(policyText(), BUCKET);
  expect(policy.statements).toHaveLength(20);
  const principal = { tenantId: T, userName: "u7-carol", userId: "AIDAC", isTenantAdmin: false };
  const contexts = [{ "x-amz-server-side-encryption": "aws:kms" }, { "x-amz-server-side-encryption": "aws:kms-dsse" }, {}].map((headers) =>
    buildConditionContext({
      headers: { ...headers, "user-agent": "bench" },
      sourceIp: "10.20.30.40",
      secureTransport: true,
      principal,
      requestObjectTags: { project: "x" },
    }),
  );
  // Keys that reach deep into the statements (resources and conditions are evaluated).
  const requests: PolicyRequest[] = ["team-7/a.txt", "home/u7-carol/notes", "x/shared/y.dat", "nowhere"].flatMap((key) =>
    ["s3:GetObject", "s3:PutObject", "s3:DeleteObjectVersion"].flatMap((action) =>
      contexts.map((context) => ({ action, resource: objectArn(BUCKET, key), principal, context })),
    ),
  );
  const decisions = new Map<string, number>();
  for (let i = 0; i < 1000; i++) evaluate(policy, requests[i % requests.length] as PolicyRequest); // warm-up
  const N = 10_000;
  const t0 = performance.now();
  for (let i = 0; i < N; i++) {
    const d = evaluate(policy, requests[i % requests.length] as PolicyRequest);
    decisions.set(d, (decisions.get(d) ?? 0) + 1);
  }
  const meanUs = ((performance.now() - t0) * 1000) / N;
  console.log(`policy evaluate: ${meanUs.toFixed(2)} µs mean over ${N} evaluations of a 20-statement policy`, Object.fromEntries(decisions));
  // The benchmark must exercise real outcomes, not a trivial early exit.
  expect(decisions.size).toBeGreaterThan(1);
  expect(meanUs).toBeLessThan(1000);
});
