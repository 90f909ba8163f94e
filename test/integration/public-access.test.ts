import { beforeAll, describe, expect, it } from "vitest";
import { obsDenyUnencryptedPolicy } from "../support/obs-policy";
import { createBucket, expectError, fetchWorker, HOST, seedIdentities, send, TENANT_A, TENANT_B, uniqueBucket, xmlValue } from "../support/s3-harness";

/** S3 Block Public Access on buckets: defaults, the four settings' effects, the tenant default (README, "Block Public Access"). */
const NS = 'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"';
const config = (b: { acls?: boolean; ignore?: boolean; policy?: boolean; restrict?: boolean }) =>
  `<PublicAccessBlockConfiguration ${NS}><BlockPublicAcls>${b.acls ?? false}</BlockPublicAcls><IgnorePublicAcls>${b.ignore ?? false}</IgnorePublicAcls>` +
  `<BlockPublicPolicy>${b.policy ?? false}</BlockPublicPolicy><RestrictPublicBuckets>${b.restrict ?? false}</RestrictPublicBuckets></PublicAccessBlockConfiguration>`;
const allOnXml =
  `<?xml version="1.0" encoding="UTF-8"?>\n<PublicAccessBlockConfiguration ${NS}><BlockPublicAcls>true</BlockPublicAcls><IgnorePublicAcls>true</IgnorePublicAcls>` +
  `<BlockPublicPolicy>true</BlockPublicPolicy><RestrictPublicBuckets>true</RestrictPublicBuckets></PublicAccessBlockConfiguration>`;

const putPab = (bucket: string, body: string, who: "adminA" | "memberA" | "adminB" = "adminA") => send(who, { method: "PUT", bucket, query: { publicAccessBlock: "" }, body });
const getPab = (bucket: string) => send("adminA", { method: "GET", bucket, query: { publicAccessBlock: "" } });
const putPolicy = (bucket: string, policy: unknown, who: "adminA" | "adminB" = "adminA") =>
  send(who, { method: "PUT", bucket, query: { policy: "" }, body: typeof policy === "string" ? policy : JSON.stringify(policy) });
const policyStatus = async (bucket: string) => xmlValue(await (await send("adminA", { method: "GET", bucket, query: { policyStatus: "" } })).text(), "IsPublic");

const publicRead = (bucket: string) => ({ Version: "2012-10-17", Statement: [{ Effect: "Allow", Principal: "*", Action: "s3:GetObject", Resource: `arn:aws:s3:::${bucket}/*` }] });
const tenantBRead = (bucket: string) => ({
  Version: "2012-10-17",
  Statement: [{ Effect: "Allow", Principal: { AWS: `arn:aws:iam::${TENANT_B}:root` }, Action: "s3:GetObject", Resource: `arn:aws:s3:::${bucket}/*` }],
});

beforeAll(seedIdentities);

