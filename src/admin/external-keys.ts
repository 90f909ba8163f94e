import { Hono } from "hono";
import type { Env } from "../env";
import { S3Error } from "../errors";
import { externalCallCounts } from "../kms/external-client";
import { BindingError, type ExternalBindingInput } from "../kms/external";
import { makeServices } from "../services";

type AdminEnv = { Bindings: Env };

/**
 * CMKs rooted in an external KMS (README, "Keys rooted in your KMS"), mounted under
 * /_admin behind its Bearer token. Credentials go in once and are sealed under the master
 * secret (or named as Worker secrets); no answer ever shows them again.
 */
export const externalKeys = new Hono<AdminEnv>();

const FIELDS = ["endpoint", "region", "externalKeyId", "accessKeyId", "secretAccessKey", "credentialsSecret"] as const;

/** Creates a customer CMK of the tenant whose root is the external key. */
externalKeys.post("/tenants/:id/external-keys", async (c) => {
  const services = makeServices(c.env);
  const tenantId = c.req.param("id");
  if (!(await services.identities.getTenant(tenantId))) return c.json({ error: "no such tenant" }, 404);
  const body = await c.req.json<Record<string, unknown>>().catch(() => null);
  if (!body) return c.json({ error: "body must be a JSON object" }, 400);
  const input: Partial<Record<(typeof FIELDS)[number], string>> = {};
  for (const field of FIELDS) {
    const value = body[field];
    if (value === undefined || value === null) continue;
    if (typeof value !== "string") return c.json({ error: `${field} must be a string` }, 400);
    input[field] = value;
  }
  const description = typeof body["description"] === "string" ? body["description"] : "";
  if (!input.endpoint || !input.region || !input.externalKeyId) return c.json({ error: "endpoint, region and externalKeyId are required" }, 400);
  const binding = input as ExternalBindingInput;
  const invalid = services.keys.external.validate(binding);
  if (invalid) return c.json({ error: invalid }, 400);
  try {
    const key = await services.keys.external.createKey(tenantId, services.config.region, description, binding);
    return c.json({ keyId: key.id, arn: key.arn, origin: key.origin, external: await services.keys.external.info(key) }, 201);
  } catch (error) {
    // The external KMS refused or did not answer: nothing was stored.
    if (error instanceof S3Error) return c.json({ error: `the external KMS did not give a data key: ${error.code}`, code: error.code }, error.status === 503 ? 503 : 502);
    throw error;
  }
});

/** The binding of an external CMK (endpoint, region, external key id, where its credentials are). */
externalKeys.get("/kms/keys/:keyId/external", async (c) => {
  const services = makeServices(c.env);
  const key = await services.keys.registry.get(c.req.param("keyId"));
  if (!key || key.origin !== "EXTERNAL_KEY_STORE") return c.json({ error: "no such external key" }, 404);
  return c.json({ keyId: key.id, arn: key.arn, state: key.state, external: await services.keys.external.info(key) });
});

/**
 * New credentials for an external CMK (rotated at the external KMS): checked by decrypting
 * the key's current root with them before they replace the old ones.
 */
externalKeys.put("/kms/keys/:keyId/external/credentials", async (c) => {
  const services = makeServices(c.env);
  const key = await services.keys.registry.get(c.req.param("keyId"));
  if (!key || key.origin !== "EXTERNAL_KEY_STORE" || key.state === "Destroyed") return c.json({ error: "no such external key" }, 404);
  const body = await c.req.json<Record<string, unknown>>().catch(() => null);
  if (!body) return c.json({ error: "body must be a JSON object" }, 400);
  const input: { accessKeyId?: string; secretAccessKey?: string; credentialsSecret?: string } = {};
  for (const field of ["accessKeyId", "secretAccessKey", "credentialsSecret"] as const) {
    const value = body[field];
    if (value === undefined || value === null) continue;
    if (typeof value !== "string") return c.json({ error: `${field} must be a string` }, 400);
    input[field] = value;
  }
  try {
    return c.json({ keyId: key.id, arn: key.arn, external: await services.keys.external.updateCredentials(key, input) });
  } catch (error) {
    if (error instanceof BindingError) return c.json({ error: error.message }, 400);
    if (error instanceof S3Error) return c.json({ error: `the external KMS refused the new credentials: ${error.code}`, code: error.code }, error.status === 503 ? 503 : 502);
    throw error;
  }
});

/** External KMS calls made by the isolate that answers (tests and operators count them). */
externalKeys.get("/kms/external/calls", (c) => c.json({ calls: { ...externalCallCounts } }));
