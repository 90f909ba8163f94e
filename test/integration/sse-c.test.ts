import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { auditPage } from "../../src/audit/audit";
import { rewrapObject } from "../../src/rotation/rewrap";
import { makeServices } from "../../src/services";
import { encodePolicy, multipartBody, signV4, v4Fields, amzDate } from "../support/post-form";
import { pseudoRandom } from "../support/sources";
import {
  crc32Base64,
  xmlBlocks,
  CREDENTIALS,
  allowPublicPolicies,
  createBucket,
  expectError,
  fetchWorker,
  md5Base64,
  presignedUrl,
  sameBytes,
  seedIdentities,
  send,
  signerFor,
  uniqueBucket,
  utf8,
  xmlValue,
  xmlValues,
  type Send,
} from "../support/s3-harness";

/**
 * SSE-C (customer-provided keys) through the real request path: headers and their errors,
 * reads with the right, a wrong and no key (whole, ranged, by part), copies in every
 * direction, multipart, POST Object, presigned URLs, the bucket switch, policy conditions,
 * tenant rules, TLS, listings, and the jobs that cannot unwrap SSE-C data.
 */
const ALG = "x-amz-server-side-encryption-customer-algorithm";
const KEY = "x-amz-server-side-encryption-customer-key";
const MD5 = "x-amz-server-side-encryption-customer-key-MD5";
const SSE = "x-amz-server-side-encryption";

interface TestKey {
  raw: Uint8Array;
  b64: string;
  md5: string;
}

async function testKey(seed: number): Promise<TestKey> {
  const raw = new Uint8Array(32).map((_, i) => (seed * 31 + i * 7) & 0xff);
  const b64 = btoa(String.fromCharCode(...raw));
  return { raw, b64, md5: await md5Base64(raw) };
}

let K1: TestKey;
let K2: TestKey;
const ssec = (k: TestKey) => ({ [ALG]: "AES256", [KEY]: k.b64, [MD5]: k.md5 });
const copySsec = (k: TestKey) => ({
  "x-amz-copy-source-server-side-encryption-customer-algorithm": "AES256",
  "x-amz-copy-source-server-side-encryption-customer-key": k.b64,
  "x-amz-copy-source-server-side-encryption-customer-key-MD5": k.md5,
});

const bucket = uniqueBucket("ssec");
const blocked = uniqueBucket("ssecblk");

async function encryptionConfig(who: "adminA" | "adminB", name: string, rule: string): Promise<Response> {
  const body = `<ServerSideEncryptionConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Rule>${rule}</Rule></ServerSideEncryptionConfiguration>`;
  return send(who, { method: "PUT", bucket: name, query: { encryption: "" }, body, headers: { "content-md5": await md5Base64(body) } });
}

const UNBLOCK = "<ApplyServerSideEncryptionByDefault><SSEAlgorithm>AES256</SSEAlgorithm></ApplyServerSideEncryptionByDefault><BlockedEncryptionTypes><EncryptionType>NONE</EncryptionType></BlockedEncryptionTypes>";
const BLOCK = "<ApplyServerSideEncryptionByDefault><SSEAlgorithm>AES256</SSEAlgorithm></ApplyServerSideEncryptionByDefault><BlockedEncryptionTypes><EncryptionType>SSE-C</EncryptionType></BlockedEncryptionTypes>";

async function put(key: string, body: string | Uint8Array, headers: Record<string, string>, extra: Partial<Send> = {}, who: "adminA" | "memberA" | "adminB" = "adminA") {
  return send(who, { method: "PUT", bucket, key, body, headers, ...extra });
}

async function rawEnvelope(b: string, key: string): Promise<Record<string, unknown>> {
  const head = await env.OBJECTS.head(`${b}/${key}`);
  return JSON.parse(head!.customMetadata!["sse-envelope"]!) as Record<string, unknown>;
}

beforeAll(async () => {
  K1 = await testKey(1);
  K2 = await testKey(2);
  await seedIdentities();
  await createBucket("adminA", bucket);
  expect((await encryptionConfig("adminA", bucket, UNBLOCK)).status).toBe(200);
  await createBucket("adminA", blocked);
});

describe("the bucket switch (BlockedEncryptionTypes)", () => {
  it("a new bucket blocks SSE-C writes (403) and says so in GetBucketEncryption; NONE unblocks, SSE-C blocks again", async () => {
    const e = await expectError(put("x", "data", ssec(K1), { bucket: blocked }), 403, "AccessDenied");
    expect(e.message).toBe("Server side encryption with customer provided keys (SSE-C) is blocked for this bucket.");
    const config = await send("adminA", { method: "GET", bucket: blocked, query: { encryption: "" } });
    const xml = await config.text();
    expect(xmlValues(xml, "EncryptionType")).toEqual(["SSE-C"]);
    // Other modes are not affected.
    expect((await put("plain", "data", {}, { bucket: blocked })).status).toBe(200);
    // Unblocked: SSE-C writes work, and the element is gone.
    expect((await encryptionConfig("adminA", blocked, UNBLOCK)).status).toBe(200);
    expect((await put("x", "data", ssec(K1), { bucket: blocked })).status).toBe(200);
    const after = await (await send("adminA", { method: "GET", bucket: blocked, query: { encryption: "" } })).text();
    expect(xmlValues(after, "EncryptionType")).toEqual([]);
    // Blocked again: writes refused, existing SSE-C objects still readable (as AWS).
    expect((await encryptionConfig("adminA", blocked, BLOCK)).status).toBe(200);
    await expectError(put("y", "data", ssec(K1), { bucket: blocked }), 403, "AccessDenied");
    const g = await send("adminA", { method: "GET", bucket: blocked, key: "x", headers: ssec(K1) });
    expect(g.status).toBe(200);
    expect(await g.text()).toBe("data");
    // A PutBucketEncryption without the element leaves the switch as it is.
    const keep = "<ApplyServerSideEncryptionByDefault><SSEAlgorithm>AES256</SSEAlgorithm></ApplyServerSideEncryptionByDefault>";
    expect((await encryptionConfig("adminA", blocked, keep)).status).toBe(200);
    await expectError(put("y", "data", ssec(K1), { bucket: blocked }), 403, "AccessDenied");
  });

  it("an unknown encryption type is MalformedXML", async () => {
    const bad = "<ApplyServerSideEncryptionByDefault><SSEAlgorithm>AES256</SSEAlgorithm></ApplyServerSideEncryptionByDefault><BlockedEncryptionTypes><EncryptionType>SSE-X</EncryptionType></BlockedEncryptionTypes>";
    await expectError(encryptionConfig("adminA", blocked, bad), 400, "MalformedXML");
  });
});

