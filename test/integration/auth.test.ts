import { beforeAll, describe, expect, it } from "vitest";
import { pseudoRandom } from "../support/sources";
import {
  crc32Base64,
  createBucket,
  expectError,
  fetchWorker,
  md5Base64,
  presignedUrl,
  putChunked,
  readFully,
  sameBytes,
  seedIdentities,
  send,
  uniqueBucket,
  xmlValue,
} from "../support/s3-harness";

const bucket = uniqueBucket("auth");
const original = pseudoRandom(150_000, 5);

beforeAll(async () => {
  await seedIdentities();
  await createBucket("adminA", bucket);
  expect((await send("adminA", { method: "PUT", bucket, key: "obj", body: original })).status).toBe(200);
});

describe("presigned URLs", () => {
  it("a presigned GET works with no headers at all", async () => {
    const url = await presignedUrl("adminA", { method: "GET", bucket, key: "obj", expiresIn: 600 });
    const r = await fetchWorker(url);
    expect(r.status).toBe(200);
    const { bytes, errored } = await readFully(r);
    expect(errored).toBe(false);
    expect(sameBytes(bytes, original)).toBe(true);
  });

  it("a presigned PUT stores the body (UNSIGNED-PAYLOAD)", async () => {
    const url = await presignedUrl("adminA", { method: "PUT", bucket, key: "presigned-put" });
    const r = await fetchWorker(url, { method: "PUT", body: "via presigned put", headers: { "content-length": "17" } });
    expect(r.status).toBe(200);
    expect(await (await send("adminA", { method: "GET", bucket, key: "presigned-put" })).text()).toBe("via presigned put");
  });

  it("an expired presigned URL is AccessDenied (403)", async () => {
    const url = await presignedUrl("adminA", { method: "GET", bucket, key: "obj", expiresIn: 60, signingDate: new Date(Date.now() - 3600_000) });
    const e = await expectError(fetchWorker(url), 403, "AccessDenied");
    expect(e.message).toMatch(/expired/i);
  });

  it("a presigned URL with an altered signature is SignatureDoesNotMatch (403)", async () => {
    const url = await presignedUrl("adminA", { method: "GET", bucket, key: "obj" });
    const altered = url.replace(/X-Amz-Signature=([0-9a-f])/, (_m, d: string) => `X-Amz-Signature=${d === "a" ? "b" : "a"}`);
    expect(altered).not.toBe(url);
    await expectError(fetchWorker(altered), 403, "SignatureDoesNotMatch");
  });

  it("a presigned URL used for another key or method is SignatureDoesNotMatch (403)", async () => {
    const url = await presignedUrl("adminA", { method: "GET", bucket, key: "obj" });
    await expectError(fetchWorker(url.replace("/obj?", "/other?")), 403, "SignatureDoesNotMatch");
    await expectError(fetchWorker(url, { method: "DELETE" }), 403, "SignatureDoesNotMatch");
    expect((await send("adminA", { method: "HEAD", bucket, key: "obj" })).status).toBe(200);
  });

  it("a presigned URL over 7 days is refused with AuthorizationQueryParametersError (400)", async () => {
    const url = await presignedUrl("adminA", { method: "GET", bucket, key: "obj" });
    const tooLong = url.replace(/X-Amz-Expires=\d+/, "X-Amz-Expires=604801");
    await expectError(fetchWorker(tooLong), 400, "AuthorizationQueryParametersError");
  });
});

