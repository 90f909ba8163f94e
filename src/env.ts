/** Worker bindings, vars and secrets (see wrangler.toml and README "Configuration"). */
export interface Env {
  OBJECTS: R2Bucket;
  DB: D1Database;
  REGION?: string;
  BASE_DOMAIN?: string;
  /** Refuse SSE-KMS and SSE-C over plain HTTP (default true). REQUIRE_TLS_FOR_SSE_KMS is its older name, still read. */
  REQUIRE_TLS_FOR_SSE?: string;
  REQUIRE_TLS_FOR_SSE_KMS?: string;
  MULTIPART_EXPIRY_HOURS?: string;
  MULTIPART_RELEASE_GRACE_MINUTES?: string;
  MULTIPART_COMPLETION_RETENTION_HOURS?: string;
  MULTIPART_COMPLETE_WAIT_SECONDS?: string;
  KEY_CACHE_TTL_SECONDS?: string;
  /** CMKs rooted in an external KMS: how long a root the external KMS decrypted is used (default 300 s), and its call timeout (default 5000 ms). */
  EXTERNAL_KEY_CACHE_SECONDS?: string;
  EXTERNAL_KMS_TIMEOUT_MS?: string;
  /** Lifecycle job (README, "Lifecycle rules"): least time between two passes over a bucket, and objects deleted per run. */
  LIFECYCLE_PASS_INTERVAL_MINUTES?: string;
  LIFECYCLE_DELETES_PER_RUN?: string;
  /** Largest request body Cloudflare lets through to the worker (the zone plan's limit); default 100000000. */
  MAX_REQUEST_BODY_BYTES?: string;
  /** Bearer token for the /_admin API and the admin CLI. */
  ADMIN_TOKEN?: string;
  /** Master secrets are MASTER_KEY_V1..MASTER_KEY_Vn (base64, 32 bytes each). */
  [name: `MASTER_KEY_V${number}`]: string | undefined;
  /** Optional: pin the master version new writes use (default: the highest present). */
  MASTER_KEY_WRITE_VERSION?: string;
  /** Upload page (/_upload, docs/browser-uploads.md): enabled when set; uploads act as this access key's user. */
  UPLOAD_PAGE_ACCESS_KEY_ID?: string;
  /** Bucket the page uploads into (created for the key's tenant on first use; default "uploads"). */
  UPLOAD_PAGE_BUCKET?: string;
  /** Largest file the page's forms allow (content-length-range; default 100 MB). */
  UPLOAD_PAGE_MAX_BYTES?: string;
  /** Secret the page's JSON endpoints require as a Bearer token; without it the page refuses to serve unless LOCAL_DEV. */
  UPLOAD_PAGE_TOKEN?: string;
  /** "true" only in local development (`npm run dev`'s .dev.vars, the test harness): the upload page may run without a token. */
  LOCAL_DEV?: string;
}

export interface Config {
  region: string;
  baseDomain: string;
  /** SSE-KMS and SSE-C requests need TLS (REQUIRE_TLS_FOR_SSE, or its old name REQUIRE_TLS_FOR_SSE_KMS). */
  requireTlsForSse: boolean;
  multipartExpiryHours: number;
  /** How long a replaced or deleted multipart object's parts outlive it (reads still streaming it). */
  multipartReleaseGraceMinutes: number;
  /** How long a completed upload answers retried Completes with its recorded result. */
  multipartCompletionRetentionHours: number;
  /** How long a Complete waits for another Complete holding the same upload before 409. */
  multipartCompleteWaitMs: number;
  keyCacheTtlMs: number;
  /** Revocation at the external KMS takes effect within this time (README, "Keys rooted in your KMS"). */
  externalKeyCacheMs: number;
  externalKmsTimeoutMs: number;
  lifecyclePassIntervalMinutes: number;
  lifecycleDeletesPerRun: number;
  /**
   * Cloudflare answers 413 itself, before the worker runs, to a request body over the zone
   * plan's limit (100 MB Free/Pro, 200 MB Business, 500 MB or more Enterprise). PutObject,
   * UploadPart and POST Object refuse such a body at once with S3's EntityTooLarge, so a
   * client learns the limit in local dev too, and in S3's words.
   */
  maxRequestBodyBytes: number;
}

export function readConfig(env: Env): Config {
  return {
    region: env.REGION || "us-east-1",
    baseDomain: (env.BASE_DOMAIN || "").toLowerCase(),
    // The new name wins when both are set; either one alone still works.
    requireTlsForSse: (env.REQUIRE_TLS_FOR_SSE ?? env.REQUIRE_TLS_FOR_SSE_KMS ?? "true") !== "false",
    multipartExpiryHours: positiveNumber(env.MULTIPART_EXPIRY_HOURS, 168),
    multipartReleaseGraceMinutes: positiveNumber(env.MULTIPART_RELEASE_GRACE_MINUTES, 60),
    multipartCompletionRetentionHours: positiveNumber(env.MULTIPART_COMPLETION_RETENTION_HOURS, 24),
    multipartCompleteWaitMs: positiveNumber(env.MULTIPART_COMPLETE_WAIT_SECONDS, 10) * 1000,
    keyCacheTtlMs: positiveNumber(env.KEY_CACHE_TTL_SECONDS, 5) * 1000,
    externalKeyCacheMs: positiveNumber(env.EXTERNAL_KEY_CACHE_SECONDS, 300) * 1000,
    externalKmsTimeoutMs: positiveInteger(env.EXTERNAL_KMS_TIMEOUT_MS, 5000),
    lifecyclePassIntervalMinutes: positiveNumber(env.LIFECYCLE_PASS_INTERVAL_MINUTES, 60),
    lifecycleDeletesPerRun: Math.max(1, Math.floor(positiveNumber(env.LIFECYCLE_DELETES_PER_RUN, 5000))),
    // Cloudflare's "100 MB" is decimal; 100,000,000 is below the limit whichever way it is read.
    maxRequestBodyBytes: positiveInteger(env.MAX_REQUEST_BODY_BYTES, 100_000_000),
  };
}

function positiveNumber(value: string | undefined, fallback: number): number {
  const n = Number(value);
  return Number.isFinite(n) && n >= 0 && value !== undefined && value !== "" ? n : fallback;
}

/** A whole number of at least 1; anything else (unset, 0, garbage) is the default. */
function positiveInteger(value: string | undefined, fallback: number): number {
  const n = Number(value);
  return value !== undefined && /^\s*\d+\s*$/.test(value) && Number.isSafeInteger(n) && n >= 1 ? n : fallback;
}
