import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { makeServices } from "../../src/services";
import { pseudoRandom } from "../support/sources";
import { allowPublicPolicies, createBucket, expectError, readFully, sameBytes, seedIdentities, send, TENANT_A, TENANT_B, uniqueBucket, type Send } from "../support/s3-harness";

const SSE = "x-amz-server-side-encryption";
const KEY_ID = "x-amz-server-side-encryption-aws-kms-key-id";
const CONTEXT = "x-amz-server-side-encryption-context";
const BUCKET_KEY = "x-amz-server-side-encryption-bucket-key-enabled";
const ARN = /^arn:aws:kms:us-east-1:([0-9a-f]{32}):key\/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/;
/** Key states are read fresh from D1 on these requests (no isolate cache TTL to wait out). */
const FRESH: Send["env"] = { KEY_CACHE_TTL_SECONDS: "0" };

const bucket = uniqueBucket("ssekms");
const kms = { [SSE]: "aws:kms" };

async function customerKey(tenantId = TENANT_A): Promise<{ id: string; arn: string }> {
  const key = await makeServices(env).keys.registry.create({ tenantId, region: "us-east-1", kind: "customer", description: "test" });
  return { id: key.id, arn: key.arn };
}

async function setState(id: string, state: "Enabled" | "Disabled" | "PendingDeletion"): Promise<void> {
  await env.DB.prepare("UPDATE kms_keys SET state = ?, deletion_at = ? WHERE id = ?")
    .bind(state, state === "PendingDeletion" ? Date.now() + 7 * 86_400_000 : null, id)
    .run();
}

/** A brand-new tenant with one tenant_admin and its credentials (for first-use tests). */
async function freshTenant(): Promise<{ tenantId: string; credentials: { accessKeyId: string; secretAccessKey: string } }> {
  const { identities } = makeServices(env);
  const tenantId = Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
  await identities.createTenant({ id: tenantId, name: `t-${tenantId}` });
  const user = await identities.createUser({ tenantId, name: "admin", role: "tenant_admin" });
  const accessKeyId = `AK${tenantId.slice(0, 16).toUpperCase()}`;
  const secretAccessKey = `secret-${tenantId}`;
  await identities.createAccessKey({ userId: user.id, accessKeyId, secret: secretAccessKey });
  return { tenantId, credentials: { accessKeyId, secretAccessKey } };
}

async function put(key: string, body: string | Uint8Array, headers: Record<string, string> = {}, extra: Partial<Send> = {}) {
  return send("adminA", { method: "PUT", bucket, key, body, headers, ...extra });
}

async function getText(key: string, extra: Partial<Send> = {}) {
  const r = await send("adminA", { method: "GET", bucket, key, ...extra });
  return { status: r.status, headers: r.headers, text: await r.text() };
}

beforeAll(async () => {
  await seedIdentities();
  await createBucket("adminA", bucket);
});

