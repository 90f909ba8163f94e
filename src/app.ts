import { Hono } from "hono";
import { admin } from "./admin/routes";
import type { Env } from "./env";
import { makeServices } from "./services";
import { handleS3 } from "./s3/dispatch";
import { errorResponse, hostId, newRequestId, toS3Error } from "./s3/respond";

type AppEnv = { Bindings: Env; Variables: { requestId: string } };

/** Assembles the worker: the admin API under /_admin and the S3 REST API everywhere else. */
export function createApp(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();

  app.route("/_admin", admin);

  app.all("*", async (c) => {
    const requestId = newRequestId();
    let response: Response;
    try {
      response = await handleS3(c.req.raw, makeServices(c.env), requestId);
    } catch (error) {
      response = errorResponse(toS3Error(error, requestId), c.req.raw, requestId);
    }
    // Handlers may return immutable responses (e.g. from fetch); copy headers once.
    const headers = new Headers(response.headers);
    headers.set("x-amz-request-id", requestId);
    headers.set("x-amz-id-2", hostId(requestId));
    headers.set("Server", "S3-SSE-KMS-Gateway");
    return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
  });

  return app;
}
