import type { SseMode } from "../crypto/envelope";
import type { SseChoice } from "../objects/sse-choice";
import { Errors } from "../errors";

export type { SseChoice };

/** Bucket default encryption as stored in D1 (from PutBucketEncryption). */
export interface DefaultEncryption {
  algorithm: SseMode;
  keyId?: string;
  bucketKeyEnabled: boolean;
}

export const SSE = "x-amz-server-side-encryption";
export const SSE_KEY_ID = "x-amz-server-side-encryption-aws-kms-key-id";
export const SSE_CONTEXT = "x-amz-server-side-encryption-context";
export const SSE_BUCKET_KEY = "x-amz-server-side-encryption-bucket-key-enabled";
const SSE_C = "x-amz-server-side-encryption-customer-algorithm";

/** Parses the SSE request headers of PutObject, CopyObject (target) and CreateMultipartUpload. */
export function sseFromHeaders(headers: Headers): SseChoice | null {
  if (headers.has(SSE_C) || headers.has("x-amz-server-side-encryption-customer-key")) {
    // SSE-C cannot be combined with another method: AWS refuses the request as invalid
    // before it would look at whether SSE-C itself is available.
    const algorithm = headers.get(SSE);
    if (algorithm !== null) {
      throw Errors.InvalidArgument(
        { ArgumentName: SSE, ArgumentValue: algorithm },
        "Server Side Encryption with Customer provided key is incompatible with the encryption method specified",
      );
    }
    throw Errors.NotImplemented({}, "Server-side encryption with customer-provided keys (SSE-C) is not supported by this endpoint.");
  }
  const algorithm = headers.get(SSE);
  const keyId = headers.get(SSE_KEY_ID) ?? undefined;
  const context = headers.get(SSE_CONTEXT) ?? undefined;
  const bucketKey = headers.get(SSE_BUCKET_KEY);
  if (algorithm === null) {
    if (keyId !== undefined || context !== undefined) {
      throw Errors.InvalidArgument(
        { ArgumentName: SSE, ArgumentValue: "null" },
        "Server Side Encryption with AWS KMS managed key requires HTTP header x-amz-server-side-encryption : aws:kms",
      );
    }
    return null;
  }
  if (algorithm !== "aws:kms" && algorithm !== "AES256") {
    throw Errors.InvalidArgument({ ArgumentName: SSE, ArgumentValue: algorithm }, "The encryption method specified is not supported");
  }
  if (algorithm === "AES256" && (keyId !== undefined || context !== undefined)) {
    throw Errors.InvalidArgument(
      { ArgumentName: SSE, ArgumentValue: algorithm },
      "Server Side Encryption with AWS KMS managed key requires HTTP header x-amz-server-side-encryption : aws:kms",
    );
  }
  if (context !== undefined) validateContext(context);
  if (bucketKey !== null && bucketKey !== "true" && bucketKey !== "false") {
    throw Errors.InvalidArgument({ ArgumentName: SSE_BUCKET_KEY, ArgumentValue: bucketKey }, "Bucket key enabled header must be true or false");
  }
  return {
    mode: algorithm,
    ...(keyId !== undefined && keyId !== "" ? { keyId } : {}),
    ...(context !== undefined ? { context } : {}),
    bucketKeyEnabled: bucketKey === "true",
    explicit: true,
  };
}

/** The request's choice, else the bucket default, else SSE-S3: nothing is ever stored in the clear. */
export function chooseSse(headers: Headers, bucketDefault: DefaultEncryption | null): SseChoice {
  const explicit = sseFromHeaders(headers);
  if (explicit) return explicit;
  if (bucketDefault) {
    return {
      mode: bucketDefault.algorithm,
      ...(bucketDefault.keyId ? { keyId: bucketDefault.keyId } : {}),
      bucketKeyEnabled: bucketDefault.bucketKeyEnabled,
      explicit: false,
    };
  }
  return { mode: "AES256", bucketKeyEnabled: false, explicit: false };
}

export function parseDefaultEncryption(stored: string | null): DefaultEncryption | null {
  if (!stored) return null;
  return JSON.parse(stored) as DefaultEncryption;
}

/** The context must be base64 of a JSON object whose values are strings (as AWS KMS requires). */
function validateContext(context: string): void {
  const invalid = () => Errors.InvalidArgument({ ArgumentName: SSE_CONTEXT, ArgumentValue: context }, "The header 'x-amz-server-side-encryption-context' shall be Base64-encoded UTF-8 string holding JSON which represents a string-string map");
  let parsed: unknown;
  try {
    const bytes = Uint8Array.from(atob(context), (c) => c.charCodeAt(0));
    parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes));
  } catch {
    throw invalid();
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) throw invalid();
  for (const value of Object.values(parsed)) if (typeof value !== "string") throw invalid();
}

/** Headers every response about an encrypted object carries. */
export function sseResponseHeaders(info: { mode: SseMode; keyArn: string; bucketKeyEnabled: boolean; context?: string }): Record<string, string> {
  const headers: Record<string, string> = { [SSE]: info.mode };
  if (info.mode === "aws:kms") {
    headers[SSE_KEY_ID] = info.keyArn;
    if (info.context !== undefined) headers[SSE_CONTEXT] = info.context;
  }
  if (info.bucketKeyEnabled) headers[SSE_BUCKET_KEY] = "true";
  return headers;
}
