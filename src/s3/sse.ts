import type { CustomerKey } from "../crypto/customer-key";
import type { SseMode } from "../crypto/envelope";
import type { SseChoice } from "../objects/sse-choice";
import { Errors } from "../errors";
import { customerKeyFrom, customerKeyResponseHeaders, hasCustomerKeyHeaders } from "./sse-c";

export type { SseChoice };

/** Bucket default encryption as stored in D1 (from PutBucketEncryption). */
export interface DefaultEncryption {
  /** A bucket default is never SSE-C: the key comes with each request. */
  algorithm: Exclude<SseMode, "SSE-C">;
  keyId?: string;
  bucketKeyEnabled: boolean;
}

export const SSE = "x-amz-server-side-encryption";
export const SSE_KEY_ID = "x-amz-server-side-encryption-aws-kms-key-id";
export const SSE_CONTEXT = "x-amz-server-side-encryption-context";
export const SSE_BUCKET_KEY = "x-amz-server-side-encryption-bucket-key-enabled";
/** Parses the SSE request headers of PutObject, CopyObject (target), CreateMultipartUpload and POST Object. */
export async function sseFromHeaders(headers: Headers): Promise<SseChoice | null> {
  if (hasCustomerKeyHeaders(headers)) {
    // SSE-C cannot be combined with another method: AWS refuses the request as invalid
    // before it looks at the key itself.
    const algorithm = headers.get(SSE);
    if (algorithm !== null) {
      throw Errors.InvalidArgument(
        { ArgumentName: SSE, ArgumentValue: algorithm },
        "Server Side Encryption with Customer provided key is incompatible with the encryption method specified",
      );
    }
    for (const name of [SSE_KEY_ID, SSE_CONTEXT]) {
      const value = headers.get(name);
      if (value !== null) {
        throw Errors.InvalidArgument(
          { ArgumentName: SSE, ArgumentValue: "null" },
          "Server Side Encryption with AWS KMS managed key requires HTTP header x-amz-server-side-encryption : aws:kms",
        );
      }
    }
    const customerKey = (await customerKeyFrom(headers))!;
    return { mode: "SSE-C", customerKey, bucketKeyEnabled: false, explicit: true };
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
export async function chooseSse(headers: Headers, bucketDefault: DefaultEncryption | null): Promise<SseChoice> {
  const explicit = await sseFromHeaders(headers);
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
export function sseResponseHeaders(info: { mode: SseMode; keyArn: string; bucketKeyEnabled: boolean; context?: string; customerKey?: CustomerKey }): Record<string, string> {
  // SSE-C: S3 names no x-amz-server-side-encryption, only the customer algorithm and key MD5
  // (echoed from the request: nothing about the key is stored that could produce it).
  if (info.mode === "SSE-C") return info.customerKey ? customerKeyResponseHeaders(info.customerKey) : {};
  const headers: Record<string, string> = { [SSE]: info.mode };
  if (info.mode === "aws:kms") {
    headers[SSE_KEY_ID] = info.keyArn;
    if (info.context !== undefined) headers[SSE_CONTEXT] = info.context;
  }
  if (info.bucketKeyEnabled) headers[SSE_BUCKET_KEY] = "true";
  return headers;
}
