/**
 * The browser upload page under /_upload (bucket names cannot start with "_", so it
 * never shadows S3). Enabled only when UPLOAD_PAGE_ACCESS_KEY_ID names an access key: the
 * page's uploads act as that key's user, whose secret is read from D1 and never leaves
 * the worker. The JSON endpoints require UPLOAD_PAGE_TOKEN as a Bearer token; without a
 * token the page refuses to serve at all, except in local development (config.ts).
 *
 *   GET  /_upload             the page
 *   GET  /_upload/app.js      its script
 *   POST /_upload/form        {filename, size} → presigned POST {url, fields} (SSE-KMS, 15 min) + receipt
 *   GET  /_upload/object?key&receipt   what was stored (size, ETag, key ARN) + presigned GET link,
 *                             only for a key the receipt's grant created
 */
import { Hono, type Context } from "hono";
import type { Env } from "../env";
import { statObject } from "../objects/read";
import { validBucketName } from "../s3/addressing";
import { S3Error } from "../s3/errors";
import { makeServices, type Services } from "../services";
import { timingSafeEqualStrings, toHex } from "../util/bytes";
import { pageConfig, refusal, type PageConfig } from "./config";
import { PageError, readJsonObject } from "./json-body";
import { pageHtml, PAGE_SCRIPT } from "./page";
import { issueReceipt, verifyReceipt, type ReceiptClaims } from "./receipt";
import { presignGet, presignPost, type Signer } from "./signing";

type PageEnv = { Bindings: Env; Variables: { config: PageConfig } };

/** Keys the page writes (and is willing to describe) all start here. */
export const PAGE_PREFIX = "page-uploads/";
const FORM_TTL_SECONDS = 15 * 60;
const DOWNLOAD_TTL_SECONDS = 60 * 60;

export const uploadPage = new Hono<PageEnv>();

const SECURITY_HEADERS = {
  "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
  "Cache-Control": "no-store",
};

/** Logged once per isolate, so a misconfigured or open page is visible in the logs without flooding them. */
const logged = new Set<string>();
function logOnce(event: string, fields: Record<string, string>, level: "error" | "warn"): void {
  if (logged.has(event)) return;
  logged.add(event);
  console[level](JSON.stringify({ event, ...fields }));
}

uploadPage.use("*", async (c, next) => {
  const config = pageConfig(c.env);
  if (!config) return c.text("Not Found", 404);
  const refused = refusal(config);
  if (refused) {
    logOnce("upload-page-refused", { reason: "UPLOAD_PAGE_TOKEN is not set and LOCAL_DEV is not true; every /_upload request answers 503 until it is", message: refused }, "error");
    const response = c.req.path.replace(/\/+$/, "") === "/_upload" ? c.text(refused, 503) : c.json({ error: refused, code: "UploadPageTokenRequired" }, 503);
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) response.headers.set(name, value);
    return response;
  }
  if (config.token === null) logOnce("upload-page-open-local-dev", { reason: "LOCAL_DEV=true and no UPLOAD_PAGE_TOKEN: the page's endpoints take no token" }, "warn");
  c.set("config", config);
  await next();
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) c.res.headers.set(name, value);
});

uploadPage.onError((error, c) => {
  const response = errorJson(c, error);
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) response.headers.set(name, value);
  return response;
});

function errorJson(c: Context<PageEnv>, error: Error): Response {
  if (error instanceof PageError) return c.json({ error: error.message, code: error.code }, error.status);
  if (error instanceof S3Error) return c.json({ error: `${error.code}: ${error.message}`, code: error.code }, error.status as 400);
  console.error(JSON.stringify({ event: "upload-page-error", name: error.name, message: error.message }));
  return c.json({ error: "internal error", code: "InternalError" }, 500);
}

uploadPage.get("/", (c) => {
  const config = c.get("config");
  return c.html(pageHtml({ bucket: config.bucket, maxBytes: config.maxBytes, singlePostMaxBytes: config.singlePostMaxBytes, tokenRequired: config.token !== null }));
});

uploadPage.get("/app.js", (c) => c.body(PAGE_SCRIPT, 200, { "Content-Type": "text/javascript; charset=utf-8" }));

uploadPage.post("/form", async (c) => {
  const config = c.get("config");
  authorize(c, config);
  const body = await readJsonObject(c.req.raw);
  if (typeof body.size === "number" && body.size > config.singlePostMaxBytes) {
    throw new PageError(400, "EntityTooLarge", `Files above ${config.singlePostMaxBytes} bytes are uploaded in parts (POST /_upload/multipart/create).`);
  }
  const services = makeServices(c.env);
  const signer = await pageSigner(services, config);
  await ensureBucket(services, config, signer.tenantId);
  const prefix = newPrefix();
  const grant = await presignPost(signer, {
    origin: new URL(c.req.url).origin,
    bucket: config.bucket,
    key: `${prefix}\${filename}`,
    fields: { "x-amz-server-side-encryption": "aws:kms", success_action_status: "201" },
    conditions: [["starts-with", "$Content-Type", ""], ["content-length-range", 0, config.singlePostMaxBytes]],
    expiresInSeconds: FORM_TTL_SECONDS,
  });
  const receipt = await issueReceipt(c.env, config.accessKeyId, { b: config.bucket, p: prefix });
  return c.json({ ...grant, receipt });
});

uploadPage.get("/object", async (c) => {
  const config = c.get("config");
  authorize(c, config);
  const key = c.req.query("key") ?? "";
  const claims = await requireReceipt(c, config, c.req.query("receipt"));
  if (!key.startsWith(claims.p) || (claims.k !== undefined && key !== claims.k)) throw new PageError(403, "ReceiptMismatch", "The receipt does not cover this key: the page only links to what its own upload stored.");
  const services = makeServices(c.env);
  const signer = await pageSigner(services, config);
  const bucket = await services.buckets.get(config.bucket);
  if (!bucket || bucket.tenantId !== signer.tenantId) throw new PageError(404, "NoSuchBucket", "The upload bucket does not exist.");
  const info = await statObject(services.objects, bucket, key);
  const name = key.slice(key.lastIndexOf("/") + 1);
  const download = await presignGet(signer, {
    origin: new URL(c.req.url).origin,
    bucket: bucket.name,
    key,
    expiresInSeconds: DOWNLOAD_TTL_SECONDS,
    responseContentDisposition: `attachment; filename*=UTF-8''${encodeURIComponent(name)}`,
  });
  return c.json({
    bucket: bucket.name,
    key,
    size: info.size,
    etag: `"${info.etag}"`,
    encryption: info.mode,
    keyArn: info.mode === "aws:kms" ? info.keyArn : null,
    contentType: info.http.contentType ?? null,
    lastModified: info.lastModified.toISOString(),
    download,
  });
});

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