describe("PUT, GET and HEAD", () => {
  const body = pseudoRandom(200_000, 7);

  it("stores with the key and answers algorithm and key MD5 (never the key, never x-amz-server-side-encryption)", async () => {
    const r = await put("obj", body, { ...ssec(K1), "content-md5": await md5Base64(body) });
    expect(r.status).toBe(200);
    expect(r.headers.get(ALG)).toBe("AES256");
    expect(r.headers.get(MD5)).toBe(K1.md5);
    expect(r.headers.get(KEY)).toBeNull();
    expect(r.headers.get(SSE)).toBeNull();
    // S3 gives SSE-C objects no plaintext MD5 as ETag, even with Content-MD5.
    const etag = r.headers.get("etag")!;
    expect(etag).toMatch(/^"[0-9a-f]{32}-1"$/);
    for (const method of ["GET", "HEAD"] as const) {
      const g = await send("adminA", { method, bucket, key: "obj", headers: ssec(K1) });
      expect(g.status).toBe(200);
      expect(g.headers.get(ALG)).toBe("AES256");
      expect(g.headers.get(MD5)).toBe(K1.md5);
      expect(g.headers.get(SSE)).toBeNull();
      expect(g.headers.get("etag")).toBe(etag);
      if (method === "HEAD") expect(g.headers.get("content-length")).toBe(String(body.byteLength));
      if (method === "GET") expect(sameBytes(new Uint8Array(await g.arrayBuffer()), body)).toBe(true);
    }
  });

  it("R2 holds the SSE-C envelope (salt, verifier; no CMK) and nothing of the key or its MD5", async () => {
    const envelope = await rawEnvelope(bucket, "obj");
    expect(envelope.m).toBe("SSE-C");
    expect(envelope.k).toBeUndefined();
    expect(envelope.kv).toBeUndefined();
    expect(typeof envelope.x).toBe("string");
    expect(typeof envelope.y).toBe("string");
    const head = await env.OBJECTS.head(`${bucket}/obj`);
    const meta = JSON.stringify(head!.customMetadata);
    expect(meta.includes(K1.b64)).toBe(false);
    expect(meta.includes(K1.md5)).toBe(false);
    const stored = new Uint8Array(await (await env.OBJECTS.get(`${bucket}/obj`))!.arrayBuffer());
    expect(stored.byteLength).toBeGreaterThan(body.byteLength);
  });

  it("without the key: 400 InvalidRequest on GET, HEAD, range and partNumber", async () => {
    const message = "The object was stored using a form of Server Side Encryption. The correct parameters must be provided to retrieve the object.";
    expect((await expectError(send("adminA", { method: "GET", bucket, key: "obj" }), 400, "InvalidRequest")).message).toBe(message);
    expect((await expectError(send("adminA", { method: "GET", bucket, key: "obj", headers: { range: "bytes=0-9" } }), 400, "InvalidRequest")).message).toBe(message);
    await expectError(send("adminA", { method: "GET", bucket, key: "obj", query: { partNumber: "1" } }), 400, "InvalidRequest");
    const head = await send("adminA", { method: "HEAD", bucket, key: "obj" });
    expect(head.status).toBe(400);
  });

  it("with a wrong key: 403 AccessDenied on GET, HEAD, range and partNumber, before any byte is decrypted", async () => {
    const e = await expectError(send("adminA", { method: "GET", bucket, key: "obj", headers: ssec(K2) }), 403, "AccessDenied");
    expect(e.message).toBe("Requests specifying Server Side Encryption with Customer provided keys must provide the correct secret key.");
    await expectError(send("adminA", { method: "GET", bucket, key: "obj", headers: { ...ssec(K2), range: "bytes=100-200" } }), 403, "AccessDenied");
    await expectError(send("adminA", { method: "GET", bucket, key: "obj", query: { partNumber: "1" }, headers: ssec(K2) }), 403, "AccessDenied");
    expect((await send("adminA", { method: "HEAD", bucket, key: "obj", headers: ssec(K2) })).status).toBe(403);
  });

  it("ranges and partNumber with the key are chunk-exact", async () => {
    const r = await send("adminA", { method: "GET", bucket, key: "obj", headers: { ...ssec(K1), range: "bytes=65530-131080" } });
    expect(r.status).toBe(206);
    expect(r.headers.get("content-range")).toBe(`bytes 65530-131080/${body.byteLength}`);
    expect(sameBytes(new Uint8Array(await r.arrayBuffer()), body.subarray(65530, 131081))).toBe(true);
    const suffix = await send("adminA", { method: "GET", bucket, key: "obj", headers: { ...ssec(K1), range: "bytes=-5" } });
    expect(sameBytes(new Uint8Array(await suffix.arrayBuffer()), body.subarray(body.byteLength - 5))).toBe(true);
    const part = await send("adminA", { method: "GET", bucket, key: "obj", query: { partNumber: "1" }, headers: ssec(K1) });
    expect(part.status).toBe(206);
    expect(sameBytes(new Uint8Array(await part.arrayBuffer()), body)).toBe(true);
    const headRange = await send("adminA", { method: "HEAD", bucket, key: "obj", headers: { ...ssec(K1), range: "bytes=0-9" } });
    expect(headRange.status).toBe(206);
    expect(headRange.headers.get(MD5)).toBe(K1.md5);
  });

  it("a key sent for an object that is not SSE-C: 400 InvalidRequest", async () => {
    expect((await put("plain", "plain data", {})).status).toBe(200);
    const e = await expectError(send("adminA", { method: "GET", bucket, key: "plain", headers: ssec(K1) }), 400, "InvalidRequest");
    expect(e.message).toBe("The encryption parameters are not applicable to this object.");
  });

  it("object tagging needs no key, as on S3", async () => {
    const tagging = "<Tagging><TagSet><Tag><Key>k</Key><Value>v</Value></Tag></TagSet></Tagging>";
    const p = await send("adminA", { method: "PUT", bucket, key: "obj", query: { tagging: "" }, body: tagging, headers: { "content-md5": await md5Base64(tagging) } });
    expect(p.status).toBe(200);
    const g = await send("adminA", { method: "GET", bucket, key: "obj", query: { tagging: "" } });
    expect(g.status).toBe(200);
    expect(xmlValue(await g.text(), "Value")).toBe("v");
  });

  it("listings show the object's own opaque ETag and size, never a plaintext MD5", async () => {
    const head = await send("adminA", { method: "HEAD", bucket, key: "obj", headers: ssec(K1) });
    const list = await (await send("adminA", { method: "GET", bucket, query: { "list-type": "2", prefix: "obj" } })).text();
    expect(xmlValues(list, "ETag")).toEqual([head.headers.get("etag")!]);
    expect(xmlValues(list, "Size")).toEqual([String(body.byteLength)]);
  });
});

