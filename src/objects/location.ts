/**
 * Where S3 objects live in the one R2 bucket: "<bucket>/<key>". Bucket names cannot start
 * with "_", so internal data (multipart parts under "_mpu/") never collides with them.
 */
export const R2_KEY_LIMIT = 1024;

export function objectR2Key(bucket: string, key: string): string {
  return `${bucket}/${key}`;
}

export function bucketR2Prefix(bucket: string): string {
  return `${bucket}/`;
}

/** S3 allows 1024-byte keys; R2 keys carry the bucket prefix, so ours are that much shorter. */
export function maxKeyBytes(bucket: string): number {
  return R2_KEY_LIMIT - bucket.length - 1;
}
