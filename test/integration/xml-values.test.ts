/**
 * Request XML keeps text values byte-exact (keys, ETags, user-chosen values) while the
 * layout of a pretty-printed document is ignored; keys with leading, trailing or only
 * whitespace, tabs, CR and LF round-trip through every key-carrying operation.
 *
 * Response documents are read here as a client's XML parser reads them: literal CRLF and CR
 * become LF first (XML 1.0 §2.11), then references are decoded.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { completeXml, createUpload, uploadPart } from "../support/multipart";
import { createBucket, expectError, md5Base64, readFully, seedIdentities, send, uniqueBucket, utf8, xmlBlocks, xmlValue, xmlValues } from "../support/s3-harness";

const bucket = uniqueBucket("xmlvals");

beforeAll(async () => {
  await seedIdentities();
  await createBucket("adminA", bucket);
});

/** A response document as any conformant XML parser sees it. */
const parsed = (text: string) => text.replace(/\r\n?/g, "\n");
const listedValues = (text: string, tag: string) => xmlValues(parsed(text), tag);

/** Escaping as the AWS SDKs do it: markup characters, and CR/LF as references so they survive parsing. */
const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/\r/g, "&#xD;").replace(/\n/g, "&#xA;");

const deleteDoc = (keys: string[], quiet = "") =>
  `<?xml version="1.0" encoding="UTF-8"?><Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${quiet}${keys.map((k) => `<Object><Key>${esc(k)}</Key></Object>`).join("")}</Delete>`;

async function multiDelete(body: string): Promise<Response> {
  return send("adminA", { method: "POST", bucket, query: { delete: "" }, body, headers: { "content-md5": await md5Base64(body) } });
}

async function put(key: string, body = `body of ${JSON.stringify(key)}`): Promise<void> {
  const r = await send("adminA", { method: "PUT", bucket, key, body });
  expect(r.status, JSON.stringify(key)).toBe(200);
}

const exists = async (key: string) => (await send("adminA", { method: "HEAD", bucket, key })).status === 200;

async function listAll(prefix: string, url = false): Promise<string[]> {
  const r = await send("adminA", { method: "GET", bucket, query: { "list-type": "2", prefix, ...(url ? { "encoding-type": "url" } : {}) } });
  const text = await r.text();
  expect(r.status, text).toBe(200);
  // A key is never written with a literal CR or LF: a client parser would change it.
  for (const block of xmlBlocks(text, "Contents")) expect(block).not.toMatch(/[\r\n]/);
  const keys = listedValues(text, "Key");
  return url ? keys.map((k) => decodeURIComponent(k.replace(/\+/g, " "))) : keys;
}

/** Keys whose whitespace is the whole point, each under a prefix so listings can be scoped. */
const ODD = ["_ ", " ", "  ", " lead", "trail ", "\t", "tab\tin", "tail\t", "\n", "lf\nin", "cr\rin", "crlf\r\nin", "\r", " \r\n\t ", "end\n"];