describe("header validation (400, AWS's messages)", () => {
  it.each([
    ["algorithm not AES256", () => ({ ...ssec(K1), [ALG]: "aws:kms" }), "InvalidArgument", "Requests specifying Server Side Encryption with Customer provided keys must provide a valid encryption algorithm."],
    ["algorithm missing", () => ({ [KEY]: K1.b64, [MD5]: K1.md5 }), "InvalidArgument", "Requests specifying Server Side Encryption with Customer provided keys must provide a valid encryption algorithm."],
    ["key missing", () => ({ [ALG]: "AES256", [MD5]: K1.md5 }), "InvalidArgument", "Requests specifying Server Side Encryption with Customer provided keys must provide an appropriate secret key."],
    ["key of 16 bytes", () => ({ [ALG]: "AES256", [KEY]: btoa("0123456789abcdef"), [MD5]: K1.md5 }), "InvalidArgument", "The secret key was invalid for the specified algorithm."],
    ["key not base64", () => ({ [ALG]: "AES256", [KEY]: "%%%", [MD5]: K1.md5 }), "InvalidArgument", "The secret key was invalid for the specified algorithm."],
    ["MD5 missing", () => ({ [ALG]: "AES256", [KEY]: K1.b64 }), "InvalidArgument", "Requests specifying Server Side Encryption with Customer provided keys must provide the client calculated MD5 of the secret key."],
    ["MD5 of another key", () => ({ ...ssec(K1), [MD5]: K2.md5 }), "InvalidArgument", "The calculated MD5 hash of the key did not match the hash that was provided."],
    ["with x-amz-server-side-encryption: AES256", () => ({ ...ssec(K1), [SSE]: "AES256" }), "InvalidArgument", "Server Side Encryption with Customer provided key is incompatible with the encryption method specified"],
    ["with x-amz-server-side-encryption: aws:kms", () => ({ ...ssec(K1), [SSE]: "aws:kms" }), "InvalidArgument", "Server Side Encryption with Customer provided key is incompatible with the encryption method specified"],
  ])("PUT %s", async (_name, headers, code, message) => {
    const e = await expectError(put("bad", "x", headers()), 400, code);
    expect(e.message).toBe(message);
    // The key never appears in an error.
    expect(JSON.stringify(e).includes(K1.b64)).toBe(false);
    expect(await env.OBJECTS.head(`${bucket}/bad`)).toBeNull();
  });

  it("GET validates the key headers the same way", async () => {
    await expectError(send("adminA", { method: "GET", bucket, key: "obj", headers: { ...ssec(K1), [MD5]: K2.md5 } }), 400, "InvalidArgument");
  });
});