describe("choosing the encryption", () => {
  it("aws:kms without a key id uses the tenant's default CMK, answered as a full ARN on PUT, GET and HEAD", async () => {
    const r = await put("default-kms", "secret", kms);
    expect(r.status).toBe(200);
    expect(r.headers.get(SSE)).toBe("aws:kms");
    const arn = r.headers.get(KEY_ID)!;
    const [, tenant, id] = ARN.exec(arn)!;
    expect(tenant).toBe(TENANT_A);
    const row = await env.DB.prepare("SELECT kind, tenant_id FROM kms_keys WHERE id = ?").bind(id).first<{ kind: string; tenant_id: string }>();
    expect(row).toEqual({ kind: "default", tenant_id: TENANT_A });
    for (const method of ["GET", "HEAD"]) {
      const g = await send("adminA", { method, bucket, key: "default-kms" });
      expect(g.status).toBe(200);
      expect(g.headers.get(SSE)).toBe("aws:kms");
      expect(g.headers.get(KEY_ID)).toBe(arn);
      if (method === "GET") expect(await g.text()).toBe("secret");
    }
    // The same default key is used again.
    expect((await put("default-kms-2", "x", kms)).headers.get(KEY_ID)).toBe(arn);
  });

  it("accepts a customer key by bare uuid and by full ARN, and answers the full ARN", async () => {
    const key = await customerKey();
    const byId = await put("by-uuid", "one", { ...kms, [KEY_ID]: key.id });
    expect(byId.status).toBe(200);
    expect(byId.headers.get(KEY_ID)).toBe(key.arn);
    const byUpperId = await put("by-uuid-upper", "one", { ...kms, [KEY_ID]: key.id.toUpperCase() });
    expect(byUpperId.headers.get(KEY_ID)).toBe(key.arn);
    const byArn = await put("by-arn", "two", { ...kms, [KEY_ID]: key.arn });
    expect(byArn.status).toBe(200);
    expect(byArn.headers.get(KEY_ID)).toBe(key.arn);
    for (const k of ["by-uuid", "by-arn"]) {
      const head = await send("adminA", { method: "HEAD", bucket, key: k });
      expect(head.headers.get(KEY_ID)).toBe(key.arn);
    }
    expect((await getText("by-arn")).text).toBe("two");
  });

  it("AES256 is SSE-S3: no key id in any response, and never the tenant's default SSE-KMS key", async () => {
    const r = await put("sse-s3", "plain?", { [SSE]: "AES256" });
    expect(r.status).toBe(200);
    expect(r.headers.get(SSE)).toBe("AES256");
    expect(r.headers.get(KEY_ID)).toBeNull();
    const g = await getText("sse-s3");
    expect(g.headers.get(SSE)).toBe("AES256");
    expect(g.headers.get(KEY_ID)).toBeNull();
    expect(g.text).toBe("plain?");
  });

  it("no header and no bucket default → SSE-S3", async () => {
    const r = await put("no-header", "x");
    expect(r.headers.get(SSE)).toBe("AES256");
    expect(r.headers.get(KEY_ID)).toBeNull();
  });

  it("bucket default encryption: Put/Get/DeleteBucketEncryption in AWS XML, applied to uploads without a header", async () => {
    const b = uniqueBucket("default-enc");
    await createBucket("adminA", b);
    // Without a configuration, S3 reports SSE-S3 as the default.
    const initial = await send("adminA", { method: "GET", bucket: b, query: { encryption: "" } });
    expect(initial.status).toBe(200);
    expect(await initial.text()).toContain("<SSEAlgorithm>AES256</SSEAlgorithm>");

    const key = await customerKey();
    const xml = `<ServerSideEncryptionConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>aws:kms</SSEAlgorithm><KMSMasterKeyID>${key.arn}</KMSMasterKeyID></ApplyServerSideEncryptionByDefault><BucketKeyEnabled>true</BucketKeyEnabled></Rule></ServerSideEncryptionConfiguration>`;
    expect((await send("adminA", { method: "PUT", bucket: b, query: { encryption: "" }, body: xml })).status).toBe(200);
    const got = await (await send("adminA", { method: "GET", bucket: b, query: { encryption: "" } })).text();
    expect(got).toContain("<SSEAlgorithm>aws:kms</SSEAlgorithm>");
    expect(got).toContain(`<KMSMasterKeyID>${key.arn}</KMSMasterKeyID>`);
    expect(got).toContain("<BucketKeyEnabled>true</BucketKeyEnabled>");

    const implicit = await send("adminA", { method: "PUT", bucket: b, key: "implicit", body: "d" });
    expect(implicit.status).toBe(200);
    expect(implicit.headers.get(SSE)).toBe("aws:kms");
    expect(implicit.headers.get(KEY_ID)).toBe(key.arn);
    expect(implicit.headers.get(BUCKET_KEY)).toBe("true");
    // An explicit header still wins over the default.
    const explicit = await send("adminA", { method: "PUT", bucket: b, key: "explicit", body: "d", headers: { [SSE]: "AES256" } });
    expect(explicit.headers.get(SSE)).toBe("AES256");
    // A member's plain PUT into a bucket whose default is SSE-KMS would create an SSE-KMS
    // object: refused as AWS refuses a principal without KMS permissions; nothing stored.
    // SSE-S3 asked for explicitly is still fine.
    const member = await expectError(send("memberA", { method: "PUT", bucket: b, key: "by-member", body: "m" }), 403, "AccessDenied");
    expect(member.message).toBe("Only users with the tenant_admin role can use SSE-KMS.");
    expect((await send("adminA", { method: "HEAD", bucket: b, key: "by-member" })).status).toBe(404);
    const memberS3 = await send("memberA", { method: "PUT", bucket: b, key: "by-member", body: "m", headers: { [SSE]: "AES256" } });
    expect(memberS3.status).toBe(200);
    expect(memberS3.headers.get(SSE)).toBe("AES256");
    // Nor may a member remove or replace the SSE-KMS default.
    await expectError(send("memberA", { method: "DELETE", bucket: b, query: { encryption: "" } }), 403, "AccessDenied");
    const sseS3Default = `<ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>AES256</SSEAlgorithm></ApplyServerSideEncryptionByDefault></Rule></ServerSideEncryptionConfiguration>`;
    await expectError(send("memberA", { method: "PUT", bucket: b, query: { encryption: "" }, body: sseS3Default }), 403, "AccessDenied");
    expect(await (await send("adminA", { method: "GET", bucket: b, query: { encryption: "" } })).text()).toContain("<SSEAlgorithm>aws:kms</SSEAlgorithm>");

    // aws:kms default without a key id → the tenant's default CMK.
    const noKey = `<ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>aws:kms</SSEAlgorithm></ApplyServerSideEncryptionByDefault></Rule></ServerSideEncryptionConfiguration>`;
    expect((await send("adminA", { method: "PUT", bucket: b, query: { encryption: "" }, body: noKey })).status).toBe(200);
    const viaDefault = await send("adminA", { method: "PUT", bucket: b, key: "via-default-cmk", body: "d" });
    expect(viaDefault.headers.get(SSE)).toBe("aws:kms");
    const [, , id] = ARN.exec(viaDefault.headers.get(KEY_ID)!)!;
    expect((await env.DB.prepare("SELECT kind FROM kms_keys WHERE id = ?").bind(id).first<{ kind: string }>())?.kind).toBe("default");

    expect((await send("adminA", { method: "DELETE", bucket: b, query: { encryption: "" } })).status).toBe(204);
    const after = await send("adminA", { method: "PUT", bucket: b, key: "after-delete", body: "d" });
    expect(after.headers.get(SSE)).toBe("AES256");
  });

  it("bucket encryption configuration errors", async () => {
    const b = uniqueBucket("enc-errors");
    await createBucket("adminA", b);
    const doc = (alg: string, extra = "") =>
      `<ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>${alg}</SSEAlgorithm>${extra}</ApplyServerSideEncryptionByDefault></Rule></ServerSideEncryptionConfiguration>`;
    await expectError(send("adminA", { method: "PUT", bucket: b, query: { encryption: "" }, body: doc("DES") }), 400, "MalformedXML");
    await expectError(send("adminA", { method: "PUT", bucket: b, query: { encryption: "" }, body: "<nope" }), 400, "MalformedXML");
    await expectError(send("adminA", { method: "PUT", bucket: b, query: { encryption: "" }, body: doc("AES256", "<KMSMasterKeyID>abc</KMSMasterKeyID>") }), 400, "InvalidArgument");
    await expectError(send("adminA", { method: "PUT", bucket: b, query: { encryption: "" }, body: doc("aws:kms", `<KMSMasterKeyID>${crypto.randomUUID()}</KMSMasterKeyID>`) }), 400, "KMS.NotFoundException");
    // Configuring SSE-KMS is an SSE-KMS interface: tenant_admin only; other tenants never.
    await expectError(send("memberA", { method: "PUT", bucket: b, query: { encryption: "" }, body: doc("aws:kms") }), 403, "AccessDenied");
    await expectError(send("adminB", { method: "PUT", bucket: b, query: { encryption: "" }, body: doc("AES256") }), 403, "AccessDenied");
    await expectError(send("adminB", { method: "GET", bucket: b, query: { encryption: "" } }), 403, "AccessDenied");
    // None of the refused configurations was stored.
    expect(await (await send("adminA", { method: "GET", bucket: b, query: { encryption: "" } })).text()).toContain("<SSEAlgorithm>AES256</SSEAlgorithm>");
  });
});

