import { beforeAll, describe, expect, it } from "vitest";
import { createUpload } from "../support/multipart";
import { createBucket, expectError, seedIdentities, send, TENANT_A, uniqueBucket, xmlValue } from "../support/s3-harness";

/** ACLs disabled (S3 Object Ownership BucketOwnerEnforced): ownership controls, ACL headers on writes, Put*Acl. */
const NS = 'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"';
const bucket = uniqueBucket("acl");
const ownershipXml = (value: string) => `<OwnershipControls ${NS}><Rule><ObjectOwnership>${value}</ObjectOwnership></Rule></OwnershipControls>`;
const ENFORCED = `<?xml version="1.0" encoding="UTF-8"?>\n<OwnershipControls ${NS}><Rule><ObjectOwnership>BucketOwnerEnforced</ObjectOwnership></Rule></OwnershipControls>`;
const exists = async (key: string) => (await send("adminA", { method: "HEAD", bucket, key })).status === 200;

beforeAll(async () => {
  await seedIdentities();
  await createBucket("adminA", bucket);
  expect((await send("adminA", { method: "PUT", bucket, key: "src", body: "source" })).status).toBe(200);
});

describe("ownership controls", () => {
  it("GetBucketOwnershipControls answers BucketOwnerEnforced in AWS's XML", async () => {
    const r = await send("adminA", { method: "GET", bucket, query: { ownershipControls: "" } });
    expect(r.status).toBe(200);
    expect(await r.text()).toBe(ENFORCED);
  });

  it("Put accepts BucketOwnerEnforced only: the ACL-enabling values are 501, others MalformedXML; Delete leaves it enforced", async () => {
    expect((await send("adminA", { method: "PUT", bucket, query: { ownershipControls: "" }, body: ownershipXml("BucketOwnerEnforced") })).status).toBe(200);
    for (const value of ["ObjectWriter", "BucketOwnerPreferred"]) {
      await expectError(send("adminA", { method: "PUT", bucket, query: { ownershipControls: "" }, body: ownershipXml(value) }), 501, "NotImplemented");
    }
    await expectError(send("adminA", { method: "PUT", bucket, query: { ownershipControls: "" }, body: ownershipXml("Everyone") }), 400, "MalformedXML");
    await expectError(send("adminA", { method: "PUT", bucket, query: { ownershipControls: "" }, body: `<OwnershipControls ${NS}></OwnershipControls>` }), 400, "MalformedXML");
    expect((await send("adminA", { method: "DELETE", bucket, query: { ownershipControls: "" } })).status).toBe(204);
    expect(await (await send("adminA", { method: "GET", bucket, query: { ownershipControls: "" } })).text()).toBe(ENFORCED);
  });

  it("belongs to the owning tenant", async () => {
    await expectError(send("adminB", { method: "GET", bucket, query: { ownershipControls: "" } }), 403, "AccessDenied");
    await expectError(send("adminB", { method: "PUT", bucket, query: { ownershipControls: "" }, body: ownershipXml("BucketOwnerEnforced") }), 403, "AccessDenied");
  });
});

describe("ACL headers on writes", () => {
  it.each(["public-read", "public-read-write", "authenticated-read", "aws-exec-read", "log-delivery-write", "PRIVATE"])(
    "PutObject with x-amz-acl: %s is 400 AccessControlListNotSupported and stores nothing",
    async (acl) => {
      const key = `put-${acl}`;
      const e = await expectError(send("adminA", { method: "PUT", bucket, key, body: "x", headers: { "x-amz-acl": acl } }), 400, "AccessControlListNotSupported");
      expect(e.message).toBe("The bucket does not allow ACLs");
      expect(await exists(key)).toBe(false);
    },
  );

  it("PutObject with private, bucket-owner-full-control, or a full-control grant to the owner only is stored", async () => {
    const cases: Array<Record<string, string>> = [{ "x-amz-acl": "private" }, { "x-amz-acl": "bucket-owner-full-control" }, { "x-amz-grant-full-control": `id="${TENANT_A}"` }];
    for (const headers of cases) {
      const key = `ok-${Object.values(headers)[0]}`;
      expect((await send("adminA", { method: "PUT", bucket, key, body: "x", headers })).status).toBe(200);
      expect(await exists(key)).toBe(true);
    }
  });

  it.each([
    ["x-amz-grant-read", 'uri="http://acs.amazonaws.com/groups/global/AllUsers"'],
    ["x-amz-grant-read", `id="${TENANT_A}"`],
    ["x-amz-grant-write-acp", `id="${TENANT_A}"`],
    ["x-amz-grant-full-control", `id="${TENANT_A}", id="someone-else"`],
    ["x-amz-grant-full-control", 'emailAddress="x@example.com"'],
  ])("PutObject with %s: %s is 400 AccessControlListNotSupported", async (name, value) => {
    await expectError(send("adminA", { method: "PUT", bucket, key: "grant", body: "x", headers: { [name]: value } }), 400, "AccessControlListNotSupported");
    expect(await exists("grant")).toBe(false);
  });

  it("CopyObject and CreateMultipartUpload refuse a public ACL alike; with bucket-owner-full-control they work", async () => {
    await expectError(send("adminA", { method: "PUT", bucket, key: "copy", headers: { "x-amz-copy-source": `${bucket}/src`, "x-amz-acl": "public-read" } }), 400, "AccessControlListNotSupported");
    expect(await exists("copy")).toBe(false);
    expect((await send("adminA", { method: "PUT", bucket, key: "copy", headers: { "x-amz-copy-source": `${bucket}/src`, "x-amz-acl": "bucket-owner-full-control" } })).status).toBe(200);
    await expectError(send("adminA", { method: "POST", bucket, key: "mpu", query: { uploads: "" }, headers: { "x-amz-acl": "public-read" } }), 400, "AccessControlListNotSupported");
    const listed = await (await send("adminA", { method: "GET", bucket, query: { uploads: "" } })).text();
    expect(listed).not.toContain("<Key>mpu</Key>");
    expect(await createUpload("adminA", bucket, "mpu", { "x-amz-acl": "private" })).toBeTruthy();
  });
});

