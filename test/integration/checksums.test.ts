/**
 * Flexible checksums kept with the object (FORMAT.md §3a, README "Checksums"): sent in a
 * header or an aws-chunked trailer, or computed by the gateway (CRC64NVME) when none was
 * sent; returned on GET/HEAD with x-amz-checksum-mode: ENABLED (whole-object reads only),
 * in GetObjectAttributes and for multipart objects (COMPOSITE / FULL_OBJECT).
 *
 * Oracles are independent of src/checksum: CRC32 written in the harness, CRC32C from
 * @aws-crypto/crc32c, CRC64NVME from the AWS SDK's @aws-sdk/crc64-nvme, SHA from WebCrypto.
 */
import { AwsCrc32c } from "@aws-crypto/crc32c";
import { Crc64Nvme } from "@aws-sdk/crc64-nvme";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { encodeAwsChunked, splitSizes } from "../support/chunked-encoder";
import { completeRequest, createUpload, MiB, uploadPart } from "../support/multipart";
import { crc32Base64, createBucket, expectError, rawGet, rawPut, readFully, sameBytes, seedIdentities, send, uniqueBucket, xmlValue, xmlBlocks } from "../support/s3-harness";
import { concatBytes, pseudoRandom } from "../support/sources";

const bucket = uniqueBucket("checksums");
const TRAILER = 52;

const b64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes));
const unb64 = (s: string) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));

type Algorithm = "CRC32" | "CRC32C" | "CRC64NVME" | "SHA1" | "SHA256";

/** Base64 checksum of `data`, from implementations that are not the gateway's. */
async function oracle(algorithm: Algorithm, data: Uint8Array): Promise<string> {
  switch (algorithm) {
    case "CRC32":
      return crc32Base64(data);
    case "CRC32C": {
      const h = new AwsCrc32c();
      h.update(data);
      return b64(await h.digest());
    }
    case "CRC64NVME": {
      const h = new Crc64Nvme();
      h.update(data);
      return b64(await h.digest());
    }
    case "SHA1":
      return b64(new Uint8Array(await crypto.subtle.digest("SHA-1", data)));
    case "SHA256":
      return b64(new Uint8Array(await crypto.subtle.digest("SHA-256", data)));
  }
}

/** PutObject as SDK v3 sends a stream body: aws-chunked, unsigned chunks, the checksum as a trailer. */
async function putWithTrailer(key: string, payload: Uint8Array, algorithm: Algorithm): Promise<Response> {
  const name = `x-amz-checksum-${algorithm.toLowerCase()}`;
  const body = await encodeAwsChunked(payload, { mode: "STREAMING-UNSIGNED-PAYLOAD-TRAILER", chunks: splitSizes(payload.byteLength, 64 * 1024), trailers: [[name, await oracle(algorithm, payload)]] });
  return send("adminA", {
    method: "PUT",
    bucket,
    key,
    body,
    contentSha256: "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
    headers: {
      "content-encoding": "aws-chunked",
      "x-amz-decoded-content-length": String(payload.byteLength),
      "x-amz-trailer": name,
      "x-amz-sdk-checksum-algorithm": algorithm,
    },
  });
}

const checksumHeaders = (r: Response) => [...r.headers].filter(([name]) => name.startsWith("x-amz-checksum-")).sort();
const MODE = { "x-amz-checksum-mode": "ENABLED" };

beforeAll(async () => {
  await seedIdentities();
  await createBucket("adminA", bucket);
});