describe("CopyObject re-encrypts in every direction", () => {
  const body = pseudoRandom(70_000, 11);

  beforeAll(async () => {
    expect((await put("src", body, ssec(K1))).status).toBe(200);
  });

  it("SSE-C source without the copy-source key: 400; with a wrong one: 403", async () => {
    await expectError(send("adminA", { method: "PUT", bucket, key: "dst", headers: { "x-amz-copy-source": `/${bucket}/src` } }), 400, "InvalidRequest");
    await expectError(send("adminA", { method: "PUT", bucket, key: "dst", headers: { "x-amz-copy-source": `/${bucket}/src`, ...copySsec(K2) } }), 403, "AccessDenied");
  });

  it("SSE-C → SSE-S3 (default) and SSE-C → SSE-KMS", async () => {
    for (const [key, target] of [["to-s3", {}], ["to-kms", { [SSE]: "aws:kms" }]] as const) {
      const r = await send("adminA", { method: "PUT", bucket, key, headers: { "x-amz-copy-source": `/${bucket}/src`, ...copySsec(K1), ...target } });
      expect(r.status, key).toBe(200);
      expect(r.headers.get(ALG)).toBeNull();
      const g = await send("adminA", { method: "GET", bucket, key });
      expect(g.status).toBe(200);
      expect(g.headers.get(SSE)).toBe(key === "to-kms" ? "aws:kms" : "AES256");
      expect(sameBytes(new Uint8Array(await g.arrayBuffer()), body)).toBe(true);
      // A fresh data key: nothing of the SSE-C source is reused.
      expect((await rawEnvelope(bucket, key)).w).not.toBe((await rawEnvelope(bucket, "src")).w);
    }
  });

  it("SSE-KMS → SSE-C", async () => {
    expect((await put("kms-src", body, { [SSE]: "aws:kms" })).status).toBe(200);
    const r = await send("adminA", { method: "PUT", bucket, key: "from-kms", headers: { "x-amz-copy-source": `/${bucket}/kms-src`, ...ssec(K2) } });
    expect(r.status).toBe(200);
    expect(r.headers.get(MD5)).toBe(K2.md5);
    expect(xmlValue(await r.text(), "ETag")).toMatch(/^"[0-9a-f]{32}-1"$/);
    const g = await send("adminA", { method: "GET", bucket, key: "from-kms", headers: ssec(K2) });
    expect(sameBytes(new Uint8Array(await g.arrayBuffer()), body)).toBe(true);
    await expectError(send("adminA", { method: "GET", bucket, key: "from-kms" }), 400, "InvalidRequest");
  });

  it("SSE-C → SSE-C under another key, and onto itself with a new key (key rotation)", async () => {
    const r = await send("adminA", { method: "PUT", bucket, key: "rekeyed", headers: { "x-amz-copy-source": `/${bucket}/src`, ...copySsec(K1), ...ssec(K2) } });
    expect(r.status).toBe(200);
    expect(sameBytes(new Uint8Array(await (await send("adminA", { method: "GET", bucket, key: "rekeyed", headers: ssec(K2) })).arrayBuffer()), body)).toBe(true);
    await expectError(send("adminA", { method: "GET", bucket, key: "rekeyed", headers: ssec(K1) }), 403, "AccessDenied");

    expect((await put("rotate", body, ssec(K1))).status).toBe(200);
    const self = await send("adminA", { method: "PUT", bucket, key: "rotate", headers: { "x-amz-copy-source": `/${bucket}/rotate`, ...copySsec(K1), ...ssec(K2) } });
    expect(self.status).toBe(200);
    await expectError(send("adminA", { method: "GET", bucket, key: "rotate", headers: ssec(K1) }), 403, "AccessDenied");
    const g = await send("adminA", { method: "GET", bucket, key: "rotate", headers: ssec(K2) });
    expect(sameBytes(new Uint8Array(await g.arrayBuffer()), body)).toBe(true);
  });

  it("copy-source key headers on a source that is not SSE-C: 400 InvalidRequest", async () => {
    await expectError(send("adminA", { method: "PUT", bucket, key: "dst2", headers: { "x-amz-copy-source": `/${bucket}/kms-src`, ...copySsec(K1) } }), 400, "InvalidRequest");
  });
});

