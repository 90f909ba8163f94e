/**
 * Bucket lifecycle rules (README, "Lifecycle rules"): which objects and uploads a rule
 * covers and when they are due. Pure; the S3 handler parses and validates the XML
 * (src/s3/handlers/lifecycle.ts) and the scheduled job acts on it (./job.ts).
 */

export const DAY_MS = 24 * 3600 * 1000;

export interface TagFilter {
  Key: string;
  Value: string;
}

export interface RuleFilter {
  prefix: string;
  tags: TagFilter[];
  sizeGreaterThan?: number;
  sizeLessThan?: number;
}

/** One stored rule: what it does, and `xml`, the rule as GetBucketLifecycleConfiguration answers it. */
export interface LifecycleRule {
  id: string;
  enabled: boolean;
  filter: RuleFilter;
  expiration?: { days: number } | { date: number };
  abortAfterDays?: number;
  xml: Record<string, unknown>;
}

/** Parsed rules by their stored text: GET/HEAD of a bucket with rules consult them on every request. */
const parsed = new Map<string, LifecycleRule[]>();

export function parseStoredRules(text: string | null): LifecycleRule[] {
  if (text === null) return [];
  const hit = parsed.get(text);
  if (hit) return hit;
  let rules: LifecycleRule[];
  try {
    rules = JSON.parse(text) as LifecycleRule[];
  } catch {
    rules = [];
  }
  if (parsed.size >= 100) parsed.clear();
  parsed.set(text, rules);
  return rules;
}

/**
 * Does the rule's filter select this object? `tags` is the object's tag set (the job reads
 * it only when a rule filters on tags); every tag of the filter must be on the object.
 */
export function filterMatches(filter: RuleFilter, key: string, size: number, tags: ReadonlyMap<string, string> = new Map()): boolean {
  if (!key.startsWith(filter.prefix)) return false;
  if (filter.sizeGreaterThan !== undefined && !(size > filter.sizeGreaterThan)) return false;
  if (filter.sizeLessThan !== undefined && !(size < filter.sizeLessThan)) return false;
  return filter.tags.every((t) => tags.get(t.Key) === t.Value);
}

/**
 * When an object last modified at `lastModified` expires under the rule: its Date, or
 * Days after the object's time "rounded up to the next day midnight UTC" (AWS: an object
 * from 2014-01-15 10:30 with Days 3 expires 2014-01-19 00:00).
 */
export function expiresAt(rule: LifecycleRule, lastModified: number): number | null {
  const e = rule.expiration;
  if (!e) return null;
  if ("date" in e) return e.date;
  return nextMidnight(lastModified + e.days * DAY_MS);
}

/** An upload initiated at `initiated` is due for abort from this time on, by the same rounding. */
export function abortDueAt(rule: LifecycleRule, initiated: number): number | null {
  return rule.abortAfterDays === undefined ? null : nextMidnight(initiated + rule.abortAfterDays * DAY_MS);
}

export function nextMidnight(t: number): number {
  return Math.floor(t / DAY_MS) * DAY_MS + DAY_MS;
}

/** The earliest expiry among the enabled rules covering an object, for x-amz-expiration. */
export function objectExpiry(rules: LifecycleRule[], key: string, size: number, lastModified: number): { at: number; ruleId: string } | null {
  let best: { at: number; ruleId: string } | null = null;
  for (const rule of rules) {
    if (!rule.enabled || !filterMatches(rule.filter, key, size)) continue;
    const at = expiresAt(rule, lastModified);
    if (at !== null && (best === null || at < best.at)) best = { at, ruleId: rule.id };
  }
  return best;
}

/** The longest prefix every rule in `rules` starts with: the part of the bucket a pass must list. */
export function commonPrefix(rules: LifecycleRule[]): string {
  if (rules.length === 0) return "";
  let prefix = rules[0]!.filter.prefix;
  for (const rule of rules) {
    let i = 0;
    while (i < prefix.length && i < rule.filter.prefix.length && prefix[i] === rule.filter.prefix[i]) i++;
    prefix = prefix.slice(0, i);
  }
  // Never cut a surrogate pair in half.
  const last = prefix.charCodeAt(prefix.length - 1);
  return last >= 0xd800 && last <= 0xdbff ? prefix.slice(0, -1) : prefix;
}
