import { beforeAll, describe, expect, it } from "vitest";
import { createBucket, expectError, md5Base64, seedIdentities, send, uniqueBucket, xmlValue, xmlValues } from "../support/s3-harness";

/** Put/Get/DeleteBucketTagging with AWS's XML, limits and errors; object tags are a separate set. */
const NS = 'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"';
const bucket = uniqueBucket("tags");
const escape = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");
const tagging = (tags: Array<[string, string]>) =>
  `<Tagging ${NS}><TagSet>${tags.map(([k, v]) => `<Tag><Key>${escape(k)}</Key><Value>${escape(v)}</Value></Tag>`).join("")}</TagSet></Tagging>`;

async function putTags(body: string, who: "adminA" | "memberA" | "adminB" = "adminA", target = bucket): Promise<Response> {
  return send(who, { method: "PUT", bucket: target, query: { tagging: "" }, body, headers: { "content-md5": await md5Base64(body) } });
}

beforeAll(async () => {
  await seedIdentities();
  await createBucket("adminA", bucket);
});

describe("bucket tagging", () => {
  it("a bucket without tags: 404 NoSuchTagSet", async () => {
    const fresh = uniqueBucket("tags-fresh");
    await createBucket("adminA", fresh);
    const none = await expectError(send("adminA", { method: "GET", bucket: fresh, query: { tagging: "" } }), 404, "NoSuchTagSet");
    expect(none.message).toBe("The TagSet does not exist");
  });

  it("Put (204) then Get answers the tags in AWS's XML, in order, values exactly as sent", async () => {
    const tags: Array<[string, string]> = [["project", "Trinity"], ["cost-center", ""], ["Ünïcode key", "wert: ä/ö=ü+@_."]];
    expect((await putTags(tagging(tags))).status).toBe(204);
    const r = await send("adminA", { method: "GET", bucket, query: { tagging: "" } });
    expect(r.status).toBe(200);
    expect(await r.text()).toBe(
      `<?xml version="1.0" encoding="UTF-8"?>\n<Tagging ${NS}><TagSet>` +
        tags.map(([k, v]) => `<Tag><Key>${k}</Key><Value>${v}</Value></Tag>`).join("") +
        `</TagSet></Tagging>`,
    );
  });

  it("Put replaces the whole set; 50 tags fit, 51 are 400 BadRequest", async () => {
    const fifty = Array.from({ length: 50 }, (_, i): [string, string] => [`k${i}`, `v${i}`]);
    expect((await putTags(tagging(fifty))).status).toBe(204);
    expect(xmlValues(await (await send("adminA", { method: "GET", bucket, query: { tagging: "" } })).text(), "Key")).toHaveLength(50);
    const e = await expectError(putTags(tagging([...fifty, ["k50", "v50"]])), 400, "BadRequest");
    expect(e.message).toBe("Bucket tag count cannot be greater than 50");
    expect(xmlValues(await (await send("adminA", { method: "GET", bucket, query: { tagging: "" } })).text(), "Key")).toHaveLength(50);
  });

  it.each([
    ["an empty key", [["", "v"]], "The TagKey you have provided is invalid"],
    ["a 129-character key", [["k".repeat(129), "v"]], "The TagKey you have provided is invalid"],
    ["a key with a character outside the allowed set", [["a&b", "v"]], "The TagKey you have provided is invalid"],
    ["a 257-character value", [["k", "v".repeat(257)]], "The TagValue you have provided is invalid"],
    ["a value with a character outside the allowed set", [["k", "a<b"]], "The TagValue you have provided is invalid"],
    ["the same key twice", [["dup", "1"], ["dup", "2"]], "Cannot provide multiple Tags with the same key"],
    ["a key in the aws: namespace", [["aws:cloudformation:stack-name", "x"]], "Your TagKey cannot be prefixed with aws:"],
  ] as Array<[string, Array<[string, string]>, string]>)("%s: 400 InvalidTag", async (_name, tags, message) => {
    const e = await expectError(putTags(tagging(tags)), 400, "InvalidTag");
    expect(e.message).toBe(message);
    expect(xmlValue(e.text, "TagKey")).toBe(tags.at(-1)![0]);
  });

  it("128-character keys and 256-character values (counted in characters, not bytes) are accepted", async () => {
    expect((await putTags(tagging([["ä".repeat(128), "ö".repeat(256)]]))).status).toBe(204);
  });

  it("needs Content-MD5 (or a checksum), a TagSet and well-formed tags", async () => {
    const body = tagging([["a", "b"]]);
    await expectError(send("adminA", { method: "PUT", bucket, query: { tagging: "" }, body }), 400, "InvalidRequest");
    await expectError(putTags(`<Tagging ${NS}></Tagging>`), 400, "MalformedXML");
    await expectError(putTags(`<Tagging ${NS}><TagSet><Tag><Key>a</Key></Tag></TagSet></Tagging>`), 400, "MalformedXML");
    await expectError(putTags("not xml"), 400, "MalformedXML");
    await expectError(send("adminA", { method: "PUT", bucket, query: { tagging: "" }, body, headers: { "content-md5": await md5Base64("other") } }), 400, "BadDigest");
  });

  it("Delete (204) removes them; an empty TagSet does too", async () => {
    expect((await putTags(tagging([["a", "b"]]))).status).toBe(204);
    expect((await send("adminA", { method: "DELETE", bucket, query: { tagging: "" } })).status).toBe(204);
    await expectError(send("adminA", { method: "GET", bucket, query: { tagging: "" } }), 404, "NoSuchTagSet");
    expect((await putTags(tagging([["a", "b"]]))).status).toBe(204);
    expect((await putTags(tagging([]))).status).toBe(204);
    await expectError(send("adminA", { method: "GET", bucket, query: { tagging: "" } }), 404, "NoSuchTagSet");
  });

  it("belongs to the owning tenant; s3:PutBucketTagging / s3:GetBucketTagging are the actions a policy names", async () => {
    const b = uniqueBucket("tags-auth");
    await createBucket("adminA", b);
    await expectError(putTags(tagging([["a", "b"]]), "adminB", b), 403, "AccessDenied");
    await expectError(send("adminB", { method: "GET", bucket: b, query: { tagging: "" } }), 403, "AccessDenied");
    await expectError(send("adminB", { method: "DELETE", bucket: b, query: { tagging: "" } }), 403, "AccessDenied");
    expect((await putTags(tagging([["by", "member"]]), "memberA", b)).status).toBe(204);
    const deny = JSON.stringify({ Statement: [{ Effect: "Deny", Principal: "*", Action: ["s3:PutBucketTagging", "s3:GetBucketTagging"], Resource: `arn:aws:s3:::${b}` }] });
    expect((await send("adminA", { method: "PUT", bucket: b, query: { policy: "" }, body: deny })).status).toBe(204);
    await expectError(putTags(tagging([["a", "b"]]), "memberA", b), 403, "AccessDenied");
    await expectError(send("adminA", { method: "GET", bucket: b, query: { tagging: "" } }), 403, "AccessDenied");
    await expectError(send("adminA", { method: "DELETE", bucket: b, query: { tagging: "" } }), 403, "AccessDenied");
  });

  it("bucket tags and object tags are separate sets: ?tagging on a key is the object's", async () => {
    const b = uniqueBucket("tags-sep");
    await createBucket("adminA", b);
    expect((await putTags(tagging([["bucket-level", "yes"]]), "adminA", b)).status).toBe(204);
    expect((await send("adminA", { method: "PUT", bucket: b, key: "obj", body: "x" })).status).toBe(200);
    const objectTags = await send("adminA", { method: "GET", bucket: b, key: "obj", query: { tagging: "" } });
    const text = await objectTags.text();
    expect(objectTags.status, text).toBe(200);
    expect(xmlValues(text, "Key")).toEqual([]);
    const body = tagging([["object-level", "1"]]);
    expect((await send("adminA", { method: "PUT", bucket: b, key: "obj", query: { tagging: "" }, body, headers: { "content-md5": await md5Base64(body) } })).status).toBe(200);
    const bucketTags = await (await send("adminA", { method: "GET", bucket: b, query: { tagging: "" } })).text();
    expect(xmlValues(bucketTags, "Key")).toEqual(["bucket-level"]);
  });
});
