/**
 * SSE-C request headers (x-amz-server-side-encryption-customer-*, and the
 * x-amz-copy-source-… family for a copy's source) and the errors AWS answers them with.
 * The key itself is never echoed, logged or put into an error: responses carry the
 * algorithm and the key's MD5 only.
 */
import { createMd5 } from "../checksum";
import type { CustomerKey } from "../crypto/customer-key";
import type { SseMode } from "../crypto/envelope";
import type { Gate } from "../objects/object-info";
import { Errors } from "../errors";
import { fromBase64, toBase64 } from "../util/bytes";
import type { S3Context } from "./context";

export const SSE_C_ALGORITHM = "x-amz-server-side-encryption-customer-algorithm";
export const SSE_C_KEY = "x-amz-server-side-encryption-customer-key";
export const SSE_C_KEY_MD5 = "x-amz-server-side-encryption-customer-key-md5";
const COPY_PREFIX = "x-amz-copy-source-";

export type CustomerKeyHeaders = "target" | "source";

const names = (which: CustomerKeyHeaders) => {
  const p = which === "source" ? COPY_PREFIX : "x-amz-";
  return {
    algorithm: `${p}server-side-encryption-customer-algorithm`,
    key: `${p}server-side-encryption-customer-key`,
    md5: `${p}server-side-encryption-customer-key-md5`,
  };
};

/** True when the request carries any header of the SSE-C family `which`. */
export function hasCustomerKeyHeaders(headers: Headers, which: CustomerKeyHeaders = "target"): boolean {
  const n = names(which);
  return headers.has(n.algorithm) || headers.has(n.key) || headers.has(n.md5);
}

/**
 * The customer key a request supplies (null when it sends none of the headers), validated
 * as S3 does: algorithm AES256, a base64 256-bit key, and its MD5.
 */
export async function customerKeyFrom(headers: Headers, which: CustomerKeyHeaders = "target"): Promise<CustomerKey | null> {
  if (!hasCustomerKeyHeaders(headers, which)) return null;
  const n = names(which);
  const algorithm = headers.get(n.algorithm);
  const key = headers.get(n.key);
  const md5 = headers.get(n.md5);
  if (algorithm !== "AES256") {
    throw Errors.InvalidArgument(
      { ArgumentName: n.algorithm, ArgumentValue: algorithm ?? "null" },
      "Requests specifying Server Side Encryption with Customer provided keys must provide a valid encryption algorithm.",
    );
  }
  if (key === null || key === "") {
    throw Errors.InvalidArgument({ ArgumentName: n.key }, "Requests specifying Server Side Encryption with Customer provided keys must provide an appropriate secret key.");
  }
  const raw = fromBase64(key.trim());
  if (!raw || raw.byteLength !== 32) throw Errors.InvalidArgument({ ArgumentName: n.key }, "The secret key was invalid for the specified algorithm.");
  if (md5 === null || md5 === "") {
    throw Errors.InvalidArgument(
      { ArgumentName: n.md5 },
      "Requests specifying Server Side Encryption with Customer provided keys must provide the client calculated MD5 of the secret key.",
    );
  }
  const hasher = createMd5();
  hasher.update(raw);
  const actual = toBase64(await hasher.digest());
  if (actual !== md5.trim()) throw Errors.InvalidArgument({ ArgumentName: n.md5 }, "The calculated MD5 hash of the key did not match the hash that was provided.");
  return { raw, md5: actual };
}

/** SSE-C needs TLS when the TLS setting is on (AWS refuses SSE-C over HTTP outright). */
export function assertCustomerKeyTransport(ctx: S3Context): void {
  if (ctx.services.config.requireTlsForSse && ctx.url.protocol !== "https:") {
    throw Errors.InvalidRequest({}, "Requests specifying Server Side Encryption with Customer provided keys must be made over a secure connection.");
  }
}

/** Response headers of a request that used a customer key: algorithm and key MD5, never the key. */
export function customerKeyResponseHeaders(ck: CustomerKey): Record<string, string> {
  return { [SSE_C_ALGORITHM]: "AES256", "x-amz-server-side-encryption-customer-key-MD5": ck.md5 };
}

export const SSE_C_MESSAGES = {
  /** GET/HEAD/copy source of an SSE-C object without the key. */
  missing: "The object was stored using a form of Server Side Encryption. The correct parameters must be provided to retrieve the object.",
  /** Key headers on an object that is not SSE-C. */
  notApplicable: "The encryption parameters are not applicable to this object.",
  /** GET/HEAD with the wrong key. */
  wrong: "Requests specifying Server Side Encryption with Customer provided keys must provide the correct secret key.",
  /** UploadPart of an SSE-C upload without its key. */
  partMissing: "The multipart upload initiate requested encryption. Subsequent part requests must include the appropriate encryption parameters.",
  /** UploadPart (or Complete) with another key than the upload's, or a key for an upload without one. */
  partMismatch: "The provided encryption parameters did not match the ones used originally.",
} as const;

/**
 * The gate of a read (GET, HEAD, copy source): the tenant rules (`rule`), then SSE-C — an
 * SSE-C object needs the key (400 without it; 403 when it does not verify, in the objects
 * layer), any other object must not be sent one (400).
 */
export function customerKeyGate(ctx: S3Context, key: CustomerKey | null, rule: (mode: SseMode) => void): Gate {
  return (mode) => {
    rule(mode);
    if (mode === "SSE-C") {
      if (!key) throw Errors.InvalidRequest({}, SSE_C_MESSAGES.missing);
      assertCustomerKeyTransport(ctx);
      return key;
    }
    if (key) throw Errors.InvalidRequest({}, SSE_C_MESSAGES.notApplicable);
  };
}
