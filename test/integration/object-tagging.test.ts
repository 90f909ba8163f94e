import { exports } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { completeRequest, createUpload, uploadPart } from "../support/multipart";
import { amzDate, encodePolicy, multipartBody, signV4, v4Fields } from "../support/post-form";
import { CREDENTIALS, createBucket, expectError, HOST, seedIdentities, send, TENANT_B, uniqueBucket, xmlBlocks, xmlValue, type Send, type Who } from "../support/s3-harness";
import { countingBindings } from "../support/counting";

/** Issue 13, item 2: object tagging through the real request path. */
const bucket = uniqueBucket("tags");
const SSE = "x-amz-server-side-encryption";

beforeAll(async () => {
  await seedIdentities();
  await createBucket("adminA", bucket);
});

async function md5b64(body: string): Promise<string> {
  return btoa(String.fromCharCode(...new Uint8Array(await crypto.subtle.digest("MD5", new TextEncoder().encode(body)))));
}

const escape = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");
function taggingDoc(tags: Array<[string, string]>): string {
  return `<Tagging xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><TagSet>${tags.map(([k, v]) => `<Tag><Key>${escape(k)}</Key><Value>${escape(v)}</Value></Tag>`).join("")}</TagSet></Tagging>`;
}

async function putTagging(who: Who, key: string, tags: Array<[string, string]>, b = bucket, extra: Partial<Send> = {}) {
  const body = taggingDoc(tags);
  return send(who, { method: "PUT", bucket: b, key, query: { tagging: "" }, body, headers: { "content-md5": await md5b64(body) }, ...extra });
}

async function getTags(who: Who, key: string, b = bucket): Promise<Array<[string, string]>> {
  const r = await send(who, { method: "GET", bucket: b, key, query: { tagging: "" } });
  const text = await r.text();
  expect(r.status, text).toBe(200);
  expect(text).toContain("<Tagging");
  return xmlBlocks(text, "Tag").map((t) => [xmlValue(t, "Key")!, xmlValue(t, "Value")!]);
}

async function put(key: string, headers: Record<string, string> = {}, who: Who = "adminA", b = bucket) {
  const r = await send(who, { method: "PUT", bucket: b, key, body: `body of ${key}`, headers });
  expect(r.status, await r.clone().text()).toBe(200);
  return r;
}

const count = async (key: string, method: "GET" | "HEAD" = "HEAD", b = bucket) => (await send("adminA", { method, bucket: b, key })).headers.get("x-amz-tagging-count");

