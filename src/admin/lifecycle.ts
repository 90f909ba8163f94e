import { Hono, type Context } from "hono";
import { auditPage } from "../audit/audit";
import type { Env } from "../env";
import { runKeyLifecycle } from "../kms/scheduled";
import { MAX_MOVES_PER_CALL, RewrapJob } from "../rotation/job";
import { masterStatus } from "../rotation/status";
import { makeServices } from "../services";

type AdminEnv = { Bindings: Env };

/**
 * Operator endpoints for key lifecycle (mounted under /_admin, behind its Bearer token):
 * master-secret status and the rewrap job, the per-bucket encryption audit, and a manual
 * run of the key lifecycle tick. Each call does bounded work; the admin CLI loops.
 */
export const lifecycle = new Hono<AdminEnv>();

/** Which master versions are in use, and which configured secrets can be deleted. */
lifecycle.get("/master/status", async (c) => c.json(await masterStatus(new RewrapJob(c.env))));

/**
 * Runs the rewrap job for one bounded step. With `start` (default true) a pass towards the
 * write version is started when none is running; `start: false` only continues one (the
 * CLI's follow-up calls), so a finished pass is not restarted by accident.
 */
lifecycle.post("/master/rewrap", async (c) => {
  const body = await jsonBody<{ start?: boolean; maxObjects?: number; maxSeconds?: number }>(c);
  const maxObjects = bounded(body.maxObjects, 1, 10_000, 1000);
  const maxSeconds = bounded(body.maxSeconds, 1, 25, 10);
  if (maxObjects === null || maxSeconds === null) return c.json({ error: "maxObjects must be 1-10000 and maxSeconds 1-25" }, 400);
  const job = new RewrapJob(c.env);
  if (body.start !== false && !(await job.running())) await job.start("admin");
  const result = await job.step(`admin:${crypto.randomUUID()}`, { maxObjects, maxMoves: Math.min(maxObjects, MAX_MOVES_PER_CALL), maxMs: maxSeconds * 1000 });
  return c.json({ ...result, targetVersion: job.target });
});

lifecycle.get("/master/rewrap", async (c) => {
  const job = new RewrapJob(c.env);
  const latest = await job.latest();
  return c.json({ targetVersion: job.target, running: await job.running(), latest, failures: latest ? await job.failures(latest.id, null, 100) : [] });
});

lifecycle.post("/master/rewrap/cancel", async (c) => {
  const cancelled = await new RewrapJob(c.env).cancel();
  return cancelled ? c.json({ cancelled }) : c.json({ error: "no rewrap pass is running" }, 404);
});

lifecycle.get("/master/rewrap/:id/failures", async (c) => {
  const id = Number(c.req.param("id"));
  const limit = bounded(c.req.query("limit"), 1, 1000, 100);
  if (!Number.isSafeInteger(id) || limit === null) return c.json({ error: "bad pass id or limit" }, 400);
  const job = new RewrapJob(c.env);
  if (!(await job.get(id))) return c.json({ error: "no such pass" }, 404);
  const failures = await job.failures(id, c.req.query("after") ?? null, limit);
  return c.json({ failures, ...(failures.length === limit ? { next: failures[failures.length - 1]!.r2Key } : {}) });
});

lifecycle.get("/buckets", async (c) => {
  const buckets = await makeServices(c.env).buckets.listAll();
  return c.json({ buckets: buckets.map((b) => ({ name: b.name, tenantId: b.tenantId, region: b.region, createdAt: b.createdAt })) });
});

/** One page of a bucket's encryption audit; follow `cursor` until `truncated` is false. */
lifecycle.get("/buckets/:name/audit", async (c) => {
  const services = makeServices(c.env);
  const bucket = await services.buckets.get(c.req.param("name"));
  if (!bucket) return c.json({ error: "no such bucket" }, 404);
  const deep = c.req.query("deep") === "1" || c.req.query("deep") === "true";
  const limit = bounded(c.req.query("limit"), 1, 1000, deep ? 100 : 1000);
  const maxBytes = bounded(c.req.query("maxBytes"), 1, 1024 ** 3, 256 * 1024 ** 2);
  if (limit === null || maxBytes === null) return c.json({ error: "limit must be 1-1000" }, 400);
  const cursor = c.req.query("cursor");
  return c.json(await auditPage(services.objects, bucket, { limit, deep, maxBytes, ...(cursor ? { cursor } : {}) }));
});

/** Runs the key lifecycle tick now (destroy keys whose deletion window ended, rotate due keys). */
lifecycle.post("/kms/lifecycle", async (c) => c.json(await runKeyLifecycle(c.env.DB, Date.now())));

async function jsonBody<T extends object>(c: Context<AdminEnv>): Promise<Partial<T>> {
  return c.req.json<Partial<T>>().catch(() => ({}) as Partial<T>);
}

/** An integer in [min, max], the fallback when absent, null when present but invalid. */
function bounded(value: unknown, min: number, max: number, fallback: number): number | null {
  if (value === undefined || value === null || value === "") return fallback;
  const n = Number(value);
  return Number.isInteger(n) && n >= min && n <= max ? n : null;
}
