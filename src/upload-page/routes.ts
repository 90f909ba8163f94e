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
 *   POST /_upload/multipart/* files above one part: multipart.ts
 */
import { Hono, type Context } from "hono";
import { statObject } from "../objects/read";
import { S3Error } from "../errors";
import { makeServices } from "../services";
import { authorize, ensureBucket, newPrefix, pageSigner, requireReceipt, type PageEnv } from "./access";
import { pageConfig, refusal } from "./config";
import { PageError, readJsonObject } from "./json-body";
import { addMultipartRoutes } from "./multipart";
import { pageHtml } from "./page";
import { PAGE_SCRIPT } from "./script";
import { issueReceipt } from "./receipt";
import { presignGet, presignPost } from "./signing";

export { PAGE_PREFIX } from "./access";
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

addMultipartRoutes(uploadPage);