describe("CreateBucket", () => {
  it("with a public ACL: 400 InvalidBucketAclWithObjectOwnership, no bucket", async () => {
    const cases: Array<Record<string, string>> = [{ "x-amz-acl": "public-read" }, { "x-amz-acl": "authenticated-read" }, { "x-amz-grant-read": 'uri="http://acs.amazonaws.com/groups/global/AllUsers"' }];
    for (const headers of cases) {
      const name = uniqueBucket("acl-create");
      const e = await expectError(send("adminA", { method: "PUT", bucket: name, headers }), 400, "InvalidBucketAclWithObjectOwnership");
      expect(e.message).toBe("Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting");
      expect((await send("adminA", { method: "HEAD", bucket: name })).status).toBe(404);
    }
  });

  it("with x-amz-acl: private or x-amz-object-ownership: BucketOwnerEnforced it is created; the ACL-enabling ownerships are 501; junk is InvalidArgument", async () => {
    const cases: Array<Record<string, string>> = [{ "x-amz-acl": "private" }, { "x-amz-object-ownership": "BucketOwnerEnforced" }];
    for (const headers of cases) {
      const name = uniqueBucket("acl-create-ok");
      expect((await send("adminA", { method: "PUT", bucket: name, headers })).status).toBe(200);
    }
    await expectError(send("adminA", { method: "PUT", bucket: uniqueBucket("acl-ow"), headers: { "x-amz-object-ownership": "ObjectWriter" } }), 501, "NotImplemented");
    const e = await expectError(send("adminA", { method: "PUT", bucket: uniqueBucket("acl-ow"), headers: { "x-amz-object-ownership": "Nobody" } }), 400, "InvalidArgument");
    expect(e.message).toBe("Invalid x-amz-object-ownership header: Nobody");
  });
});

describe("PutBucketAcl and PutObjectAcl", () => {
  const ownerOnly = (id: string) =>
    `<AccessControlPolicy ${NS}><Owner><ID>${id}</ID></Owner><AccessControlList><Grant><Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="CanonicalUser"><ID>${id}</ID></Grantee><Permission>FULL_CONTROL</Permission></Grant></AccessControlList></AccessControlPolicy>`;
  const withAllUsers = (id: string) =>
    ownerOnly(id).replace(
      "</AccessControlList>",
      `<Grant><Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="Group"><URI>http://acs.amazonaws.com/groups/global/AllUsers</URI></Grantee><Permission>READ</Permission></Grant></AccessControlList>`,
    );

  it("accept exactly the owner's full control (canned or as a document), refuse anything else with AccessControlListNotSupported", async () => {
    for (const target of [{}, { key: "src" }]) {
      expect((await send("adminA", { method: "PUT", bucket, ...target, query: { acl: "" }, headers: { "x-amz-acl": "private" } })).status).toBe(200);
      expect((await send("adminA", { method: "PUT", bucket, ...target, query: { acl: "" }, body: ownerOnly(TENANT_A) })).status).toBe(200);
      await expectError(send("adminA", { method: "PUT", bucket, ...target, query: { acl: "" }, headers: { "x-amz-acl": "public-read" } }), 400, "AccessControlListNotSupported");
      await expectError(send("adminA", { method: "PUT", bucket, ...target, query: { acl: "" }, body: withAllUsers(TENANT_A) }), 400, "AccessControlListNotSupported");
      await expectError(send("adminA", { method: "PUT", bucket, ...target, query: { acl: "" }, body: ownerOnly("someone-else") }), 400, "AccessControlListNotSupported");
      await expectError(send("adminA", { method: "PUT", bucket, ...target, query: { acl: "" }, body: "<AccessControlPolicy>" }), 400, "MalformedACLError");
      await expectError(send("adminA", { method: "PUT", bucket, ...target, query: { acl: "" } }), 400, "MalformedACLError");
    }
  });

  it("Get*Acl keep answering the owner's FULL_CONTROL", async () => {
    for (const target of [{}, { key: "src" }]) {
      const text = await (await send("adminA", { method: "GET", bucket, ...target, query: { acl: "" } })).text();
      expect(xmlValue(text, "ID")).toBe(TENANT_A);
      expect(xmlValue(text, "Permission")).toBe("FULL_CONTROL");
      expect(text.match(/<Grant>/g)).toHaveLength(1);
    }
  });

  it("PutObjectAcl on a missing key is 404 NoSuchKey; another tenant is refused", async () => {
    await expectError(send("adminA", { method: "PUT", bucket, key: "missing", query: { acl: "" }, headers: { "x-amz-acl": "private" } }), 404, "NoSuchKey");
    await expectError(send("adminB", { method: "PUT", bucket, query: { acl: "" }, headers: { "x-amz-acl": "private" } }), 403, "AccessDenied");
    await expectError(send("adminB", { method: "PUT", bucket, key: "src", query: { acl: "" }, headers: { "x-amz-acl": "private" } }), 403, "AccessDenied");
  });
});
