import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { pseudoRandom } from "../support/sources";
import { allowPublicPolicies, createBucket, expectError, fetchWorker, presignedUrl, readFully, sameBytes, seedIdentities, send, uniqueBucket, xmlValue } from "../support/s3-harness";

const bucket = uniqueBucket("reads");
const SIZE = 200_000; // three full 64 KiB chunks and a partial one
const data = pseudoRandom(SIZE, 11);
let etag = "";
let lastModified = "";

beforeAll(async () => {
  await seedIdentities();
  await createBucket("adminA", bucket);
  const put = await send("adminA", { method: "PUT", bucket, key: "obj.bin", body: data, headers: { "content-type": "application/x-test" } });
  expect(put.status).toBe(200);
  etag = put.headers.get("etag")!;
  expect((await send("adminA", { method: "PUT", bucket, key: "empty", body: new Uint8Array(0) })).status).toBe(200);
  const head = await send("adminA", { method: "HEAD", bucket, key: "obj.bin" });
  lastModified = head.headers.get("last-modified")!;
});

async function get(range: string, method = "GET") {
  return send("adminA", { method, bucket, key: "obj.bin", headers: { range } });
}

describe("GetObject with Range", () => {
  it.each([
    ["bytes=0-9", 0, 9],
    ["bytes=65530-65545", 65530, 65545], // across the first chunk boundary
    ["bytes=65536-131071", 65536, 131071], // exactly the second chunk
    ["bytes=65535-65536", 65535, 65536],
    ["bytes=131000-199999", 131000, 199999], // into the final, partial chunk
    ["bytes=199999-199999", 199999, 199999], // the last byte
    ["bytes=196607-", 196607, 199999], // open range from the last full chunk's last byte
    ["bytes=100-", 100, 199999],
    ["bytes=-10", 199990, 199999], // suffix
    ["bytes=-3393", 196607, 199999], // suffix reaching one byte into the previous chunk
    ["bytes=-65536", 134464, 199999],
    ["bytes=-300000", 0, 199999], // suffix longer than the object: all of it
    ["bytes=5-100000000", 5, 199999], // last past the end: clamped
    ["bytes=0-0", 0, 0],
  ])("%s → 206 with the right bytes", async (range, first, last) => {
    const r = await get(range);
    expect(r.status).toBe(206);
    expect(r.headers.get("content-range")).toBe(`bytes ${first}-${last}/${SIZE}`);
    // (Content-Length comes from the FixedLengthStream on the wire; the e2e suite checks it.)
    expect(r.headers.get("accept-ranges")).toBe("bytes");
    expect(r.headers.get("etag")).toBe(etag);
    const { bytes, errored } = await readFully(r);
    expect(errored).toBe(false);
    expect(sameBytes(bytes, data.subarray(first, last + 1))).toBe(true);
  });

  it("HEAD with a Range answers 206 with Content-Range and no body", async () => {
    const r = await get("bytes=10-19", "HEAD");
    expect(r.status).toBe(206);
    expect(r.headers.get("content-range")).toBe(`bytes 10-19/${SIZE}`);
    expect(r.headers.get("content-length")).toBe("10");
    expect(await r.text()).toBe("");
  });

  it.each(["bytes=200000-", "bytes=200000-200010", "bytes=999999-"])("%s (starts past the end) → 416 InvalidRange", async (range) => {
    const e = await expectError(get(range), 416, "InvalidRange");
    expect(xmlValue(e.text, "ActualObjectSize")).toBe(String(SIZE));
    expect(xmlValue(e.text, "RangeRequested")).toBe(range);
  });

  it("bytes=-0 is unsatisfiable", async () => {
    await expectError(get("bytes=-0"), 416, "InvalidRange");
  });

  it("any range of an empty object is 416 InvalidRange", async () => {
    await expectError(send("adminA", { method: "GET", bucket, key: "empty", headers: { range: "bytes=0-0" } }), 416, "InvalidRange");
    await expectError(send("adminA", { method: "GET", bucket, key: "empty", headers: { range: "bytes=-5" } }), 416, "InvalidRange");
  });

  it.each(["bytes=0-1,5-6", "bytes=10-5", "bytes=abc", "items=0-5", "bytes=", "bytes=-"])("ignores an invalid or multi-range header (%s): 200, whole object", async (range) => {
    const r = await get(range);
    expect(r.status).toBe(200);
    expect(r.headers.get("content-range")).toBeNull();
    const { bytes, errored } = await readFully(r);
    expect(errored).toBe(false);
    expect(sameBytes(bytes, data)).toBe(true);
  });

  it("reads an empty object whole", async () => {
    const r = await send("adminA", { method: "GET", bucket, key: "empty" });
    expect(r.status).toBe(200);
    expect((await readFully(r)).bytes.byteLength).toBe(0);
  });

  it("answers NoSuchKey (404) for a missing key, with and without a range", async () => {
    const e = await expectError(send("adminA", { method: "GET", bucket, key: "missing" }), 404, "NoSuchKey");
    expect(xmlValue(e.text, "Key")).toBe("missing");
    await expectError(send("adminA", { method: "GET", bucket, key: "missing", headers: { range: "bytes=0-5" } }), 404, "NoSuchKey");
    await expectError(send("adminA", { method: "GET", bucket, key: "missing", headers: { range: "bytes=-5" } }), 404, "NoSuchKey");
    const head = await send("adminA", { method: "HEAD", bucket, key: "missing" });
    expect(head.status).toBe(404);
    expect(await head.text()).toBe("");
  });
});

