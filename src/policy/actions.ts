/**
 * The S3 actions this endpoint implements, and the resource each one is evaluated
 * against. Other modules map operations to these names; the policy validator refuses
 * actions that match none of them, so a typo cannot silently grant nothing.
 */

/**
 * "bucket": resource is `arn:aws:s3:::bucket`; "object": `arn:aws:s3:::bucket/key`;
 * "service": no bucket at all (ListAllMyBuckets), so it never applies to a resource a
 * bucket policy may name — AWS answers "Action does not apply…" for it, and so do we.
 */
export type ActionLevel = "service" | "bucket" | "object";

export const S3_ACTIONS = {
  "s3:ListAllMyBuckets": "service",
  "s3:CreateBucket": "bucket",
  "s3:DeleteBucket": "bucket",
  "s3:ListBucket": "bucket",
  "s3:ListBucketVersions": "bucket",
  "s3:GetBucketLocation": "bucket",
  "s3:ListBucketMultipartUploads": "bucket",
  "s3:PutBucketPolicy": "bucket",
  "s3:GetBucketPolicy": "bucket",
  "s3:DeleteBucketPolicy": "bucket",
  "s3:GetBucketPolicyStatus": "bucket",
  "s3:PutEncryptionConfiguration": "bucket",
  "s3:GetEncryptionConfiguration": "bucket",
  "s3:PutBucketCORS": "bucket",
  "s3:GetBucketCORS": "bucket",
  "s3:PutBucketAcl": "bucket",
  "s3:PutLifecycleConfiguration": "bucket",
  "s3:GetLifecycleConfiguration": "bucket",
  "s3:PutBucketPublicAccessBlock": "bucket",
  "s3:GetBucketPublicAccessBlock": "bucket",
  "s3:PutBucketOwnershipControls": "bucket",
  "s3:GetBucketOwnershipControls": "bucket",
  "s3:PutBucketTagging": "bucket",
  "s3:GetBucketTagging": "bucket",
  "s3:PutObject": "object",
  "s3:GetObject": "object",
  "s3:PutObjectAcl": "object",
  "s3:DeleteObject": "object",
  "s3:AbortMultipartUpload": "object",
  "s3:ListMultipartUploadParts": "object",
  "s3:GetObjectVersion": "object",
  "s3:DeleteObjectVersion": "object",
  "s3:PutObjectTagging": "object",
  "s3:GetObjectTagging": "object",
  "s3:DeleteObjectTagging": "object",
  "s3:GetObjectAttributes": "object",
} as const satisfies Record<string, ActionLevel>;

export type S3Action = keyof typeof S3_ACTIONS;

/** Every implemented action, in a stable order. */
export const ALL_ACTIONS: readonly S3Action[] = Object.keys(S3_ACTIONS) as S3Action[];

export function isS3Action(name: string): name is S3Action {
  return Object.hasOwn(S3_ACTIONS, name);
}

export function actionLevel(action: S3Action): ActionLevel {
  return S3_ACTIONS[action];
}

/** `arn:aws:s3:::bucket` — the resource of bucket-level actions. */
export function bucketArn(bucket: string): string {
  return `arn:aws:s3:::${bucket}`;
}

/** `arn:aws:s3:::bucket/key` — the resource of object-level actions (key verbatim). */
export function objectArn(bucket: string, key: string): string {
  return `arn:aws:s3:::${bucket}/${key}`;
}