describe("Put/Get/DeleteObjectTagging", () => {
  it("sets, reads (in key order, values exact) and removes a tag set; GET and HEAD answer x-amz-tagging-count", async () => {
    await put("a.txt");
    expect(await getTags("adminA", "a.txt")).toEqual([]);
    expect(await count("a.txt")).toBeNull();
    const r = await putTagging("adminA", "a.txt", [["zeta", "last one"], ["Alpha", "ünïcødé = ok + @ - _ . : /"], ["empty", ""]]);
    expect(r.status, await r.clone().text()).toBe(200);
    expect(await getTags("adminA", "a.txt")).toEqual([["Alpha", "ünïcødé = ok + @ - _ . : /"], ["empty", ""], ["zeta", "last one"]]);
    expect(await count("a.txt", "HEAD")).toBe("3");
    expect(await count("a.txt", "GET")).toBe("3");
    // Replacing is whole-set, as S3.
    expect((await putTagging("adminA", "a.txt", [["one", "1"]])).status).toBe(200);
    expect(await getTags("adminA", "a.txt")).toEqual([["one", "1"]]);
    const del = await send("adminA", { method: "DELETE", bucket, key: "a.txt", query: { tagging: "" } });
    expect(del.status).toBe(204);
    expect(await getTags("adminA", "a.txt")).toEqual([]);
    expect(await count("a.txt")).toBeNull();
    // An empty TagSet removes the tags too.
    await putTagging("adminA", "a.txt", [["k", "v"]]);
    expect((await putTagging("adminA", "a.txt", [])).status).toBe(200);
    expect(await getTags("adminA", "a.txt")).toEqual([]);
  });

  it("GetObjectTagging answers S3's document", async () => {
    await put("doc.txt", { "x-amz-tagging": "k=v" });
    const r = await send("adminA", { method: "GET", bucket, key: "doc.txt", query: { tagging: "" } });
    expect(r.headers.get("content-type")).toBe("application/xml");
    expect(await r.text()).toBe('<?xml version="1.0" encoding="UTF-8"?>\n<Tagging xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><TagSet><Tag><Key>k</Key><Value>v</Value></Tag></TagSet></Tagging>');
  });

  it("a missing object is NoSuchKey; another version is NoSuchVersion; a missing checksum header is InvalidRequest", async () => {
    await expectError(send("adminA", { method: "GET", bucket, key: "missing", query: { tagging: "" } }), 404, "NoSuchKey");
    await expectError(putTagging("adminA", "missing", [["k", "v"]]), 404, "NoSuchKey");
    await expectError(send("adminA", { method: "DELETE", bucket, key: "missing", query: { tagging: "" } }), 404, "NoSuchKey");
    await put("v.txt");
    await expectError(send("adminA", { method: "GET", bucket, key: "v.txt", query: { tagging: "", versionId: "abc" } }), 404, "NoSuchVersion");
    expect(await getTags("adminA", "v.txt")).toEqual([]);
    await expectError(send("adminA", { method: "PUT", bucket, key: "v.txt", query: { tagging: "" }, body: taggingDoc([["k", "v"]]) }), 400, "InvalidRequest");
    await expectError(send("adminA", { method: "PUT", bucket, key: "v.txt", query: { tagging: "" }, body: "<Tagging></Tagging>", headers: { "content-md5": await md5b64("<Tagging></Tagging>") } }), 400, "MalformedXML");
    const noValue = "<Tagging><TagSet><Tag><Key>k</Key></Tag></TagSet></Tagging>";
    await expectError(send("adminA", { method: "PUT", bucket, key: "v.txt", query: { tagging: "" }, body: noValue, headers: { "content-md5": await md5b64(noValue) } }), 400, "MalformedXML");
  });
});

