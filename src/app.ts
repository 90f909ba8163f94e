import { Hono } from "hono";
import { admin } from "./admin/routes";
import type { Env } from "./env";
import { handleKms, isKmsRequest } from "./kms-api/handler";
import { makeServices, type Services } from "./services";
import type { Bucket } from "./store/buckets";
import { handleS3 } from "./s3/dispatch";
import { applyCorsHeaders, handlePreflight } from "./s3/handlers/cors";
import { reasonPhrase } from "./s3/reason";
import { errorResponse, hostId, newRequestId, toS3Error } from "./s3/respond";
import { uploadPage } from "./upload-page/routes";

type AppEnv = { Bindings: Env; Variables: { requestId: string } };

/** Assembles the worker: the admin API under /_admin and the S3 REST API everywhere else. */
export function createApp(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();

  app.route("/_admin", admin);
  app.route("/_upload", uploadPage);

  // The AWS KMS JSON API (TrentService) shares the endpoint: S3 never sends X-Amz-Target.
  app.post("/", async (c, next) => (isKmsRequest(c.req.raw) ? handleKms(c.req.raw, makeServices(c.env)) : next()));

  app.all("*", async (c) => {
    const requestId = newRequestId();
    let response: Response;
    let services: Services | null = null;
    const seen: { bucket?: Bucket } = {};
    try {
      services = makeServices(c.env);
      // CORS preflights are answered from bucket rules, before and without authentication.
      response = c.req.method === "OPTIONS" ? await handlePreflight(c.req.raw, services) : await handleS3(c.req.raw, services, requestId, seen);
    } catch (error) {
      response = errorResponse(toS3Error(error, requestId), c.req.raw, requestId);
    }
    const headers = writableHeaders(response);
    if (services) await applyCorsHeaders(c.req.raw, headers, services, seen.bucket).catch(() => {});
    headers.set("x-amz-request-id", requestId);
    headers.set("x-amz-id-2", hostId(requestId));
    headers.set("Server", "S3-SSE-KMS-Gateway");
    return new Response(response.body, { status: response.status, statusText: response.statusText || reasonPhrase(response.status), headers });
  });

  return app;
}

/**
 * The response's own headers when they may be changed (every Response a handler builds),
 * else a copy (immutable ones, e.g. from fetch). The response is rebuilt below anyway, for
 * its reason phrase, and that copies them once more.
 */
function writableHeaders(response: Response): Headers {
  try {
    response.headers.set("x-amz-request-id", "");
    return response.headers;
  } catch {
    return new Headers(response.headers);
  }
}
