import { beforeAll, describe, expect, it } from "vitest";
import { createBucket, crc32Base64, expectError, md5Base64, seedIdentities, send, uniqueBucket, utf8, xmlBlocks, xmlValue, xmlValues } from "../support/s3-harness";

const bucket = uniqueBucket("multidel");

beforeAll(async () => {
  await seedIdentities();
  await createBucket("adminA", bucket);
});

function deleteDocument(keys: Array<string | { Key: string; VersionId?: string }>, quiet?: boolean): string {
  const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  const objects = keys
    .map((k) => (typeof k === "string" ? { Key: k } : k))
    .map((k) => `<Object><Key>${esc(k.Key)}</Key>${k.VersionId ? `<VersionId>${k.VersionId}</VersionId>` : ""}</Object>`)
    .join("");
  return `<?xml version="1.0" encoding="UTF-8"?><Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${quiet === undefined ? "" : `<Quiet>${quiet}</Quiet>`}${objects}</Delete>`;
}

async function multiDelete(body: string, who: "adminA" | "adminB" | "memberA" = "adminA", headers?: Record<string, string>) {
  return send(who, { method: "POST", bucket, query: { delete: "" }, body, headers: headers ?? { "content-md5": await md5Base64(body) } });
}

async function putKeys(keys: string[]) {
  await Promise.all(keys.map(async (key) => expect((await send("adminA", { method: "PUT", bucket, key, body: key })).status).toBe(200)));
}

async function exists(key: string): Promise<boolean> {
  return (await send("adminA", { method: "HEAD", bucket, key })).status === 200;
}