describe("S3's limits", () => {
  const tags = (n: number) => Array.from({ length: n }, (_, i) => [`k${i}`, `v${i}`] as [string, string]);

  it("10 tags of 128/256 characters are accepted (counted in UTF-16 units); more is refused with S3's codes", async () => {
    await put("limits.txt");
    const max: Array<[string, string]> = tags(10).map(([k], i) => [k.padEnd(128, "x").slice(0, 126) + String(i).padStart(2, "0"), "v".repeat(256)]);
    expect((await putTagging("adminA", "limits.txt", max)).status).toBe(200);
    expect((await getTags("adminA", "limits.txt")).length).toBe(10);
    const e = await expectError(putTagging("adminA", "limits.txt", tags(11)), 400, "BadRequest");
    expect(e.message).toBe("Object tags cannot be greater than 10");
    expect((await expectError(putTagging("adminA", "limits.txt", [["k".repeat(129), "v"]]), 400, "InvalidTag")).message).toBe("The TagKey you have provided is too long, max 128");
    expect((await expectError(putTagging("adminA", "limits.txt", [["k", "v".repeat(257)]]), 400, "InvalidTag")).message).toBe("The TagValue you have provided is too long, max 256");
    // 128 emoji are 256 UTF-16 units: too long for a key (S3 counts UTF-16).
    await expectError(putTagging("adminA", "limits.txt", [["😀".repeat(65), "v"]]), 400, "InvalidTag");
    expect((await expectError(putTagging("adminA", "limits.txt", [["dup", "1"], ["dup", "2"]]), 400, "InvalidTag")).message).toBe("Cannot provide multiple Tags with the same key");
    expect((await expectError(putTagging("adminA", "limits.txt", [["aws:reserved", "1"]]), 400, "InvalidTag")).message).toBe("Your TagKey cannot be prefixed with aws:");
    expect((await expectError(putTagging("adminA", "limits.txt", [["", "1"]]), 400, "InvalidTag")).message).toBe("The TagKey you have provided is invalid");
    expect((await expectError(putTagging("adminA", "limits.txt", [["k", "semi;colon"]]), 400, "InvalidTag")).message).toBe("The TagValue you have provided is invalid");
    // Nothing of a refused set was stored.
    expect((await getTags("adminA", "limits.txt")).length).toBe(10);
  });

  it("x-amz-tagging: form-encoded pairs; a second '=' or a repeated key is InvalidArgument; limits as above; nothing stored", async () => {
    await put("hdr.txt", { "x-amz-tagging": "b=two+words&a=%C3%BC%3D&flag" });
    expect(await getTags("adminA", "hdr.txt")).toEqual([["a", "ü="], ["b", "two words"], ["flag", ""]]);
    expect(await count("hdr.txt")).toBe("3");
    const bad = (tagging: string) => send("adminA", { method: "PUT", bucket, key: "hdr-bad.txt", body: "x", headers: { "x-amz-tagging": tagging } });
    await expectError(bad("a=b=c"), 400, "InvalidArgument");
    await expectError(bad("a=1&a=2"), 400, "InvalidArgument");
    await expectError(bad("a=%E0%A4%A"), 400, "InvalidArgument");
    await expectError(bad(Array.from({ length: 11 }, (_, i) => `k${i}=v`).join("&")), 400, "BadRequest");
    await expectError(bad("aws:x=1"), 400, "InvalidTag");
    expect((await send("adminA", { method: "HEAD", bucket, key: "hdr-bad.txt" })).status).toBe(404);
  });
});