describe("the default CMK is created once per tenant", () => {
  it("10 concurrent first SSE-KMS uploads of a new tenant end with exactly one default key", async () => {
    const { tenantId, credentials } = await freshTenant();
    const b = uniqueBucket("first-use");
    const created = await send("adminA", { method: "PUT", bucket: b, credentials });
    expect(created.status).toBe(200);
    const before = await env.DB.prepare("SELECT COUNT(*) AS n FROM kms_keys WHERE tenant_id = ? AND kind = 'default'").bind(tenantId).first<{ n: number }>();
    expect(before?.n).toBe(0);
    const responses = await Promise.all(
      Array.from({ length: 10 }, (_, i) => send("adminA", { method: "PUT", bucket: b, key: `k${i}`, body: `body ${i}`, headers: kms, credentials })),
    );
    expect(responses.map((r) => r.status)).toEqual(Array(10).fill(200));
    const arns = new Set(responses.map((r) => r.headers.get(KEY_ID)));
    expect(arns.size).toBe(1);
    const rows = await env.DB.prepare("SELECT id FROM kms_keys WHERE tenant_id = ? AND kind = 'default'").bind(tenantId).all<{ id: string }>();
    expect(rows.results.length).toBe(1);
    expect([...arns][0]).toBe(`arn:aws:kms:us-east-1:${tenantId}:key/${rows.results[0]!.id}`);
    const versions = await env.DB.prepare("SELECT COUNT(*) AS n FROM kms_key_versions WHERE key_id = ?").bind(rows.results[0]!.id).first<{ n: number }>();
    expect(versions?.n).toBe(1);
    // Every object reads back under that key.
    for (let i = 0; i < 10; i++) {
      const g = await send("adminA", { method: "GET", bucket: b, key: `k${i}`, credentials });
      expect(await g.text()).toBe(`body ${i}`);
    }
  });

  it("tenants get different default keys", async () => {
    const b = uniqueBucket("tenant-b");
    await createBucket("adminB", b);
    const rb = await send("adminB", { method: "PUT", bucket: b, key: "x", body: "b", headers: kms });
    const ra = await put("tenant-a-default", "a", kms);
    expect(ARN.exec(rb.headers.get(KEY_ID)!)![1]).toBe(TENANT_B);
    expect(ARN.exec(ra.headers.get(KEY_ID)!)![1]).toBe(TENANT_A);
  });
});

