import { ALL_ACTIONS, S3_ACTIONS } from "../../src/policy";

export const BENCH_BUCKET = "bench-bucket";
export const BENCH_TENANT = "domainiddomainiddomainiddoma0001";

/** 20 statements mixing every costly feature: wildcards, NotX, variables, IP, dates, set operators. */
export function twentyStatementPolicy(): string {
  const statements: Record<string, unknown>[] = [];
  const objectActions = ALL_ACTIONS.filter((a) => S3_ACTIONS[a] === "object");
  for (let i = 0; i < 20; i++) {
    statements.push({
      Sid: `S${i}`,
      Effect: i % 4 === 3 ? "Deny" : "Allow",
      // NotPrincipal only in Deny statements: with Allow AWS refuses the policy (MalformedPolicy).
      ...(i % 8 === 3 ? { NotPrincipal: { AWS: `arn:aws:iam::${BENCH_TENANT}:user/admin-${i}` } } : { Principal: { AWS: [`arn:aws:iam::${BENCH_TENANT}:user/u${i}*`, "*"] } }),
      ...(i % 3 === 0 ? { NotAction: ["s3:DeleteObject*", "s3:PutBucket*"] } : { Action: [objectActions[i % objectActions.length], "s3:Get*"] }),
      Resource: [`arn:aws:s3:::${BENCH_BUCKET}/team-${i}/*`, `arn:aws:s3:::${BENCH_BUCKET}/home/\${aws:username}/*`, `arn:aws:s3:::${BENCH_BUCKET}/*/shared/*.dat`],
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

