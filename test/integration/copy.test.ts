import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { makeServices } from "../../src/services";
import { pseudoRandom } from "../support/sources";
import { createBucket, expectError, rawGet, readFully, sameBytes, seedIdentities, send, TENANT_A, uniqueBucket, xmlValue, type Send } from "../support/s3-harness";

const SSE = "x-amz-server-side-encryption";
const KEY_ID = "x-amz-server-side-encryption-aws-kms-key-id";
const CONTEXT = "x-amz-server-side-encryption-context";
const kms = { [SSE]: "aws:kms" };

const bucket = uniqueBucket("copy");
const other = uniqueBucket("copy-target");
const data = pseudoRandom(140_000, 21);

async function customerKey(): Promise<{ id: string; arn: string }> {
  const key = await makeServices(env).keys.registry.create({ tenantId: TENANT_A, region: "us-east-1", kind: "customer" });
  return { id: key.id, arn: key.arn };
}

function copy(key: string, source: string, headers: Record<string, string> = {}, extra: Partial<Send> = {}) {
  return send("adminA", { method: "PUT", bucket: extra.bucket ?? bucket, key, headers: { "x-amz-copy-source": source, ...headers }, ...extra });
}

async function readBack(key: string, b = bucket): Promise<{ headers: Headers; bytes: Uint8Array }> {
  const r = await send("adminA", { method: "GET", bucket: b, key });
  expect(r.status, key).toBe(200);
  const { bytes, errored } = await readFully(r);
  expect(errored).toBe(false);
  return { headers: r.headers, bytes };
}

const sourceHeaders = {
  "content-type": "application/x-source",
  "content-disposition": "inline",
  "cache-control": "no-cache",
  "x-amz-meta-origin": "source",
  "x-amz-meta-keep": "yes",
};

beforeAll(async () => {
  await seedIdentities();
  await createBucket("adminA", bucket);
  await createBucket("adminA", other);
  const r = await send("adminA", { method: "PUT", bucket, key: "src", body: data, headers: { ...sourceHeaders, ...kms } });
  expect(r.status).toBe(200);
});

