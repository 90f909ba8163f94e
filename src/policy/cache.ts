/**
 * Isolate-level cache of compiled policies, so a hot bucket parses its policy once per
 * isolate rather than once per request. D1 stays the source of truth: the caller passes
 * the policy text it just read (or had cached with a short TTL), and an entry is reused
 * only while that text is byte-identical — any change reparses. Comparing the text
 * itself (≤ 20 KiB) is exact and cheaper than hashing it.
 */
import type { CompiledPolicy } from "./compiled";
import { parsePolicy } from "./parse";

interface Entry {
  readonly text: string;
  readonly version: string | number | undefined;
  readonly policy: CompiledPolicy;
}

export const MAX_CACHED_POLICIES = 256;

/** Map iteration order is insertion order: re-inserting on hit makes it an LRU. */
const cache = new Map<string, Entry>();

/**
 * The compiled policy for a bucket, or null when it has none. `version` (e.g. the row's
 * updated-at) is an extra guard: a different version reparses even if the text matches.
 * Throws MalformedPolicy if a stored policy no longer validates.
 */
export function getCompiledPolicy(
  bucket: string,
  policyText: string | null | undefined,
  version?: string | number,
): CompiledPolicy | null {
  if (policyText === null || policyText === undefined || policyText === "") {
    cache.delete(bucket);
    return null;
  }
  const hit = cache.get(bucket);
  if (hit && hit.text === policyText && hit.version === version) {
    cache.delete(bucket);
    cache.set(bucket, hit);
    return hit.policy;
  }
  const policy = parsePolicy(policyText, bucket);
  cache.delete(bucket);
  cache.set(bucket, { text: policyText, version, policy });
  while (cache.size > MAX_CACHED_POLICIES) cache.delete(cache.keys().next().value as string);
  return policy;
}

/** Drop a bucket's entry (e.g. after DeleteBucketPolicy or DeleteBucket). */
export function invalidatePolicy(bucket: string): void {
  cache.delete(bucket);
}

/** For tests and diagnostics. */
export function policyCacheSize(): number {
  return cache.size;
}
