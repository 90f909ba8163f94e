/**
 * Exact cases the fuzzers (test/fuzz/*.test.ts) found, kept as plain tests so they run in
 * every `npm test` whatever the random sample: each was a 500 or a wrong answer once.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { HOST, createBucket, expectError, fetchWorker, presignedUrl, rawGet, seedIdentities, send, uniqueBucket } from "../support/s3-harness";
import { md5Base64Of, sendRaw, signedRequest } from "./support";

const bucket = uniqueBucket("fz-regress");

beforeAll(async () => {
  await seedIdentities();
  await createBucket("adminA", bucket);
  expect((await send("adminA", { method: "PUT", bucket, key: "obj", body: "hello" })).status).toBe(200);
});

describe("found by fuzzing", () => {
  it.each(["\u0000", "a\nb", "text/html\r\nx-injected: 1"])("GET ?response-* with a value no header can hold (%j) is 400 InvalidArgument, not a 500", async (value) => {
    for (const param of ["response-expires", "response-content-type", "response-content-disposition"]) {
      const e = await expectError(send("adminA", { method: "GET", bucket, key: "obj", query: { [param]: value } }), 400, "InvalidArgument");
      expect(e.text).toContain(`<ArgumentName>${param}</ArgumentName>`);
    }
  });

  describe("metadata that R2 cannot store (8 KiB with the encryption envelope) is MetadataTooLarge, not a 500", () => {
    const big = { "content-type": "a/" + "b".repeat(7600) };
    // Within S3's 2 KB of user metadata, but ~600 entries take 600 × "x-amz-meta-" more in R2.
    const many = Object.fromEntries(Array.from({ length: 600 }, (_, i) => [`x-amz-meta-${i.toString(36)}`, ""]));

    it.each([
      ["a 7600-byte Content-Type", big],
      ["600 tiny user metadata entries", many],
      ["a 6500-byte Content-Disposition with 2 KB of user metadata", { "content-disposition": "x".repeat(6500), "x-amz-meta-a": "v".repeat(2047) }],
    ])("PutObject with %s", async (_label, headers) => {
      await expectError(send("adminA", { method: "PUT", bucket, key: "too-much-metadata", body: "x", headers }), 400, "MetadataTooLarge");
      expect(await rawGet(bucket, "too-much-metadata")).toBeNull();
    });

    it("CreateMultipartUpload refuses it up front (not at CompleteMultipartUpload)", async () => {
      await expectError(send("adminA", { method: "POST", bucket, key: "too-much-metadata", query: { uploads: "" }, headers: big }), 400, "MetadataTooLarge");
    });

    it("CopyObject with REPLACE refuses it, the source stays", async () => {
      const headers = { ...big, "x-amz-copy-source": `/${bucket}/obj`, "x-amz-metadata-directive": "REPLACE" };
      await expectError(send("adminA", { method: "PUT", bucket, key: "too-much-metadata", headers }), 400, "MetadataTooLarge");
      expect(await rawGet(bucket, "too-much-metadata")).toBeNull();
      expect(await (await send("adminA", { method: "GET", bucket, key: "obj" })).text()).toBe("hello");
    });

    it("the largest metadata S3 allows still fits: 2 KB of user metadata and 2 KB of system metadata", async () => {
      const headers = { "x-amz-meta-a": "v".repeat(2047), "content-type": "t/" + "x".repeat(2046), "x-amz-server-side-encryption": "aws:kms" };
      const r = await send("adminA", { method: "PUT", bucket, key: "full-metadata", body: "x", headers });
      expect(r.status, await r.clone().text()).toBe(200);
      const head = await send("adminA", { method: "HEAD", bucket, key: "full-metadata" });
      expect(head.headers.get("x-amz-meta-a")).toBe("v".repeat(2047));
      expect(head.headers.get("content-type")).toBe(headers["content-type"]);
    });
  });

  it.each(["SignedHeaders=host;SignedHeaders=host;x-amz-content-sha256;x-amz-date", "SignedHeaders=host;;x-amz-content-sha256;x-amz-date", "SignedHeaders=host;a:b;x-amz-content-sha256;x-amz-date"])(
    "a SignedHeaders entry that cannot be a header name (%s) is SignatureDoesNotMatch, not a 500",
    async (signedHeaders) => {
      const r = await signedRequest("adminA", { method: "DELETE", bucket, key: "obj" });
      const authorization = r.headers["authorization"]!.replace(/SignedHeaders=[^,]+/, signedHeaders);
      await expectError(sendRaw({ ...r, headers: { ...r.headers, authorization } }), 403, "SignatureDoesNotMatch");
      const url = (await presignedUrl("adminA", { method: "GET", bucket, key: "obj" })).replace(/X-Amz-SignedHeaders=[^&]+/, "X-Amz-SignedHeaders=host%3Bsignedheaders%3Dhost");
      await expectError(fetchWorker(url), 403, "SignatureDoesNotMatch");
      expect(await (await send("adminA", { method: "GET", bucket, key: "obj" })).text()).toBe("hello");
    },
  );

  describe("a key longer than any object can have (R2's 1024 bytes with \"<bucket>/\") is a clean error, not a 500", () => {
    const long = "k".repeat(1100);

    it.each(["GET", "HEAD", "DELETE"])("%s is 400 KeyTooLongError, like PutObject", async (method) => {
      const r = await send("adminA", { method, bucket, key: long });
      expect(r.status).toBe(400);
      if (method !== "HEAD") await expectError(r, 400, "KeyTooLongError");
    });

    it("DeleteObjects reports the key as a per-key KeyTooLongError and deletes the others", async () => {
      expect((await send("adminA", { method: "PUT", bucket, key: "short-victim", body: "v" })).status).toBe(200);
      const body = `<Delete><Object><Key>${long}</Key></Object><Object><Key>short-victim</Key></Object></Delete>`;
      const r = await send("adminA", { method: "POST", bucket, query: { delete: "" }, body, headers: { "content-md5": await md5Base64Of(body) } });
      const text = await r.text();
      expect(r.status, text).toBe(200);
      expect(text).toContain("<Code>KeyTooLongError</Code>");
      expect(text).toContain("<Deleted><Key>short-victim</Key></Deleted>");
      expect((await send("adminA", { method: "HEAD", bucket, key: "short-victim" })).status).toBe(404);
    });

    it("a copy source with such a key is NoSuchKey", async () => {
      await expectError(send("adminA", { method: "PUT", bucket, key: "copy-target", headers: { "x-amz-copy-source": `/${bucket}/${long}` } }), 404, "NoSuchKey");
    });
  });

  it("a POST form whose first part's headers run into the next boundary is 400 MalformedPOSTRequest, not a 500", async () => {
    const body = '--B\r\nContent-Disposition: fopost-target/k\r\n--B\r\nContent-Disposition: form-data; name="key"\r\n\r\nk\r\n--B\r\nContent-Disposition: form-data; name="file"; filename="x"\r\n\r\nDATA\r\n--B--\r\n';
    const r = fetchWorker(`http://${HOST}/${bucket}`, { method: "POST", headers: { "content-type": "multipart/form-data; boundary=B", "content-length": String(body.length) }, body });
    await expectError(r, 400, "MalformedPOSTRequest");
    expect(await rawGet(bucket, "k")).toBeNull();
  });
});
