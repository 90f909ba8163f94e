import type { ActionLevel } from "./actions";

/**
 * S3 actions AWS defines that this endpoint does not implement (ACLs, tagging, object
 * lock, replication, …). Policies written for AWS name them routinely; they validate
 * (they are not typos) but never match a request here. Unknown names stay MalformedPolicy.
 * Source: the "Actions defined by Amazon S3" table of the AWS Service Authorization Reference.
 */
const OBJECT = [
  "BypassGovernanceRetention", "DeleteObjectVersionTagging", "GetObjectAcl",
  "GetObjectLegalHold", "GetObjectRetention", "GetObjectTorrent", "GetObjectVersionAcl",
  "GetObjectVersionAttributes", "GetObjectVersionForReplication", "GetObjectVersionTagging", "GetObjectVersionTorrent",
  "InitiateReplication", "ObjectOwnerOverrideToBucketOwner", "PutObjectLegalHold", "PutObjectRetention",
  "PutObjectVersionAcl", "PutObjectVersionTagging", "ReplicateDelete", "ReplicateObject", "ReplicateTags",
  "RestoreObject",
];
const BUCKET = [
  "DeleteBucketOwnershipControls", "DeleteBucketWebsite", "GetAccelerateConfiguration", "GetAnalyticsConfiguration",
  "GetBucketAcl", "GetBucketLogging", "GetBucketNotification", "GetBucketObjectLockConfiguration", "GetBucketRequestPayment", "GetBucketVersioning", "GetBucketWebsite",
  "GetIntelligentTieringConfiguration", "GetInventoryConfiguration", "GetMetricsConfiguration",
  "GetReplicationConfiguration", "PutAccelerateConfiguration", "PutAnalyticsConfiguration", "PutBucketLogging",
  "PutBucketNotification", "PutBucketObjectLockConfiguration", "PutBucketRequestPayment", "PutBucketVersioning", "PutBucketWebsite", "PutIntelligentTieringConfiguration",
  "PutInventoryConfiguration", "PutMetricsConfiguration", "PutReplicationConfiguration",
];

export const KNOWN_UNIMPLEMENTED_ACTIONS: ReadonlyMap<string, ActionLevel> = new Map<string, ActionLevel>([
  ...OBJECT.map((a) => [`s3:${a}`, "object"] as const),
  ...BUCKET.map((a) => [`s3:${a}`, "bucket"] as const),
]);