describe("a new bucket", () => {
  it("starts with all four settings on (AWS's default since 2023), in AWS's XML", async () => {
    const bucket = uniqueBucket("pab-new");
    await createBucket("adminA", bucket);
    const r = await getPab(bucket);
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toBe("application/xml");
    expect(await r.text()).toBe(allOnXml);
  });

  it("refuses a public policy with 403 AccessDenied (BlockPublicPolicy) and stores nothing", async () => {
    const bucket = uniqueBucket("pab-block");
    await createBucket("adminA", bucket);
    await expectError(putPolicy(bucket, publicRead(bucket)), 403, "AccessDenied");
    await expectError(send("adminA", { method: "GET", bucket, query: { policy: "" } }), 404, "NoSuchBucketPolicy");
    // A /1 source range is public too. (NotPrincipal in an Allow never gets this far: AWS
    // refuses it as MalformedPolicy whatever the block says.)
    await expectError(putPolicy(bucket, { Statement: [{ Effect: "Allow", NotPrincipal: { AWS: `arn:aws:iam::${TENANT_B}:root` }, Action: "s3:GetObject", Resource: `arn:aws:s3:::${bucket}/*` }] }), 400, "MalformedPolicy");
    await expectError(
      putPolicy(bucket, { Statement: [{ ...publicRead(bucket).Statement[0], Condition: { IpAddress: { "aws:SourceIp": "0.0.0.0/1" } } }] }),
      403,
      "AccessDenied",
    );
  });

  it("accepts policies that are not public: the OBS deny-unencrypted policy (still enforced), a grant to one tenant, a narrow source range", async () => {
    const bucket = uniqueBucket("pab-ok");
    await createBucket("adminA", bucket);
    expect((await putPolicy(bucket, obsDenyUnencryptedPolicy(bucket))).status).toBe(204);
    await expectError(send("adminA", { method: "PUT", bucket, key: "plain", body: "x" }), 403, "AccessDenied");
    expect((await send("adminA", { method: "PUT", bucket, key: "kms", body: "x", headers: { "x-amz-server-side-encryption": "aws:kms" } })).status).toBe(200);
    expect(await policyStatus(bucket)).toBe("false");

    expect((await putPolicy(bucket, tenantBRead(bucket))).status).toBe(204);
    expect((await send("adminA", { method: "PUT", bucket, key: "shared", body: "for B", headers: { "x-amz-server-side-encryption": "AES256" } })).status).toBe(200);
    const read = await send("adminB", { method: "GET", bucket, key: "shared" });
    expect(read.status).toBe(200);
    expect(await read.text()).toBe("for B");
    expect(await policyStatus(bucket)).toBe("false");

    const narrow = { Statement: [{ ...publicRead(bucket).Statement[0], Condition: { IpAddress: { "aws:SourceIp": "203.0.113.0/24" } } }] };
    expect((await putPolicy(bucket, narrow)).status).toBe(204);
    expect(await policyStatus(bucket)).toBe("false");
  });
});