describe("header-signed requests", () => {
  it("an altered signature is SignatureDoesNotMatch (403)", async () => {
    await expectError(send("adminA", { method: "GET", bucket, key: "obj", tamperSignature: true }), 403, "SignatureDoesNotMatch");
  });

  it("a wrong secret is SignatureDoesNotMatch (403)", async () => {
    await expectError(
      send("adminA", { method: "GET", bucket, key: "obj", credentials: { accessKeyId: "LOCALADMINA", secretAccessKey: "not-the-secret" } }),
      403,
      "SignatureDoesNotMatch",
    );
  });

  it("an unknown access key is InvalidAccessKeyId (403)", async () => {
    const e = await expectError(
      send("adminA", { method: "GET", bucket, key: "obj", credentials: { accessKeyId: "AKIDONOTEXIST", secretAccessKey: "x" } }),
      403,
      "InvalidAccessKeyId",
    );
    expect(xmlValue(e.text, "AWSAccessKeyId")).toBe("AKIDONOTEXIST");
  });

  it.each([
    ["20 minutes behind", -20 * 60_000],
    ["20 minutes ahead", 20 * 60_000],
  ])("a request %s is RequestTimeTooSkewed (403)", async (_label, offset) => {
    await expectError(send("adminA", { method: "GET", bucket, key: "obj", signingDate: new Date(Date.now() + offset) }), 403, "RequestTimeTooSkewed");
  });

  it("a request 10 minutes behind is still accepted (15-minute window)", async () => {
    const r = await send("adminA", { method: "HEAD", bucket, key: "obj", signingDate: new Date(Date.now() - 10 * 60_000) });
    expect(r.status).toBe(200);
  });

  it("a credential scope for another region is AuthorizationHeaderMalformed (400)", async () => {
    const e = await expectError(send("adminA", { method: "GET", bucket, key: "obj", region: "eu-west-1" }), 400, "AuthorizationHeaderMalformed");
    expect(e.message).toContain("us-east-1");
  });

  it("an anonymous request to a private bucket is AccessDenied (403)", async () => {
    await expectError(send("adminA", { method: "GET", bucket, key: "obj", anonymous: true }), 403, "AccessDenied");
    await expectError(send("adminA", { method: "PUT", bucket, key: "anon", body: "x", anonymous: true }), 403, "AccessDenied");
  });
});

describe("a body that does not match what was signed or declared is never stored", () => {
  const replacement = pseudoRandom(300_000, 9); // five chunks: several reach R2's stream before the mismatch shows

  async function expectUntouched() {
    const r = await send("adminA", { method: "GET", bucket, key: "obj" });
    expect(r.status).toBe(200);
    const { bytes, errored } = await readFully(r);
    expect(errored).toBe(false);
    expect(sameBytes(bytes, original)).toBe(true);
  }

  async function expectAbsent(key: string) {
    expect((await send("adminA", { method: "HEAD", bucket, key })).status).toBe(404);
  }

  it("x-amz-content-sha256 of another body → XAmzContentSHA256Mismatch (400)", async () => {
    const claimed = Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", pseudoRandom(300_000, 10))), (b) => b.toString(16).padStart(2, "0")).join("");
    for (const key of ["obj", "fresh-sha"]) {
      const e = await expectError(send("adminA", { method: "PUT", bucket, key, body: replacement, contentSha256: claimed }), 400, "XAmzContentSHA256Mismatch");
      expect(xmlValue(e.text, "ClientComputedContentSHA256")).toBe(claimed);
    }
    await expectUntouched();
    await expectAbsent("fresh-sha");
  });

  it("a body altered after signing → XAmzContentSHA256Mismatch (400)", async () => {
    const altered = replacement.slice();
    altered[299_999]! ^= 0x80;
    await expectError(send("adminA", { method: "PUT", bucket, key: "obj", body: replacement, wireBody: altered }), 400, "XAmzContentSHA256Mismatch");
    await expectUntouched();
  });

  it("a wrong Content-MD5 → BadDigest (400)", async () => {
    const md5 = await md5Base64(pseudoRandom(10, 1));
    for (const key of ["obj", "fresh-md5"]) {
      await expectError(send("adminA", { method: "PUT", bucket, key, body: replacement, headers: { "content-md5": md5 } }), 400, "BadDigest");
      await expectError(send("adminA", { method: "PUT", bucket, key, body: replacement, unsigned: true, headers: { "content-md5": md5 } }), 400, "BadDigest");
    }
    await expectUntouched();
    await expectAbsent("fresh-md5");
  });

  it("a malformed Content-MD5 → InvalidDigest (400)", async () => {
    await expectError(send("adminA", { method: "PUT", bucket, key: "obj", body: replacement, headers: { "content-md5": "not-md5" } }), 400, "InvalidDigest");
    await expectUntouched();
  });

  it("a wrong x-amz-checksum-crc32 header → BadDigest (400)", async () => {
    const wrong = crc32Base64(pseudoRandom(10, 2));
    for (const key of ["obj", "fresh-crc"]) {
      await expectError(send("adminA", { method: "PUT", bucket, key, body: replacement, unsigned: true, headers: { "x-amz-checksum-crc32": wrong } }), 400, "BadDigest");
    }
    await expectUntouched();
    await expectAbsent("fresh-crc");
  });

  it("a wrong CRC32 trailer on an unsigned aws-chunked body (SDK v3's default) → BadDigest (400)", async () => {
    const wrong = crc32Base64(pseudoRandom(10, 3));
    for (const key of ["obj", "fresh-trailer"]) {
      await expectError(putChunked("adminA", { bucket, key, payload: replacement, chunkSize: 65536, mode: "STREAMING-UNSIGNED-PAYLOAD-TRAILER", crc32Trailer: wrong }), 400, "BadDigest");
    }
    await expectUntouched();
    await expectAbsent("fresh-trailer");
  });

  it("a chunk altered after signing on a signed aws-chunked body → SignatureDoesNotMatch (403)", async () => {
    for (const key of ["obj", "fresh-chunk"]) {
      await expectError(putChunked("adminA", { bucket, key, payload: replacement, chunkSize: 65536, mode: "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", corruptChunk: 3 }), 403, "SignatureDoesNotMatch");
    }
    await expectUntouched();
    await expectAbsent("fresh-chunk");
  });

  it("the same aws-chunked uploads succeed when intact (controls for the two cases above)", async () => {
    const ok1 = await putChunked("adminA", { bucket, key: "chunked-1", payload: replacement, chunkSize: 65536, mode: "STREAMING-UNSIGNED-PAYLOAD-TRAILER", crc32Trailer: crc32Base64(replacement) });
    expect(ok1.status, await ok1.clone().text()).toBe(200);
    expect(ok1.headers.get("x-amz-checksum-crc32")).toBe(crc32Base64(replacement));
    const ok2 = await putChunked("adminA", { bucket, key: "chunked-2", payload: replacement, chunkSize: 65536, mode: "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" });
    expect(ok2.status, await ok2.clone().text()).toBe(200);
    for (const key of ["chunked-1", "chunked-2"]) {
      const { bytes } = await readFully(await send("adminA", { method: "GET", bucket, key }));
      expect(sameBytes(bytes, replacement)).toBe(true);
    }
  });

  it("matching digests are accepted and the CRC32 is answered with x-amz-checksum-mode", async () => {
    const crc = crc32Base64(replacement);
    const r = await send("adminA", { method: "PUT", bucket, key: "good", body: replacement, headers: { "content-md5": await md5Base64(replacement), "x-amz-checksum-crc32": crc } });
    expect(r.status).toBe(200);
    expect(r.headers.get("x-amz-checksum-crc32")).toBe(crc);
    const head = await send("adminA", { method: "HEAD", bucket, key: "good", headers: { "x-amz-checksum-mode": "ENABLED" } });
    expect(head.headers.get("x-amz-checksum-crc32")).toBe(crc);
    // With Content-MD5 the ETag is the MD5 of the object, as in S3.
    const md5hex = Array.from(atob(await md5Base64(replacement)), (c) => c.charCodeAt(0).toString(16).padStart(2, "0")).join("");
    expect(head.headers.get("etag")).toBe(`"${md5hex}"`);
  });
});

