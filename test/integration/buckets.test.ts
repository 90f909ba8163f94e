import { beforeAll, describe, expect, it } from "vitest";
import { createBucket, expectError, seedIdentities, send, TENANT_A, uniqueBucket, xmlValue, xmlValues } from "../support/s3-harness";

beforeAll(async () => {
  await seedIdentities();
});

const config = (region: string) =>
  `<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><LocationConstraint>${region}</LocationConstraint></CreateBucketConfiguration>`;

describe("CreateBucket", () => {
  it.each([
    ["ab", "too short"],
    ["a".repeat(64), "too long"],
    ["Upper-case", "upper case"],
    ["-leading-dash", "leading dash"],
    ["trailing-dash-", "trailing dash"],
    ["under_score", "underscore"],
    ["two..dots", "adjacent dots"],
    ["dot.-dash", "dot next to dash"],
    ["192.168.10.20", "IP address"],
    ["xn--punycode", "xn-- prefix"],
    ["sthree-bucket", "sthree- prefix"],
    ["bucket-s3alias", "-s3alias suffix"],
    ["_internal", "reserved leading underscore"],
  ])("refuses %s (%s) with InvalidBucketName", async (name) => {
    await expectError(send("adminA", { method: "PUT", bucket: name }), 400, "InvalidBucketName");
  });

  it("accepts names at the limits (3 and 63 characters, dots and dashes)", async () => {
    const long = uniqueBucket("l").padEnd(63, "x");
    for (const name of [`a${Math.random().toString(36).slice(2, 4)}`, long, `${uniqueBucket("d")}.with.dots`]) {
      const r = await send("adminA", { method: "PUT", bucket: name });
      expect(r.status, name).toBe(200);
      expect(r.headers.get("location")).toBe(`/${name}`);
    }
  });

  it("answers BucketAlreadyOwnedByYou to the owner and BucketAlreadyExists to another tenant", async () => {
    const name = uniqueBucket("taken");
    const euWest1 = { env: { REGION: "eu-west-1" }, region: "eu-west-1" } as const;
    expect((await send("adminA", { method: "PUT", bucket: name, ...euWest1 })).status).toBe(200);
    await expectError(send("adminA", { method: "PUT", bucket: name, ...euWest1 }), 409, "BucketAlreadyOwnedByYou");
    // Same tenant, different user: still owned by "you" (the tenant is the account).
    await expectError(send("memberA", { method: "PUT", bucket: name, ...euWest1 }), 409, "BucketAlreadyOwnedByYou");
    await expectError(send("adminB", { method: "PUT", bucket: name, ...euWest1 }), 409, "BucketAlreadyExists");
  });

  it("in us-east-1 re-creating a bucket you own is 200 OK (AWS's legacy behaviour), another tenant's is 409", async () => {
    const name = uniqueBucket("legacy");
    await createBucket("adminA", name);
    const again = await send("adminA", { method: "PUT", bucket: name });
    expect(again.status).toBe(200);
    expect(again.headers.get("location")).toBe(`/${name}`);
    await expectError(send("adminB", { method: "PUT", bucket: name }), 409, "BucketAlreadyExists");
  });

  it("accepts the endpoint's own region as LocationConstraint, and an empty configuration", async () => {
    const a = uniqueBucket("loc");
    expect((await send("adminA", { method: "PUT", bucket: a, body: config("us-east-1") })).status).toBe(200);
    const b = uniqueBucket("loc");
    const empty = '<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"/>';
    expect((await send("adminA", { method: "PUT", bucket: b, body: empty })).status).toBe(200);
  });

  it("refuses another region with IllegalLocationConstraintException and nonsense with InvalidLocationConstraint", async () => {
    const name = uniqueBucket("loc");
    const e = await expectError(send("adminA", { method: "PUT", bucket: name, body: config("eu-west-1") }), 400, "IllegalLocationConstraintException");
    expect(e.message).toContain("eu-west-1");
    await expectError(send("adminA", { method: "PUT", bucket: name, body: config("not a region") }), 400, "InvalidLocationConstraint");
    // Nothing was created by the refused requests.
    expect((await send("adminA", { method: "HEAD", bucket: name })).status).toBe(404);
  });

  it("refuses a malformed configuration document with MalformedXML", async () => {
    await expectError(send("adminA", { method: "PUT", bucket: uniqueBucket("bad"), body: "<CreateBucketConfiguration><Loc" }), 400, "MalformedXML");
    await expectError(send("adminA", { method: "PUT", bucket: uniqueBucket("bad"), body: "<Other/>" }), 400, "MalformedXML");
  });

  it("refuses anonymous creation with AccessDenied", async () => {
    await expectError(send("adminA", { method: "PUT", bucket: uniqueBucket("anon"), anonymous: true }), 403, "AccessDenied");
  });
});

