import { Sha256 } from "@aws-crypto/sha256-js";
import { SignatureV4 } from "@smithy/signature-v4";
import { env, exports } from "cloudflare:workers";
import { makeServices } from "../../src/services";
import { encodeKey } from "./sigv4-oracle";

export const HOST = "gw.test";
export const TENANT_A = "000000000000000000000000000000aa";
export const TENANT_B = "000000000000000000000000000000bb";

export const CREDENTIALS = {
  adminA: { accessKeyId: "LOCALADMINA", secretAccessKey: "local-admin-a-secret" },
  memberA: { accessKeyId: "LOCALMEMBERA", secretAccessKey: "local-member-a-secret" },
  adminB: { accessKeyId: "LOCALADMINB", secretAccessKey: "local-admin-b-secret" },
} as const;
export type Who = keyof typeof CREDENTIALS;

/** Seeds the three local identities straight into D1 (idempotent). */
export async function seedIdentities(): Promise<void> {
  const { identities } = makeServices(env);
  const wanted = [
    { tenant: TENANT_A, user: "admin-a", role: "tenant_admin" as const, who: "adminA" as const },
    { tenant: TENANT_A, user: "member-a", role: "member" as const, who: "memberA" as const },
    { tenant: TENANT_B, user: "admin-b", role: "tenant_admin" as const, who: "adminB" as const },
  ];
  for (const w of wanted) {
    if (!(await identities.getTenant(w.tenant))) await identities.createTenant({ id: w.tenant, name: w.tenant });
    const user = (await identities.findUser(w.tenant, w.user)) ?? (await identities.createUser({ tenantId: w.tenant, name: w.user, role: w.role }));
    const keys = await identities.listAccessKeys(user.id);
    const c = CREDENTIALS[w.who];
    if (!keys.some((k) => k.accessKeyId === c.accessKeyId)) await identities.createAccessKey({ userId: user.id, accessKeyId: c.accessKeyId, secret: c.secretAccessKey });
  }
}

export interface Call {
  method: string;
  bucket?: string;
  key?: string;
  query?: Record<string, string>;
  headers?: Record<string, string>;
  body?: Uint8Array | string;
  /** Sign with UNSIGNED-PAYLOAD instead of the body's SHA-256. */
  unsigned?: boolean;
  /** Send without any signature. */
  anonymous?: boolean;
}

async function sha256Hex(body: Uint8Array | string | undefined): Promise<string> {
  const bytes = typeof body === "string" ? new TextEncoder().encode(body) : (body ?? new Uint8Array(0));
  return Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Signs (SigV4, via the AWS SDK's own signer) and sends a request to the worker under test. */
export async function call(who: Who, c: Call): Promise<Response> {
  const path = "/" + (c.bucket ?? "") + (c.key !== undefined ? "/" + encodeKey(c.key) : "");
  const query = c.query ?? {};
  const qs = Object.keys(query)
    .sort()
    .map((k) => (query[k] === "" ? encodeURIComponent(k) : `${encodeURIComponent(k)}=${encodeURIComponent(query[k]!)}`))
    .join("&");
  const headers: Record<string, string> = { host: HOST, ...(c.headers ?? {}) };
  if (!c.anonymous) {
    headers["x-amz-content-sha256"] = c.unsigned ? "UNSIGNED-PAYLOAD" : await sha256Hex(c.body);
    const signer = new SignatureV4({ service: "s3", region: "us-east-1", credentials: CREDENTIALS[who], sha256: Sha256, uriEscapePath: false });
    const signed = await signer.sign({ method: c.method, protocol: "http:", hostname: HOST, path, query, headers, body: c.body });
    Object.assign(headers, signed.headers);
  }
  const h = new Headers();
  for (const [k, v] of Object.entries(headers)) if (k !== "host") h.set(k, v);
  return (exports as unknown as { default: Fetcher }).default.fetch(new Request(`http://${HOST}${path}${qs ? "?" + qs : ""}`, { method: c.method, headers: h, body: c.method === "GET" || c.method === "HEAD" ? undefined : c.body }));
}

export async function errorCode(response: Response): Promise<string | null> {
  const text = await response.text();
  return /<Code>([^<]+)<\/Code>/.exec(text)?.[1] ?? null;
}

export async function createBucket(who: Who, bucket: string): Promise<void> {
  const r = await call(who, { method: "PUT", bucket });
  if (r.status !== 200) throw new Error(`create bucket ${bucket}: ${r.status} ${await r.text()}`);
}

/**
 * Removes the bucket's Block Public Access configuration (DeletePublicAccessBlock), as a
 * user must before giving a bucket a public policy: new buckets start with all four
 * settings on, which refuses such a policy and keeps other tenants out of it.
 */
export async function allowPublicPolicies(who: Who, bucket: string): Promise<void> {
  const r = await call(who, { method: "DELETE", bucket, query: { publicAccessBlock: "" } });
  if (r.status !== 204) throw new Error(`delete public access block of ${bucket}: ${r.status} ${await r.text()}`);
}