describe("the settings", () => {
  it("RestrictPublicBuckets: a stored public policy grants nobody outside the owning tenant anything, not even a named tenant; GetBucketPolicyStatus says not public", async () => {
    const bucket = uniqueBucket("pab-restrict");
    await createBucket("adminA", bucket);
    expect((await putPab(bucket, config({ restrict: true }))).status).toBe(200);
    const both = { Statement: [...publicRead(bucket).Statement, ...tenantBRead(bucket).Statement] };
    expect((await putPolicy(bucket, both)).status).toBe(204);
    expect((await send("adminA", { method: "PUT", bucket, key: "doc", body: "public?", headers: { "x-amz-server-side-encryption": "AES256" } })).status).toBe(200);

    await expectError(send("adminA", { method: "GET", bucket, key: "doc", anonymous: true }), 403, "AccessDenied");
    await expectError(send("adminB", { method: "GET", bucket, key: "doc" }), 403, "AccessDenied");
    expect((await send("memberA", { method: "GET", bucket, key: "doc" })).status).toBe(200);
    expect(await policyStatus(bucket)).toBe("false");

    // Lifted: the policy's grants apply as written.
    expect((await putPab(bucket, config({}))).status).toBe(200);
    const anon = await send("adminA", { method: "GET", bucket, key: "doc", anonymous: true });
    expect(anon.status).toBe(200);
    expect(await anon.text()).toBe("public?");
    expect((await send("adminB", { method: "GET", bucket, key: "doc" })).status).toBe(200);
    expect(await policyStatus(bucket)).toBe("true");

    // A policy that is not public keeps its cross-tenant grant under RestrictPublicBuckets.
    expect((await putPab(bucket, config({ restrict: true, policy: true }))).status).toBe(200);
    expect((await putPolicy(bucket, tenantBRead(bucket))).status).toBe(204);
    expect((await send("adminB", { method: "GET", bucket, key: "doc" })).status).toBe(200);
    await expectError(send("adminA", { method: "GET", bucket, key: "doc", anonymous: true }), 403, "AccessDenied");
  });

  it("Deny statements still bind the owner whatever the settings", async () => {
    const bucket = uniqueBucket("pab-deny");
    await createBucket("adminA", bucket);
    expect((await putPolicy(bucket, { Statement: [{ Effect: "Deny", Principal: "*", Action: "s3:GetObject", Resource: `arn:aws:s3:::${bucket}/locked/*` }] })).status).toBe(204);
    expect((await send("adminA", { method: "PUT", bucket, key: "locked/x", body: "x" })).status).toBe(200);
    await expectError(send("memberA", { method: "GET", bucket, key: "locked/x" }), 403, "AccessDenied");
  });

  it("Put with omitted elements stores false; Delete removes the configuration: 404 NoSuchPublicAccessBlockConfiguration, nothing blocked", async () => {
    const bucket = uniqueBucket("pab-del");
    await createBucket("adminA", bucket);
    expect((await putPab(bucket, `<PublicAccessBlockConfiguration ${NS}><BlockPublicPolicy>true</BlockPublicPolicy></PublicAccessBlockConfiguration>`)).status).toBe(200);
    const text = await (await getPab(bucket)).text();
    expect([xmlValue(text, "BlockPublicAcls"), xmlValue(text, "IgnorePublicAcls"), xmlValue(text, "BlockPublicPolicy"), xmlValue(text, "RestrictPublicBuckets")]).toEqual(["false", "false", "true", "false"]);
    await expectError(putPolicy(bucket, publicRead(bucket)), 403, "AccessDenied");

    expect((await send("adminA", { method: "DELETE", bucket, query: { publicAccessBlock: "" } })).status).toBe(204);
    const e = await expectError(getPab(bucket), 404, "NoSuchPublicAccessBlockConfiguration");
    expect(e.message).toBe("The public access block configuration was not found");
    expect(xmlValue(e.text, "BucketName")).toBe(bucket);
    expect((await putPolicy(bucket, publicRead(bucket))).status).toBe(204);
    expect(await policyStatus(bucket)).toBe("true");
  });

  it.each([
    ["a value that is not a boolean", `<PublicAccessBlockConfiguration ${NS}><BlockPublicAcls>yes</BlockPublicAcls></PublicAccessBlockConfiguration>`],
    ["another root element", `<PublicAccessBlock ${NS}><BlockPublicAcls>true</BlockPublicAcls></PublicAccessBlock>`],
    ["a document that is not XML", "BlockPublicAcls=true"],
  ])("Put with %s: 400 MalformedXML, the configuration unchanged", async (_name, body) => {
    const bucket = uniqueBucket("pab-bad");
    await createBucket("adminA", bucket);
    await expectError(putPab(bucket, body), 400, "MalformedXML");
    expect(await (await getPab(bucket)).text()).toBe(allOnXml);
  });

  it("belongs to the owning tenant: another tenant and anonymous callers get 403; a member of the owner may; a Deny on the action binds", async () => {
    const bucket = uniqueBucket("pab-auth");
    await createBucket("adminA", bucket);
    await expectError(putPab(bucket, config({}), "adminB"), 403, "AccessDenied");
    await expectError(send("adminB", { method: "GET", bucket, query: { publicAccessBlock: "" } }), 403, "AccessDenied");
    await expectError(send("adminB", { method: "DELETE", bucket, query: { publicAccessBlock: "" } }), 403, "AccessDenied");
    await expectError(send("adminA", { method: "GET", bucket, query: { publicAccessBlock: "" }, anonymous: true }), 403, "AccessDenied");
    expect(await (await getPab(bucket)).text()).toBe(allOnXml);
    expect((await putPab(bucket, config({ policy: true }), "memberA")).status).toBe(200);
    const deny = { Statement: [{ Effect: "Deny", Principal: "*", Action: "s3:PutBucketPublicAccessBlock", Resource: `arn:aws:s3:::${bucket}` }] };
    expect((await putPolicy(bucket, deny)).status).toBe(204);
    await expectError(putPab(bucket, config({}), "memberA"), 403, "AccessDenied");
    await expectError(send("adminA", { method: "DELETE", bucket, query: { publicAccessBlock: "" } }), 403, "AccessDenied");
  });
});