describe("invalid SSE requests", () => {
  it("a key id without aws:kms → InvalidArgument (400)", async () => {
    const key = await customerKey();
    await expectError(put("bad", "x", { [KEY_ID]: key.arn }), 400, "InvalidArgument");
    await expectError(put("bad", "x", { [SSE]: "AES256", [KEY_ID]: key.arn }), 400, "InvalidArgument");
    await expectError(put("bad", "x", { [CONTEXT]: btoa('{"a":"b"}') }), 400, "InvalidArgument");
  });

  it.each(["aws:kms:dsse", "AES128", "aes256", "AWS:KMS", ""])("algorithm %j → InvalidArgument (400)", async (alg) => {
    await expectError(put("bad", "x", { [SSE]: alg }), 400, "InvalidArgument");
  });

  it.each([
    ["not base64", "%%%"],
    ["not JSON", btoa("not json")],
    ["a JSON array", btoa("[1]")],
    ["a non-string value", btoa('{"a":1}')],
  ])("an encryption context that is %s → InvalidArgument (400)", async (_label, value) => {
    await expectError(put("bad", "x", { ...kms, [CONTEXT]: value }), 400, "InvalidArgument");
  });

  it("bucket-key-enabled must be true or false", async () => {
    await expectError(put("bad", "x", { ...kms, [BUCKET_KEY]: "yes" }), 400, "InvalidArgument");
  });

  it("SSE headers on GET and HEAD → InvalidArgument (400)", async () => {
    expect((await put("readme", "r", kms)).status).toBe(200);
    const arn = (await send("adminA", { method: "HEAD", bucket, key: "readme" })).headers.get(KEY_ID)!;
    const variants: Record<string, string>[] = [kms, { [SSE]: "AES256" }, { [KEY_ID]: arn }, { [CONTEXT]: btoa("{}") }];
    for (const headers of variants) {
      await expectError(send("adminA", { method: "GET", bucket, key: "readme", headers }), 400, "InvalidArgument");
      const head = await send("adminA", { method: "HEAD", bucket, key: "readme", headers });
      expect(head.status).toBe(400);
    }
  });

  // SSE-C is implemented since issue 14 (test/integration/sse-c.test.ts): the algorithm alone lacks the key.
  it("SSE-C algorithm without a key → 400 InvalidArgument, nothing stored", async () => {
    const e = await expectError(put("ssec", "x", { "x-amz-server-side-encryption-customer-algorithm": "AES256" }), 400, "InvalidArgument");
    expect(e.message).toBe("Requests specifying Server Side Encryption with Customer provided keys must provide an appropriate secret key.");
    expect((await send("adminA", { method: "HEAD", bucket, key: "ssec" })).status).toBe(404);
  });

  it("SSE-C headers together with aws:kms (or AES256) → 400 InvalidArgument, on PUT, Copy and Create", async () => {
    const ssec = { "x-amz-server-side-encryption-customer-algorithm": "AES256", "x-amz-server-side-encryption-customer-key": btoa("k".repeat(32)) };
    const e = await expectError(put("ssec-kms", "x", { ...ssec, "x-amz-server-side-encryption": "aws:kms" }), 400, "InvalidArgument");
    expect(e.message).toBe("Server Side Encryption with Customer provided key is incompatible with the encryption method specified");
    expect(e.text).toContain("<ArgumentName>x-amz-server-side-encryption</ArgumentName>");
    await expectError(put("ssec-kms", "x", { ...ssec, "x-amz-server-side-encryption": "AES256" }), 400, "InvalidArgument");
    await expectError(send("adminA", { method: "POST", bucket, key: "ssec-kms", query: { uploads: "" }, headers: { ...ssec, "x-amz-server-side-encryption": "aws:kms" } }), 400, "InvalidArgument");
    await expectError(send("adminA", { method: "PUT", bucket, key: "ssec-kms", headers: { ...ssec, "x-amz-server-side-encryption": "aws:kms", "x-amz-copy-source": `${bucket}/readme` } }), 400, "InvalidArgument");
    expect((await send("adminA", { method: "HEAD", bucket, key: "ssec-kms" })).status).toBe(404);
  });

  it("nothing is stored by a refused request", async () => {
    expect((await send("adminA", { method: "HEAD", bucket, key: "bad" })).status).toBe(404);
  });
});