describe("HeadBucket, GetBucketLocation, DeleteBucket", () => {
  it("HeadBucket: 200 with the region for the owner, 403 for another tenant, 404 when missing (no body)", async () => {
    const name = uniqueBucket("head");
    await createBucket("adminA", name);
    const own = await send("adminA", { method: "HEAD", bucket: name });
    expect(own.status).toBe(200);
    expect(own.headers.get("x-amz-bucket-region")).toBe("us-east-1");
    expect(own.headers.get("x-amz-request-id")).toMatch(/^[0-9A-F]{16}$/);
    const member = await send("memberA", { method: "HEAD", bucket: name });
    expect(member.status).toBe(200);
    const other = await send("adminB", { method: "HEAD", bucket: name });
    expect(other.status).toBe(403);
    expect(await other.text()).toBe("");
    const missing = await send("adminA", { method: "HEAD", bucket: uniqueBucket("nope") });
    expect(missing.status).toBe(404);
    expect(missing.headers.get("x-amz-request-id")).toMatch(/^[0-9A-F]{16}$/);
    expect(await missing.text()).toBe("");
  });

  it("GetBucketLocation answers an empty LocationConstraint for us-east-1", async () => {
    const name = uniqueBucket("where");
    await createBucket("adminA", name);
    const r = await send("adminA", { method: "GET", bucket: name, query: { location: "" } });
    expect(r.status).toBe(200);
    const text = await r.text();
    expect(text).toMatch(/<LocationConstraint xmlns="http:\/\/s3\.amazonaws\.com\/doc\/2006-03-01\/"\s*(\/>|><\/LocationConstraint>)/);
    await expectError(send("adminB", { method: "GET", bucket: name, query: { location: "" } }), 403, "AccessDenied");
    await expectError(send("adminA", { method: "GET", bucket: uniqueBucket("nope"), query: { location: "" } }), 404, "NoSuchBucket");
  });

  it("DeleteBucket: BucketNotEmpty while objects remain, 204 once empty, then gone", async () => {
    const name = uniqueBucket("del");
    await createBucket("adminA", name);
    expect((await send("adminA", { method: "PUT", bucket: name, key: "x/y", body: "data" })).status).toBe(200);
    const e = await expectError(send("adminA", { method: "DELETE", bucket: name }), 409, "BucketNotEmpty");
    expect(xmlValue(e.text, "BucketName")).toBe(name);
    await expectError(send("adminB", { method: "DELETE", bucket: name }), 403, "AccessDenied");
    expect((await send("adminA", { method: "DELETE", bucket: name, key: "x/y" })).status).toBe(204);
    expect((await send("adminA", { method: "DELETE", bucket: name })).status).toBe(204);
    expect((await send("adminA", { method: "HEAD", bucket: name })).status).toBe(404);
    await expectError(send("adminA", { method: "DELETE", bucket: name }), 404, "NoSuchBucket");
    // The name is free again, for anyone.
    expect((await send("adminB", { method: "PUT", bucket: name })).status).toBe(200);
  });
});

describe("ListBuckets", () => {
  it("lists exactly the caller's tenant's buckets", async () => {
    const mine = [uniqueBucket("lb-a"), uniqueBucket("lb-a")];
    const theirs = uniqueBucket("lb-b");
    for (const b of mine) await createBucket("adminA", b);
    await createBucket("adminB", theirs);

    const a = await send("adminA", { method: "GET" });
    expect(a.status).toBe(200);
    const textA = await a.text();
    const namesA = xmlValues(textA, "Name");
    for (const b of mine) expect(namesA).toContain(b);
    expect(namesA).not.toContain(theirs);
    expect(xmlValue(textA, "ID")).toBe(TENANT_A);
    expect(namesA).toEqual([...namesA].sort());

    // Another user of the same tenant sees the same buckets.
    const member = xmlValues(await (await send("memberA", { method: "GET" })).text(), "Name");
    for (const b of mine) expect(member).toContain(b);

    const namesB = xmlValues(await (await send("adminB", { method: "GET" })).text(), "Name");
    expect(namesB).toContain(theirs);
    for (const b of mine) expect(namesB).not.toContain(b);
  });

  it("refuses anonymous callers", async () => {
    await expectError(send("adminA", { method: "GET", anonymous: true }), 403, "AccessDenied");
  });

  it("answers 405 MethodNotAllowed to other methods on the service", async () => {
    const e = await expectError(send("adminA", { method: "DELETE" }), 405, "MethodNotAllowed");
    expect(xmlValue(e.text, "Method")).toBe("DELETE");
  });
});

describe("PutBucketPolicy", () => {
  it("refuses NotPrincipal with Effect Allow as 400 MalformedPolicy (AWS: NotPrincipal only with Deny); with Deny it is stored", async () => {
    const bucket = uniqueBucket("notprincipal");
    await createBucket("adminA", bucket);
    const policy = (Effect: string) =>
      JSON.stringify({ Version: "2012-10-17", Statement: [{ Effect, NotPrincipal: { AWS: TENANT_A }, Action: "s3:GetObject", Resource: `arn:aws:s3:::${bucket}/*` }] });
    await expectError(send("adminA", { method: "PUT", bucket, query: { policy: "" }, body: policy("Allow") }), 400, "MalformedPolicy");
    expect((await send("adminA", { method: "GET", bucket, query: { policy: "" } })).status).toBe(404);
    expect((await send("adminA", { method: "PUT", bucket, query: { policy: "" }, body: policy("Deny") })).status).toBe(204);
  });
});
