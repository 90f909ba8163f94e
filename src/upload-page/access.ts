/**
 * What every upload-page endpoint checks: the Bearer token, the receipt of the grant a
 * request refers to, and the page's signer (its access key's secret from D1).
 */
import type { Context } from "hono";
import type { Env } from "../env";
import { validBucketName } from "../s3/addressing";
import { S3Error } from "../errors";
import type { Services } from "../services";
import { timingSafeEqualStrings, toHex } from "../util/bytes";
import type { PageConfig } from "./config";
import { PageError } from "./json-body";
import { verifyReceipt, type ReceiptClaims } from "./receipt";
import type { Signer } from "./signing";

export type PageEnv = { Bindings: Env; Variables: { config: PageConfig } };

/** Keys the page writes (and is willing to describe) all start here. */
export const PAGE_PREFIX = "page-uploads/";

/** A unique key prefix per grant: `page-uploads/<date>/<random>/`. */
export function newPrefix(now = new Date()): string {
  return `${PAGE_PREFIX}${now.toISOString().slice(0, 10)}/${toHex(crypto.getRandomValues(new Uint8Array(6)))}/`;
}

export function authorize(c: Context<PageEnv>, config: PageConfig): void {
  if (config.token === null) return;
  const header = c.req.header("authorization") ?? "";
  if (!(header.startsWith("Bearer ") && timingSafeEqualStrings(header.slice(7).trim(), config.token))) {
    throw new PageError(401, "InvalidToken", "A valid access token is required (Authorization: Bearer <UPLOAD_PAGE_TOKEN>).");
  }
}

export async function requireReceipt(c: Context<PageEnv>, config: PageConfig, receipt: unknown): Promise<ReceiptClaims> {
  const claims = await verifyReceipt(c.env, config.accessKeyId, receipt);
  if (!claims || claims.b !== config.bucket || !claims.p.startsWith(PAGE_PREFIX)) {
    throw new PageError(403, "InvalidReceipt", "A valid, unexpired upload receipt is required (the one the upload's grant returned).");
  }
  return claims;
}

export async function pageSigner(services: Services, config: PageConfig): Promise<Signer & { tenantId: string }> {
  const identity = await services.identities.lookup(config.accessKeyId);
  if (!identity) throw new S3Error("InvalidAccessKeyId", 500, "UPLOAD_PAGE_ACCESS_KEY_ID does not name an active access key.");
  return { accessKeyId: config.accessKeyId, secret: identity.secret, region: services.config.region, tenantId: identity.principal.tenantId };
}

/** The page's bucket is created for the page's tenant on first use. */
export async function ensureBucket(services: Services, config: PageConfig, tenantId: string): Promise<void> {
  if (!validBucketName(config.bucket)) throw new S3Error("InvalidBucketName", 500, "UPLOAD_PAGE_BUCKET is not a valid bucket name.");
  const existing = await services.buckets.get(config.bucket);
  const bucket = existing ?? (await services.buckets.create({ name: config.bucket, tenantId, region: services.config.region })).bucket;
  if (bucket.tenantId !== tenantId) throw new S3Error("BucketAlreadyExists", 409, "UPLOAD_PAGE_BUCKET belongs to another tenant.");
}