describe("key states and key errors", () => {
  it("an unknown key → KMS.NotFoundException (400), as uuid, ARN or garbage", async () => {
    const uuid = crypto.randomUUID();
    for (const id of [uuid, `arn:aws:kms:us-east-1:${TENANT_A}:key/${uuid}`, "not-a-key-id", `arn:aws:kms:eu-west-1:${TENANT_A}:key/${uuid}`]) {
      await expectError(put("unknown", "x", { ...kms, [KEY_ID]: id }), 400, "KMS.NotFoundException");
    }
    expect((await send("adminA", { method: "HEAD", bucket, key: "unknown" })).status).toBe(404);
  });

  it("another tenant's key is never usable, by uuid or ARN", async () => {
    const theirs = await customerKey(TENANT_B);
    await expectError(put("theirs", "x", { ...kms, [KEY_ID]: theirs.id }), 400, "KMS.NotFoundException");
    // By ARN it names another account's key: not ours to use (AccessDenied, as KMS answers).
    await expectError(put("theirs", "x", { ...kms, [KEY_ID]: theirs.arn }), 403, "AccessDenied");
    expect((await send("adminA", { method: "HEAD", bucket, key: "theirs" })).status).toBe(404);
  });

  it("a Disabled key → KMS.DisabledException (400) for PUT and GET; HEAD still answers; re-enabled it works again", async () => {
    const key = await customerKey();
    expect((await put("disabled", "before", { ...kms, [KEY_ID]: key.arn }, { env: FRESH })).status).toBe(200);
    await setState(key.id, "Disabled");
    try {
      await expectError(put("disabled-new", "x", { ...kms, [KEY_ID]: key.arn }, { env: FRESH }), 400, "KMS.DisabledException");
      await expectError(put("disabled-new", "x", { ...kms, [KEY_ID]: key.id }, { env: FRESH }), 400, "KMS.DisabledException");
      await expectError(send("adminA", { method: "GET", bucket, key: "disabled", env: FRESH }), 400, "KMS.DisabledException");
      await expectError(send("adminA", { method: "GET", bucket, key: "disabled", env: FRESH, headers: { range: "bytes=0-1" } }), 400, "KMS.DisabledException");
      const head = await send("adminA", { method: "HEAD", bucket, key: "disabled", env: FRESH });
      expect(head.status).toBe(200);
      expect(head.headers.get(KEY_ID)).toBe(key.arn);
      expect((await send("adminA", { method: "HEAD", bucket, key: "disabled-new", env: FRESH })).status).toBe(404);
    } finally {
      await setState(key.id, "Enabled");
    }
    expect((await getText("disabled", { env: FRESH })).text).toBe("before");
  });

  it("a data key cached by earlier reads is no way around DisableKey: the next GET (whole, ranged, checksum mode) is refused", async () => {
    // kms/data-keys.ts caches unwrapped data keys; the CMK state check must still run first.
    const key = await customerKey();
    expect((await put("warm-cache", "cached", { ...kms, [KEY_ID]: key.arn }, { env: FRESH })).status).toBe(200);
    for (let i = 0; i < 3; i++) expect((await getText("warm-cache", { env: FRESH })).text).toBe("cached");
    await setState(key.id, "Disabled");
    try {
      await expectError(send("adminA", { method: "GET", bucket, key: "warm-cache", env: FRESH }), 400, "KMS.DisabledException");
      await expectError(send("adminA", { method: "GET", bucket, key: "warm-cache", env: FRESH, headers: { range: "bytes=1-2" } }), 400, "KMS.DisabledException");
      await expectError(send("adminA", { method: "GET", bucket, key: "warm-cache", env: FRESH, headers: { "x-amz-checksum-mode": "ENABLED" } }), 400, "KMS.DisabledException");
    } finally {
      await setState(key.id, "Enabled");
    }
    expect((await getText("warm-cache", { env: FRESH })).text).toBe("cached");
  });

  it("a key pending deletion → KMS.KMSInvalidStateException (400) for PUT and GET", async () => {
    const key = await customerKey();
    expect((await put("pending", "before", { ...kms, [KEY_ID]: key.id }, { env: FRESH })).status).toBe(200);
    await setState(key.id, "PendingDeletion");
    try {
      await expectError(put("pending-new", "x", { ...kms, [KEY_ID]: key.arn }, { env: FRESH }), 400, "KMS.KMSInvalidStateException");
      await expectError(send("adminA", { method: "GET", bucket, key: "pending", env: FRESH }), 400, "KMS.KMSInvalidStateException");
    } finally {
      await setState(key.id, "Enabled");
    }
    expect((await getText("pending", { env: FRESH })).text).toBe("before");
  });

  it("a disabled default key refuses SSE-KMS uploads without a key id (and leaves SSE-S3 alone)", async () => {
    const { tenantId, credentials } = await freshTenant();
    const b = uniqueBucket("dis-default");
    expect((await send("adminA", { method: "PUT", bucket: b, credentials })).status).toBe(200);
    expect((await send("adminA", { method: "PUT", bucket: b, key: "k", body: "x", headers: kms, credentials, env: FRESH })).status).toBe(200);
    await env.DB.prepare("UPDATE kms_keys SET state = 'Disabled' WHERE tenant_id = ? AND kind = 'default'").bind(tenantId).run();
    await expectError(send("adminA", { method: "PUT", bucket: b, key: "k2", body: "x", headers: kms, credentials, env: FRESH }), 400, "KMS.DisabledException");
    expect((await send("adminA", { method: "PUT", bucket: b, key: "k3", body: "x", headers: { [SSE]: "AES256" }, credentials, env: FRESH })).status).toBe(200);
  });

  it("without bypassing the cache, a state change takes effect within KEY_CACHE_TTL_SECONDS", async () => {
    const key = await customerKey();
    const ttl = { KEY_CACHE_TTL_SECONDS: "1" };
    expect((await put("ttl", "x", { ...kms, [KEY_ID]: key.id }, { env: ttl })).status).toBe(200);
    await setState(key.id, "Disabled");
    try {
      await new Promise((resolve) => setTimeout(resolve, 1100));
      await expectError(send("adminA", { method: "GET", bucket, key: "ttl", env: ttl }), 400, "KMS.DisabledException");
    } finally {
      await setState(key.id, "Enabled");
    }
  });
});

