import type { ParsedAuth, VerifiedSigV4 } from "../auth/sigv4";
import type { Services } from "../services";
import type { Bucket } from "../store/buckets";
import type { Principal } from "../store/identities";
import type { Address } from "./addressing";

/** One S3 request as handlers see it: addressed, authenticated, with its bucket loaded. */
export interface S3Context {
  request: Request;
  url: URL;
  requestId: string;
  services: Services;
  address: Address;
  auth: ParsedAuth;
  /** Present for SigV4 requests (chunk and POST policy verification need it). */
  verified: VerifiedSigV4 | null;
  /** Null for anonymous requests. */
  principal: Principal | null;
  /** The addressed bucket, loaded (and access-checked) by the dispatcher when the operation needs it. */
  bucket: Bucket | null;
}

export function requireBucket(ctx: S3Context): Bucket {
  if (!ctx.bucket) throw new Error("operation requires a bucket");
  return ctx.bucket;
}

export function requireKey(ctx: S3Context): string {
  if (ctx.address.key === null) throw new Error("operation requires a key");
  return ctx.address.key;
}