describe("tags follow the object version", () => {
  it("an overwrite without x-amz-tagging leaves no tags; with it, its own", async () => {
    await put("ow.txt", { "x-amz-tagging": "gen=1" });
    expect(await getTags("adminA", "ow.txt")).toEqual([["gen", "1"]]);
    await put("ow.txt");
    expect(await getTags("adminA", "ow.txt")).toEqual([]);
    expect(await count("ow.txt")).toBeNull();
    await put("ow.txt", { "x-amz-tagging": "gen=3" });
    expect(await getTags("adminA", "ow.txt")).toEqual([["gen", "3"]]);
    // Deleted and recreated: the old set does not come back.
    expect((await send("adminA", { method: "DELETE", bucket, key: "ow.txt" })).status).toBe(204);
    await put("ow.txt");
    expect(await getTags("adminA", "ow.txt")).toEqual([]);
  });

  it("CopyObject: COPY (default) takes the source's tags, REPLACE the header's (or none); onto itself too", async () => {
    await put("src.txt", { "x-amz-tagging": "from=source" });
    const copy = (key: string, headers: Record<string, string>) => send("adminA", { method: "PUT", bucket, key, headers: { "x-amz-copy-source": `${bucket}/src.txt`, ...headers } });
    expect((await copy("c1.txt", {})).status).toBe(200);
    expect(await getTags("adminA", "c1.txt")).toEqual([["from", "source"]]);
    expect((await copy("c2.txt", { "x-amz-tagging-directive": "REPLACE", "x-amz-tagging": "new=tag" })).status).toBe(200);
    expect(await getTags("adminA", "c2.txt")).toEqual([["new", "tag"]]);
    expect((await copy("c3.txt", { "x-amz-tagging-directive": "REPLACE" })).status).toBe(200);
    expect(await getTags("adminA", "c3.txt")).toEqual([]);
    await expectError(copy("c4.txt", { "x-amz-tagging-directive": "MERGE" }), 400, "InvalidArgument");
    // Onto itself: the same ciphertext (same R2 etag) at the same key, yet the new tag set applies.
    const self = await send("adminA", {
      method: "PUT",
      bucket,
      key: "src.txt",
      headers: { "x-amz-copy-source": `${bucket}/src.txt`, "x-amz-metadata-directive": "REPLACE", "x-amz-tagging-directive": "REPLACE" },
    });
    expect(self.status, await self.clone().text()).toBe(200);
    expect(await getTags("adminA", "src.txt")).toEqual([]);
  });

  it("CreateMultipartUpload's x-amz-tagging applies at Complete", async () => {
    const id = await createUpload("adminA", bucket, "mp.bin", { "x-amz-tagging": "kind=multipart&n=1" });
    const etag = await uploadPart("adminA", bucket, "mp.bin", id, 1, new Uint8Array(1000).fill(7));
    expect((await completeRequest("adminA", bucket, "mp.bin", id, [{ partNumber: 1, etag }])).status).toBe(200);
    expect(await getTags("adminA", "mp.bin")).toEqual([["kind", "multipart"], ["n", "1"]]);
    expect(await count("mp.bin", "GET")).toBe("2");
    // The count is the object's, so a part of it answers it too (GET and HEAD ?partNumber).
    for (const method of ["GET", "HEAD"] as const) {
      const part = await send("adminA", { method, bucket, key: "mp.bin", query: { partNumber: "1" } });
      await part.arrayBuffer();
      expect([part.status, part.headers.get("x-amz-mp-parts-count"), part.headers.get("x-amz-tagging-count")], method).toEqual([206, "1", "2"]);
    }
    await expectError(send("adminA", { method: "POST", bucket, key: "mp2.bin", query: { uploads: "" }, headers: { "x-amz-tagging": "aws:no=1" } }), 400, "InvalidTag");
  });

  it("POST Object's tagging field (a <Tagging> document) tags the upload", async () => {
    const { accessKeyId, secretAccessKey } = CREDENTIALS.adminA;
    const date = amzDate();
    const tagging = taggingDoc([["via", "form post"]]);
    const fields = { bucket, key: "posted.txt", tagging, ...v4Fields(accessKeyId, date) };
    const policy = encodePolicy(Object.entries(fields).map(([k, v]) => ({ [k]: v })));
    const parts = [
      ...Object.entries(fields).map(([name, value]) => ({ name, value })),
      { name: "policy", value: policy },
      { name: "x-amz-signature", value: await signV4(policy, secretAccessKey, date) },
      { name: "file", file: "posted body", filename: "posted.txt" },
    ];
    const { body, contentType } = multipartBody(parts);
    const r = await (exports as unknown as { default: Fetcher }).default.fetch(new Request(`http://${HOST}/${bucket}`, { method: "POST", headers: { "content-type": contentType }, body }));
    expect(r.status, await r.clone().text()).toBe(204);
    expect(await getTags("adminA", "posted.txt")).toEqual([["via", "form post"]]);
  });
});