describe("conditional GET and HEAD", () => {
  const past = "Sat, 01 Jan 2000 00:00:00 GMT";
  const future = () => new Date(Date.now() + 86_400_000).toUTCString();

  async function conditional(method: "GET" | "HEAD", headers: Record<string, string>) {
    return send("adminA", { method, bucket, key: "obj.bin", headers });
  }

  it.each(["GET", "HEAD"] as const)("%s: If-Match with the ETag (quoted, unquoted, in a list, *) → 200", async (method) => {
    for (const value of [etag, etag.replace(/"/g, ""), `"nope", ${etag}`, "*"]) {
      const r = await conditional(method, { "if-match": value });
      expect(r.status, value).toBe(200);
      await r.arrayBuffer();
    }
  });

  it("If-Match with another ETag → 412 PreconditionFailed (GET with XML, HEAD without body)", async () => {
    const e = await expectError(conditional("GET", { "if-match": '"0123456789abcdef0123456789abcdef"' }), 412, "PreconditionFailed");
    expect(xmlValue(e.text, "Condition")).toBe("If-Match");
    const head = await conditional("HEAD", { "if-match": '"0123"' });
    expect(head.status).toBe(412);
    expect(await head.text()).toBe("");
  });

  it.each(["GET", "HEAD"] as const)("%s: If-None-Match with the ETag → 304 without a body, with ETag and Last-Modified", async (method) => {
    const r = await conditional(method, { "if-none-match": etag });
    expect(r.status).toBe(304);
    expect(r.headers.get("etag")).toBe(etag);
    expect(r.headers.get("last-modified")).toBe(lastModified);
    expect(r.headers.get("x-amz-request-id")).toMatch(/^[0-9A-F]{16}$/);
    expect(await r.text()).toBe("");
  });

  it("If-None-Match with another ETag → 200", async () => {
    const r = await conditional("GET", { "if-none-match": '"other"' });
    expect(r.status).toBe(200);
    expect(sameBytes((await readFully(r)).bytes, data)).toBe(true);
  });

  it("If-Modified-Since: 304 when not modified since, 200 when modified since", async () => {
    const notModified = await conditional("GET", { "if-modified-since": future() });
    expect(notModified.status).toBe(304);
    expect(await notModified.text()).toBe("");
    const sameSecond = await conditional("GET", { "if-modified-since": lastModified });
    expect(sameSecond.status).toBe(304);
    await sameSecond.text();
    const modified = await conditional("GET", { "if-modified-since": past });
    expect(modified.status).toBe(200);
    await modified.arrayBuffer();
  });

  it("If-Unmodified-Since: 412 when modified since, 200 when not", async () => {
    const e = await expectError(conditional("GET", { "if-unmodified-since": past }), 412, "PreconditionFailed");
    expect(xmlValue(e.text, "Condition")).toBe("If-Unmodified-Since");
    const ok = await conditional("GET", { "if-unmodified-since": future() });
    expect(ok.status).toBe(200);
    await ok.arrayBuffer();
  });

  it("If-Match true wins over If-Unmodified-Since false; If-None-Match false wins over If-Modified-Since true (RFC 7232 / S3)", async () => {
    const a = await conditional("GET", { "if-match": etag, "if-unmodified-since": past });
    expect(a.status).toBe(200);
    await a.arrayBuffer();
    const b = await conditional("GET", { "if-none-match": etag, "if-modified-since": past });
    expect(b.status).toBe(304);
    await b.text();
  });

  it("conditions are evaluated before a range: a failing If-Match on a ranged GET is 412", async () => {
    await expectError(conditional("GET", { "if-match": '"zzz"', range: "bytes=0-10" }), 412, "PreconditionFailed");
    const r = await conditional("GET", { "if-match": etag, range: "bytes=0-10" });
    expect(r.status).toBe(206);
    expect(sameBytes((await readFully(r)).bytes, data.subarray(0, 11))).toBe(true);
  });

  it("an unparseable date is ignored", async () => {
    const r = await conditional("GET", { "if-modified-since": "yesterday-ish" });
    expect(r.status).toBe(200);
    await r.arrayBuffer();
  });
});

describe("response-* overrides", () => {
  const overrides = {
    "response-content-type": "text/x-override",
    "response-content-language": "fr-CA",
    "response-expires": "Wed, 21 Oct 2037 07:28:00 GMT",
    "response-cache-control": "no-store",
    "response-content-disposition": 'attachment; filename="x y.txt"',
    "response-content-encoding": "identity",
  };

  it("override the stored headers on a signed GET", async () => {
    const r = await send("adminA", { method: "GET", bucket, key: "obj.bin", query: overrides });
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toBe("text/x-override");
    expect(r.headers.get("content-language")).toBe("fr-CA");
    expect(r.headers.get("expires")).toBe("Wed, 21 Oct 2037 07:28:00 GMT");
    expect(r.headers.get("cache-control")).toBe("no-store");
    expect(r.headers.get("content-disposition")).toBe('attachment; filename="x y.txt"');
    expect(r.headers.get("content-encoding")).toBe("identity");
    expect(sameBytes((await readFully(r)).bytes, data)).toBe(true);
  });

  it("work on a presigned GET", async () => {
    const url = await presignedUrl("adminA", { method: "GET", bucket, key: "obj.bin", query: { "response-content-disposition": "inline" } });
    const r = await fetchWorker(url);
    expect(r.status).toBe(200);
    expect(r.headers.get("content-disposition")).toBe("inline");
    expect(sameBytes((await readFully(r)).bytes, data)).toBe(true);
  });

  it("are refused on anonymous requests with InvalidRequest (400), even where the policy lets anyone read", async () => {
    const open = uniqueBucket("public");
    await createBucket("adminA", open);
    await allowPublicPolicies("adminA", open);
    const policy = JSON.stringify({
      Version: "2012-10-17",
      Statement: [{ Effect: "Allow", Principal: "*", Action: "s3:GetObject", Resource: `arn:aws:s3:::${open}/*` }],
    });
    expect((await send("adminA", { method: "PUT", bucket: open, query: { policy: "" }, body: policy })).status).toBe(204);
    expect((await send("adminA", { method: "PUT", bucket: open, key: "pub.txt", body: "public text" })).status).toBe(200);
    const plain = await send("adminA", { method: "GET", bucket: open, key: "pub.txt", anonymous: true });
    expect(plain.status).toBe(200);
    expect(await plain.text()).toBe("public text");
    await expectError(send("adminA", { method: "GET", bucket: open, key: "pub.txt", anonymous: true, query: { "response-content-type": "text/html" } }), 400, "InvalidRequest");
  });
});

describe("GET and HEAD headers", () => {
  it("answer the same entity headers; GET never exposes R2's own ETag", async () => {
    const head = await send("adminA", { method: "HEAD", bucket, key: "obj.bin" });
    const get = await send("adminA", { method: "GET", bucket, key: "obj.bin" });
    await get.arrayBuffer();
    for (const name of ["etag", "last-modified", "content-type", "x-amz-server-side-encryption"]) {
      expect(get.headers.get(name), name).toBe(head.headers.get(name));
    }
    expect(head.headers.get("content-type")).toBe("application/x-test");
    const raw = await env.OBJECTS.head(`${bucket}/obj.bin`);
    expect(head.headers.get("etag")).not.toBe(`"${raw!.etag}"`);
  });
});