describe("single objects", () => {
  it.each(["CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"] as const)("a %s trailer is stored and returned with checksum mode (HEAD, GET), never without it or on a range", async (algorithm) => {
    const payload = pseudoRandom(150_000, algorithm.length * 31);
    const key = `trailer-${algorithm}`;
    const expected = await oracle(algorithm, payload);
    const header = `x-amz-checksum-${algorithm.toLowerCase()}`;
    const put = await putWithTrailer(key, payload, algorithm);
    expect(put.status, await put.clone().text()).toBe(200);
    expect(put.headers.get(header)).toBe(expected);

    const plainHead = await send("adminA", { method: "HEAD", bucket, key });
    expect(checksumHeaders(plainHead)).toEqual([]);
    const head = await send("adminA", { method: "HEAD", bucket, key, headers: MODE });
    expect(head.status).toBe(200);
    expect(checksumHeaders(head)).toEqual([[header, expected], ["x-amz-checksum-type", "FULL_OBJECT"]].sort());
    expect(head.headers.get("content-length")).toBe(String(payload.byteLength));

    const get = await send("adminA", { method: "GET", bucket, key, headers: MODE });
    expect(checksumHeaders(get)).toEqual([[header, expected], ["x-amz-checksum-type", "FULL_OBJECT"]].sort());
    const read = await readFully(get);
    expect(read.errored).toBe(false);
    expect(sameBytes(read.bytes, payload)).toBe(true);

    const plainGet = await send("adminA", { method: "GET", bucket, key });
    expect(checksumHeaders(plainGet)).toEqual([]);
    await plainGet.arrayBuffer();
    for (const range of ["bytes=0-99", "bytes=-10", "bytes=100000-"]) {
      const ranged = await send("adminA", { method: "GET", bucket, key, headers: { ...MODE, range } });
      expect(ranged.status).toBe(206);
      expect(checksumHeaders(ranged), range).toEqual([]);
      await ranged.arrayBuffer();
    }
  });

  it("checksum mode across a size change: a small object's record comes from its one read, a larger one replacing it still gets its own", async () => {
    // objects/read.ts reads objects up to ~1 MiB whole and remembers sizes per key; a stale
    // "small" hint must still end in the new object's record, never the old one's.
    const key = "size-change";
    for (const [size, seed] of [[3000, 1], [3000, 2], [1_300_000, 3], [1_300_000, 4], [10, 5]] as const) {
      const payload = pseudoRandom(size, seed);
      const put = await putWithTrailer(key, payload, "CRC32");
      expect(put.status).toBe(200);
      const get = await send("adminA", { method: "GET", bucket, key, headers: MODE });
      expect(get.status).toBe(200);
      expect(checksumHeaders(get), `${size} bytes`).toEqual([["x-amz-checksum-crc32", await oracle("CRC32", payload)], ["x-amz-checksum-type", "FULL_OBJECT"]].sort());
      const read = await readFully(get);
      expect(read.errored).toBe(false);
      expect(sameBytes(read.bytes, payload)).toBe(true);
    }
  });

  it("a checksum-less PutObject gets CRC64NVME, equal to an independent CRC64NVME of the body", async () => {
    for (const size of [0, 1, 65_536, 200_001]) {
      const payload = pseudoRandom(size, size + 7);
      const key = `default-${size}`;
      const put = await send("adminA", { method: "PUT", bucket, key, body: payload });
      expect(put.status).toBe(200);
      const expected = await oracle("CRC64NVME", payload);
      expect(put.headers.get("x-amz-checksum-crc64nvme")).toBe(expected);
      expect(put.headers.get("x-amz-checksum-type")).toBe("FULL_OBJECT");
      const head = await send("adminA", { method: "HEAD", bucket, key, headers: MODE });
      expect(checksumHeaders(head)).toEqual([["x-amz-checksum-crc64nvme", expected], ["x-amz-checksum-type", "FULL_OBJECT"]]);
      const get = await send("adminA", { method: "GET", bucket, key, headers: MODE });
      expect(get.headers.get("x-amz-checksum-crc64nvme")).toBe(expected);
      expect(sameBytes(new Uint8Array(await get.arrayBuffer()), payload)).toBe(true);
      // Stored: header, chunks, the record; the checksum is nowhere in the clear.
      const raw = (await rawGet(bucket, key))!;
      expect(raw.body.byteLength).toBe(32 + size + 16 * Math.max(1, Math.ceil(size / 65536)) + TRAILER);
      expect(JSON.stringify(raw.customMetadata)).not.toContain(expected);
    }
  });

  it("a header checksum is kept the same way (SHA256), and a wrong one is BadDigest with nothing stored", async () => {
    const payload = pseudoRandom(70_000, 5);
    const value = await oracle("SHA256", payload);
    const put = await send("adminA", { method: "PUT", bucket, key: "hdr", body: payload, headers: { "x-amz-checksum-sha256": value } });
    expect(put.status).toBe(200);
    const head = await send("adminA", { method: "HEAD", bucket, key: "hdr", headers: MODE });
    expect(checksumHeaders(head)).toEqual([["x-amz-checksum-sha256", value], ["x-amz-checksum-type", "FULL_OBJECT"]]);
    await expectError(send("adminA", { method: "PUT", bucket, key: "hdr-bad", body: payload, headers: { "x-amz-checksum-sha256": await oracle("SHA256", payload.subarray(1)) } }), 400, "BadDigest");
    expect((await send("adminA", { method: "HEAD", bucket, key: "hdr-bad" })).status).toBe(404);
  });

  it("CopyObject keeps the source's checksum; x-amz-checksum-algorithm recomputes it with that algorithm", async () => {
    const payload = pseudoRandom(100_000, 9);
    expect((await putWithTrailer("copy-src", payload, "CRC32C")).status).toBe(200);
    const kept = await send("adminA", { method: "PUT", bucket, key: "copy-kept", headers: { "x-amz-copy-source": `/${bucket}/copy-src` } });
    expect(kept.status).toBe(200);
    await kept.arrayBuffer();
    const head = await send("adminA", { method: "HEAD", bucket, key: "copy-kept", headers: MODE });
    expect(head.headers.get("x-amz-checksum-crc32c")).toBe(await oracle("CRC32C", payload));
    const changed = await send("adminA", { method: "PUT", bucket, key: "copy-sha1", headers: { "x-amz-copy-source": `/${bucket}/copy-src`, "x-amz-checksum-algorithm": "SHA1" } });
    const text = await changed.text();
    expect(changed.status, text).toBe(200);
    const sha1 = await oracle("SHA1", payload);
    expect(xmlValue(text, "ChecksumSHA1")).toBe(sha1);
    expect(xmlValue(text, "ChecksumType")).toBe("FULL_OBJECT");
    const head2 = await send("adminA", { method: "HEAD", bucket, key: "copy-sha1", headers: MODE });
    expect(checksumHeaders(head2)).toEqual([["x-amz-checksum-sha1", sha1], ["x-amz-checksum-type", "FULL_OBJECT"]]);
    const body = await send("adminA", { method: "GET", bucket, key: "copy-sha1" });
    expect(sameBytes(new Uint8Array(await body.arrayBuffer()), payload)).toBe(true);
  });

  it("a corrupted trailer record is refused with checksum mode (HEAD, GET) and on a full GET", async () => {
    const payload = pseudoRandom(10_000, 11);
    expect((await send("adminA", { method: "PUT", bucket, key: "rec", body: payload })).status).toBe(200);
    const raw = (await rawGet(bucket, "rec"))!;
    const body = raw.body.slice();
    body[body.byteLength - TRAILER + 5]! ^= 0x10; // a byte of the sealed checksum value
    await rawPut(bucket, "rec", { ...raw, body });
    expect((await send("adminA", { method: "HEAD", bucket, key: "rec", headers: MODE })).status).toBe(500);
    await expectError(send("adminA", { method: "GET", bucket, key: "rec", headers: MODE }), 500, "InternalError");
    // A small object is read whole and checked before the answer: refused with a 500, not an aborted 200.
    await expectError(send("adminA", { method: "GET", bucket, key: "rec" }), 500, "InternalError");
    // Without checksum mode a HEAD or a range does not read the record.
    expect((await send("adminA", { method: "HEAD", bucket, key: "rec" })).status).toBe(200);
    const ranged = await send("adminA", { method: "GET", bucket, key: "rec", headers: { range: "bytes=0-9" } });
    expect(ranged.status).toBe(206);
    expect(sameBytes(new Uint8Array(await ranged.arrayBuffer()), payload.subarray(0, 10))).toBe(true);
  });
});