describe("policies and tenant rules", () => {
  const policyBucket = uniqueBucket("tags-policy");

  beforeAll(async () => {
    await createBucket("adminA", policyBucket);
    const policy = {
      Version: "2012-10-17",
      Statement: [
        { Sid: "b-reads", Effect: "Allow", Principal: { AWS: TENANT_B }, Action: ["s3:GetObject", "s3:GetObjectTagging", "s3:PutObjectTagging", "s3:DeleteObjectTagging"], Resource: `arn:aws:s3:::${policyBucket}/*` },
        { Sid: "secret", Effect: "Deny", Principal: "*", Action: ["s3:GetObject", "s3:GetObjectTagging"], Resource: `arn:aws:s3:::${policyBucket}/*`, Condition: { StringEquals: { "s3:ExistingObjectTag/class": "secret" } } },
        { Sid: "no-prod", Effect: "Deny", Principal: "*", Action: ["s3:PutObject", "s3:PutObjectTagging"], Resource: `arn:aws:s3:::${policyBucket}/*`, Condition: { StringEquals: { "s3:RequestObjectTag/env": "prod" } } },
        { Sid: "keys", Effect: "Deny", Principal: "*", Action: "s3:PutObjectTagging", Resource: `arn:aws:s3:::${policyBucket}/*`, Condition: { "ForAnyValue:StringEquals": { "s3:RequestObjectTagKeys": "forbidden" } } },
      ],
    };
    const r = await send("adminA", { method: "PUT", bucket: policyBucket, query: { policy: "" }, body: JSON.stringify(policy) });
    expect(r.status, await r.clone().text()).toBe(204);
  });

  it("s3:ExistingObjectTag: a Deny on the object's current tags applies to GET, HEAD and GetObjectTagging, for the owner too", async () => {
    await put("open.txt", {}, "adminA", policyBucket);
    await put("secret.txt", { "x-amz-tagging": "class=secret" }, "adminA", policyBucket);
    expect((await send("adminB", { method: "GET", bucket: policyBucket, key: "open.txt" })).status).toBe(200);
    await expectError(send("adminB", { method: "GET", bucket: policyBucket, key: "secret.txt" }), 403, "AccessDenied");
    expect((await send("adminB", { method: "HEAD", bucket: policyBucket, key: "secret.txt" })).status).toBe(403);
    await expectError(send("adminA", { method: "GET", bucket: policyBucket, key: "secret.txt" }), 403, "AccessDenied");
    await expectError(send("adminA", { method: "GET", bucket: policyBucket, key: "secret.txt", query: { tagging: "" } }), 403, "AccessDenied");
    // Nor through a copy: CopyObject and UploadPartCopy read the source as GET does.
    await expectError(send("adminA", { method: "PUT", bucket: policyBucket, key: "leak.txt", headers: { "x-amz-copy-source": `${policyBucket}/secret.txt` } }), 403, "AccessDenied");
    const id = await createUpload("adminA", policyBucket, "leak.bin");
    await expectError(send("adminA", { method: "PUT", bucket: policyBucket, key: "leak.bin", query: { partNumber: "1", uploadId: id }, headers: { "x-amz-copy-source": `${policyBucket}/secret.txt` } }), 403, "AccessDenied");
    expect((await send("adminA", { method: "PUT", bucket: policyBucket, key: "fine.txt", headers: { "x-amz-copy-source": `${policyBucket}/open.txt` } })).status).toBe(200);
    // Retagged: readable again.
    expect((await putTagging("adminA", "secret.txt", [["class", "public"]], policyBucket)).status).toBe(200);
    expect((await send("adminB", { method: "GET", bucket: policyBucket, key: "secret.txt" })).status).toBe(200);
    // A missing object under such a policy: NoSuchKey for someone allowed, AccessDenied for someone not.
    await expectError(send("adminB", { method: "GET", bucket: policyBucket, key: "nothing.txt" }), 404, "NoSuchKey");
    await expectError(send("adminA", { method: "GET", bucket: policyBucket, key: "nothing.txt", anonymous: true }), 403, "AccessDenied");
  });

  it("s3:RequestObjectTag and s3:RequestObjectTagKeys: on x-amz-tagging and on PutObjectTagging's body", async () => {
    await expectError(send("adminA", { method: "PUT", bucket: policyBucket, key: "p.txt", body: "x", headers: { "x-amz-tagging": "env=prod" } }), 403, "AccessDenied");
    await put("p.txt", { "x-amz-tagging": "env=dev" }, "adminA", policyBucket);
    await expectError(putTagging("adminA", "p.txt", [["env", "prod"]], policyBucket), 403, "AccessDenied");
    await expectError(putTagging("adminA", "p.txt", [["forbidden", "1"]], policyBucket), 403, "AccessDenied");
    expect((await putTagging("adminA", "p.txt", [["env", "test"]], policyBucket)).status).toBe(200);
    expect(await getTags("adminA", "p.txt", policyBucket)).toEqual([["env", "test"]]);
  });

  it("the tagging actions are the policy's: another tenant needs them granted; x-amz-tagging on PUT needs s3:PutObjectTagging", async () => {
    await put("foreign.txt", { "x-amz-tagging": "a=1" }, "adminA", policyBucket);
    expect(await getTags("adminB", "foreign.txt", policyBucket)).toEqual([["a", "1"]]);
    expect((await putTagging("adminB", "foreign.txt", [["b", "2"]], policyBucket)).status).toBe(200);
    // The bucket without a grant: nothing.
    await put("mine.txt", { "x-amz-tagging": "a=1" });
    await expectError(send("adminB", { method: "GET", bucket, key: "mine.txt", query: { tagging: "" } }), 403, "AccessDenied");
    await expectError(putTagging("adminB", "mine.txt", [["x", "y"]]), 403, "AccessDenied");
    await expectError(send("adminB", { method: "DELETE", bucket, key: "mine.txt", query: { tagging: "" } }), 403, "AccessDenied");
    expect(await getTags("adminA", "mine.txt")).toEqual([["a", "1"]]);
  });

  it("SSE-KMS objects: another tenant never reads or changes their tags, whatever the policy; a member changes but does not read them", async () => {
    await put("kms.txt", { [SSE]: "aws:kms", "x-amz-tagging": "k=v" }, "adminA", policyBucket);
    await expectError(send("adminB", { method: "GET", bucket: policyBucket, key: "kms.txt", query: { tagging: "" } }), 403, "AccessDenied");
    await expectError(putTagging("adminB", "kms.txt", [["x", "y"]], policyBucket), 403, "AccessDenied");
    await expectError(send("adminB", { method: "DELETE", bucket: policyBucket, key: "kms.txt", query: { tagging: "" } }), 403, "AccessDenied");
    await expectError(send("memberA", { method: "GET", bucket: policyBucket, key: "kms.txt", query: { tagging: "" } }), 403, "AccessDenied");
    expect((await putTagging("memberA", "kms.txt", [["by", "member"]], policyBucket)).status).toBe(200);
    expect(await getTags("adminA", "kms.txt", policyBucket)).toEqual([["by", "member"]]);
    expect((await send("memberA", { method: "DELETE", bucket: policyBucket, key: "kms.txt", query: { tagging: "" } })).status).toBe(204);
    expect(await getTags("adminA", "kms.txt", policyBucket)).toEqual([]);
  });
});

describe("cost", () => {
  it("GET/HEAD of an object in a bucket that never had tags: 0 D1 queries when warm; in a bucket with tags: 1", async () => {
    const plain = uniqueBucket("tags-cost");
    await createBucket("adminA", plain);
    await put("x.txt", {}, "adminA", plain);
    const measure = async (b: string, key: string, method: "GET" | "HEAD") => {
      const counted = countingBindings();
      await send("adminA", { method, bucket: b, key, env: { DB: counted.db } }); // warm the isolate's caches
      counted.reset();
      const r = await send("adminA", { method, bucket: b, key, env: { DB: counted.db } });
      await r.arrayBuffer();
      expect(r.status).toBe(200);
      return counted.counts().d1;
    };
    expect(await measure(plain, "x.txt", "HEAD")).toBe(0);
    expect(await measure(plain, "x.txt", "GET")).toBe(0);
    await put("y.txt", { "x-amz-tagging": "t=1" }, "adminA", plain);
    await put("z.txt", {}, "adminA", plain);
    expect(await measure(plain, "z.txt", "HEAD")).toBe(1);
    expect(await measure(plain, "y.txt", "GET")).toBe(1);
  });
});