describe("DeleteObjects", () => {
  it("deletes the listed keys and reports each as Deleted (missing keys too, as S3 does)", async () => {
    await putKeys(["d/1", "d/2", "d/3 with space", "d/ü&<x>"]);
    const r = await multiDelete(deleteDocument(["d/1", "d/3 with space", "d/ü&<x>", "d/never-existed"]));
    expect(r.status).toBe(200);
    const text = await r.text();
    expect(text).toContain("<DeleteResult");
    expect(xmlBlocks(text, "Deleted").map((d) => xmlValue(d, "Key")).sort()).toEqual(["d/1", "d/3 with space", "d/never-existed", "d/ü&<x>"]);
    expect(xmlBlocks(text, "Error")).toEqual([]);
    expect(await exists("d/1")).toBe(false);
    expect(await exists("d/3 with space")).toBe(false);
    expect(await exists("d/ü&<x>")).toBe(false);
    expect(await exists("d/2")).toBe(true);
  });

  it("decodes XML character references in keys (&#39;, &#x22;, &#xA;, &#9; as Go clients write them) once; invalid or undeclared references are MalformedXML and delete nothing", async () => {
    const keys = ["ref/it's", 'ref/say "hi"', "ref/line\nbreak", "ref/tab\there", "ref/&#39;"];
    await putKeys([...keys, "ref/ab", "ref/a"]);
    const wrap = (inner: string, doctype = "") => `<?xml version="1.0" encoding="UTF-8"?>${doctype}<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${inner}</Delete>`;
    const invalid = ["ref/a&#0;b", "ref/a&#xD800;b", "ref/a&#1114112;b", "ref/a&nbsp;b", "ref/a&e;"];
    for (const key of invalid) {
      const doctype = key.includes("&e;") ? '<!DOCTYPE Delete [<!ENTITY e "b">]>' : "";
      await expectError(multiDelete(wrap(`<Object><Key>${key}</Key></Object>`, doctype)), 400, "MalformedXML");
    }
    expect(await exists("ref/ab")).toBe(true);
    expect(await exists("ref/a")).toBe(true);

    const r = await multiDelete(wrap(["ref/it&#39;s", "ref/say &#x22;hi&#x22;", "ref/line&#xA;break", "ref/tab&#9;here", "ref/&amp;#39;"].map((k) => `<Object><Key>${k}</Key></Object>`).join("")));
    const text = await r.text();
    expect(r.status, text).toBe(200);
    expect(xmlBlocks(text, "Error")).toEqual([]);
    for (const key of keys) expect(await exists(key), key).toBe(false);
    expect(await exists("ref/ab")).toBe(true);
    expect(await exists("ref/a")).toBe(true);
  });

  it("quiet mode reports only errors", async () => {
    await putKeys(["q/1", "q/2"]);
    const r = await multiDelete(deleteDocument(["q/1", "q/2", { Key: "q/3", VersionId: "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY" }], true));
    expect(r.status).toBe(200);
    const text = await r.text();
    expect(xmlBlocks(text, "Deleted")).toEqual([]);
    const errors = xmlBlocks(text, "Error");
    expect(errors.map((e) => [xmlValue(e, "Key"), xmlValue(e, "Code")])).toEqual([["q/3", "NoSuchVersion"]]);
    expect(await exists("q/1")).toBe(false);
    expect(await exists("q/2")).toBe(false);
  });

  it("VersionId null is the (only) version of an unversioned object and is echoed", async () => {
    await putKeys(["v/1"]);
    const text = await (await multiDelete(deleteDocument([{ Key: "v/1", VersionId: "null" }]))).text();
    const deleted = xmlBlocks(text, "Deleted");
    expect(deleted.map((d) => [xmlValue(d, "Key"), xmlValue(d, "VersionId")])).toEqual([["v/1", "null"]]);
    expect(await exists("v/1")).toBe(false);
  });

  it("reports AccessDenied per key where the bucket policy denies deletion, and deletes the rest", async () => {
    await putKeys(["keep/1", "free/1"]);
    const policy = JSON.stringify({
      Version: "2012-10-17",
      Statement: [{ Effect: "Deny", Principal: "*", Action: "s3:DeleteObject", Resource: `arn:aws:s3:::${bucket}/keep/*` }],
    });
    expect((await send("adminA", { method: "PUT", bucket, query: { policy: "" }, body: policy })).status).toBe(204);
    try {
      const text = await (await multiDelete(deleteDocument(["keep/1", "free/1"]))).text();
      expect(xmlBlocks(text, "Error").map((e) => [xmlValue(e, "Key"), xmlValue(e, "Code"), xmlValue(e, "Message")])).toEqual([["keep/1", "AccessDenied", "Access Denied"]]);
      expect(xmlBlocks(text, "Deleted").map((d) => xmlValue(d, "Key"))).toEqual(["free/1"]);
      expect(await exists("keep/1")).toBe(true);
      expect(await exists("free/1")).toBe(false);
    } finally {
      expect((await send("adminA", { method: "DELETE", bucket, query: { policy: "" } })).status).toBe(204);
    }
  });

  it("another tenant without a grant gets AccessDenied for every key and deletes nothing", async () => {
    await putKeys(["t/1"]);
    // As in S3, permission is checked per key (s3:DeleteObject): 200 with an Error per key.
    const r = await multiDelete(deleteDocument(["t/1"]), "adminB");
    expect(r.status).toBe(200);
    expect(xmlBlocks(await r.text(), "Error").map((e) => [xmlValue(e, "Key"), xmlValue(e, "Code")])).toEqual([["t/1", "AccessDenied"]]);
    expect(await exists("t/1")).toBe(true);
  });

  it("1000 keys are accepted; 1001 keys are MalformedXML (400) and delete nothing", async () => {
    await putKeys(["many/keep"]);
    const thousand = Array.from({ length: 1000 }, (_, i) => `many/${i}`);
    const ok = await multiDelete(deleteDocument(thousand, true));
    expect(ok.status).toBe(200);
    await ok.text();
    await expectError(multiDelete(deleteDocument([...thousand, "many/keep"])), 400, "MalformedXML");
    expect(await exists("many/keep")).toBe(true);
  });

  it("requires Content-MD5 or a checksum: without → InvalidRequest (400)", async () => {
    await putKeys(["md5/1"]);
    const body = deleteDocument(["md5/1"]);
    const e = await expectError(multiDelete(body, "adminA", {}), 400, "InvalidRequest");
    expect(e.message).toContain("Content-MD5");
    expect(await exists("md5/1")).toBe(true);
    // A flexible checksum (what SDK v3 sends) is accepted instead of Content-MD5.
    const r = await multiDelete(body, "adminA", { "x-amz-checksum-crc32": crc32Base64(utf8(body)) });
    expect(r.status).toBe(200);
    await r.text();
    expect(await exists("md5/1")).toBe(false);
  });

  it("a Content-MD5 that does not match the document → BadDigest (400), nothing deleted", async () => {
    await putKeys(["md5/2"]);
    const body = deleteDocument(["md5/2"]);
    await expectError(multiDelete(body, "adminA", { "content-md5": await md5Base64("something else") }), 400, "BadDigest");
    expect(await exists("md5/2")).toBe(true);
  });

  it.each([
    ["not XML", "this is not xml"],
    ["wrong root", '<Remove><Object><Key>x</Key></Object></Remove>'],
    ["no objects", "<Delete><Quiet>true</Quiet></Delete>"],
    ["object without key", "<Delete><Object><VersionId>null</VersionId></Object></Delete>"],
    ["truncated", "<Delete><Object><Key>x</Key></Object>"],
  ])("a malformed document (%s) → MalformedXML (400)", async (_label, body) => {
    await expectError(multiDelete(body), 400, "MalformedXML");
  });

  it("a missing bucket → NoSuchBucket (404)", async () => {
    const body = deleteDocument(["x"]);
    const r = await send("adminA", { method: "POST", bucket: uniqueBucket("gone"), query: { delete: "" }, body, headers: { "content-md5": await md5Base64(body) } });
    await expectError(r, 404, "NoSuchBucket");
  });

  it("lists no deleted keys afterwards", async () => {
    await putKeys(["after/1", "after/2"]);
    await (await multiDelete(deleteDocument(["after/1", "after/2"]))).text();
    const list = await send("adminA", { method: "GET", bucket, query: { "list-type": "2", prefix: "after/" } });
    expect(xmlValues(await list.text(), "Key")).toEqual([]);
  });
});