describe("the tenant default (admin API)", () => {
  const ADMIN = { authorization: "Bearer test-admin-token", "content-type": "application/json" };
  const admin = (path: string, method: string, json?: unknown) =>
    fetchWorker(`http://${HOST}/_admin${path}`, { method, headers: ADMIN, ...(json !== undefined ? { body: JSON.stringify(json) } : {}) });
  const OFF = { BlockPublicAcls: false, IgnorePublicAcls: false, BlockPublicPolicy: false, RestrictPublicBuckets: false };

  /** A tenant of its own, so changing its default cannot touch buckets other test files create. */
  async function freshTenant(): Promise<{ id: string; credentials: { accessKeyId: string; secretAccessKey: string } }> {
    const id = `${Date.now().toString(36)}${Math.random().toString(36).slice(2)}`.padEnd(32, "0").slice(0, 32);
    expect((await admin(`/tenants/${id}`, "PUT", { name: `pab-${id}` })).status).toBe(201);
    expect((await admin(`/tenants/${id}/users/owner`, "PUT", { role: "tenant_admin" })).status).toBe(201);
    const r = await admin(`/tenants/${id}/users/owner/access-keys`, "POST", {});
    const { accessKeyId, secret } = (await r.json()) as { accessKeyId: string; secret: string };
    return { id, credentials: { accessKeyId, secretAccessKey: secret } };
  }

  it("is all four on until set; set, it is what the tenant's new buckets start with; existing buckets keep theirs; reset, all on again", async () => {
    const t = await freshTenant();
    expect(await (await admin(`/tenants/${t.id}/public-access-block`, "GET")).json()).toEqual({
      publicAccessBlock: { BlockPublicAcls: true, IgnorePublicAcls: true, BlockPublicPolicy: true, RestrictPublicBuckets: true },
      isDefault: true,
    });
    const before = uniqueBucket("pab-t0");
    expect((await send("adminA", { method: "PUT", bucket: before, credentials: t.credentials })).status).toBe(200);

    const put = await admin(`/tenants/${t.id}/public-access-block`, "PUT", OFF);
    expect(put.status).toBe(200);
    expect(await put.json()).toEqual({ publicAccessBlock: OFF, isDefault: false });
    const open = uniqueBucket("pab-t1");
    expect((await send("adminA", { method: "PUT", bucket: open, credentials: t.credentials })).status).toBe(200);
    const got = await (await send("adminA", { method: "GET", bucket: open, query: { publicAccessBlock: "" }, credentials: t.credentials })).text();
    expect(xmlValue(got, "BlockPublicPolicy")).toBe("false");
    expect(xmlValue(got, "RestrictPublicBuckets")).toBe("false");
    expect((await send("adminA", { method: "PUT", bucket: open, query: { policy: "" }, body: JSON.stringify(publicRead(open)), credentials: t.credentials })).status).toBe(204);
    // The bucket made before the change keeps all four on.
    expect(await (await send("adminA", { method: "GET", bucket: before, query: { publicAccessBlock: "" }, credentials: t.credentials })).text()).toBe(allOnXml);
    // Tenant A's default is untouched.
    expect(await (await admin(`/tenants/${TENANT_A}/public-access-block`, "GET")).json()).toMatchObject({ isDefault: true });

    expect((await admin(`/tenants/${t.id}/public-access-block`, "DELETE")).status).toBe(204);
    const after = uniqueBucket("pab-t2");
    expect((await send("adminA", { method: "PUT", bucket: after, credentials: t.credentials })).status).toBe(200);
    expect(await (await send("adminA", { method: "GET", bucket: after, query: { publicAccessBlock: "" }, credentials: t.credentials })).text()).toBe(allOnXml);
  });

  it("refuses incomplete settings (400) and unknown tenants (404); needs the admin token", async () => {
    const t = await freshTenant();
    expect((await admin(`/tenants/${t.id}/public-access-block`, "PUT", { BlockPublicAcls: false })).status).toBe(400);
    expect((await admin(`/tenants/${t.id}/public-access-block`, "PUT", { ...OFF, BlockPublicPolicy: "no" })).status).toBe(400);
    expect((await admin(`/tenants/${"f".repeat(32)}/public-access-block`, "PUT", OFF)).status).toBe(404);
    expect((await admin(`/tenants/${"f".repeat(32)}/public-access-block`, "GET")).status).toBe(404);
    const r = await fetchWorker(`http://${HOST}/_admin/tenants/${t.id}/public-access-block`, { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify(OFF) });
    expect(r.status).toBe(401);
    expect(await (await admin(`/tenants/${t.id}/public-access-block`, "GET")).json()).toMatchObject({ isDefault: true });
  });
});
