import { getCompiledPolicy, isPublic } from "../policy";
import type { Bucket } from "../store/buckets";

/**
 * S3 Block Public Access on a bucket (README, "Block Public Access"): the four settings
 * with AWS's names, stored as this JSON in the bucket row (NULL: no configuration).
 */
export interface PublicAccessBlock {
  BlockPublicAcls: boolean;
  IgnorePublicAcls: boolean;
  BlockPublicPolicy: boolean;
  RestrictPublicBuckets: boolean;
}

export const PUBLIC_ACCESS_BLOCK_FIELDS = ["BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"] as const;

/** The stored configuration; a row that does not parse counts as everything blocked. */
export function publicAccessBlockOf(bucket: Bucket): PublicAccessBlock | null {
  if (bucket.publicAccessBlock === null) return null;
  try {
    const parsed = JSON.parse(bucket.publicAccessBlock) as Partial<Record<keyof PublicAccessBlock, unknown>>;
    return Object.fromEntries(PUBLIC_ACCESS_BLOCK_FIELDS.map((f) => [f, parsed[f] !== false])) as unknown as PublicAccessBlock;
  } catch {
    return { BlockPublicAcls: true, IgnorePublicAcls: true, BlockPublicPolicy: true, RestrictPublicBuckets: true };
  }
}

/**
 * RestrictPublicBuckets in force: the bucket has a public policy and the setting is on. AWS
 * then lets only the owner's principals in — "public and cross-account access within any
 * public bucket policy, including non-public delegation to specific accounts, is blocked" —
 * so another tenant or an anonymous caller gets nothing from any Allow of that policy.
 */
export function publicPolicyRestricted(bucket: Bucket): boolean {
  if (bucket.policy === null) return false;
  if (!publicAccessBlockOf(bucket)?.RestrictPublicBuckets) return false;
  return isPublic(getCompiledPolicy(bucket.name, bucket.policy));
}
