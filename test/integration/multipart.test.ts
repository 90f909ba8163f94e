import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { MiB, concat, createUpload, completeRequest, multipartPut, traces, uploadPart, uploadPartRequest } from "../support/multipart";
import { pseudoRandom } from "../support/sources";
import { createBucket, expectError, readFully, sameBytes, seedIdentities, send, uniqueBucket, xmlBlocks, xmlValue, xmlValues } from "../support/s3-harness";

const bucket = uniqueBucket("mpu");
const SSE = "x-amz-server-side-encryption";
const KEY_ID = "x-amz-server-side-encryption-aws-kms-key-id";

// Unequal parts, as S3 allows and R2's native multipart does not: 5 MiB + 100, 5 MiB, 300 KiB.
const P1 = pseudoRandom(5 * MiB + 100, 11);
const P2 = pseudoRandom(5 * MiB, 12);
const P3 = pseudoRandom(300 * 1024, 13);
const WHOLE = concat([P1, P2, P3]);
const B1 = P1.byteLength; // first byte of part 2
const B2 = P1.byteLength + P2.byteLength; // first byte of part 3

let main: Awaited<ReturnType<typeof multipartPut>>;

beforeAll(async () => {
  await seedIdentities();
  await createBucket("adminA", bucket);
  main = await multipartPut("adminA", bucket, "big.bin", [P1, P2, P3], { [SSE]: "aws:kms", "content-type": "application/x-big", "x-amz-meta-color": "blue" });
});

async function get(key: string, headers: Record<string, string> = {}, query: Record<string, string> = {}) {
  return send("adminA", { method: "GET", bucket, key, headers, query });
}

