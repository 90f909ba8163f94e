import { Hono } from "hono";
import type { Env } from "../env";
import { PUBLIC_ACCESS_BLOCK_FIELDS, type PublicAccessBlock } from "../s3/public-access";
import { makeServices } from "../services";
import { ALL_BLOCKED } from "../store/buckets";
import { IdentityError, type Role } from "../store/identities";
import { adminAuthorized } from "./auth";
import { externalKeys } from "./external-keys";
import { lifecycle } from "./lifecycle";

type AdminEnv = { Bindings: Env };

/**
 * Operator API under /_admin (bucket names cannot start with "_", so it never shadows S3).
 * JSON in and out; idempotent PUTs so scripts (dev seeding, the admin CLI) can re-run.
 */
export const admin = new Hono<AdminEnv>();

admin.use("*", async (c, next) => {
  if (!adminAuthorized(c.req.raw, c.env)) return c.json({ error: "unauthorized" }, 401);
  await next();
});

admin.onError((error, c) => {
  if (error instanceof IdentityError) return c.json({ error: error.message }, 400);
  console.error(JSON.stringify({ event: "admin-error", name: error.name, message: error.message }));
  return c.json({ error: "internal error" }, 500);
});

// Key lifecycle: master-secret status and rewrap, encryption audit (docs/key-lifecycle.md).
admin.route("/", lifecycle);
// CMKs rooted in an external KMS (README, "Keys rooted in your KMS").
admin.route("/", externalKeys);

admin.get("/tenants", async (c) => c.json({ tenants: await makeServices(c.env).identities.listTenants() }));

/** Creates the tenant if missing; answers the stored tenant either way. */
admin.put("/tenants/:id", async (c) => {
  const { identities } = makeServices(c.env);
  const id = c.req.param("id");
  const body = await c.req.json<{ name?: string }>().catch(() => ({}) as { name?: string });
  const existing = await identities.getTenant(id);
  if (existing) return c.json({ tenant: existing, created: false });
  return c.json({ tenant: await identities.createTenant({ id, name: body.name ?? id }), created: true }, 201);
});

/**
 * The tenant's Block Public Access default: the configuration every bucket it creates from
 * now on starts with (README, "Block Public Access"). Without one, all four settings are on.
 * Existing buckets keep theirs (each changes with PutPublicAccessBlock).
 */
admin.get("/tenants/:id/public-access-block", async (c) => {
  const { identities } = makeServices(c.env);
  if (!(await identities.getTenant(c.req.param("id")))) return c.json({ error: "no such tenant" }, 404);
  const stored = await identities.getPublicAccessBlockDefault(c.req.param("id"));
  return c.json({ publicAccessBlock: JSON.parse(stored ?? ALL_BLOCKED) as PublicAccessBlock, isDefault: stored === null });
});

admin.put("/tenants/:id/public-access-block", async (c) => {
  const body = await c.req.json<Record<string, unknown>>().catch(() => null);
  const config = {} as Record<string, boolean>;
  for (const field of PUBLIC_ACCESS_BLOCK_FIELDS) {
    const value = body?.[field];
    if (typeof value !== "boolean") return c.json({ error: `${PUBLIC_ACCESS_BLOCK_FIELDS.join(", ")} must each be true or false` }, 400);
    config[field] = value;
  }
  const changed = await makeServices(c.env).identities.setPublicAccessBlockDefault(c.req.param("id"), JSON.stringify(config));
  return changed ? c.json({ publicAccessBlock: config, isDefault: false }) : c.json({ error: "no such tenant" }, 404);
});

/** Back to AWS's default: all four on. */
admin.delete("/tenants/:id/public-access-block", async (c) => {
  const changed = await makeServices(c.env).identities.setPublicAccessBlockDefault(c.req.param("id"), null);
  return changed ? c.body(null, 204) : c.json({ error: "no such tenant" }, 404);
});

admin.get("/tenants/:id/users", async (c) => c.json({ users: await makeServices(c.env).identities.listUsers(c.req.param("id")) }));

admin.put("/tenants/:id/users/:name", async (c) => {
  const { identities } = makeServices(c.env);
  const tenantId = c.req.param("id");
  const name = c.req.param("name");
  const body = await c.req.json<{ role?: Role }>().catch(() => ({}) as { role?: Role });
  if (!(await identities.getTenant(tenantId))) return c.json({ error: "no such tenant" }, 404);
  const existing = await identities.findUser(tenantId, name);
  if (existing) return c.json({ user: existing, created: false });
  return c.json({ user: await identities.createUser({ tenantId, name, role: body.role ?? "member" }), created: true }, 201);
});

/** Creates an access key for a user; the secret is generated unless given (seeding). */
admin.post("/tenants/:id/users/:name/access-keys", async (c) => {
  const { identities } = makeServices(c.env);
  const user = await identities.findUser(c.req.param("id"), c.req.param("name"));
  if (!user) return c.json({ error: "no such user" }, 404);
  const body = await c.req.json<{ accessKeyId?: string; secret?: string }>().catch(() => ({}) as { accessKeyId?: string; secret?: string });
  if (body.accessKeyId) {
    const known = await identities.listAccessKeys(user.id);
    if (known.some((k) => k.accessKeyId === body.accessKeyId)) return c.json({ accessKeyId: body.accessKeyId, created: false });
  }
  const key = await identities.createAccessKey({ userId: user.id, ...(body.accessKeyId ? { accessKeyId: body.accessKeyId } : {}), ...(body.secret ? { secret: body.secret } : {}) });
  return c.json({ ...key, created: true }, 201);
});

admin.get("/tenants/:id/users/:name/access-keys", async (c) => {
  const { identities } = makeServices(c.env);
  const user = await identities.findUser(c.req.param("id"), c.req.param("name"));
  if (!user) return c.json({ error: "no such user" }, 404);
  return c.json({ accessKeys: await identities.listAccessKeys(user.id) });
});

admin.put("/access-keys/:id/status", async (c) => {
  const body = await c.req.json<{ status?: string }>().catch(() => ({}) as { status?: string });
  if (body.status !== "Active" && body.status !== "Inactive") return c.json({ error: "status must be Active or Inactive" }, 400);
  const changed = await makeServices(c.env).identities.setAccessKeyStatus(c.req.param("id"), body.status);
  return changed ? c.json({ accessKeyId: c.req.param("id"), status: body.status }) : c.json({ error: "no such access key" }, 404);
});

admin.delete("/access-keys/:id", async (c) => {
  const deleted = await makeServices(c.env).identities.deleteAccessKey(c.req.param("id"));
  return deleted ? c.body(null, 204) : c.json({ error: "no such access key" }, 404);
});
