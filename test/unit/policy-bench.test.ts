import { expect, it } from "vitest";
import { ALL_ACTIONS, buildConditionContext, evaluate, objectArn, parsePolicy, S3_ACTIONS, type PolicyRequest } from "../../src/policy";

const BUCKET = "bench-bucket";
const T = "domainiddomainiddomainiddoma0001";

/** 20 statements mixing every costly feature: wildcards, NotX, variables, IP, dates, set operators. */
function policyText(): string {
  const statements: Record<string, unknown>[] = [];
  const objectActions = ALL_ACTIONS.filter((a) => S3_ACTIONS[a] === "object");
  for (let i = 0; i < 20; i++) {
    statements.push({
      Sid: `S${i}`,
      Effect: i % 4 === 3 ? "Deny" : "Allow",
      ...(i % 5 === 0 ? { NotPrincipal: { AWS: `arn:aws:iam::${T}:user/admin-${i}` } } : { Principal: { AWS: [`arn:aws:iam::${T}:user/u${i}*`, "*"] } }),
      ...(i % 3 === 0 ? { NotAction: ["s3:DeleteObject*", "s3:PutBucket*"] } : { Action: [objectActions[i % objectActions.length], "s3:Get*"] }),
      Resource: [`arn:aws:s3:::${BUCKET}/team-${i}/*`, `arn:aws:s3:::${BUCKET}/home/\${aws:username}/*`, `arn:aws:s3:::${BUCKET}/*/shared/*.dat`],
      Condition: {
        IpAddress: { "aws:SourceIp": ["10.0.0.0/8", "192.168.0.0/16", "2001:db8::/32"] },
        StringNotEquals: { "s3:x-amz-server-side-encryption": ["aws:kms", "AES256"] },
        DateLessThan: { "aws:CurrentTime": "2100-01-01T00:00:00Z" },
        "ForAllValues:StringLike": { "s3:RequestObjectTagKeys": ["proj*", "env"] },
        BoolIfExists: { "aws:SecureTransport": "true" },
      },
    });
  }
  return JSON.stringify({ Version: "2012-10-17", Statement: statements });
}

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