describe("who may use SSE-KMS", () => {
  it("a member (not tenant_admin) asking for aws:kms → AccessDenied (403), nothing stored", async () => {
    await expectError(send("memberA", { method: "PUT", bucket, key: "member-kms", body: "x", headers: kms }), 403, "AccessDenied");
    const key = await customerKey();
    await expectError(send("memberA", { method: "PUT", bucket, key: "member-kms", body: "x", headers: { ...kms, [KEY_ID]: key.arn } }), 403, "AccessDenied");
    expect((await send("adminA", { method: "HEAD", bucket, key: "member-kms" })).status).toBe(404);
    // SSE-S3 is fine for members.
    expect((await send("memberA", { method: "PUT", bucket, key: "member-s3", body: "x", headers: { [SSE]: "AES256" } })).status).toBe(200);
  });

  it("another tenant never reads an SSE-KMS object, even where a bucket policy grants s3:GetObject; SSE-S3 objects it can read", async () => {
    const b = uniqueBucket("shared");
    await createBucket("adminA", b);
    await allowPublicPolicies("adminA", b);
    expect((await send("adminA", { method: "PUT", bucket: b, key: "kms", body: "kms secret", headers: kms })).status).toBe(200);
    expect((await send("adminA", { method: "PUT", bucket: b, key: "s3", body: "shared text", headers: { [SSE]: "AES256" } })).status).toBe(200);
    const policy = JSON.stringify({
      Version: "2012-10-17",
      Statement: [
        { Effect: "Allow", Principal: { AWS: `arn:aws:iam::${TENANT_B}:root` }, Action: ["s3:GetObject", "s3:PutObject"], Resource: `arn:aws:s3:::${b}/*` },
        { Effect: "Allow", Principal: "*", Action: "s3:GetObject", Resource: `arn:aws:s3:::${b}/*` },
      ],
    });
    expect((await send("adminA", { method: "PUT", bucket: b, query: { policy: "" }, body: policy })).status).toBe(204);

    const sseS3 = await send("adminB", { method: "GET", bucket: b, key: "s3" });
    expect(sseS3.status).toBe(200);
    expect(await sseS3.text()).toBe("shared text");
    const anonS3 = await send("adminB", { method: "GET", bucket: b, key: "s3", anonymous: true });
    expect(anonS3.status).toBe(200);
    await anonS3.text();

    await expectError(send("adminB", { method: "GET", bucket: b, key: "kms" }), 403, "AccessDenied");
    await expectError(send("adminB", { method: "GET", bucket: b, key: "kms", headers: { range: "bytes=0-3" } }), 403, "AccessDenied");
    expect((await send("adminB", { method: "HEAD", bucket: b, key: "kms" })).status).toBe(403);
    await expectError(send("adminB", { method: "GET", bucket: b, key: "kms", anonymous: true }), 403, "AccessDenied");
    // Nor through a copy into its own bucket.
    const own = uniqueBucket("b-own");
    await createBucket("adminB", own);
    await expectError(send("adminB", { method: "PUT", bucket: own, key: "stolen", headers: { "x-amz-copy-source": `/${b}/kms` } }), 403, "AccessDenied");
    expect((await send("adminB", { method: "PUT", bucket: own, key: "copied", headers: { "x-amz-copy-source": `/${b}/s3` } })).status).toBe(200);
    // Nor can it create SSE-KMS objects in the bucket, though the policy grants s3:PutObject.
    await expectError(send("adminB", { method: "PUT", bucket: b, key: "b-kms", body: "x", headers: kms }), 403, "AccessDenied");
    // And the owner's tenant_admin still reads it; the owner's member does not (SSE-KMS is
    // a tenant_admin interface).
    expect(await (await send("adminA", { method: "GET", bucket: b, key: "kms" })).text()).toBe("kms secret");
    const member = await expectError(send("memberA", { method: "GET", bucket: b, key: "kms" }), 403, "AccessDenied");
    expect(member.message).toBe("Only users with the tenant_admin role can use SSE-KMS.");
  });
});

