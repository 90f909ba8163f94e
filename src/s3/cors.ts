/**
 * Bucket CORS: the configuration document (PutBucketCors / GetBucketCors), rule matching
 * as S3 does it, and the Access-Control-* headers for preflights and actual responses.
 * Pure: no D1, no R2 — handlers/cors.ts and the app-level hook (applyCorsHeaders) call in.
 *
 * Matching follows S3 ("How Amazon S3 evaluates the CORS configuration"): the first rule
 * whose AllowedOrigin matches the Origin, whose AllowedMethod contains the method (the
 * Access-Control-Request-Method of a preflight, else the request's own), and — for a
 * preflight — whose AllowedHeader patterns cover every requested header, wins.
 */
import type { Bucket } from "../store/buckets";
import { Errors } from "../errors";
import { childArray, childText, childTexts, childToken } from "./xml";

export interface CorsRule {
  id?: string;
  allowedOrigins: string[];
  allowedMethods: string[];
  allowedHeaders: string[];
  exposeHeaders: string[];
  maxAgeSeconds?: number;
}

const METHODS = new Set(["GET", "PUT", "POST", "DELETE", "HEAD"]);
/** S3's limits: at most 100 rules, IDs of up to 255 characters. */
export const MAX_CORS_RULES = 100;
const MAX_ID_LENGTH = 255;

/** Parses and validates the content of a <CORSConfiguration> document (from parseXmlDocument). */
export function parseCorsConfiguration(doc: Record<string, unknown>): CorsRule[] {
  const rules = childArray(doc, "CORSRule");
  if (rules.length === 0) throw Errors.MalformedXML();
  if (rules.length > MAX_CORS_RULES) throw Errors.InvalidRequest({}, `The number of CORS rules should not exceed allowed limit of ${MAX_CORS_RULES} rules.`);
  return rules.map(parseRule);
}

function parseRule(node: unknown): CorsRule {
  if (node === null || typeof node !== "object") throw Errors.MalformedXML();
  // Origins and header patterns are matched as sent; methods are tokens (an enum).
  const texts = (name: string) => childTexts(node, name);
  const allowedOrigins = texts("AllowedOrigin");
  const allowedMethods = texts("AllowedMethod").map((m) => m.replace(/^[ \t\n\r]+|[ \t\n\r]+$/g, ""));
  if (allowedOrigins.length === 0 || allowedMethods.length === 0) throw Errors.MalformedXML();
  for (const method of allowedMethods) {
    if (!METHODS.has(method)) throw Errors.InvalidRequest({}, `Found unsupported HTTP method in CORS config. Unsupported method is ${method}`);
  }
  for (const origin of allowedOrigins) {
    if (wildcards(origin) > 1) throw Errors.InvalidRequest({}, `AllowedOrigin "${origin}" can not have more than one wildcard.`);
  }
  const allowedHeaders = texts("AllowedHeader");
  for (const header of allowedHeaders) {
    if (wildcards(header) > 1) throw Errors.InvalidRequest({}, `AllowedHeader "${header}" can not have more than one wildcard.`);
  }
  const exposeHeaders = texts("ExposeHeader");
  const id = childText(node, "ID");
  if (id !== undefined && id.length > MAX_ID_LENGTH) throw Errors.InvalidArgument({ ArgumentName: "ID", ArgumentValue: id }, "The ID of a CORS rule can have at most 255 characters.");
  const maxAge = childToken(node, "MaxAgeSeconds");
  if (maxAge !== undefined && !/^\d{1,9}$/.test(maxAge)) throw Errors.MalformedXML();
  return {
    ...(id !== undefined && id !== "" ? { id } : {}),
    allowedOrigins,
    allowedMethods,
    allowedHeaders,
    exposeHeaders,
    ...(maxAge !== undefined ? { maxAgeSeconds: Number(maxAge) } : {}),
  };
}

const wildcards = (s: string) => s.split("*").length - 1;

/** The <CORSConfiguration> body GetBucketCors answers, elements in S3's order. */
export function corsConfigurationXml(rules: readonly CorsRule[]): Record<string, unknown> {
  return {
    CORSRule: rules.map((r) => ({
      ...(r.id !== undefined ? { ID: r.id } : {}),
      ...(r.allowedHeaders.length ? { AllowedHeader: r.allowedHeaders } : {}),
      AllowedMethod: r.allowedMethods,
      AllowedOrigin: r.allowedOrigins,
      ...(r.exposeHeaders.length ? { ExposeHeader: r.exposeHeaders } : {}),
      ...(r.maxAgeSeconds !== undefined ? { MaxAgeSeconds: r.maxAgeSeconds } : {}),
    })),
  };
}

/** The rules stored in the bucket row (JSON written by PutBucketCors), or null. */
export function bucketCorsRules(bucket: Pick<Bucket, "cors">): CorsRule[] | null {
  if (!bucket.cors) return null;
  try {
    const parsed = JSON.parse(bucket.cors) as CorsRule[];
    return Array.isArray(parsed) && parsed.length > 0 ? parsed : null;
  } catch {
    return null;
  }
}

