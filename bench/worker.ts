/**
 * Benchmark-only worker: the gateway unchanged, plus a bare R2 passthrough under
 * /_passthrough/<key> in the same workerd process and on the same local R2, so encrypted
 * and unencrypted transfers are measured side by side. Never deployed (bench/wrangler.toml).
 */
import gateway from "../src/index";
import type { Env } from "../src/env";

export default {
  async fetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
    const url = new URL(request.url);
    if (!url.pathname.startsWith("/_passthrough/")) return gateway.fetch(request, env, ctx);
    const key = "_passthrough/" + decodeURIComponent(url.pathname.slice("/_passthrough/".length));
    if (request.method === "PUT") {
      const object = await env.OBJECTS.put(key, request.body);
      return new Response(null, { headers: { ETag: `"${object?.etag}"` } });
    }
    if (request.method === "GET") {
      const range = request.headers.get("range");
      const m = range ? /^bytes=(\d+)-(\d+)$/.exec(range) : null;
      const object = await env.OBJECTS.get(key, m ? { range: { offset: Number(m[1]), length: Number(m[2]) - Number(m[1]) + 1 } } : {});
      if (!object) return new Response("not found", { status: 404 });
      return new Response(object.body, { status: m ? 206 : 200, headers: { "Content-Length": String(m ? Number(m[2]) - Number(m[1]) + 1 : object.size) } });
    }
    if (request.method === "DELETE") {
      await env.OBJECTS.delete(key);
      return new Response(null, { status: 204 });
    }
    return new Response("method not allowed", { status: 405 });
  },
  scheduled: gateway.scheduled,
} satisfies ExportedHandler<Env>;