describe("context, bucket key, TLS", () => {
  it("x-amz-server-side-encryption-context round-trips on PUT, GET and HEAD", async () => {
    const context = btoa(JSON.stringify({ project: "apollo", "aws:s3:arn": `arn:aws:s3:::${bucket}/ctx` }));
    const r = await put("ctx", "with context", { ...kms, [CONTEXT]: context });
    expect(r.status).toBe(200);
    expect(r.headers.get(CONTEXT)).toBe(context);
    for (const method of ["GET", "HEAD"]) {
      const g = await send("adminA", { method, bucket, key: "ctx" });
      expect(g.headers.get(CONTEXT)).toBe(context);
      await g.text();
    }
  });

  it("bucket-key-enabled is echoed on PUT, GET and HEAD", async () => {
    const r = await put("bk", "x", { ...kms, [BUCKET_KEY]: "true" });
    expect(r.headers.get(BUCKET_KEY)).toBe("true");
    for (const method of ["GET", "HEAD"]) {
      const g = await send("adminA", { method, bucket, key: "bk" });
      expect(g.headers.get(BUCKET_KEY)).toBe("true");
      await g.text();
    }
    const off = await put("bk-off", "x", { ...kms, [BUCKET_KEY]: "false" });
    expect(off.headers.get(BUCKET_KEY)).toBeNull();
  });

  describe("with REQUIRE_TLS_FOR_SSE_KMS=true", () => {
    const tls: Send["env"] = { REQUIRE_TLS_FOR_SSE_KMS: "true" };

    it("an SSE-KMS PUT over http:// → InvalidArgument (400), nothing stored; over https:// it works", async () => {
      const e = await expectError(put("tls", "x", kms, { env: tls }), 400, "InvalidArgument");
      expect(e.message).toMatch(/secure connection|TLS|HTTPS/i);
      expect((await send("adminA", { method: "HEAD", bucket, key: "tls", scheme: "https", env: tls })).status).toBe(404);
      const ok = await put("tls", "over tls", kms, { env: tls, scheme: "https" });
      expect(ok.status).toBe(200);
      expect(ok.headers.get(SSE)).toBe("aws:kms");
    });

    it("reading an SSE-KMS object over http:// is refused the same way; SSE-S3 over http:// is fine", async () => {
      expect((await put("tls-read", "x", kms, { env: tls, scheme: "https" })).status).toBe(200);
      await expectError(send("adminA", { method: "GET", bucket, key: "tls-read", env: tls }), 400, "InvalidArgument");
      expect((await send("adminA", { method: "GET", bucket, key: "tls-read", env: tls, scheme: "https" })).status).toBe(200);
      expect((await put("tls-s3", "x", { [SSE]: "AES256" }, { env: tls })).status).toBe(200);
      expect((await getText("tls-s3", { env: tls })).text).toBe("x");
    });

    it("a bucket default of aws:kms over http:// is refused too (the object would be SSE-KMS)", async () => {
      const b = uniqueBucket("tls-default");
      await createBucket("adminA", b);
      const xml = `<ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>aws:kms</SSEAlgorithm></ApplyServerSideEncryptionByDefault></Rule></ServerSideEncryptionConfiguration>`;
      expect((await send("adminA", { method: "PUT", bucket: b, query: { encryption: "" }, body: xml, scheme: "https", env: tls })).status).toBe(200);
      await expectError(send("adminA", { method: "PUT", bucket: b, key: "k", body: "x", env: tls }), 400, "InvalidArgument");
    });
  });
});

describe("large SSE-KMS objects", () => {
  it("round-trip across several chunks with ranges", async () => {
    const data = pseudoRandom(3 * 65536 + 17, 77);
    expect((await put("big-kms", data, kms)).status).toBe(200);
    const { bytes, errored } = await readFully(await send("adminA", { method: "GET", bucket, key: "big-kms" }));
    expect(errored).toBe(false);
    expect(sameBytes(bytes, data)).toBe(true);
    const r = await send("adminA", { method: "GET", bucket, key: "big-kms", headers: { range: "bytes=65530-131080" } });
    expect(r.status).toBe(206);
    expect(sameBytes((await readFully(r)).bytes, data.subarray(65530, 131081))).toBe(true);
  });
});
