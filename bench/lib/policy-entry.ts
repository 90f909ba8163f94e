// Bundled by bench/lib/policy.mjs with esbuild: times the worker's policy evaluator (pure
// TypeScript, the same code workerd runs) on a 20-statement policy.
import { buildConditionContext, evaluate, objectArn, parsePolicy, type PolicyRequest } from "../../src/policy";
import { BENCH_BUCKET, BENCH_TENANT, twentyStatementPolicy } from "../../test/support/policy-fixture";

export function measure(iterations = 100_000): { microsPerEvaluation: number; statements: number; decisions: Record<string, number> } {
  const policy = parsePolicy(twentyStatementPolicy(), BENCH_BUCKET);
  const principal = { tenantId: BENCH_TENANT, userName: "u7-carol", userId: "AIDAC", isTenantAdmin: false };
  const contexts = [{ "x-amz-server-side-encryption": "aws:kms" }, { "x-amz-server-side-encryption": "AES256" }, {}].map((headers) =>
    buildConditionContext({ headers: { ...headers, "user-agent": "bench" }, sourceIp: "10.20.30.40", secureTransport: true, principal, requestObjectTags: { project: "x" } }),
  );
  const requests: PolicyRequest[] = ["team-7/a.txt", "home/u7-carol/notes", "x/shared/y.dat", "nowhere"].flatMap((key) =>
    ["s3:GetObject", "s3:PutObject", "s3:DeleteObjectVersion"].flatMap((action) => contexts.map((context) => ({ action, resource: objectArn(BENCH_BUCKET, key), principal, context }))),
  );
  const decisions: Record<string, number> = {};
  for (let i = 0; i < 2000; i++) evaluate(policy, requests[i % requests.length]!);
  const t0 = performance.now();
  for (let i = 0; i < iterations; i++) {
    const d = evaluate(policy, requests[i % requests.length]!);
    decisions[d] = (decisions[d] ?? 0) + 1;
  }
  const microsPerEvaluation = ((performance.now() - t0) * 1000) / iterations;
  // The figure must time real outcomes, not a trivial early exit.
  if (Object.keys(decisions).length < 2) throw new Error(`policy bench: only ${JSON.stringify(decisions)} decisions`);
  return { microsPerEvaluation, statements: policy.statements.length, decisions };
}