describe("whitespace keys round-trip", () => {
  it("PUT, GET, ListObjectsV2 (plain and encoding-type=url), CopyObject, DeleteObject", async () => {
    for (const [i, k] of ODD.entries()) {
      const key = `rt${i}/${k}`;
      await put(key);
      const get = await send("adminA", { method: "GET", bucket, key });
      expect(new TextDecoder().decode((await readFully(get)).bytes), JSON.stringify(key)).toBe(`body of ${JSON.stringify(key)}`);
      expect(await listAll(`rt${i}/`), JSON.stringify(key)).toEqual([key]);
      expect(await listAll(`rt${i}/`, true), JSON.stringify(key)).toEqual([key]);

      const copy = await send("adminA", { method: "PUT", bucket, key: `${key}.copy`, headers: { "x-amz-copy-source": encodeURIComponent(`${bucket}/${key}`) } });
      expect(copy.status, await copy.clone().text()).toBe(200);
      const got = await send("adminA", { method: "GET", bucket, key: `${key}.copy` });
      expect(new TextDecoder().decode((await readFully(got)).bytes)).toBe(`body of ${JSON.stringify(key)}`);
      expect(await listAll(`rt${i}/`)).toEqual([key, `${key}.copy`].sort());

      expect((await send("adminA", { method: "DELETE", bucket, key })).status).toBe(204);
      expect(await exists(key), JSON.stringify(key)).toBe(false);
      expect(await listAll(`rt${i}/`)).toEqual([`${key}.copy`]);
    }
  });

  it("CompleteMultipartUpload to a whitespace key; ListMultipartUploads names it exactly", async () => {
    for (const k of ["_ ", " ", "\t\r\n"]) {
      const key = `mpu/${k}`;
      const id = await createUpload("adminA", bucket, key);
      const listed = await send("adminA", { method: "GET", bucket, query: { uploads: "", prefix: "mpu/" } });
      expect(listedValues(await listed.text(), "Key")).toEqual([key]);
      const etag = await uploadPart("adminA", bucket, key, id, 1, utf8("part one"));
      const r = await send("adminA", { method: "POST", bucket, key, query: { uploadId: id }, body: completeXml([{ partNumber: 1, etag }]) });
      const text = await r.text();
      expect(r.status, text).toBe(200);
      expect(xmlValue(parsed(text), "Key")).toBe(key);
      const get = await send("adminA", { method: "GET", bucket, key });
      expect(new TextDecoder().decode((await readFully(get)).bytes)).toBe("part one");
      expect(await listAll("mpu/")).toEqual([key]);
      expect((await send("adminA", { method: "DELETE", bucket, key })).status).toBe(204);
    }
  });
});

describe("DeleteObjects keeps keys byte-exact", () => {
  it("<Key>_ </Key> deletes '_ ' and leaves '_'", async () => {
    await put("t1/_");
    await put("t1/_ ");
    const r = await multiDelete(deleteDoc(["t1/_ "]));
    const text = await r.text();
    expect(r.status, text).toBe(200);
    expect(xmlBlocks(text, "Deleted").map((d) => xmlValue(d, "Key"))).toEqual(["t1/_ "]);
    expect(await exists("t1/_ ")).toBe(false);
    expect(await exists("t1/_")).toBe(true);
  });

  it("<Key> </Key> (a key that is only a space) is deleted, so such a bucket can be emptied", async () => {
    const b = uniqueBucket("xmlspace");
    await createBucket("adminA", b);
    for (const key of [" ", "\t", "  "]) expect((await send("adminA", { method: "PUT", bucket: b, key, body: "x" })).status).toBe(200);
    const body = `<Delete><Object><Key> </Key></Object><Object><Key>\t</Key></Object><Object><Key>  </Key></Object></Delete>`;
    const r = await send("adminA", { method: "POST", bucket: b, query: { delete: "" }, body, headers: { "content-md5": await md5Base64(body) } });
    const text = await r.text();
    expect(r.status, text).toBe(200);
    expect(xmlBlocks(text, "Deleted").map((d) => xmlValue(d, "Key"))).toEqual([" ", "\t", "  "]);
    const list = await send("adminA", { method: "GET", bucket: b, query: { "list-type": "2" } });
    expect(xmlValue(await list.text(), "KeyCount")).toBe("0");
    expect((await send("adminA", { method: "DELETE", bucket: b })).status).toBe(204);
  });

  it("every odd key is deleted exactly, CR sent as &#xD; (as the SDKs write it); the Deleted keys read back exactly", async () => {
    const keys = ODD.map((k) => `t3/${k}`);
    for (const k of keys) await put(k);
    // Neighbours that a trimming or CR-folding parser would hit instead.
    const neighbours = ["t3/_", "t3/", "t3/lead", "t3/trail", "t3/tail", "t3/end", "t3/cr\nin", "t3/crlf\nin"];
    for (const k of neighbours.filter((n) => n !== "t3/")) await put(k);
    const r = await multiDelete(deleteDoc(keys));
    const text = await r.text();
    expect(r.status, text).toBe(200);
    expect(xmlBlocks(text, "Error")).toEqual([]);
    expect(xmlBlocks(parsed(text), "Deleted").map((d) => xmlValue(d, "Key"))).toEqual(keys);
    for (const k of keys) expect(await exists(k), JSON.stringify(k)).toBe(false);
    expect((await listAll("t3/")).sort()).toEqual(neighbours.filter((n) => n !== "t3/").sort());
  });

  it("a literal CR or CRLF in the document is LF, as XML 1.0 requires of every parser", async () => {
    await put("t4/a\nb");
    await put("t4/a\rb");
    const body = `<Delete><Object><Key>t4/a\r\nb</Key></Object></Delete>`;
    const r = await multiDelete(body);
    expect(r.status).toBe(200);
    expect(await exists("t4/a\nb")).toBe(false);
    expect(await exists("t4/a\rb")).toBe(true);
  });

  it("a pretty-printed document (indentation between elements) is read structurally; Quiet is a token", async () => {
    await put("t5/a");
    await put("t5/ b ");
    const body = [
      `<?xml version="1.0" encoding="UTF-8"?>`,
      `<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/">`,
      `  <Quiet> true </Quiet>`,
      `  <Object>`,
      `    <Key>t5/a</Key>`,
      `  </Object>`,
      `\t<Object>\r\n\t\t<Key>t5/ b </Key>\r\n\t</Object>`,
      `</Delete>`,
      ``,
    ].join("\n");
    const r = await multiDelete(body);
    const text = await r.text();
    expect(r.status, text).toBe(200);
    expect(xmlBlocks(text, "Deleted")).toEqual([]); // quiet
    expect(await exists("t5/a")).toBe(false);
    expect(await exists("t5/ b ")).toBe(false);
  });

  it("an empty key and a document with only layout are still MalformedXML", async () => {
    await expectError(multiDelete(`<Delete><Object><Key></Key></Object></Delete>`), 400, "MalformedXML");
    await expectError(multiDelete(`<Delete>\n  \n</Delete>`), 400, "MalformedXML");
    await expectError(multiDelete(`<Delete>\n  <Object>\n  </Object>\n</Delete>`), 400, "MalformedXML");
  });
});

