import { beforeAll, describe, expect, it } from "vitest";
import { expectIncompleteBody } from "../support/lost-body";
import { createBucket, expectError, fetchWorker, presignedUrl, readFully, seedIdentities, send, uniqueBucket, utf8, xmlValue, xmlValues } from "../support/s3-harness";

const bucket = uniqueBucket("writes");

beforeAll(async () => {
  await seedIdentities();
  await createBucket("adminA", bucket);
});

async function put(key: string, body: string | Uint8Array, headers: Record<string, string> = {}) {
  return send("adminA", { method: "PUT", bucket, key, body, headers });
}

async function text(key: string): Promise<string> {
  const r = await send("adminA", { method: "GET", bucket, key });
  expect(r.status, key).toBe(200);
  return r.text();
}

describe("conditional PutObject", () => {
  it("If-None-Match: * creates only when the key is free", async () => {
    const first = await put("once", "first", { "if-none-match": "*" });
    expect(first.status).toBe(200);
    const e = await expectError(put("once", "second", { "if-none-match": "*" }), 412, "PreconditionFailed");
    expect(xmlValue(e.text, "Condition")).toBe("If-None-Match");
    expect(await text("once")).toBe("first");
  });

  it("If-Match replaces only the version with that ETag", async () => {
    const v1 = await put("cas", "v1");
    const etag1 = v1.headers.get("etag")!;
    const v2 = await put("cas", "v2", { "if-match": etag1 });
    expect(v2.status).toBe(200);
    const etag2 = v2.headers.get("etag")!;
    expect(etag2).not.toBe(etag1);
    // The old ETag no longer matches.
    const e = await expectError(put("cas", "v3", { "if-match": etag1 }), 412, "PreconditionFailed");
    expect(xmlValue(e.text, "Condition")).toBe("If-Match");
    expect(await text("cas")).toBe("v2");
    expect((await put("cas", "v3", { "if-match": etag2 })).status).toBe(200);
    expect(await text("cas")).toBe("v3");
  });

  it("If-Match on a missing key is NoSuchKey (404) and stores nothing", async () => {
    await expectError(put("absent", "x", { "if-match": '"0123456789abcdef0123456789abcdef"' }), 404, "NoSuchKey");
    expect((await send("adminA", { method: "HEAD", bucket, key: "absent" })).status).toBe(404);
  });

  it("a refused conditional write of a large body leaves the previous object intact", async () => {
    const big = new Uint8Array(300_000).fill(7);
    expect((await put("big", "original")).status).toBe(200);
    await expectError(put("big", big, { "if-none-match": "*" }), 412, "PreconditionFailed");
    expect(await text("big")).toBe("original");
  });
});

describe("metadata round-trip", () => {
  const system = {
    "content-type": "text/plain; charset=utf-8",
    "content-disposition": 'attachment; filename="report 2024.txt"',
    "content-encoding": "gzip",
    "content-language": "de-CH",
    "cache-control": "max-age=3600, must-revalidate",
    expires: "Thu, 01 Dec 2044 16:00:00 GMT",
  };
  const user = { "x-amz-meta-color": "blue", "x-amz-meta-Mixed-Case": "Value With Spaces", "x-amz-meta-empty": "", "x-amz-meta-n": "1" };

  it("PUT → GET and HEAD return the system metadata and x-amz-meta-* (names lower-cased)", async () => {
    expect((await put("meta", "body", { ...system, ...user })).status).toBe(200);
    for (const method of ["GET", "HEAD"]) {
      const r = await send("adminA", { method, bucket, key: "meta" });
      expect(r.status).toBe(200);
      for (const [name, value] of Object.entries(system)) expect(r.headers.get(name), `${method} ${name}`).toBe(value);
      expect(r.headers.get("x-amz-meta-color")).toBe("blue");
      expect(r.headers.get("x-amz-meta-mixed-case")).toBe("Value With Spaces");
      expect(r.headers.get("x-amz-meta-empty")).toBe("");
      expect(r.headers.get("x-amz-meta-n")).toBe("1");
      const metaNames = [...r.headers.keys()].filter((n) => n.startsWith("x-amz-meta-")).sort();
      expect(metaNames).toEqual(["x-amz-meta-color", "x-amz-meta-empty", "x-amz-meta-mixed-case", "x-amz-meta-n"]);
      if (method === "GET") expect(await r.text()).toBe("body");
    }
  });

  it("defaults Content-Type to binary/octet-stream and sets nothing else", async () => {
    expect((await put("plain", utf8("x"))).status).toBe(200);
    const r = await send("adminA", { method: "HEAD", bucket, key: "plain" });
    expect(r.headers.get("content-type")).toBe("binary/octet-stream");
    for (const name of ["content-disposition", "content-encoding", "content-language", "cache-control", "expires"]) expect(r.headers.get(name), name).toBeNull();
    expect([...r.headers.keys()].filter((n) => n.startsWith("x-amz-meta-"))).toEqual([]);
  });

  it("a user metadata name that looks like the envelope cannot collide with it", async () => {
    expect((await put("collide", "x", { "x-amz-meta-sse-envelope": "{}", "x-amz-meta-t": "mac?" })).status).toBe(200);
    const r = await send("adminA", { method: "GET", bucket, key: "collide" });
    expect(r.status).toBe(200);
    expect(r.headers.get("x-amz-meta-sse-envelope")).toBe("{}");
    expect(await r.text()).toBe("x");
  });

  it("refuses more than 2 KB of user metadata with MetadataTooLarge (400) and stores nothing", async () => {
    const value = "v".repeat(2048 - "big".length + 1);
    await expectError(put("toomuch", "x", { "x-amz-meta-big": value }), 400, "MetadataTooLarge");
    expect((await send("adminA", { method: "HEAD", bucket, key: "toomuch" })).status).toBe(404);
    // Exactly at the limit is fine.
    expect((await put("justright", "x", { "x-amz-meta-big": "v".repeat(2048 - 3) })).status).toBe(200);
  });
});

