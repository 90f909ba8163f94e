/**
 * The browser upload page under /_upload (bucket names cannot start with "_", so it
 * never shadows S3). Enabled only when UPLOAD_PAGE_ACCESS_KEY_ID names an access key: the
 * page's uploads act as that key's user, whose secret is read from D1 and never leaves
 * the worker. With UPLOAD_PAGE_TOKEN set, the JSON endpoints require it as a Bearer
 * token (anyone who can reach an enabled page can otherwise upload as that user).
 *
 *   GET  /_upload             the page
 *   GET  /_upload/app.js      its script
 *   POST /_upload/form        {filename} → presigned POST {url, fields} (SSE-KMS, 15 min)
 *   GET  /_upload/object?key  what was stored (size, ETag, key ARN) + presigned GET link
 */
import { Hono, type Context } from "hono";
import type { Env } from "../env";
import { statObject } from "../objects/read";
import { validBucketName } from "../s3/addressing";
import { S3Error } from "../s3/errors";
import { makeServices, type Services } from "../services";
import { timingSafeEqualStrings, toHex } from "../util/bytes";
import { pageHtml, PAGE_SCRIPT } from "./page";
import { presignGet, presignPost, type Signer } from "./signing";

type PageEnv = { Bindings: Env };

/** Keys the page writes (and is willing to describe) all start here. */
export const PAGE_PREFIX = "page-uploads/";
const DEFAULT_BUCKET = "uploads";
/** Workers accept request bodies up to 100 MB on the smaller plans. */
const DEFAULT_MAX_BYTES = 100 * 1000 * 1000;
const FORM_TTL_SECONDS = 15 * 60;
const DOWNLOAD_TTL_SECONDS = 60 * 60;

interface PageConfig {
  accessKeyId: string;
  bucket: string;
  maxBytes: number;
  token: string | null;
}

function pageConfig(env: Env): PageConfig | null {
  const accessKeyId = env.UPLOAD_PAGE_ACCESS_KEY_ID?.trim();
  if (!accessKeyId) return null;
  const max = Number(env.UPLOAD_PAGE_MAX_BYTES);
  return {
    accessKeyId,
    bucket: env.UPLOAD_PAGE_BUCKET?.trim() || DEFAULT_BUCKET,
    maxBytes: Number.isSafeInteger(max) && max > 0 ? max : DEFAULT_MAX_BYTES,
    token: env.UPLOAD_PAGE_TOKEN?.trim() || null,
  };
}

export const uploadPage = new Hono<PageEnv>();

const SECURITY_HEADERS = {
  "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
  "Cache-Control": "no-store",
};

uploadPage.use("*", async (c, next) => {
  if (!pageConfig(c.env)) return c.text("Not Found", 404);
  await next();
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) c.res.headers.set(name, value);
});

uploadPage.onError((error, c) => {
  if (error instanceof S3Error) return c.json({ error: `${error.code}: ${error.message}` }, error.status as 400);
  console.error(JSON.stringify({ event: "upload-page-error", name: error.name, message: error.message }));
  return c.json({ error: "internal error" }, 500);
});

uploadPage.get("/", (c) => {
  const config = pageConfig(c.env)!;
  return c.html(pageHtml({ bucket: config.bucket, maxBytes: config.maxBytes, tokenRequired: config.token !== null }));
});

uploadPage.get("/app.js", (c) => c.body(PAGE_SCRIPT, 200, { "Content-Type": "text/javascript; charset=utf-8" }));

uploadPage.post("/form", async (c) => {
  const config = pageConfig(c.env)!;
  if (!authorized(c, config)) return c.json({ error: "a valid access token is required" }, 401);
  const body = await c.req.json<{ filename?: unknown; size?: unknown }>().catch(() => ({}) as { filename?: unknown; size?: unknown });
  if (typeof body.size === "number" && body.size > config.maxBytes) return c.json({ error: `The file is larger than ${config.maxBytes} bytes.` }, 400);
  const services = makeServices(c.env);
  const signer = await pageSigner(services, config);
  await ensureBucket(services, config, signer.tenantId);
  const day = new Date().toISOString().slice(0, 10);
  const random = toHex(crypto.getRandomValues(new Uint8Array(6)));
  const grant = await presignPost(signer, {
    origin: new URL(c.req.url).origin,
    bucket: config.bucket,
    key: `${PAGE_PREFIX}${day}/${random}/\${filename}`,
    fields: { "x-amz-server-side-encryption": "aws:kms", success_action_status: "201" },
    conditions: [["starts-with", "$Content-Type", ""], ["content-length-range", 0, config.maxBytes]],
    expiresInSeconds: FORM_TTL_SECONDS,
  });
  return c.json(grant);
});

uploadPage.get("/object", async (c) => {
  const config = pageConfig(c.env)!;
  if (!authorized(c, config)) return c.json({ error: "a valid access token is required" }, 401);
  const key = c.req.query("key") ?? "";
  if (!key.startsWith(PAGE_PREFIX)) return c.json({ error: "not an upload-page key" }, 400);
  const services = makeServices(c.env);
  const signer = await pageSigner(services, config);
  const bucket = await services.buckets.get(config.bucket);
  if (!bucket || bucket.tenantId !== signer.tenantId) return c.json({ error: "the upload bucket does not exist" }, 404);
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

function authorized(c: Context<PageEnv>, config: PageConfig): boolean {
  if (config.token === null) return true;
  const header = c.req.header("authorization") ?? "";
  return header.startsWith("Bearer ") && timingSafeEqualStrings(header.slice(7).trim(), config.token);
}

async function pageSigner(services: Services, config: PageConfig): Promise<Signer & { tenantId: string }> {
  const identity = await services.identities.lookup(config.accessKeyId);
  if (!identity) throw new S3Error("InvalidAccessKeyId", 500, "UPLOAD_PAGE_ACCESS_KEY_ID does not name an active access key.");
  return { accessKeyId: config.accessKeyId, secret: identity.secret, region: services.config.region, tenantId: identity.principal.tenantId };
}

/** The page's bucket is created for the page's tenant on first use. */
async function ensureBucket(services: Services, config: PageConfig, tenantId: string): Promise<void> {
  if (!validBucketName(config.bucket)) throw new S3Error("InvalidBucketName", 500, "UPLOAD_PAGE_BUCKET is not a valid bucket name.");
  const existing = await services.buckets.get(config.bucket);
  const bucket = existing ?? (await services.buckets.create({ name: config.bucket, tenantId, region: services.config.region })).bucket;
  if (bucket.tenantId !== tenantId) throw new S3Error("BucketAlreadyExists", 409, "UPLOAD_PAGE_BUCKET belongs to another tenant.");
}