describe("CompleteMultipartUpload: ETags as sent, PartNumber a token, layout ignored", () => {
  it("a pretty-printed document with ' 1 ' as PartNumber completes", async () => {
    const key = "cmp/pretty";
    const id = await createUpload("adminA", bucket, key);
    const etag = await uploadPart("adminA", bucket, key, id, 1, utf8("pretty"));
    const body = `<CompleteMultipartUpload>\n  <Part>\n    <PartNumber> 1 </PartNumber>\n    <ETag>${etag}</ETag>\n  </Part>\n</CompleteMultipartUpload>\n`;
    const r = await send("adminA", { method: "POST", bucket, key, query: { uploadId: id }, body });
    expect(r.status, await r.text()).toBe(200);
    expect(new TextDecoder().decode((await readFully(await send("adminA", { method: "GET", bucket, key }))).bytes)).toBe("pretty");
  });

  it("an ETag with whitespace around it is not the part's ETag (InvalidPart); without it the upload completes", async () => {
    const key = "cmp/etag";
    const id = await createUpload("adminA", bucket, key);
    const etag = await uploadPart("adminA", bucket, key, id, 1, utf8("etag"));
    const body = completeXml([{ partNumber: 1, etag: ` ${etag}\n` }]);
    await expectError(send("adminA", { method: "POST", bucket, key, query: { uploadId: id }, body }), 400, "InvalidPart");
    const ok = await send("adminA", { method: "POST", bucket, key, query: { uploadId: id }, body: completeXml([{ partNumber: 1, etag: etag.replace(/"/g, "") }]) });
    expect(ok.status, await ok.text()).toBe(200);
  });
});

describe("configuration documents: layout ignored, tokens trimmed, user values exact", () => {
  it("a pretty-printed CORSConfiguration is stored; origins are matched as sent, methods are tokens", async () => {
    const body = [
      `<CORSConfiguration>`,
      `  <CORSRule>`,
      `    <AllowedOrigin>http://a.example</AllowedOrigin>`,
      `    <AllowedOrigin> http://b.example</AllowedOrigin>`,
      `    <AllowedMethod> GET </AllowedMethod>`,
      `    <MaxAgeSeconds>\n60\n</MaxAgeSeconds>`,
      `  </CORSRule>`,
      `</CORSConfiguration>`,
    ].join("\n");
    const r = await send("adminA", { method: "PUT", bucket, query: { cors: "" }, body, headers: { "content-md5": await md5Base64(body) } });
    expect(r.status, await r.text()).toBe(200);
    const get = await send("adminA", { method: "GET", bucket, query: { cors: "" } });
    const text = await get.text();
    expect(xmlValues(text, "AllowedOrigin")).toEqual(["http://a.example", " http://b.example"]);
    expect(xmlValues(text, "AllowedMethod")).toEqual(["GET"]);
    expect(xmlValue(text, "MaxAgeSeconds")).toBe("60");
    const preflight = (origin: string) => send("adminA", { method: "OPTIONS", bucket, key: "x", anonymous: true, headers: { origin, "access-control-request-method": "GET" } });
    expect((await preflight("http://a.example")).status).toBe(200);
    // " http://b.example" is not the origin http://b.example.
    expect((await preflight("http://b.example")).status).toBe(403);
    expect((await send("adminA", { method: "DELETE", bucket, query: { cors: "" } })).status).toBe(204);
  });

  it("ServerSideEncryptionConfiguration and CreateBucketConfiguration pretty-printed, enum values trimmed", async () => {
    const sse = `<ServerSideEncryptionConfiguration>\n  <Rule>\n    <ApplyServerSideEncryptionByDefault>\n      <SSEAlgorithm> AES256\n</SSEAlgorithm>\n    </ApplyServerSideEncryptionByDefault>\n    <BucketKeyEnabled> false </BucketKeyEnabled>\n  </Rule>\n</ServerSideEncryptionConfiguration>\n`;
    const r = await send("adminA", { method: "PUT", bucket, query: { encryption: "" }, body: sse, headers: { "content-md5": await md5Base64(sse) } });
    expect(r.status, await r.text()).toBe(200);
    const get = await send("adminA", { method: "GET", bucket, query: { encryption: "" } });
    const text = await get.text();
    expect(xmlValue(text, "SSEAlgorithm")).toBe("AES256");
    expect(xmlValue(text, "BucketKeyEnabled")).toBe("false");
    // A KMS key id is the user's value: stored and read back as sent (KMS resolves it as it
    // resolves the header's value).
    const kms = `<ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>aws:kms</SSEAlgorithm><KMSMasterKeyID> alias/aws/s3</KMSMasterKeyID></ApplyServerSideEncryptionByDefault></Rule></ServerSideEncryptionConfiguration>`;
    const stored = await send("adminA", { method: "PUT", bucket, query: { encryption: "" }, body: kms, headers: { "content-md5": await md5Base64(kms) } });
    expect(stored.status, await stored.text()).toBe(200);
    expect(xmlValue(await (await send("adminA", { method: "GET", bucket, query: { encryption: "" } })).text(), "KMSMasterKeyID")).toBe(" alias/aws/s3");
    expect((await send("adminA", { method: "DELETE", bucket, query: { encryption: "" } })).status).toBe(204);

    const b = uniqueBucket("xmlcfg");
    const create = `<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">\n  <LocationConstraint>\n    us-east-1\n  </LocationConstraint>\n</CreateBucketConfiguration>\n`;
    const c = await send("adminA", { method: "PUT", bucket: b, body: create });
    expect(c.status, await c.text()).toBe(200);
    expect((await send("adminA", { method: "DELETE", bucket: b })).status).toBe(204);
  });
});