describe("unimplemented operations and error documents", () => {
  it.each([
    ["GET", "inventory", undefined],
    ["PUT", "accelerate", undefined],
    ["GET", "website", undefined],
    ["GET", "replication", undefined],
    ["GET", "object-lock", undefined],
    ["GET", "notification", undefined],
    ["GET", "logging", undefined],
    ["PUT", "versioning", undefined],
    ["PUT", "legal-hold", "obj"],
    ["POST", "restore", "obj"],
    ["POST", "select", "obj"],
    ["GET", "torrent", "obj"],
  ])("%s ?%s answers 501 NotImplemented in S3 XML", async (method, sub, key) => {
    const r = await send("adminA", { method, bucket, ...(key ? { key } : {}), query: { [sub]: "" }, ...(method === "PUT" || method === "POST" ? { body: "<x/>" } : {}) });
    await expectError(r, 501, "NotImplemented");
  });

  it("a method an object does not support is 405 MethodNotAllowed", async () => {
    await expectError(send("adminA", { method: "PATCH", bucket, key: "obj", body: "x" }), 405, "MethodNotAllowed");
  });

  it("every error names its resource and carries the request id in body and header", async () => {
    const e = await expectError(send("adminA", { method: "GET", bucket, key: "dir/missing key" }), 404, "NoSuchKey");
    expect(e.resource).toBe(`/${bucket}/dir/missing%20key`);
    const other = await expectError(send("adminA", { method: "GET", bucket: uniqueBucket("nobucket"), key: "k" }), 404, "NoSuchBucket");
    expect(other.requestId).not.toBe(e.requestId);
  });

  it("successful responses carry x-amz-request-id too", async () => {
    const r = await send("adminA", { method: "HEAD", bucket, key: "obj" });
    expect(r.headers.get("x-amz-request-id")).toMatch(/^[0-9A-F]{16}$/);
    expect(r.headers.get("x-amz-id-2")).toBeTruthy();
  });
});
