/**
 * The upload page's configuration, read from the worker's vars on every request.
 *
 * The page hands out grants signed with its access key (normally a tenant_admin key), so
 * it must never be open to anyone by accident: outside local development it refuses to
 * serve unless UPLOAD_PAGE_TOKEN is set. "Local development" is LOCAL_DEV=true, a var only
 * `npm run dev` (.dev.vars, written by scripts/lib/local.mjs) and the test harness set;
 * nothing a client sends (such as the Host header) can switch the token off.
 */
import type { Env } from "../env";

const MiB = 1024 * 1024;
const DEFAULT_BUCKET = "uploads";
/** S3's largest object; the page's own default ceiling. */
const DEFAULT_MAX_BYTES = 5 * 1024 * MiB * 1024;
/** Workers refuse larger request bodies on the smaller plans (MAX_REQUEST_BODY_BYTES' default). */
const DEFAULT_MAX_REQUEST_BODY_BYTES = 100 * 1000 * 1000;
/** Preferred part size: large enough that per-request overhead is small, small enough to retry cheaply. */
const PREFERRED_PART_BYTES = 16 * MiB;
/** S3's minimum for every part but the last. */
export const MIN_PART_BYTES = 5 * MiB;
export const MAX_PARTS = 10_000;
/** Room a POST form needs beyond its file (fields, boundaries): the single POST stays under the body limit. */
const FORM_OVERHEAD_BYTES = 64 * 1024;

export interface PageConfig {
  accessKeyId: string;
  bucket: string;
  /** Largest file the page accepts (UPLOAD_PAGE_MAX_BYTES, capped by what 10,000 parts can hold). */
  maxBytes: number;
  /** Files up to this size go in one presigned POST; larger ones as a multipart upload. */
  singlePostMaxBytes: number;
  /** The part size for files that need no more than 10,000 parts of it. */
  basePartBytes: number;
  /** The largest part a request body may carry (whole MiB under MAX_REQUEST_BODY_BYTES). */
  largestPartBytes: number;
  token: string | null;
  localDev: boolean;
}

/** null: the page is off (UPLOAD_PAGE_ACCESS_KEY_ID unset). */
export function pageConfig(env: Env): PageConfig | null {
  const accessKeyId = env.UPLOAD_PAGE_ACCESS_KEY_ID?.trim();
  if (!accessKeyId) return null;
  const largestPartBytes = Math.max(MIN_PART_BYTES, Math.floor((maxRequestBodyBytes(env) - FORM_OVERHEAD_BYTES) / MiB) * MiB);
  const basePartBytes = Math.min(PREFERRED_PART_BYTES, largestPartBytes);
  const configuredMax = positiveInteger(env.UPLOAD_PAGE_MAX_BYTES) ?? DEFAULT_MAX_BYTES;
  const maxBytes = Math.min(configuredMax, largestPartBytes * MAX_PARTS);
  return {
    accessKeyId,
    bucket: env.UPLOAD_PAGE_BUCKET?.trim() || DEFAULT_BUCKET,
    maxBytes,
    singlePostMaxBytes: Math.min(maxBytes, basePartBytes),
    basePartBytes,
    largestPartBytes,
    token: env.UPLOAD_PAGE_TOKEN?.trim() || null,
    localDev: env.LOCAL_DEV?.trim() === "true",
  };
}

/** Why the page must refuse to serve, or null when it may. */
export function refusal(config: PageConfig): string | null {
  if (config.token !== null || config.localDev) return null;
  return "The upload page is enabled (UPLOAD_PAGE_ACCESS_KEY_ID) but UPLOAD_PAGE_TOKEN is not set, so anyone could upload as that key's user. Set UPLOAD_PAGE_TOKEN (wrangler secret put UPLOAD_PAGE_TOKEN), or unset UPLOAD_PAGE_ACCESS_KEY_ID to turn the page off.";
}

/**
 * The part size for a file: the base size, or larger when 10,000 base parts would not hold
 * it (whole MiB). null when even the largest part is too small.
 */
export function partSizeFor(config: PageConfig, size: number): number | null {
  const needed = Math.ceil(size / MAX_PARTS / MiB) * MiB;
  const partSize = Math.max(config.basePartBytes, needed);
  return partSize <= config.largestPartBytes ? partSize : null;
}

/**
 * MAX_REQUEST_BODY_BYTES bounds every request body the worker accepts (EntityTooLarge
 * above it); its default is the platform's 100 MB. Read here through a narrow view so the
 * page keeps its parts under it whether or not the var is set.
 */
function maxRequestBodyBytes(env: Env): number {
  return positiveInteger((env as { MAX_REQUEST_BODY_BYTES?: string }).MAX_REQUEST_BODY_BYTES) ?? DEFAULT_MAX_REQUEST_BODY_BYTES;
}

function positiveInteger(value: string | undefined): number | null {
  const n = Number(value);
  return value !== undefined && value.trim() !== "" && Number.isSafeInteger(n) && n > 0 ? n : null;
}