describe("a completed multipart upload", () => {
  it("answers Complete with the S3 document, the -N ETag and the upload's encryption", async () => {
    expect(xmlValue(main.text, "Bucket")).toBe(bucket);
    expect(xmlValue(main.text, "Key")).toBe("big.bin");
    expect(xmlValue(main.text, "Location")).toBe(`http://gw.test/${bucket}/big.bin`);
    expect(main.etag).toMatch(/^"[0-9a-f]{32}-3"$/);
    expect(main.headers.get(SSE)).toBe("aws:kms");
    expect(main.headers.get(KEY_ID)).toMatch(/^arn:aws:kms:us-east-1:[0-9a-f]{32}:key\//);
  });

  it("computes the ETags as S3 does: each part's the MD5 of its plaintext, the object's the MD5 of the binary part MD5s, -N", async () => {
    const md5 = async (bytes: Uint8Array) => new Uint8Array(await crypto.subtle.digest("MD5", bytes));
    const hex = (bytes: Uint8Array) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    const digests = [await md5(P1), await md5(P2), await md5(P3)];
    expect(main.etags).toEqual(digests.map((d) => `"${hex(d)}"`));
    expect(main.etag).toBe(`"${hex(await md5(concat(digests)))}-3"`);
  });

  it("an identical part sent again gets the same ETag, and Complete listing the first response's ETag succeeds", async () => {
    const part = pseudoRandom(5 * MiB, 21);
    const last = pseudoRandom(1000, 22);
    // Its own bucket: the listing tests here expect big.bin alone.
    const other = uniqueBucket("mpu-etag");
    await createBucket("adminA", other);
    const id = await createUpload("adminA", other, "resent", { [SSE]: "aws:kms" });
    const first = await uploadPart("adminA", other, "resent", id, 1, part);
    const again = await uploadPart("adminA", other, "resent", id, 1, part);
    expect(again).toBe(first);
    const tail = await uploadPart("adminA", other, "resent", id, 2, last);
    // UploadPartCopy of the same bytes gets the same ETag too (MD5 of what it copied).
    const copied = await send("adminA", { method: "PUT", bucket: other, key: "resent", query: { partNumber: "3", uploadId: id }, headers: { "x-amz-copy-source": `${bucket}/big.bin`, "x-amz-copy-source-range": `bytes=0-${B1 - 1}` } });
    const copiedText = await copied.text();
    expect(copied.status, copiedText).toBe(200);
    const md5Hex = Array.from(new Uint8Array(await crypto.subtle.digest("MD5", P1)), (b) => b.toString(16).padStart(2, "0")).join("");
    expect(xmlValue(copiedText, "ETag")).toBe(`"${md5Hex}"`);
    const done = await completeRequest("adminA", other, "resent", id, [{ partNumber: 1, etag: first }, { partNumber: 2, etag: tail }]);
    expect(done.status, await done.clone().text()).toBe(200);
    expect(sameBytes((await readFully(await send("adminA", { method: "GET", bucket: other, key: "resent" }))).bytes, concat([part, last]))).toBe(true);
  });

  it("reads back whole, with metadata, content type and encryption headers", async () => {
    const r = await get("big.bin");
    expect(r.status).toBe(200);
    expect(r.headers.get("etag")).toBe(main.etag);
    expect(r.headers.get("content-type")).toBe("application/x-big");
    expect(r.headers.get("x-amz-meta-color")).toBe("blue");
    expect(r.headers.get(SSE)).toBe("aws:kms");
    expect(r.headers.get("x-amz-mp-parts-count")).toBeNull();
    const body = await readFully(r);
    expect(body.errored).toBe(false);
    expect(sameBytes(body.bytes, WHOLE)).toBe(true);
  });

  it("HEAD gives the total size and the ETag; listings show the plaintext size", async () => {
    const h = await send("adminA", { method: "HEAD", bucket, key: "big.bin" });
    expect(h.status).toBe(200);
    expect(h.headers.get("content-length")).toBe(String(WHOLE.byteLength));
    expect(h.headers.get("etag")).toBe(main.etag);
    const list = await (await send("adminA", { method: "GET", bucket, query: { "list-type": "2" } })).text();
    expect(xmlValues(list, "Key")).toEqual(["big.bin"]);
    expect(xmlValue(list, "Size")).toBe(String(WHOLE.byteLength));
  });

  it("stores only ciphertext, each part under _mpu/, and a small manifest at the key", async () => {
    const t = await traces(main.uploadId);
    expect(t).toMatchObject({ uploads: 0, parts: 0, objects: 1 });
    expect(t.r2).toHaveLength(3);
    const manifest = await env.OBJECTS.get(`${bucket}/big.bin`);
    expect(manifest!.size).toBeLessThan(2000);
    const stored = new Uint8Array(await (await env.OBJECTS.get(t.r2[0]!))!.arrayBuffer());
    expect(stored.byteLength).toBe(32 + P1.byteLength + 16 * Math.ceil(P1.byteLength / 65536));
    expect(sameBytes(stored.subarray(1000, 1100), P1.subarray(1000 - 32, 1100 - 32))).toBe(false);
  });

  it.each([
    ["across the first boundary", B1 - 10, B1 + 9],
    ["across both boundaries", B1 - 5, B2 + 5],
    ["starting exactly at a boundary", B2, B2 + 70_000],
    ["ending exactly at a boundary", B1 - 70_000, B1 - 1],
    ["one byte of the last part", WHOLE.byteLength - 1, WHOLE.byteLength - 1],
    ["inside one part", 1_000_000, 1_300_000],
  ])("serves a range %s, reading only the chunks it needs", async (_name, first, last) => {
    const r = await get("big.bin", { range: `bytes=${first}-${last}` });
    expect(r.status).toBe(206);
    expect(r.headers.get("content-range")).toBe(`bytes ${first}-${last}/${WHOLE.byteLength}`);
    const body = await readFully(r);
    expect(body.errored).toBe(false);
    expect(sameBytes(body.bytes, WHOLE.subarray(first, last + 1))).toBe(true);
  });

  it("serves suffix and open ranges, and 416 past the end", async () => {
    const suffix = await get("big.bin", { range: "bytes=-400000" });
    expect(suffix.status).toBe(206);
    expect(sameBytes((await readFully(suffix)).bytes, WHOLE.subarray(WHOLE.byteLength - 400000))).toBe(true);
    const open = await get("big.bin", { range: `bytes=${B2 - 3}-` });
    expect(sameBytes((await readFully(open)).bytes, WHOLE.subarray(B2 - 3))).toBe(true);
    await expectError(get("big.bin", { range: `bytes=${WHOLE.byteLength}-` }), 416, "InvalidRange");
  });

  it("serves ?partNumber=N on GET and HEAD as S3 does", async () => {
    const r = await get("big.bin", {}, { partNumber: "2" });
    expect(r.status).toBe(206);
    expect(r.headers.get("x-amz-mp-parts-count")).toBe("3");
    expect(r.headers.get("content-range")).toBe(`bytes ${B1}-${B2 - 1}/${WHOLE.byteLength}`);
    expect(r.headers.get("etag")).toBe(main.etag);
    expect(sameBytes((await readFully(r)).bytes, P2)).toBe(true);
    const h = await send("adminA", { method: "HEAD", bucket, key: "big.bin", query: { partNumber: "3" } });
    expect(h.status).toBe(206);
    expect(h.headers.get("content-length")).toBe(String(P3.byteLength));
    expect(h.headers.get("x-amz-mp-parts-count")).toBe("3");
    expect(h.headers.get("content-range")).toBe(`bytes ${B2}-${WHOLE.byteLength - 1}/${WHOLE.byteLength}`);
    await expectError(get("big.bin", {}, { partNumber: "4" }), 416, "InvalidPartNumber");
    await expectError(get("big.bin", {}, { partNumber: "0" }), 400, "InvalidArgument");
    await expectError(get("big.bin", { range: "bytes=0-1" }, { partNumber: "1" }), 400, "InvalidRequest");
  });

  it("treats an object uploaded in one piece as having one part", async () => {
    const body = pseudoRandom(70_000, 5);
    expect((await send("adminA", { method: "PUT", bucket, key: "single.bin", body })).status).toBe(200);
    const r = await get("single.bin", {}, { partNumber: "1" });
    expect(r.status).toBe(206);
    expect(r.headers.get("content-range")).toBe(`bytes 0-69999/70000`);
    expect(r.headers.get("x-amz-mp-parts-count")).toBeNull();
    expect(sameBytes((await readFully(r)).bytes, body)).toBe(true);
    await expectError(get("single.bin", {}, { partNumber: "2" }), 416, "InvalidPartNumber");
  });
});

describe("part uploads", () => {
  it("echoes the upload's encryption on UploadPart; SSE headers matching the upload are ignored, conflicting ones are 400", async () => {
    const id = await createUpload("adminA", bucket, "sse-part", { [SSE]: "aws:kms" });
    const ok = await uploadPartRequest("adminA", bucket, "sse-part", id, 1, pseudoRandom(1000, 1));
    expect(ok.status).toBe(200);
    expect(ok.headers.get(SSE)).toBe("aws:kms");
    const arn = ok.headers.get(KEY_ID)!;
    expect(arn).toMatch(/^arn:aws:kms:/);
    // Clients that copy Create's headers onto every part (AWS accepts and ignores them).
    const same = await uploadPartRequest("adminA", bucket, "sse-part", id, 2, pseudoRandom(10, 1), { [SSE]: "aws:kms" });
    expect(same.status, await same.clone().text()).toBe(200);
    const byArn = await uploadPartRequest("adminA", bucket, "sse-part", id, 2, pseudoRandom(10, 1), { [SSE]: "aws:kms", [KEY_ID]: arn });
    expect(byArn.status).toBe(200);
    const byId = await uploadPartRequest("adminA", bucket, "sse-part", id, 2, pseudoRandom(10, 1), { [SSE]: "aws:kms", [KEY_ID]: arn.split("/").at(-1)! });
    expect(byId.status).toBe(200);
    await expectError(uploadPartRequest("adminA", bucket, "sse-part", id, 2, pseudoRandom(10, 1), { [SSE]: "AES256" }), 400, "InvalidArgument");
    await expectError(uploadPartRequest("adminA", bucket, "sse-part", id, 2, pseudoRandom(10, 1), { [SSE]: "aws:kms", [KEY_ID]: "11111111-2222-3333-4444-555555555555" }), 400, "InvalidArgument");
    await expectError(uploadPartRequest("adminA", bucket, "sse-part", id, 2, pseudoRandom(10, 1), { [SSE]: "aws:kms", "x-amz-server-side-encryption-bucket-key-enabled": "true" }), 400, "InvalidArgument");
    const plain = await createUpload("adminA", bucket, "sse-part-s3");
    expect((await uploadPartRequest("adminA", bucket, "sse-part-s3", plain, 1, pseudoRandom(10, 1), { [SSE]: "AES256" })).status).toBe(200);
    await expectError(uploadPartRequest("adminA", bucket, "sse-part-s3", plain, 1, pseudoRandom(10, 1), { [SSE]: "aws:kms" }), 400, "InvalidArgument");
  });

  it("takes part numbers 1..10000 only", async () => {
    const id = await createUpload("adminA", bucket, "numbers");
    await expectError(uploadPartRequest("adminA", bucket, "numbers", id, 0, pseudoRandom(10, 1)), 400, "InvalidArgument");
    await expectError(uploadPartRequest("adminA", bucket, "numbers", id, 10001, pseudoRandom(10, 1)), 400, "InvalidArgument");
    expect((await uploadPartRequest("adminA", bucket, "numbers", id, 10000, pseudoRandom(10, 1))).status).toBe(200);
  });

  it("verifies Content-MD5 (and uses it as the part ETag) and never records a bad body", async () => {
    const id = await createUpload("adminA", bucket, "md5");
    const body = pseudoRandom(2000, 3);
    const md5 = new Uint8Array(await crypto.subtle.digest("MD5", body));
    const hex = Array.from(md5, (b) => b.toString(16).padStart(2, "0")).join("");
    const good = await uploadPartRequest("adminA", bucket, "md5", id, 1, body, { "content-md5": btoa(String.fromCharCode(...md5)) });
    expect(good.headers.get("etag")).toBe(`"${hex}"`);
    await expectError(uploadPartRequest("adminA", bucket, "md5", id, 2, pseudoRandom(2000, 4), { "content-md5": btoa(String.fromCharCode(...md5)) }), 400, "BadDigest");
    const t = await traces(id);
    expect(t.parts).toBe(1);
    expect(t.r2).toHaveLength(1);
  });

  it("keeps one R2 object per part: a retried part replaces the earlier attempt", async () => {
    const id = await createUpload("adminA", bucket, "retry");
    await uploadPart("adminA", bucket, "retry", id, 1, pseudoRandom(1000, 1));
    const second = await uploadPart("adminA", bucket, "retry", id, 1, pseudoRandom(1000, 2));
    const t = await traces(id);
    expect(t.parts).toBe(1);
    expect(t.r2).toHaveLength(1);
    const done = await completeRequest("adminA", bucket, "retry", id, [{ partNumber: 1, etag: second }]);
    expect(done.status).toBe(200);
    expect(sameBytes((await readFully(await get("retry"))).bytes, pseudoRandom(1000, 2))).toBe(true);
  });

  it("lists parts with max-parts and part-number-marker paging", async () => {
    const id = await createUpload("adminA", bucket, "listing");
    const etags = [];
    for (const n of [1, 2, 5]) etags.push(await uploadPart("adminA", bucket, "listing", id, n, pseudoRandom(100 * n, n)));
    const page1 = await (await send("adminA", { method: "GET", bucket, key: "listing", query: { uploadId: id, "max-parts": "2" } })).text();
    expect(xmlValues(page1, "PartNumber")).toEqual(["1", "2"]);
    expect(xmlValue(page1, "IsTruncated")).toBe("true");
    expect(xmlValue(page1, "NextPartNumberMarker")).toBe("2");
    expect(xmlValues(page1, "ETag")).toEqual(etags.slice(0, 2));
    expect(xmlValues(page1, "Size")).toEqual(["100", "200"]);
    const page2 = await (await send("adminA", { method: "GET", bucket, key: "listing", query: { uploadId: id, "part-number-marker": "2" } })).text();
    expect(xmlValues(page2, "PartNumber")).toEqual(["5"]);
    expect(xmlValue(page2, "IsTruncated")).toBe("false");
    expect(xmlValue(page2, "UploadId")).toBe(id);
  });
});

describe("completion errors", () => {
  async function twoParts(key: string, first = 5 * MiB) {
    const id = await createUpload("adminA", bucket, key);
    const e1 = await uploadPart("adminA", bucket, key, id, 1, pseudoRandom(first, 1));
    const e2 = await uploadPart("adminA", bucket, key, id, 2, pseudoRandom(1000, 2));
    return { id, e1, e2 };
  }

  it("InvalidPart for a wrong ETag or a part never uploaded; the upload stays usable", async () => {
    const { id, e1, e2 } = await twoParts("bad-etag");
    const wrong = `"${"0".repeat(32)}"`;
    const e = await expectError(completeRequest("adminA", bucket, "bad-etag", id, [{ partNumber: 1, etag: e1 }, { partNumber: 2, etag: wrong }]), 400, "InvalidPart");
    expect(xmlValue(e.text, "PartNumber")).toBe("2");
    await expectError(completeRequest("adminA", bucket, "bad-etag", id, [{ partNumber: 1, etag: e1 }, { partNumber: 3, etag: e2 }]), 400, "InvalidPart");
    expect((await completeRequest("adminA", bucket, "bad-etag", id, [{ partNumber: 1, etag: e1 }, { partNumber: 2, etag: e2 }])).status).toBe(200);
  });

  it("InvalidPartOrder for descending or repeated part numbers", async () => {
    const { id, e1, e2 } = await twoParts("order");
    await expectError(completeRequest("adminA", bucket, "order", id, [{ partNumber: 2, etag: e2 }, { partNumber: 1, etag: e1 }]), 400, "InvalidPartOrder");
    await expectError(completeRequest("adminA", bucket, "order", id, [{ partNumber: 1, etag: e1 }, { partNumber: 1, etag: e1 }]), 400, "InvalidPartOrder");
  });

  it("EntityTooSmall when a part other than the last is under 5 MiB", async () => {
    const { id, e1, e2 } = await twoParts("small", 5 * MiB - 1);
    const e = await expectError(completeRequest("adminA", bucket, "small", id, [{ partNumber: 1, etag: e1 }, { partNumber: 2, etag: e2 }]), 400, "EntityTooSmall");
    expect(xmlValue(e.text, "MinSizeAllowed")).toBe(String(5 * MiB));
    expect(xmlValue(e.text, "ProposedSize")).toBe(String(5 * MiB - 1));
    // The same parts minus the small one complete (a single small last part is fine).
    expect((await completeRequest("adminA", bucket, "small", id, [{ partNumber: 2, etag: e2 }])).status).toBe(200);
  });

  it("MalformedXML for no parts or a broken document", async () => {
    const id = await createUpload("adminA", bucket, "malformed");
    await expectError(completeRequest("adminA", bucket, "malformed", id, []), 400, "MalformedXML");
    await expectError(send("adminA", { method: "POST", bucket, key: "malformed", query: { uploadId: id }, body: "<CompleteMultipartUpload><Part>" }), 400, "MalformedXML");
  });

  it("ETags written with XML character references (&#34;, as aws-sdk-go/rclone send them; &#x22;) complete; invalid references are MalformedXML", async () => {
    const { id, e1, e2 } = await twoParts("charref");
    for (const bad of ["&#0;", "&#xD800;", "&#x110000;", "&nbsp;", "&#;"]) {
      await expectError(completeRequest("adminA", bucket, "charref", id, [{ partNumber: 1, etag: e1 }, { partNumber: 2, etag: e2.replace(/"$/, `${bad}"`) }]), 400, "MalformedXML");
    }
    const r = await completeRequest("adminA", bucket, "charref", id, [
      { partNumber: 1, etag: e1.replace(/"/g, "&#34;") },
      { partNumber: 2, etag: e2.replace(/"/g, "&#x22;") },
    ]);
    expect(r.status, await r.clone().text()).toBe(200);
    const h = await send("adminA", { method: "HEAD", bucket, key: "charref" });
    expect(h.headers.get("content-length")).toBe(String(5 * MiB + 1000));
  });

  it("NoSuchUpload for unknown, aborted, completed or other-key upload ids", async () => {
    const bogus = "0000000000AAAAAAAAAAAAAAAAAAAAAAAA";
    await expectError(uploadPartRequest("adminA", bucket, "x", bogus, 1, pseudoRandom(10, 1)), 404, "NoSuchUpload");
    await expectError(uploadPartRequest("adminA", bucket, "x", "not an id", 1, pseudoRandom(10, 1)), 404, "NoSuchUpload");
    await expectError(completeRequest("adminA", bucket, "x", bogus, [{ partNumber: 1, etag: '"a"' }]), 404, "NoSuchUpload");
    await expectError(send("adminA", { method: "DELETE", bucket, key: "x", query: { uploadId: bogus } }), 404, "NoSuchUpload");
    await expectError(send("adminA", { method: "GET", bucket, key: "x", query: { uploadId: bogus } }), 404, "NoSuchUpload");
    // An upload id used with another key.
    const id = await createUpload("adminA", bucket, "owner-key");
    await expectError(uploadPartRequest("adminA", bucket, "other-key", id, 1, pseudoRandom(10, 1)), 404, "NoSuchUpload");
    // Completed uploads are gone.
    await expectError(uploadPartRequest("adminA", bucket, "big.bin", main.uploadId, 1, pseudoRandom(10, 1)), 404, "NoSuchUpload");
  });

  it("If-None-Match: * completes only onto a free key; a refused complete leaves the upload usable", async () => {
    expect((await send("adminA", { method: "PUT", bucket, key: "taken", body: "first" })).status).toBe(200);
    const id = await createUpload("adminA", bucket, "taken");
    const etag = await uploadPart("adminA", bucket, "taken", id, 1, pseudoRandom(100, 1));
    const parts = [{ partNumber: 1, etag }];
    await expectError(completeRequest("adminA", bucket, "taken", id, parts, { headers: { "if-none-match": "*" } }), 412, "PreconditionFailed");
    expect(await (await get("taken")).text()).toBe("first");
    expect(await traces(id)).toMatchObject({ uploads: 1, parts: 1 });
    expect((await send("adminA", { method: "DELETE", bucket, key: "taken" })).status).toBe(204);
    expect((await completeRequest("adminA", bucket, "taken", id, parts, { headers: { "if-none-match": "*" } })).status).toBe(200);
  });

  it("If-Match completes only over the version with that ETag; a refused complete leaves the upload usable", async () => {
    const first = await send("adminA", { method: "PUT", bucket, key: "guarded", body: "first" });
    const firstEtag = first.headers.get("etag")!;
    const id = await createUpload("adminA", bucket, "guarded");
    const part = pseudoRandom(100, 4);
    const parts = [{ partNumber: 1, etag: await uploadPart("adminA", bucket, "guarded", id, 1, part) }];
    // Another writer replaces the object: the client's ETag is stale.
    const second = await send("adminA", { method: "PUT", bucket, key: "guarded", body: "second" });
    const e = await expectError(completeRequest("adminA", bucket, "guarded", id, parts, { headers: { "if-match": firstEtag } }), 412, "PreconditionFailed");
    expect(xmlValue(e.text, "Condition")).toBe("If-Match");
    expect(await (await get("guarded")).text()).toBe("second");
    expect(await traces(id)).toMatchObject({ uploads: 1, parts: 1 });
    const done = await completeRequest("adminA", bucket, "guarded", id, parts, { headers: { "if-match": second.headers.get("etag")! } });
    expect(done.status, await done.clone().text()).toBe(200);
    expect(sameBytes((await readFully(await get("guarded"))).bytes, part)).toBe(true);
  });

  it("If-Match on a key with no object is 404 NoSuchKey, and the upload stays", async () => {
    const id = await createUpload("adminA", bucket, "guarded-absent");
    const parts = [{ partNumber: 1, etag: await uploadPart("adminA", bucket, "guarded-absent", id, 1, pseudoRandom(100, 5)) }];
    await expectError(completeRequest("adminA", bucket, "guarded-absent", id, parts, { headers: { "if-match": '"0123456789abcdef0123456789abcdef"' } }), 404, "NoSuchKey");
    expect(await traces(id)).toMatchObject({ uploads: 1, parts: 1 });
  });

  it("If-Match holds against a write landing between the check and the manifest put (R2's conditional put)", async () => {
    const first = await send("adminA", { method: "PUT", bucket, key: "guarded-race", body: "first" });
    const id = await createUpload("adminA", bucket, "guarded-race");
    const parts = [{ partNumber: 1, etag: await uploadPart("adminA", bucket, "guarded-race", id, 1, pseudoRandom(100, 6)) }];
    const racing = new TextEncoder().encode("another writer's bytes");
    let raced = false;
    // Another write lands at the key just before the manifest's put (after the If-Match check).
    const OBJECTS = new Proxy(env.OBJECTS, {
      get(target, prop) {
        if (prop === "put")
          return async (key: string, value: unknown, options?: R2PutOptions) => {
            if (key === `${bucket}/guarded-race` && !raced) {
              raced = true;
              await target.put(key, racing);
            }
            return target.put(key, value as ReadableStream, options);
          };
        const v = Reflect.get(target, prop) as unknown;
        return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    const e = await expectError(completeRequest("adminA", bucket, "guarded-race", id, parts, { headers: { "if-match": first.headers.get("etag")! }, env: { OBJECTS } }), 412, "PreconditionFailed");
    expect(raced).toBe(true);
    expect(xmlValue(e.text, "Condition")).toBe("If-Match");
    // The racing write stands; the manifest was not written over it.
    const now = await env.OBJECTS.get(`${bucket}/guarded-race`);
    expect(sameBytes(new Uint8Array(await now!.arrayBuffer()), racing)).toBe(true);
    expect(await traces(id)).toMatchObject({ uploads: 1, parts: 1 });
  });

  it("deletes parts and attempts the completion did not use", async () => {
    const id = await createUpload("adminA", bucket, "unused");
    const e1 = await uploadPart("adminA", bucket, "unused", id, 1, pseudoRandom(5 * MiB, 1));
    await uploadPart("adminA", bucket, "unused", id, 2, pseudoRandom(100, 2));
    const e3 = await uploadPart("adminA", bucket, "unused", id, 3, pseudoRandom(100, 3));
    expect((await completeRequest("adminA", bucket, "unused", id, [{ partNumber: 1, etag: e1 }, { partNumber: 3, etag: e3 }])).status).toBe(200);
    const t = await traces(id);
    expect(t.r2.map((k) => k.split("/")[2])).toEqual(["00001", "00003"]);
    const whole = (await readFully(await get("unused"))).bytes;
    expect(sameBytes(whole, concat([pseudoRandom(5 * MiB, 1), pseudoRandom(100, 3)]))).toBe(true);
  });
});

describe("abort", () => {
  it("leaves no rows and no R2 objects, and the upload is gone", async () => {
    const id = await createUpload("adminA", bucket, "aborted", { [SSE]: "aws:kms" });
    await uploadPart("adminA", bucket, "aborted", id, 1, pseudoRandom(5000, 1));
    await uploadPart("adminA", bucket, "aborted", id, 2, pseudoRandom(5000, 2));
    expect((await traces(id)).r2).toHaveLength(2);
    const r = await send("adminA", { method: "DELETE", bucket, key: "aborted", query: { uploadId: id } });
    expect(r.status).toBe(204);
    expect(await traces(id)).toEqual({ uploads: 0, parts: 0, objects: 0, r2: [] });
    await expectError(uploadPartRequest("adminA", bucket, "aborted", id, 3, pseudoRandom(10, 1)), 404, "NoSuchUpload");
    await expectError(send("adminA", { method: "DELETE", bucket, key: "aborted", query: { uploadId: id } }), 404, "NoSuchUpload");
    await expectError(get("aborted"), 404, "NoSuchKey");
    const uploads = await (await send("adminA", { method: "GET", bucket, query: { uploads: "" } })).text();
    expect(xmlValues(uploads, "UploadId")).not.toContain(id);
  });
});

describe("ListMultipartUploads", () => {
  it("lists uploads in key then initiation order, with markers, prefix and delimiter", async () => {
    const b = uniqueBucket("mpu-list");
    await createBucket("adminA", b);
    const ids: Record<string, string[]> = {};
    for (const key of ["a", "a", "b/1", "b/2", "c"]) (ids[key] ??= []).push(await createUpload("adminA", b, key));
    const all = await (await send("adminA", { method: "GET", bucket: b, query: { uploads: "" } })).text();
    expect(xmlBlocks(all, "Upload").map((u) => xmlValue(u, "Key"))).toEqual(["a", "a", "b/1", "b/2", "c"]);
    expect(xmlValues(all, "UploadId").slice(0, 2)).toEqual(ids.a);
    expect(xmlValue(all, "IsTruncated")).toBe("false");

    const p1 = await (await send("adminA", { method: "GET", bucket: b, query: { uploads: "", "max-uploads": "3" } })).text();
    expect(xmlValue(p1, "IsTruncated")).toBe("true");
    expect(xmlValue(p1, "NextKeyMarker")).toBe("b/1");
    const p2 = await (
      await send("adminA", { method: "GET", bucket: b, query: { uploads: "", "key-marker": xmlValue(p1, "NextKeyMarker")!, "upload-id-marker": xmlValue(p1, "NextUploadIdMarker")! } })
    ).text();
    expect(xmlBlocks(p2, "Upload").map((u) => xmlValue(u, "Key"))).toEqual(["b/2", "c"]);
    // Between two uploads of one key.
    const mid = await (await send("adminA", { method: "GET", bucket: b, query: { uploads: "", "key-marker": "a", "upload-id-marker": ids.a![0]! } })).text();
    expect(xmlValues(mid, "UploadId")[0]).toBe(ids.a![1]);

    const grouped = await (await send("adminA", { method: "GET", bucket: b, query: { uploads: "", delimiter: "/" } })).text();
    expect(xmlBlocks(grouped, "Upload").map((u) => xmlValue(u, "Key"))).toEqual(["a", "a", "c"]);
    expect(xmlBlocks(grouped, "CommonPrefixes").map((p) => xmlValue(p, "Prefix"))).toEqual(["b/"]);
    const prefixed = await (await send("adminA", { method: "GET", bucket: b, query: { uploads: "", prefix: "b/" } })).text();
    expect(xmlBlocks(prefixed, "Upload").map((u) => xmlValue(u, "Key"))).toEqual(["b/1", "b/2"]);
    const afterPrefix = await (await send("adminA", { method: "GET", bucket: b, query: { uploads: "", delimiter: "/", "key-marker": "b/" } })).text();
    expect(xmlBlocks(afterPrefix, "Upload").map((u) => xmlValue(u, "Key"))).toEqual(["c"]);
  });
});