describe("CopyObject", () => {
  it("COPY (the default) keeps the source's metadata and ETag; the response is CopyObjectResult XML", async () => {
    const srcHead = await send("adminA", { method: "HEAD", bucket, key: "src" });
    const r = await copy("copied", `/${bucket}/src`, kms);
    expect(r.status).toBe(200);
    const text = await r.text();
    expect(text).toContain("<CopyObjectResult");
    expect(xmlValue(text, "ETag")).toBe(srcHead.headers.get("etag"));
    expect(xmlValue(text, "LastModified")).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(r.headers.get(SSE)).toBe("aws:kms");
    const got = await readBack("copied");
    expect(sameBytes(got.bytes, data)).toBe(true);
    for (const [name, value] of Object.entries(sourceHeaders)) expect(got.headers.get(name), name).toBe(value);
    expect(got.headers.get("etag")).toBe(srcHead.headers.get("etag"));
  });

  it("REPLACE takes the request's metadata and drops the source's", async () => {
    const r = await copy("replaced", `${bucket}/src`, { "x-amz-metadata-directive": "REPLACE", "content-type": "text/x-new", "x-amz-meta-fresh": "1", ...kms });
    expect(r.status).toBe(200);
    await r.text();
    const got = await readBack("replaced");
    expect(got.headers.get("content-type")).toBe("text/x-new");
    expect(got.headers.get("x-amz-meta-fresh")).toBe("1");
    expect(got.headers.get("x-amz-meta-origin")).toBeNull();
    expect(got.headers.get("content-disposition")).toBeNull();
    expect(sameBytes(got.bytes, data)).toBe(true);
  });

  it("copying onto itself without changing anything → InvalidRequest (400); with REPLACE or new encryption it works", async () => {
    expect((await send("adminA", { method: "PUT", bucket, key: "self", body: "same", headers: { "x-amz-meta-v": "1" } })).status).toBe(200);
    const e = await expectError(copy("self", `/${bucket}/self`), 400, "InvalidRequest");
    expect(e.message).toContain("copy an object to itself");
    await expectError(copy("self", `/${bucket}/self`, { "x-amz-metadata-directive": "COPY" }), 400, "InvalidRequest");

    const replaced = await copy("self", `/${bucket}/self`, { "x-amz-metadata-directive": "REPLACE", "x-amz-meta-v": "2" });
    expect(replaced.status).toBe(200);
    await replaced.text();
    let head = await send("adminA", { method: "HEAD", bucket, key: "self" });
    expect(head.headers.get("x-amz-meta-v")).toBe("2");
    expect(head.headers.get(SSE)).toBe("AES256");

    const reencrypted = await copy("self", `/${bucket}/self`, kms);
    expect(reencrypted.status).toBe(200);
    await reencrypted.text();
    head = await send("adminA", { method: "HEAD", bucket, key: "self" });
    expect(head.headers.get(SSE)).toBe("aws:kms");
    expect(head.headers.get("x-amz-meta-v")).toBe("2");
    expect(await (await send("adminA", { method: "GET", bucket, key: "self" })).text()).toBe("same");
  });

  it("the target's encryption comes from the request, not the source", async () => {
    const plain = await copy("to-sse-s3", `/${bucket}/src`);
    expect(plain.status).toBe(200);
    await plain.text();
    expect(plain.headers.get(SSE)).toBe("AES256");
    expect(plain.headers.get(KEY_ID)).toBeNull();
    const got = await readBack("to-sse-s3");
    expect(got.headers.get(SSE)).toBe("AES256");
    expect(sameBytes(got.bytes, data)).toBe(true);

    const key = await customerKey();
    const toKey = await copy("to-customer", `/${bucket}/src`, { ...kms, [KEY_ID]: key.id });
    expect(toKey.headers.get(KEY_ID)).toBe(key.arn);
    await toKey.text();
    expect((await readBack("to-customer")).headers.get(KEY_ID)).toBe(key.arn);
  });

  it("a copy between CMKs rewraps the data key: the stored ciphertext is byte-for-byte the source's", async () => {
    const k1 = await customerKey();
    const k2 = await customerKey();
    expect((await send("adminA", { method: "PUT", bucket, key: "rewrap-src", body: data, headers: { ...kms, [KEY_ID]: k1.arn } })).status).toBe(200);
    const r = await copy("rewrap-dst", `/${bucket}/rewrap-src`, { ...kms, [KEY_ID]: k2.arn }, { bucket: other });
    expect(r.status).toBe(200);
    await r.text();
    const src = (await rawGet(bucket, "rewrap-src"))!;
    const dst = (await rawGet(other, "rewrap-dst"))!;
    expect(sameBytes(dst.body, src.body)).toBe(true);
    const srcEnvelope = JSON.parse(src.customMetadata["sse-envelope"]!) as Record<string, unknown>;
    const dstEnvelope = JSON.parse(dst.customMetadata["sse-envelope"]!) as Record<string, unknown>;
    expect(srcEnvelope["k"]).toBe(k1.arn);
    expect(dstEnvelope["k"]).toBe(k2.arn);
    expect(dstEnvelope["w"]).not.toBe(srcEnvelope["w"]);
    expect(dstEnvelope["s"]).toBe(srcEnvelope["s"]);
    expect(dstEnvelope["t"]).not.toBe(srcEnvelope["t"]);
    const got = await readBack("rewrap-dst", other);
    expect(got.headers.get(KEY_ID)).toBe(k2.arn);
    expect(sameBytes(got.bytes, data)).toBe(true);
    // Ranged reads of the copy decrypt too.
    const ranged = await send("adminA", { method: "GET", bucket: other, key: "rewrap-dst", headers: { range: "bytes=65000-70000" } });
    expect(sameBytes((await readFully(ranged)).bytes, data.subarray(65000, 70001))).toBe(true);
  });

  it("the encryption context of the copy is the request's", async () => {
    const context = btoa(JSON.stringify({ purpose: "copy" }));
    const r = await copy("ctx-copy", `/${bucket}/src`, { ...kms, [CONTEXT]: context });
    expect(r.status).toBe(200);
    await r.text();
    expect((await readBack("ctx-copy")).headers.get(CONTEXT)).toBe(context);
  });

  it("a URL-encoded source key with special characters", async () => {
    const key = "dir/a b+c%d/ü?#";
    expect((await send("adminA", { method: "PUT", bucket, key, body: "odd" })).status).toBe(200);
    const source = `/${bucket}/${key.split("/").map(encodeURIComponent).join("/")}`;
    const r = await copy("odd-copy", source);
    expect(r.status).toBe(200);
    await r.text();
    expect(await (await send("adminA", { method: "GET", bucket, key: "odd-copy" })).text()).toBe("odd");
  });

  it("x-amz-copy-source-if-* conditions → 412 PreconditionFailed when they fail", async () => {
    const etag = (await send("adminA", { method: "HEAD", bucket, key: "src" })).headers.get("etag")!;
    const past = "Sat, 01 Jan 2000 00:00:00 GMT";
    const future = new Date(Date.now() + 86_400_000).toUTCString();
    const failing: Record<string, string>[] = [
      { "x-amz-copy-source-if-match": '"0000"' },
      { "x-amz-copy-source-if-none-match": etag },
      { "x-amz-copy-source-if-unmodified-since": past },
      { "x-amz-copy-source-if-modified-since": future },
    ];
    for (const headers of failing) {
      await expectError(copy("cond", `/${bucket}/src`, headers), 412, "PreconditionFailed");
    }
    expect((await send("adminA", { method: "HEAD", bucket, key: "cond" })).status).toBe(404);
    const ok = await copy("cond", `/${bucket}/src`, { "x-amz-copy-source-if-match": etag, "x-amz-copy-source-if-modified-since": past });
    expect(ok.status).toBe(200);
    await ok.text();
  });

  it("errors: missing source key/bucket, malformed source, bad directive, member asking for SSE-KMS", async () => {
    await expectError(copy("x", `/${bucket}/does-not-exist`), 404, "NoSuchKey");
    await expectError(copy("x", `/${uniqueBucket("gone")}/src`), 404, "NoSuchBucket");
    await expectError(copy("x", "no-slash"), 400, "InvalidArgument");
    await expectError(copy("x", `/${bucket}/src`, { "x-amz-metadata-directive": "MERGE" }), 400, "InvalidArgument");
    await expectError(copy("x", `/${bucket}/src`, { [KEY_ID]: (await customerKey()).arn }), 400, "InvalidArgument");
    await expectError(copy("x", `/${bucket}/src`, { ...kms, [KEY_ID]: crypto.randomUUID() }), 400, "KMS.NotFoundException");
    await expectError(send("memberA", { method: "PUT", bucket, key: "x", headers: { "x-amz-copy-source": `/${bucket}/src`, ...kms } }), 403, "AccessDenied");
    expect((await send("adminA", { method: "HEAD", bucket, key: "x" })).status).toBe(404);
  });

  it("a copy from a source whose key is disabled → KMS.DisabledException (400)", async () => {
    const key = await customerKey();
    const fresh: Send["env"] = { KEY_CACHE_TTL_SECONDS: "0" };
    expect((await send("adminA", { method: "PUT", bucket, key: "dis-src", body: "d", headers: { ...kms, [KEY_ID]: key.id }, env: fresh })).status).toBe(200);
    await env.DB.prepare("UPDATE kms_keys SET state = 'Disabled' WHERE id = ?").bind(key.id).run();
    try {
      await expectError(copy("dis-dst", `/${bucket}/dis-src`, {}, { env: fresh }), 400, "KMS.DisabledException");
    } finally {
      await env.DB.prepare("UPDATE kms_keys SET state = 'Enabled' WHERE id = ?").bind(key.id).run();
    }
  });
});
