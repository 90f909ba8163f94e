/**
 * The bucket policy from Huawei OBS's SSE-KMS page ("deny unencrypted uploads"), for
 * `bucket`: the statement the product must enforce verbatim (README, issue 5).
 * test/unit/policy.test.ts keeps the page's own text, layout included.
 */
export function obsDenyUnencryptedPolicy(bucket: string): string {
  return JSON.stringify({
    Version: "2008-10-17",
    Id: "PutObjPolicy",
    Statement: [
      {
        Sid: "DenyUnEncryptedObjectUploads",
        Effect: "Deny",
        Principal: "*",
        Action: "s3:PutObject",
        Resource: `arn:aws:s3:::${bucket}/*`,
        Condition: { StringNotEquals: { "s3:x-amz-server-side-encryption": "aws:kms" } },
      },
    ],
  });
}