/** One "*" matches any run of characters (S3 allows one per pattern). */
export function wildcardMatch(pattern: string, value: string): boolean {
  const star = pattern.indexOf("*");
  if (star < 0) return pattern === value;
  const prefix = pattern.slice(0, star);
  const suffix = pattern.slice(star + 1);
  return value.length >= prefix.length + suffix.length && value.startsWith(prefix) && value.endsWith(suffix);
}

export interface CorsMatch {
  rule: CorsRule;
  /** True when the rule allows any origin ("*"): answer "*" and no credentials, as S3 does. */
  anyOrigin: boolean;
}

export function matchCorsRule(rules: readonly CorsRule[], origin: string, method: string, requestHeaders: readonly string[] = []): CorsMatch | null {
  for (const rule of rules) {
    const originPattern = rule.allowedOrigins.find((p) => wildcardMatch(p, origin));
    if (originPattern === undefined) continue;
    if (!rule.allowedMethods.includes(method)) continue;
    const headerPatterns = rule.allowedHeaders.map((h) => h.toLowerCase());
    if (!requestHeaders.every((h) => headerPatterns.some((p) => wildcardMatch(p, h.toLowerCase())))) continue;
    return { rule, anyOrigin: originPattern === "*" };
  }
  return null;
}

/** "content-type, X-Amz-Date" → ["content-type", "x-amz-date"]. */
export function parseRequestHeaderList(value: string | null): string[] {
  if (!value) return [];
  return value
    .split(",")
    .map((h) => h.trim().toLowerCase())
    .filter((h) => h !== "");
}

/**
 * Response headers a page reading S3 responses needs: the ETag and the encryption,
 * checksum and request-id headers. S3 exposes only what the rule's ExposeHeader lists;
 * these carry nothing the caller (already allowed to read the body) may not see, and
 * without them an upload page cannot show what it stored, so they are always exposed.
 */
export const DEFAULT_EXPOSE_HEADERS = [
  "ETag",
  "x-amz-request-id",
  "x-amz-id-2",
  "x-amz-version-id",
  "x-amz-server-side-encryption",
  "x-amz-server-side-encryption-aws-kms-key-id",
  "x-amz-server-side-encryption-context",
  "x-amz-server-side-encryption-bucket-key-enabled",
  // SSE-C answers: the algorithm and the key's MD5 (never the key).
  "x-amz-server-side-encryption-customer-algorithm",
  "x-amz-server-side-encryption-customer-key-MD5",
  "x-amz-checksum-crc32",
  "x-amz-checksum-crc32c",
  "x-amz-checksum-crc64nvme",
  "x-amz-checksum-sha1",
  "x-amz-checksum-sha256",
  "Content-Range",
  "Location",
];

export const VARY = "Origin, Access-Control-Request-Headers, Access-Control-Request-Method";

/**
 * The Access-Control-* headers for a matched rule. `exposeExtra` adds names present on
 * the actual response (its x-amz-meta-* headers), so a page can read user metadata.
 */
export function corsHeaders(match: CorsMatch, origin: string, options: { allowHeaders?: readonly string[]; exposeExtra?: readonly string[] } = {}): Headers {
  const headers = new Headers();
  headers.set("Access-Control-Allow-Origin", match.anyOrigin ? "*" : origin);
  if (!match.anyOrigin) headers.set("Access-Control-Allow-Credentials", "true");
  headers.set("Access-Control-Allow-Methods", match.rule.allowedMethods.join(", "));
  if (options.allowHeaders && options.allowHeaders.length > 0) headers.set("Access-Control-Allow-Headers", options.allowHeaders.join(", "));
  const expose: string[] = [];
  const seen = new Set<string>();
  for (const name of [...match.rule.exposeHeaders, ...DEFAULT_EXPOSE_HEADERS, ...(options.exposeExtra ?? [])]) {
    const lower = name.toLowerCase();
    if (seen.has(lower)) continue;
    seen.add(lower);
    expose.push(name);
  }
  headers.set("Access-Control-Expose-Headers", expose.join(", "));
  if (match.rule.maxAgeSeconds !== undefined) headers.set("Access-Control-Max-Age", String(match.rule.maxAgeSeconds));
  headers.set("Vary", VARY);
  return headers;
}

/**
 * Adds CORS headers to an actual (non-preflight) response of a bucket with a CORS
 * configuration, errors included, as S3 does. Responses of buckets with CORS rules vary
 * by Origin whether or not a rule matched, so caches keep them apart.
 */
export function addActualCorsHeaders(target: Headers, rules: readonly CorsRule[], origin: string | null, method: string): void {
  appendVary(target, VARY);
  if (origin === null) return;
  const match = matchCorsRule(rules, origin, method.toUpperCase());
  if (!match) return;
  const metaNames: string[] = [];
  for (const [name] of target) if (name.startsWith("x-amz-meta-")) metaNames.push(name);
  for (const [name, value] of corsHeaders(match, origin, { exposeExtra: metaNames })) {
    if (name.toLowerCase() !== "vary") target.set(name, value);
  }
}

function appendVary(target: Headers, value: string): void {
  const existing = target.get("Vary");
  if (!existing) target.set("Vary", value);
  else if (!existing.toLowerCase().includes("origin")) target.set("Vary", `${existing}, ${value}`);
}