describe("multipart objects", () => {
  const parts = () => [pseudoRandom(5 * MiB, 21), pseudoRandom(1234, 22)];

  async function upload(key: string, createHeaders: Record<string, string>, partHeaders: (body: Uint8Array) => Promise<Record<string, string>>, extra: (i: number, body: Uint8Array) => Promise<string> = async () => "") {
    const uploadId = await createUpload("adminA", bucket, key, createHeaders);
    const list = parts();
    const etags: string[] = [];
    for (const [i, body] of list.entries()) etags.push(await uploadPart("adminA", bucket, key, uploadId, i + 1, body, await partHeaders(body)));
    const items = await Promise.all(list.map(async (body, i) => ({ partNumber: i + 1, etag: etags[i]!, extra: await extra(i, body) })));
    const r = await completeRequest("adminA", bucket, key, uploadId, items);
    return { uploadId, list, response: r, text: await r.text() };
  }

  it("COMPOSITE CRC32: the checksum of the part checksums, -N; listed part checksums are checked", { timeout: 30_000 }, async () => {
    const done = await upload("mp-composite", { "x-amz-checksum-algorithm": "CRC32" }, async (b) => ({ "x-amz-checksum-crc32": crc32Base64(b) }), async (_i, b) => `<ChecksumCRC32>${crc32Base64(b)}</ChecksumCRC32>`);
    expect(done.response.status, done.text).toBe(200);
    const expected = `${crc32Base64(concatBytes(done.list.map((b) => unb64(crc32Base64(b)))))}-2`;
    expect(xmlValue(done.text, "ChecksumCRC32")).toBe(expected);
    expect(xmlValue(done.text, "ChecksumType")).toBe("COMPOSITE");
    const head = await send("adminA", { method: "HEAD", bucket, key: "mp-composite", headers: MODE });
    expect(checksumHeaders(head)).toEqual([["x-amz-checksum-crc32", expected], ["x-amz-checksum-type", "COMPOSITE"]]);
    const range = await send("adminA", { method: "GET", bucket, key: "mp-composite", headers: { ...MODE, range: "bytes=0-9" } });
    expect(checksumHeaders(range)).toEqual([]);
    await range.arrayBuffer();
  });

  it("a listed part checksum that is not the part's is InvalidPart", { timeout: 30_000 }, async () => {
    const done = await upload("mp-wrong", { "x-amz-checksum-algorithm": "CRC32" }, async () => ({}), async (i, b) => `<ChecksumCRC32>${crc32Base64(i === 1 ? b.subarray(1) : b)}</ChecksumCRC32>`);
    expect(done.response.status).toBe(400);
    expect(xmlValue(done.text, "Code")).toBe("InvalidPart");
  });

  it("FULL_OBJECT CRC32C: the CRC32C of the whole object; ListParts lists each part's", { timeout: 30_000 }, async () => {
    const key = "mp-full";
    const uploadId = await createUpload("adminA", bucket, key, { "x-amz-checksum-algorithm": "CRC32C", "x-amz-checksum-type": "FULL_OBJECT" });
    const list = parts();
    const etags: string[] = [];
    for (const [i, body] of list.entries()) etags.push(await uploadPart("adminA", bucket, key, uploadId, i + 1, body));
    const listed = await send("adminA", { method: "GET", bucket, key, query: { uploadId } });
    const listText = await listed.text();
    const blocks = xmlBlocks(listText, "Part");
    expect(blocks.map((b) => xmlValue(b, "ChecksumCRC32C"))).toEqual(await Promise.all(list.map((b) => oracle("CRC32C", b))));
    expect(xmlValue(listText, "ChecksumType")).toBe("FULL_OBJECT");
    const whole = await oracle("CRC32C", concatBytes(list));
    const r = await completeRequest("adminA", bucket, key, uploadId, etags.map((etag, i) => ({ partNumber: i + 1, etag })), { headers: { "x-amz-checksum-crc32c": whole } });
    const text = await r.text();
    expect(r.status, text).toBe(200);
    expect(xmlValue(text, "ChecksumCRC32C")).toBe(whole);
    expect(xmlValue(text, "ChecksumType")).toBe("FULL_OBJECT");
    const get = await send("adminA", { method: "GET", bucket, key, headers: MODE });
    expect(checksumHeaders(get)).toEqual([["x-amz-checksum-crc32c", whole], ["x-amz-checksum-type", "FULL_OBJECT"]]);
    await get.arrayBuffer();
  });

  it("without an upload algorithm, UploadPart and UploadPartCopy answer the part's CRC64NVME (S3's default protection)", { timeout: 30_000 }, async () => {
    const key = "mp-part-crc";
    const uploadId = await createUpload("adminA", bucket, key);
    const body = pseudoRandom(5 * MiB, 23);
    const part = await send("adminA", { method: "PUT", bucket, key, query: { uploadId, partNumber: "1" }, body });
    expect(part.status).toBe(200);
    expect(checksumHeaders(part)).toEqual([["x-amz-checksum-crc64nvme", await oracle("CRC64NVME", body)]]);
    const source = pseudoRandom(4000, 24);
    expect((await send("adminA", { method: "PUT", bucket, key: "mp-part-crc-src", body: source })).status).toBe(200);
    const copy = await send("adminA", { method: "PUT", bucket, key, query: { uploadId, partNumber: "2" }, headers: { "x-amz-copy-source": `/${bucket}/mp-part-crc-src`, "x-amz-copy-source-range": "bytes=10-1009" } });
    const text = await copy.text();
    expect(copy.status, text).toBe(200);
    expect(xmlValue(text, "ChecksumCRC64NVME")).toBe(await oracle("CRC64NVME", source.subarray(10, 1010)));
    await send("adminA", { method: "DELETE", bucket, key, query: { uploadId } });
  });

  it("an upload created without an algorithm gets a full-object CRC64NVME, as S3", { timeout: 30_000 }, async () => {
    const done = await upload("mp-default", {}, async () => ({}));
    expect(done.response.status, done.text).toBe(200);
    const whole = await oracle("CRC64NVME", concatBytes(done.list));
    expect(xmlValue(done.text, "ChecksumCRC64NVME")).toBe(whole);
    expect(xmlValue(done.text, "ChecksumType")).toBe("FULL_OBJECT");
    const head = await send("adminA", { method: "HEAD", bucket, key: "mp-default", headers: MODE });
    expect(checksumHeaders(head)).toEqual([["x-amz-checksum-crc64nvme", whole], ["x-amz-checksum-type", "FULL_OBJECT"]]);

    const attrs = await send("adminA", { method: "GET", bucket, key: "mp-default", query: { attributes: "" }, headers: { "x-amz-object-attributes": "ETag,Checksum,ObjectParts,StorageClass,ObjectSize" } });
    const xml = await attrs.text();
    expect(attrs.status, xml).toBe(200);
    expect(xml).toContain("<GetObjectAttributesResponse");
    expect(xmlValue(xml, "ETag")).toBe(xmlValue(done.text, "ETag")!.replace(/"/g, ""));
    expect(xmlValue(xml, "ChecksumCRC64NVME")).toBe(whole);
    expect(xmlValue(xml, "ChecksumType")).toBe("FULL_OBJECT");
    expect(xmlValue(xml, "PartsCount")).toBe("2");
    // No additional checksum was applied: S3 lists no Part elements, only the count.
    expect(xml).not.toContain("<Part>");
    expect(xmlValue(xml, "StorageClass")).toBe("STANDARD");
    expect(xmlValue(xml, "ObjectSize")).toBe(String(5 * MiB + 1234));
  });

  it("GetObjectAttributes lists the parts of an upload made with a checksum algorithm: number, size, checksum; paged by x-amz-max-parts and x-amz-part-number-marker", { timeout: 30_000 }, async () => {
    const key = "mp-attr-parts";
    const bodies = [pseudoRandom(5 * MiB, 61), pseudoRandom(5 * MiB, 62), pseudoRandom(777, 63)];
    const uploadId = await createUpload("adminA", bucket, key, { "x-amz-checksum-algorithm": "SHA256" });
    const etags: string[] = [];
    // Part numbers need not be consecutive: 2, 5, 9.
    const numbers = [2, 5, 9];
    for (const [i, body] of bodies.entries()) etags.push(await uploadPart("adminA", bucket, key, uploadId, numbers[i]!, body, { "x-amz-checksum-sha256": await oracle("SHA256", body) }));
    const done = await completeRequest("adminA", bucket, key, uploadId, etags.map((etag, i) => ({ partNumber: numbers[i]!, etag })));
    expect(done.status, await done.clone().text()).toBe(200);
    const expected = await Promise.all(bodies.map(async (b, i) => [String(numbers[i]), String(b.byteLength), await oracle("SHA256", b)]));
    const attrs = async (extra: Record<string, string> = {}) => {
      const r = await send("adminA", { method: "GET", bucket, key, query: { attributes: "" }, headers: { "x-amz-object-attributes": "ObjectParts", ...extra } });
      const xml = await r.text();
      expect(r.status, xml).toBe(200);
      return { xml, parts: xmlBlocks(xml, "Part").map((b) => [xmlValue(b, "PartNumber"), xmlValue(b, "Size"), xmlValue(b, "ChecksumSHA256")]) };
    };
    const all = await attrs();
    expect(all.parts).toEqual(expected);
    expect(all.xml).toContain(
      `<ObjectParts><IsTruncated>false</IsTruncated><MaxParts>1000</MaxParts><NextPartNumberMarker>9</NextPartNumberMarker><PartNumberMarker>0</PartNumberMarker><Part><ChecksumSHA256>${expected[0]![2]}</ChecksumSHA256><PartNumber>2</PartNumber><Size>${5 * MiB}</Size></Part>`,
    );
    expect(xmlValue(all.xml, "PartsCount")).toBe("3");
    const first = await attrs({ "x-amz-max-parts": "1" });
    expect(first.parts).toEqual(expected.slice(0, 1));
    expect([xmlValue(first.xml, "IsTruncated"), xmlValue(first.xml, "NextPartNumberMarker"), xmlValue(first.xml, "PartsCount")]).toEqual(["true", "2", "3"]);
    const rest = await attrs({ "x-amz-max-parts": "5", "x-amz-part-number-marker": "2" });
    expect(rest.parts).toEqual(expected.slice(1));
    expect([xmlValue(rest.xml, "IsTruncated"), xmlValue(rest.xml, "NextPartNumberMarker"), xmlValue(rest.xml, "PartNumberMarker")]).toEqual(["false", "9", "2"]);
    const past = await attrs({ "x-amz-part-number-marker": "9" });
    expect(past.parts).toEqual([]);
    expect(xmlValue(past.xml, "NextPartNumberMarker")).toBeNull();
    // Sealed in the manifest: no part checksum is in R2 in the clear.
    const manifest = new TextDecoder().decode(await (await env.OBJECTS.get(`${bucket}/${key}`))!.arrayBuffer());
    for (const [, , sum] of expected) expect(manifest).not.toContain(sum!);
  });

  it("a manifest whose sealed part checksums were swapped for another object's is refused", { timeout: 30_000 }, async () => {
    const make = async (key: string, seed: number) => {
      const body = pseudoRandom(1000, seed);
      const uploadId = await createUpload("adminA", bucket, key, { "x-amz-checksum-algorithm": "CRC32" });
      const etag = await uploadPart("adminA", bucket, key, uploadId, 1, body, { "x-amz-checksum-crc32": crc32Base64(body) });
      expect((await completeRequest("adminA", bucket, key, uploadId, [{ partNumber: 1, etag }])).status).toBe(200);
    };
    await make("mp-swap-a", 71);
    await make("mp-swap-b", 72);
    const read = async (key: string) => {
      const o = (await env.OBJECTS.get(`${bucket}/${key}`))!;
      return { text: new TextDecoder().decode(await o.arrayBuffer()), meta: o.customMetadata! };
    };
    const a = await read("mp-swap-a");
    const b = await read("mp-swap-b");
    const swapped = a.text.replace(/"c":"[^"]*"/, JSON.parse(b.text).c ? `"c":"${(JSON.parse(b.text) as { c: string }).c}"` : "");
    expect(swapped).not.toBe(a.text);
    await env.OBJECTS.put(`${bucket}/mp-swap-a`, swapped, { customMetadata: a.meta });
    const r = await send("adminA", { method: "GET", bucket, key: "mp-swap-a", query: { attributes: "" }, headers: { "x-amz-object-attributes": "ObjectParts" } });
    const text = await r.text();
    expect(r.status, text).toBe(500);
    expect(xmlValue(text, "Code")).toBe("InternalError");
    expect(text).not.toContain("ChecksumCRC32");
  });
});

describe("GetObjectAttributes", () => {
  it("answers exactly the attributes asked for, as AWS's XML", async () => {
    const payload = pseudoRandom(3000, 31);
    const md5 = b64(new Uint8Array(await crypto.subtle.digest("MD5", payload)));
    expect((await send("adminA", { method: "PUT", bucket, key: "attrs", body: payload, headers: { "content-md5": md5 } })).status).toBe(200);
    const r = await send("adminA", { method: "GET", bucket, key: "attrs", query: { attributes: "" }, headers: { "x-amz-object-attributes": "ObjectSize,ETag,Checksum" } });
    const xml = await r.text();
    expect(r.status).toBe(200);
    expect(r.headers.get("last-modified")).toBeTruthy();
    const etag = Array.from(unb64(md5), (b) => b.toString(16).padStart(2, "0")).join("");
    const crc = await oracle("CRC64NVME", payload);
    expect(xml).toBe(
      `<?xml version="1.0" encoding="UTF-8"?>\n<GetObjectAttributesResponse xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><ETag>${etag}</ETag><Checksum><ChecksumCRC64NVME>${crc}</ChecksumCRC64NVME><ChecksumType>FULL_OBJECT</ChecksumType></Checksum><ObjectSize>3000</ObjectSize></GetObjectAttributesResponse>`,
    );
    // A single-part object has no ObjectParts.
    const parts = await send("adminA", { method: "GET", bucket, key: "attrs", query: { attributes: "" }, headers: { "x-amz-object-attributes": "ObjectParts" } });
    expect(await parts.text()).not.toContain("ObjectParts");
    await expectError(send("adminA", { method: "GET", bucket, key: "attrs", query: { attributes: "" }, headers: { "x-amz-object-attributes": "Size" } }), 400, "InvalidArgument");
    await expectError(send("adminA", { method: "GET", bucket, key: "attrs", query: { attributes: "" } }), 400, "InvalidArgument");
    await expectError(send("adminA", { method: "GET", bucket, key: "nope", query: { attributes: "" }, headers: { "x-amz-object-attributes": "ETag" } }), 404, "NoSuchKey");
  });
});

describe("who may read a checksum", () => {
  it("GetObjectAttributes follows the SSE-KMS read rules: a member reads an SSE-S3 object's, not an SSE-KMS object's; another tenant neither", async () => {
    const attrs = (who: "adminA" | "memberA" | "adminB", key: string) =>
      send(who, { method: "GET", bucket, key, query: { attributes: "" }, headers: { "x-amz-object-attributes": "Checksum,ObjectSize" } });
    expect((await send("adminA", { method: "PUT", bucket, key: "kms-attrs", body: "secret", headers: { "x-amz-server-side-encryption": "aws:kms" } })).status).toBe(200);
    expect((await send("adminA", { method: "PUT", bucket, key: "s3-attrs", body: "plain", headers: { "x-amz-server-side-encryption": "AES256" } })).status).toBe(200);
    expect((await attrs("adminA", "kms-attrs")).status).toBe(200);
    await expectError(attrs("memberA", "kms-attrs"), 403, "AccessDenied");
    expect((await send("memberA", { method: "HEAD", bucket, key: "kms-attrs", headers: MODE })).status).toBe(403);
    const member = await attrs("memberA", "s3-attrs");
    expect(member.status).toBe(200);
    expect(xmlValue(await member.text(), "ChecksumCRC64NVME")).toBe(await oracle("CRC64NVME", new TextEncoder().encode("plain")));
    await expectError(attrs("adminB", "s3-attrs"), 403, "AccessDenied");
  });
});

describe("cost", () => {
  it("GET/HEAD, with or without checksum mode, make no D1 query when warm", async () => {
    let queries = 0;
    const real = env.DB;
    const db = new Proxy(real, {
      get(target, prop) {
        if (prop === "prepare") {
          queries++;
          return (sql: string) => target.prepare(sql);
        }
        if (prop === "batch") return (stmts: D1PreparedStatement[]) => ((queries += stmts.length), target.batch(stmts));
        const value = Reflect.get(target, prop) as unknown;
        return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    // Cached rows live KEY_CACHE_TTL_SECONDS (5 s by default): on a loaded machine the warm-up
    // and the measured request can be further apart than that, so "warm" is made explicit.
    const warmEnv = { DB: db, KEY_CACHE_TTL_SECONDS: "300" };
    expect((await send("adminA", { method: "PUT", bucket, key: "cost", body: pseudoRandom(1000, 41) })).status).toBe(200);
    for (const method of ["GET", "HEAD"] as const) {
      for (const headers of [{}, MODE]) {
        await (await send("adminA", { method, bucket, key: "cost", headers, env: warmEnv })).arrayBuffer(); // warm
        const before = queries;
        const r = await send("adminA", { method, bucket, key: "cost", headers, env: warmEnv });
        await r.arrayBuffer();
        expect(r.status).toBe(200);
        expect(queries - before, `${method} ${JSON.stringify(headers)}`).toBe(0);
      }
    }
  });
});

describe("listings", () => {
  it("ListObjectsV2, ListObjects and ListObjectVersions name each object's ChecksumAlgorithm and ChecksumType (never its value)", { timeout: 30_000 }, async () => {
    const listed = uniqueBucket("checksum-list");
    await createBucket("adminA", listed);
    const small = pseudoRandom(3000, 51);
    expect((await send("adminA", { method: "PUT", bucket: listed, key: "a-none", body: small })).status).toBe(200);
    const sha = await oracle("SHA256", small);
    expect((await send("adminA", { method: "PUT", bucket: listed, key: "b-sha256", body: small, headers: { "x-amz-checksum-sha256": sha } })).status).toBe(200);
    const copied = await send("adminA", { method: "PUT", bucket: listed, key: "c-copy", headers: { "x-amz-copy-source": `/${listed}/b-sha256` } });
    expect(copied.status, await copied.text()).toBe(200);
    const uploadId = await createUpload("adminA", listed, "d-composite", { "x-amz-checksum-algorithm": "CRC32" });
    const part = pseudoRandom(5 * MiB, 52);
    const etag = await uploadPart("adminA", listed, "d-composite", uploadId, 1, part, { "x-amz-checksum-crc32": crc32Base64(part) });
    expect((await completeRequest("adminA", listed, "d-composite", uploadId, [{ partNumber: 1, etag }])).status).toBe(200);
    const expected = [
      ["a-none", "CRC64NVME", "FULL_OBJECT"],
      ["b-sha256", "SHA256", "FULL_OBJECT"],
      ["c-copy", "SHA256", "FULL_OBJECT"],
      ["d-composite", "CRC32", "COMPOSITE"],
    ];
    for (const [query, block] of [[{ "list-type": "2" }, "Contents"], [{}, "Contents"], [{ versions: "" }, "Version"]] as const) {
      const r = await send("adminA", { method: "GET", bucket: listed, query });
      const text = await r.text();
      expect(r.status, text).toBe(200);
      const rows = xmlBlocks(text, block).map((b) => [xmlValue(b, "Key"), xmlValue(b, "ChecksumAlgorithm"), xmlValue(b, "ChecksumType")]);
      expect(rows, JSON.stringify(query)).toEqual(expected);
      // S3's order: ETag, then the checksum elements, then Size.
      expect(xmlBlocks(text, block)[0]).toMatch(/<\/ETag><ChecksumAlgorithm>CRC64NVME<\/ChecksumAlgorithm><ChecksumType>FULL_OBJECT<\/ChecksumType><Size>/);
      expect(text).not.toContain(sha);
    }
  });
});