describe("multipart", () => {
  const part1 = pseudoRandom(5 * 1024 * 1024, 21);
  const part2 = pseudoRandom(1000, 22);

  async function create(key: string, headers: Record<string, string>): Promise<string> {
    const r = await send("adminA", { method: "POST", bucket, key, query: { uploads: "" }, headers });
    expect(r.status).toBe(200);
    if (headers[ALG]) {
      expect(r.headers.get(ALG)).toBe("AES256");
      expect(r.headers.get(MD5)).toBe(headers[MD5]);
    }
    return xmlValue(await r.text(), "UploadId")!;
  }

  const uploadPart = (key: string, uploadId: string, n: number, body: Uint8Array, headers: Record<string, string>) =>
    send("adminA", { method: "PUT", bucket, key, query: { uploadId, partNumber: String(n) }, body, headers });

  const complete = (key: string, uploadId: string, etags: string[], headers: Record<string, string> = {}) => {
    const doc = `<CompleteMultipartUpload>${etags.map((e, i) => `<Part><PartNumber>${i + 1}</PartNumber><ETag>${e}</ETag></Part>`).join("")}</CompleteMultipartUpload>`;
    return send("adminA", { method: "POST", bucket, key, query: { uploadId }, body: doc, headers });
  };

  it("every part needs the upload's key (400 without it or with another); Complete needs none", async () => {
    const uploadId = await create("mpu", ssec(K1));
    const missing = await expectError(uploadPart("mpu", uploadId, 1, part1, {}), 400, "InvalidRequest");
    expect(missing.message).toBe("The multipart upload initiate requested encryption. Subsequent part requests must include the appropriate encryption parameters.");
    const other = await expectError(uploadPart("mpu", uploadId, 1, part1, ssec(K2)), 400, "InvalidRequest");
    expect(other.message).toBe("The provided encryption parameters did not match the ones used originally.");
    const p1 = await uploadPart("mpu", uploadId, 1, part1, ssec(K1));
    expect(p1.status).toBe(200);
    expect(p1.headers.get(MD5)).toBe(K1.md5);
    const p2 = await uploadPart("mpu", uploadId, 2, part2, ssec(K1));
    expect(p2.status).toBe(200);
    // Complete with another key is refused; without one it completes.
    await expectError(complete("mpu", uploadId, [p1.headers.get("etag")!, p2.headers.get("etag")!], ssec(K2)), 400, "InvalidRequest");
    const done = await complete("mpu", uploadId, [p1.headers.get("etag")!, p2.headers.get("etag")!]);
    expect(done.status).toBe(200);
    expect(xmlValue(await done.text(), "ETag")).toMatch(/-2&quot;$|-2"$/);

    const g = await send("adminA", { method: "GET", bucket, key: "mpu", headers: ssec(K1) });
    expect(g.status).toBe(200);
    const got = new Uint8Array(await g.arrayBuffer());
    expect(sameBytes(got.subarray(0, part1.byteLength), part1)).toBe(true);
    expect(sameBytes(got.subarray(part1.byteLength), part2)).toBe(true);
    await expectError(send("adminA", { method: "GET", bucket, key: "mpu" }), 400, "InvalidRequest");
    await expectError(send("adminA", { method: "GET", bucket, key: "mpu", headers: ssec(K2) }), 403, "AccessDenied");
    const second = await send("adminA", { method: "GET", bucket, key: "mpu", query: { partNumber: "2" }, headers: ssec(K1) });
    expect(second.status).toBe(206);
    expect(sameBytes(new Uint8Array(await second.arrayBuffer()), part2)).toBe(true);
    // The upload row kept the verifier and a sealed MAC key, never the key or its MD5.
    const envelope = await rawEnvelope(bucket, "mpu");
    expect(envelope.m).toBe("SSE-C");
  });

  it("an upload created with a checksum algorithm needs the key on Complete too (as S3 documents)", async () => {
    const uploadId = await create("mpu-sum", { ...ssec(K1), "x-amz-checksum-algorithm": "CRC32" });
    const p1 = await uploadPart("mpu-sum", uploadId, 1, part2, ssec(K1));
    expect(p1.status).toBe(200);
    const e = await expectError(complete("mpu-sum", uploadId, [p1.headers.get("etag")!]), 400, "InvalidRequest");
    expect(e.message).toBe("The object was stored using a form of Server Side Encryption. Correct SSE-C request parameters are required for this request when specifying checksums for each part.");
    const done = await complete("mpu-sum", uploadId, [p1.headers.get("etag")!], ssec(K1));
    expect(done.status).toBe(200);
    const g = await send("adminA", { method: "GET", bucket, key: "mpu-sum", headers: ssec(K1) });
    expect(sameBytes(new Uint8Array(await g.arrayBuffer()), part2)).toBe(true);
    // The part checksums were sealed under the object's data key at Complete, so
    // GetObjectAttributes lists them with the key (and needs it, as every read does).
    const attrs = (headers: Record<string, string>) => send("adminA", { method: "GET", bucket, key: "mpu-sum", query: { attributes: "" }, headers: { "x-amz-object-attributes": "ObjectParts", ...headers } });
    const listed = await attrs(ssec(K1));
    const xml = await listed.text();
    expect(listed.status, xml).toBe(200);
    expect(xmlBlocks(xml, "Part").map((b) => [xmlValue(b, "PartNumber"), xmlValue(b, "Size"), xmlValue(b, "ChecksumCRC32")])).toEqual([["1", String(part2.byteLength), crc32Base64(part2)]]);
    await expectError(attrs({}), 400, "InvalidRequest");
    await expectError(attrs(ssec(K2)), 403, "AccessDenied");
  });

  it("a key on a part of an upload that is not SSE-C: 400", async () => {
    const uploadId = await create("mpu-plain", {});
    await expectError(uploadPart("mpu-plain", uploadId, 1, part2, ssec(K1)), 400, "InvalidRequest");
  });

  it("D1 keeps neither the key nor its MD5 for an SSE-C upload", async () => {
    const uploadId = await create("mpu-row", ssec(K1));
    const row = await env.DB.prepare("SELECT * FROM multipart_uploads WHERE upload_id = ?").bind(uploadId).first<Record<string, unknown>>();
    const text = JSON.stringify(row);
    expect(text.includes(K1.b64)).toBe(false);
    expect(text.includes(K1.md5)).toBe(false);
    expect(typeof row!.sse_c).toBe("string");
  });

  it("UploadPartCopy from an SSE-C source into an SSE-C upload needs both keys", async () => {
    expect((await put("copy-src", part2, ssec(K2))).status).toBe(200);
    const uploadId = await create("mpu-copy", ssec(K1));
    const q = { uploadId, partNumber: "1" };
    await expectError(send("adminA", { method: "PUT", bucket, key: "mpu-copy", query: q, headers: { "x-amz-copy-source": `/${bucket}/copy-src`, ...ssec(K1) } }), 400, "InvalidRequest");
    await expectError(send("adminA", { method: "PUT", bucket, key: "mpu-copy", query: q, headers: { "x-amz-copy-source": `/${bucket}/copy-src`, ...copySsec(K2) } }), 400, "InvalidRequest");
    const ok = await send("adminA", { method: "PUT", bucket, key: "mpu-copy", query: q, headers: { "x-amz-copy-source": `/${bucket}/copy-src`, ...copySsec(K2), ...ssec(K1) } });
    expect(ok.status).toBe(200);
    const etag = xmlValue(await ok.text(), "ETag")!.replace(/&quot;/g, '"');
    expect((await complete("mpu-copy", uploadId, [etag])).status).toBe(200);
    const g = await send("adminA", { method: "GET", bucket, key: "mpu-copy", headers: ssec(K1) });
    expect(sameBytes(new Uint8Array(await g.arrayBuffer()), part2)).toBe(true);
  });
});

describe("POST Object with SSE-C form fields", () => {
  it("stores with the form's key; GET needs it", async () => {
    const date = amzDate();
    const fields = { ...v4Fields(CREDENTIALS.adminA.accessKeyId, date), ...ssec(K1) };
    const conditions: unknown[] = [{ bucket }, ["eq", "$key", "posted"], ...Object.entries(fields).map(([k, v]) => ({ [k]: v }))];
    const policy = encodePolicy(conditions);
    const signature = await signV4(policy, CREDENTIALS.adminA.secretAccessKey, date);
    const form = multipartBody([
      { name: "key", value: "posted" },
      ...Object.entries(fields).map(([name, value]) => ({ name, value })),
      { name: "policy", value: policy },
      { name: "x-amz-signature", value: signature },
      { name: "file", file: "posted body", filename: "f.txt" },
    ]);
    const r = await fetchWorker(`http://gw.test/${bucket}`, { method: "POST", body: form.body, headers: { "content-type": form.contentType } });
    expect(r.status).toBe(204);
    expect(r.headers.get(MD5)).toBe(K1.md5);
    const g = await send("adminA", { method: "GET", bucket, key: "posted", headers: ssec(K1) });
    expect(await g.text()).toBe("posted body");
    await expectError(send("adminA", { method: "GET", bucket, key: "posted" }), 400, "InvalidRequest");
  });
});

describe("POST Object policy failures never echo the key", () => {
  it("a form whose key field differs from the policy's: 403, the condition quoted without the key", async () => {
    const date = amzDate();
    const fields = { ...v4Fields(CREDENTIALS.adminA.accessKeyId, date), ...ssec(K1) };
    // The policy names K2 for the key field; the form sends K1.
    const conditions: unknown[] = [{ bucket }, ["eq", "$key", "posted-bad"], ...Object.entries({ ...fields, ...ssec(K2) }).map(([k, v]) => ({ [k]: v }))];
    const policy = encodePolicy(conditions);
    const form = multipartBody([
      { name: "key", value: "posted-bad" },
      ...Object.entries(fields).map(([name, value]) => ({ name, value })),
      { name: "policy", value: policy },
      { name: "x-amz-signature", value: await signV4(policy, CREDENTIALS.adminA.secretAccessKey, date) },
      { name: "file", file: "x", filename: "f.txt" },
    ]);
    const r = await fetchWorker(`http://gw.test/${bucket}`, { method: "POST", body: form.body, headers: { "content-type": form.contentType } });
    expect(r.status).toBe(403);
    const text = await r.text();
    expect(text).toContain("Policy Condition failed");
    expect(text.includes(K1.b64) || text.includes(K2.b64)).toBe(false);
  });
});

describe("POST Object larger than one buffer (the multipart layout)", () => {
  it("a 9 MiB form file with SSE-C fields: stored in parts under the key, Complete signed without it", async () => {
    const file = pseudoRandom(9 * 1024 * 1024, 33);
    const date = amzDate();
    const fields = { ...v4Fields(CREDENTIALS.adminA.accessKeyId, date), ...ssec(K2) };
    const conditions: unknown[] = [{ bucket }, ["eq", "$key", "posted-large"], ...Object.entries(fields).map(([k, v]) => ({ [k]: v }))];
    const policy = encodePolicy(conditions);
    const form = multipartBody([
      { name: "key", value: "posted-large" },
      ...Object.entries(fields).map(([name, value]) => ({ name, value })),
      { name: "policy", value: policy },
      { name: "x-amz-signature", value: await signV4(policy, CREDENTIALS.adminA.secretAccessKey, date) },
      { name: "file", file, filename: "big.bin" },
    ]);
    const r = await fetchWorker(`http://gw.test/${bucket}`, { method: "POST", body: form.body, headers: { "content-type": form.contentType } });
    expect(r.status, await r.clone().text()).toBe(204);
    expect(r.headers.get("etag")).toMatch(/^"[0-9a-f]{32}-2"$/);
    const envelope = await rawEnvelope(bucket, "posted-large");
    expect(envelope.m).toBe("SSE-C");
    expect(envelope.p).toBeDefined();
    const g = await send("adminA", { method: "GET", bucket, key: "posted-large", headers: ssec(K2) });
    expect(sameBytes(new Uint8Array(await g.arrayBuffer()), file)).toBe(true);
    await expectError(send("adminA", { method: "GET", bucket, key: "posted-large", headers: ssec(K1) }), 403, "AccessDenied");
  }, 60_000);
});

describe("conditional writes over an SSE-C object", () => {
  it("If-Match compares the object's ETag without needing its key; If-None-Match: * refuses", async () => {
    expect((await put("cond", "v1", ssec(K1))).status).toBe(200);
    const etag = (await send("adminA", { method: "HEAD", bucket, key: "cond", headers: ssec(K1) })).headers.get("etag")!;
    await expectError(put("cond", "v2", { "if-match": '"0123456789abcdef0123456789abcdef-1"' }), 412, "PreconditionFailed");
    await expectError(put("cond", "v2", { "if-none-match": "*" }), 412, "PreconditionFailed");
    // With the right ETag the overwrite (here under another key) goes through.
    expect((await put("cond", "v2", { ...ssec(K2), "if-match": etag })).status).toBe(200);
    expect(await (await send("adminA", { method: "GET", bucket, key: "cond", headers: ssec(K2) })).text()).toBe("v2");
  });
});

describe("presigned URLs", () => {
  it("the key travels in signed headers", async () => {
    expect((await put("presigned", "presigned body", ssec(K1))).status).toBe(200);
    // As @aws-sdk/s3-request-presigner with the SSE-C headers in unhoistableHeaders (README).
    const signed = await signerFor("adminA").presign(
      { method: "GET", protocol: "http:", hostname: "gw.test", path: `/${bucket}/presigned`, query: {}, headers: { host: "gw.test", "x-amz-content-sha256": "UNSIGNED-PAYLOAD", ...ssec(K1) } },
      { expiresIn: 900, unhoistableHeaders: new Set([ALG, KEY, MD5.toLowerCase()]) },
    );
    const query = signed.query as Record<string, string>;
    expect(query["X-Amz-SignedHeaders"]).toContain(KEY);
    const url = `http://gw.test/${bucket}/presigned?${new URLSearchParams(query).toString()}`;
    expect(url.includes(encodeURIComponent(K1.b64))).toBe(false);
    const r = await fetchWorker(url, { headers: ssec(K1) });
    expect(r.status, await r.clone().text()).toBe(200);
    expect(await r.text()).toBe("presigned body");
  });

  it("a signature mismatch echoes the canonical request with the key blanked out", async () => {
    const r = await send("adminA", { method: "GET", bucket, key: "presigned", headers: ssec(K1), tamperSignature: true });
    expect(r.status).toBe(403);
    const text = await r.text();
    expect(text).toContain("<Code>SignatureDoesNotMatch</Code>");
    expect(text).toContain("x-amz-server-side-encryption-customer-key:&lt;redacted&gt;");
    expect(text.includes(K1.b64)).toBe(false);
  });

  it("a key in the query string is refused (400), never used", async () => {
    const url = await presignedUrl("adminA", { method: "GET", bucket, key: "presigned", query: { [KEY.toLowerCase()]: K1.b64, [ALG]: "AES256", [MD5.toLowerCase()]: K1.md5 } });
    const e = await expectError(fetchWorker(url), 400, "InvalidArgument");
    expect(JSON.stringify(e).includes(K1.b64)).toBe(false);
  });
});

describe("policy condition key s3:x-amz-server-side-encryption-customer-algorithm", () => {
  const policed = uniqueBucket("ssecpol");

  beforeAll(async () => {
    await createBucket("adminA", policed);
    expect((await encryptionConfig("adminA", policed, UNBLOCK)).status).toBe(200);
  });

  async function setPolicy(statement: Record<string, unknown>): Promise<void> {
    const policy = JSON.stringify({ Version: "2012-10-17", Statement: [{ Effect: "Deny", Principal: "*", Action: "s3:PutObject", Resource: `arn:aws:s3:::${policed}/*`, ...statement }] });
    const r = await send("adminA", { method: "PUT", bucket: policed, query: { policy: "" }, body: policy });
    expect(r.status, await r.clone().text()).toBe(204);
  }

  it("a policy can forbid SSE-C (Null false → Deny)", async () => {
    await setPolicy({ Condition: { Null: { "s3:x-amz-server-side-encryption-customer-algorithm": "false" } } });
    await expectError(send("adminA", { method: "PUT", bucket: policed, key: "c", body: "x", headers: ssec(K1) }), 403, "AccessDenied");
    expect((await send("adminA", { method: "PUT", bucket: policed, key: "p", body: "x" })).status).toBe(200);
  });

  it("a policy can require SSE-C (StringNotEquals AES256 → Deny), multipart parts included", async () => {
    await setPolicy({ Condition: { StringNotEquals: { "s3:x-amz-server-side-encryption-customer-algorithm": "AES256" } } });
    await expectError(send("adminA", { method: "PUT", bucket: policed, key: "p2", body: "x" }), 403, "AccessDenied");
    expect((await send("adminA", { method: "PUT", bucket: policed, key: "c2", body: "x", headers: ssec(K1) })).status).toBe(200);
    const created = await send("adminA", { method: "POST", bucket: policed, key: "m", query: { uploads: "" }, headers: ssec(K1) });
    expect(created.status).toBe(200);
    const uploadId = xmlValue(await created.text(), "UploadId")!;
    expect((await send("adminA", { method: "PUT", bucket: policed, key: "m", query: { uploadId, partNumber: "1" }, body: "part", headers: ssec(K1) })).status).toBe(200);
  });
});

describe("tenant rules", () => {
  it("SSE-C is open to members (write and read)", async () => {
    const r = await put("member", "member data", ssec(K1), {}, "memberA");
    expect(r.status).toBe(200);
    const g = await send("memberA", { method: "GET", bucket, key: "member", headers: ssec(K1) });
    expect(await g.text()).toBe("member data");
  });

  it("another tenant follows the policy, as for SSE-S3 objects (read with the key when allowed)", async () => {
    const shared = uniqueBucket("ssecx");
    await createBucket("adminA", shared);
    expect((await encryptionConfig("adminA", shared, UNBLOCK)).status).toBe(200);
    expect((await put("o", "shared data", ssec(K1), { bucket: shared })).status).toBe(200);
    await expectError(send("adminB", { method: "GET", bucket: shared, key: "o", headers: ssec(K1) }), 403, "AccessDenied");
    await allowPublicPolicies("adminA", shared);
    const policy = JSON.stringify({ Version: "2012-10-17", Statement: [{ Effect: "Allow", Principal: "*", Action: ["s3:GetObject", "s3:PutObject"], Resource: `arn:aws:s3:::${shared}/*` }] });
    expect((await send("adminA", { method: "PUT", bucket: shared, query: { policy: "" }, body: policy })).status).toBe(204);
    const g = await send("adminB", { method: "GET", bucket: shared, key: "o", headers: ssec(K1) });
    expect(g.status).toBe(200);
    expect(await g.text()).toBe("shared data");
    await expectError(send("adminB", { method: "GET", bucket: shared, key: "o", headers: ssec(K2) }), 403, "AccessDenied");
    // …and may overwrite it, as an SSE-S3 object.
    expect((await send("adminB", { method: "PUT", bucket: shared, key: "o", body: "overwritten", headers: ssec(K2) })).status).toBe(200);
  });

  // Found by the model test: DeleteObjects treated every mode but SSE-S3 as SSE-KMS.
  it("another tenant allowed to delete may delete SSE-C objects, with DeleteObject and DeleteObjects alike", async () => {
    const shared = uniqueBucket("ssecd");
    await createBucket("adminA", shared);
    expect((await encryptionConfig("adminA", shared, UNBLOCK)).status).toBe(200);
    for (const key of ["one", "batch"]) expect((await put(key, "data", ssec(K1), { bucket: shared })).status).toBe(200);
    await allowPublicPolicies("adminA", shared);
    const policy = JSON.stringify({ Version: "2012-10-17", Statement: [{ Effect: "Allow", Principal: "*", Action: ["s3:DeleteObject"], Resource: `arn:aws:s3:::${shared}/*` }] });
    expect((await send("adminA", { method: "PUT", bucket: shared, query: { policy: "" }, body: policy })).status).toBe(204);
    expect((await send("adminB", { method: "DELETE", bucket: shared, key: "one" })).status).toBe(204);
    const body = '<Delete><Object><Key>batch</Key></Object></Delete>';
    const r = await send("adminB", { method: "POST", bucket: shared, query: { delete: "" }, body, headers: { "content-md5": await md5Base64(body) } });
    const text = await r.text();
    expect(r.status, text).toBe(200);
    expect(text).toContain("<Deleted><Key>batch</Key></Deleted>");
    expect(text).not.toContain("<Error>");
    for (const key of ["one", "batch"]) expect((await send("adminA", { method: "HEAD", bucket: shared, key, headers: ssec(K1) })).status).toBe(404);
  });
});

describe("TLS (REQUIRE_TLS_FOR_SSE, and its old name REQUIRE_TLS_FOR_SSE_KMS)", () => {
  const message = "Requests specifying Server Side Encryption with Customer provided keys must be made over a secure connection.";

  it("refuses SSE-C over plain HTTP, writes and reads, and accepts it over TLS", async () => {
    const tls: Send["env"] = { REQUIRE_TLS_FOR_SSE: "true" };
    expect((await expectError(put("tls", "x", ssec(K1), { env: tls }), 400, "InvalidRequest")).message).toBe(message);
    expect((await put("tls", "x", ssec(K1), { env: tls, scheme: "https" })).status).toBe(200);
    await expectError(send("adminA", { method: "GET", bucket, key: "tls", headers: ssec(K1), env: tls }), 400, "InvalidRequest");
    expect((await send("adminA", { method: "GET", bucket, key: "tls", headers: ssec(K1), env: tls, scheme: "https" })).status).toBe(200);
  });

  it("the old name alone still turns it on", async () => {
    const old = { REQUIRE_TLS_FOR_SSE: undefined, REQUIRE_TLS_FOR_SSE_KMS: "true" } as Send["env"];
    await expectError(put("tls-old", "x", ssec(K1), { env: old }), 400, "InvalidRequest");
    await expectError(put("tls-old", "x", { [SSE]: "aws:kms" }, { env: old }), 400, "InvalidArgument");
  });
});

describe("jobs that cannot unwrap SSE-C data", () => {
  it("the master-secret rewrap job skips SSE-C objects (blocking, never re-put)", async () => {
    expect((await put("job", "job data", ssec(K1))).status).toBe(200);
    const before = await env.OBJECTS.head(`${bucket}/job`);
    const services = makeServices(env);
    const outcome = await rewrapObject({ r2: env.OBJECTS, keys: services.keys, buckets: services.buckets }, `${bucket}/job`, before!, 2);
    expect(outcome).toMatchObject({ kind: "failed", reason: "sse-c", blocking: true, masterVersion: 1 });
    const after = await env.OBJECTS.head(`${bucket}/job`);
    expect(after!.uploaded.getTime()).toBe(before!.uploaded.getTime());
    expect(after!.etag).toBe(before!.etag);
    expect(await (await send("adminA", { method: "GET", bucket, key: "job", headers: ssec(K1) })).text()).toBe("job data");
  });

  it("the audit counts SSE-C objects under their mode, without problems", async () => {
    const services = makeServices(env);
    const b = (await services.buckets.get(bucket))!;
    const page = await auditPage(services.objects, b, { limit: 1000, deep: true, maxBytes: 1 << 30 });
    expect(page.byMode["SSE-C"]).toBeGreaterThan(0);
    expect(page.problems.filter((p) => p.key === "job")).toEqual([]);
  });
});

describe("bytes", () => {
  it("a zero-length SSE-C object", async () => {
    expect((await put("empty", new Uint8Array(0), ssec(K1))).status).toBe(200);
    const g = await send("adminA", { method: "GET", bucket, key: "empty", headers: ssec(K1) });
    expect(g.status).toBe(200);
    expect((await g.arrayBuffer()).byteLength).toBe(0);
    expect(utf8("").byteLength).toBe(0);
  });
});