describe("object keys", () => {
  const keys = [
    "with space",
    "plus+sign",
    "percent%20literal",
    "100%",
    "question?mark",
    "hash#tag",
    "amp&equals=semi;colon",
    "unicode/ünïcødé/日本語/😀",
    "trailing/",
    "a//double//slash",
    "tilde~star*paren()",
    "quote'\"and<angle>",
    "comma,colon:at@dollar$",
    "back\\slash",
    "ctrl\u0001char",
  ];

  it.each(keys)("round-trips %j (PUT, GET, HEAD, list, DELETE)", async (key) => {
    const body = `content of ${key}`;
    expect((await put(key, body)).status).toBe(200);
    expect(await text(key)).toBe(body);
    expect((await send("adminA", { method: "HEAD", bucket, key })).status).toBe(200);
    const list = await send("adminA", { method: "GET", bucket, query: { "list-type": "2", prefix: key } });
    expect(xmlValues(await list.text(), "Key")).toContain(key);
    expect((await send("adminA", { method: "DELETE", bucket, key })).status).toBe(204);
    expect((await send("adminA", { method: "HEAD", bucket, key })).status).toBe(404);
  });

  it("keys that differ only in encoding are different objects", async () => {
    expect((await put("a b", "space")).status).toBe(200);
    expect((await put("a+b", "plus")).status).toBe(200);
    expect((await put("a%20b", "literal")).status).toBe(200);
    expect(await text("a b")).toBe("space");
    expect(await text("a+b")).toBe("plus");
    expect(await text("a%20b")).toBe("literal");
  });

  it("accepts a 1000-byte key (multi-byte characters included)", async () => {
    const key = "k/" + "é".repeat(300) + "x".repeat(1000 - 2 - 600);
    expect(utf8(key).byteLength).toBe(1000);
    expect((await put(key, "long")).status).toBe(200);
    expect(await text(key)).toBe("long");
  });

  it("refuses a key over the limit with KeyTooLongError (400)", async () => {
    const key = "x".repeat(1025);
    const e = await expectError(put(key, "x"), 400, "KeyTooLongError");
    expect(xmlValue(e.text, "Size")).toBe("1025");
  });

  it("DeleteObject of a missing key is 204, as in S3", async () => {
    expect((await send("adminA", { method: "DELETE", bucket, key: "never-existed" })).status).toBe(204);
  });

  it("an empty body and a body of exactly one chunk round-trip", async () => {
    for (const size of [0, 1, 65535, 65536, 65537]) {
      const body = new Uint8Array(size).map((_, i) => (i * 31 + size) & 0xff);
      expect((await put(`size-${size}`, body)).status).toBe(200);
      const r = await send("adminA", { method: "GET", bucket, key: `size-${size}` });
      const got = await readFully(r);
      expect(got.errored).toBe(false);
      expect(got.bytes).toEqual(body);
    }
  });
});

describe("who may write and read", () => {
  it("another tenant cannot put, get, head or delete without a grant (403 AccessDenied)", async () => {
    expect((await put("private", "mine")).status).toBe(200);
    await expectError(send("adminB", { method: "PUT", bucket, key: "private", body: "theirs" }), 403, "AccessDenied");
    await expectError(send("adminB", { method: "GET", bucket, key: "private" }), 403, "AccessDenied");
    expect((await send("adminB", { method: "HEAD", bucket, key: "private" })).status).toBe(403);
    await expectError(send("adminB", { method: "DELETE", bucket, key: "private" }), 403, "AccessDenied");
    await expectError(send("adminA", { method: "GET", bucket, key: "private", anonymous: true }), 403, "AccessDenied");
    expect(await text("private")).toBe("mine");
  });

  it("a member of the owning tenant can write and read SSE-S3 objects", async () => {
    expect((await send("memberA", { method: "PUT", bucket, key: "by-member", body: "m" })).status).toBe(200);
    const r = await send("memberA", { method: "GET", bucket, key: "by-member" });
    expect(r.status).toBe(200);
    expect(await r.text()).toBe("m");
  });
});

describe("a client that goes away mid-body", () => {
  for (const via of ["in-process", "service binding"] as const) {
    it(`is 400 IncompleteBody, logged as such, and stores nothing (${via})`, async () => {
      await put("lost-body", "previous");
      const url = await presignedUrl("adminA", { method: "PUT", bucket, key: "lost-body" });
      let sent = 0;
      const body = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (sent >= 200_000) return controller.error(new Error("connection reset by peer"));
          controller.enqueue(new Uint8Array(50_000));
          sent += 50_000;
        },
      });
      const init = { method: "PUT", body, headers: { "content-length": String(1 << 20) }, duplex: "half" } as RequestInit;
      await expectIncompleteBody(() => fetchWorker(url, init, via === "in-process" ? {} : undefined), via === "in-process");
      expect(await text("lost-body")).toBe("previous");
    });
  }
});
