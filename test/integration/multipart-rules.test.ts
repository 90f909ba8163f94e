import { beforeAll, describe, expect, it } from "vitest";
import { combine } from "../../src/multipart/checksum";
import { MiB, completeRequest, concat, createUpload, multipartPut, uploadPart, uploadPartRequest } from "../support/multipart";
import { pseudoRandom } from "../support/sources";
import { allowPublicPolicies, createBucket, crc32Base64, expectError, readFully, sameBytes, seedIdentities, send, uniqueBucket, xmlValue } from "../support/s3-harness";

/** Policies, tenant rules, copies and checksums around multipart uploads. */
const SSE = "x-amz-server-side-encryption";
const bucket = uniqueBucket("mpu-rules");

beforeAll(async () => {
  await seedIdentities();
  await createBucket("adminA", bucket);
});

const denyUnencrypted = (b: string) =>
  JSON.stringify({
    Version: "2012-10-17",
    Statement: [
      {
        Sid: "DenyUnencryptedObjectUploads",
        Effect: "Deny",
        Principal: "*",
        Action: "s3:PutObject",
        Resource: `arn:aws:s3:::${b}/*`,
        Condition: { StringNotEquals: { "s3:x-amz-server-side-encryption": "aws:kms" } },
      },
    ],
  });

describe("bucket policies", () => {
  it("a deny-unencrypted policy refuses plain uploads but not the parts and completion of an aws:kms upload", async () => {
    const b = uniqueBucket("mpu-policy");
    await createBucket("adminA", b);
    expect((await send("adminA", { method: "PUT", bucket: b, query: { policy: "" }, body: denyUnencrypted(b) })).status).toBe(204);
    await expectError(send("adminA", { method: "POST", bucket: b, key: "plain", query: { uploads: "" } }), 403, "AccessDenied");
    await expectError(send("adminA", { method: "POST", bucket: b, key: "plain", query: { uploads: "" }, headers: { [SSE]: "AES256" } }), 403, "AccessDenied");
    const parts = [pseudoRandom(5 * MiB, 1), pseudoRandom(10, 2)];
    const done = await multipartPut("adminA", b, "kms", parts, { [SSE]: "aws:kms" });
    expect(done.headers.get(SSE)).toBe("aws:kms");
    expect(sameBytes((await readFully(await send("adminA", { method: "GET", bucket: b, key: "kms" }))).bytes, concat(parts))).toBe(true);
  });

  it("s3:AbortMultipartUpload, s3:ListMultipartUploadParts and s3:ListBucketMultipartUploads are the actions evaluated", async () => {
    const b = uniqueBucket("mpu-actions");
    await createBucket("adminA", b);
    const id = await createUpload("adminA", b, "k");
    const deny = (action: string, resource: string) =>
      JSON.stringify({ Version: "2012-10-17", Statement: [{ Effect: "Deny", Principal: "*", Action: action, Resource: resource }] });
    const setPolicy = async (p: string) => expect((await send("adminA", { method: "PUT", bucket: b, query: { policy: "" }, body: p })).status).toBe(204);
    await setPolicy(deny("s3:ListBucketMultipartUploads", `arn:aws:s3:::${b}`));
    await expectError(send("adminA", { method: "GET", bucket: b, query: { uploads: "" } }), 403, "AccessDenied");
    await setPolicy(deny("s3:ListMultipartUploadParts", `arn:aws:s3:::${b}/*`));
    await expectError(send("adminA", { method: "GET", bucket: b, key: "k", query: { uploadId: id } }), 403, "AccessDenied");
    await setPolicy(deny("s3:AbortMultipartUpload", `arn:aws:s3:::${b}/*`));
    await expectError(send("adminA", { method: "DELETE", bucket: b, key: "k", query: { uploadId: id } }), 403, "AccessDenied");
    await setPolicy(deny("s3:PutObject", `arn:aws:s3:::${b}/*`));
    await expectError(uploadPartRequest("adminA", b, "k", id, 1, pseudoRandom(10, 1)), 403, "AccessDenied");
    await expectError(completeRequest("adminA", b, "k", id, [{ partNumber: 1, etag: '"x"' }]), 403, "AccessDenied");
    // Unknown upload ids are AccessDenied too when the action is denied (existence is not revealed).
    await expectError(uploadPartRequest("adminA", b, "k", "0000000000AAAAAAAAAAAAAAAAAAAAAAAA", 1, pseudoRandom(10, 1)), 403, "AccessDenied");
  });
});

describe("tenant rules", () => {
  it("only tenant_admin may create an SSE-KMS upload; members can use the bucket default", async () => {
    await expectError(send("memberA", { method: "POST", bucket, key: "m", query: { uploads: "" }, headers: { [SSE]: "aws:kms" } }), 403, "AccessDenied");
    const id = await createUpload("memberA", bucket, "m");
    expect((await uploadPartRequest("memberA", bucket, "m", id, 1, pseudoRandom(10, 1))).status).toBe(200);
  });

  it("another tenant cannot touch an upload in this bucket", async () => {
    const id = await createUpload("adminA", bucket, "private", { [SSE]: "aws:kms" });
    await expectError(uploadPartRequest("adminB", bucket, "private", id, 1, pseudoRandom(10, 1)), 403, "AccessDenied");
    await expectError(send("adminB", { method: "GET", bucket, key: "private", query: { uploadId: id } }), 403, "AccessDenied");
    await expectError(send("adminB", { method: "DELETE", bucket, key: "private", query: { uploadId: id } }), 403, "AccessDenied");
  });
});

describe("copies", () => {
  it("UploadPartCopy from an SSE-KMS source, whole and by x-amz-copy-source-range", async () => {
    const src = pseudoRandom(6 * MiB + 5, 41);
    expect((await send("adminA", { method: "PUT", bucket, key: "copy-src", body: src, headers: { [SSE]: "aws:kms" } })).status).toBe(200);
    const id = await createUpload("adminA", bucket, "copied", { [SSE]: "aws:kms" });
    const whole = await send("adminA", { method: "PUT", bucket, key: "copied", query: { partNumber: "1", uploadId: id }, headers: { "x-amz-copy-source": `/${bucket}/copy-src` } });
    const text = await whole.text();
    expect(whole.status, text).toBe(200);
    expect(whole.headers.get(SSE)).toBe("aws:kms");
    const e1 = xmlValue(text, "ETag")!;
    expect(xmlValue(text, "LastModified")).toMatch(/^\d{4}-/);
    const ranged = await send("adminA", {
      method: "PUT",
      bucket,
      key: "copied",
      query: { partNumber: "2", uploadId: id },
      headers: { "x-amz-copy-source": `${bucket}/copy-src`, "x-amz-copy-source-range": "bytes=65530-200000" },
    });
    const e2 = xmlValue(await ranged.text(), "ETag")!;
    expect((await completeRequest("adminA", bucket, "copied", id, [{ partNumber: 1, etag: e1 }, { partNumber: 2, etag: e2 }])).status).toBe(200);
    const got = await readFully(await send("adminA", { method: "GET", bucket, key: "copied" }));
    expect(sameBytes(got.bytes, concat([src, src.subarray(65530, 200001)]))).toBe(true);
  });

  it("UploadPartCopy from a multipart source across its part boundary, and its errors", async () => {
    const parts = [pseudoRandom(5 * MiB, 51), pseudoRandom(300_000, 52)];
    await multipartPut("adminA", bucket, "mp-src", parts);
    const whole = concat(parts);
    const id = await createUpload("adminA", bucket, "from-mp");
    const range = `bytes=${5 * MiB - 1000}-${5 * MiB + 1000}`;
    const r = await send("adminA", { method: "PUT", bucket, key: "from-mp", query: { partNumber: "1", uploadId: id }, headers: { "x-amz-copy-source": `${bucket}/mp-src`, "x-amz-copy-source-range": range } });
    const etag = xmlValue(await r.text(), "ETag")!;
    expect((await completeRequest("adminA", bucket, "from-mp", id, [{ partNumber: 1, etag }])).status).toBe(200);
    const got = await readFully(await send("adminA", { method: "GET", bucket, key: "from-mp" }));
    expect(sameBytes(got.bytes, whole.subarray(5 * MiB - 1000, 5 * MiB + 1001))).toBe(true);

    const copy = (headers: Record<string, string>) => send("adminA", { method: "PUT", bucket, key: "from-mp", query: { partNumber: "2", uploadId: id }, headers });
    const id2 = await createUpload("adminA", bucket, "from-mp");
    const copy2 = (headers: Record<string, string>) => send("adminA", { method: "PUT", bucket, key: "from-mp", query: { partNumber: "1", uploadId: id2 }, headers });
    await expectError(copy({ "x-amz-copy-source": `${bucket}/mp-src` }), 404, "NoSuchUpload"); // id was completed
    // A range outside the source is 416 InvalidRange, as AWS (it was 400 InvalidArgument here).
    await expectError(copy2({ "x-amz-copy-source": `${bucket}/mp-src`, "x-amz-copy-source-range": `bytes=0-${whole.byteLength}` }), 416, "InvalidRange");
    await expectError(copy2({ "x-amz-copy-source": `${bucket}/mp-src`, "x-amz-copy-source-range": `bytes=${whole.byteLength}-${whole.byteLength + 10}` }), 416, "InvalidRange");
    await expectError(copy2({ "x-amz-copy-source": `${bucket}/mp-src`, "x-amz-copy-source-range": "bytes=10-" }), 400, "InvalidArgument");
    await expectError(copy2({ "x-amz-copy-source": `${bucket}/missing` }), 404, "NoSuchKey");
    await expectError(copy2({ "x-amz-copy-source": `${bucket}/mp-src`, "x-amz-copy-source-if-match": '"nope"' }), 412, "PreconditionFailed");
  });

  it("UploadPartCopy from an SSE-KMS object of another tenant is refused", async () => {
    const other = uniqueBucket("mpu-b");
    await createBucket("adminB", other);
    await allowPublicPolicies("adminB", other);
    const policy = JSON.stringify({ Version: "2012-10-17", Statement: [{ Effect: "Allow", Principal: "*", Action: "s3:GetObject", Resource: `arn:aws:s3:::${other}/*` }] });
    expect((await send("adminB", { method: "PUT", bucket: other, query: { policy: "" }, body: policy })).status).toBe(204);
    expect((await send("adminB", { method: "PUT", bucket: other, key: "kms", body: "secret", headers: { [SSE]: "aws:kms" } })).status).toBe(200);
    expect((await send("adminB", { method: "PUT", bucket: other, key: "plain", body: "public" })).status).toBe(200);
    const id = await createUpload("adminA", bucket, "cross");
    await expectError(send("adminA", { method: "PUT", bucket, key: "cross", query: { partNumber: "1", uploadId: id }, headers: { "x-amz-copy-source": `${other}/kms` } }), 403, "AccessDenied");
    const ok = await send("adminA", { method: "PUT", bucket, key: "cross", query: { partNumber: "1", uploadId: id }, headers: { "x-amz-copy-source": `${other}/plain` } });
    expect(ok.status).toBe(200);
  });

  it("CopyObject of a multipart object re-encrypts it into its own single stream", async () => {
    const parts = [pseudoRandom(5 * MiB, 61), pseudoRandom(1234, 62)];
    const src = await multipartPut("adminA", bucket, "mp-copy-src", parts, { "x-amz-meta-k": "v" });
    const r = await send("adminA", { method: "PUT", bucket, key: "mp-copy-dst", headers: { "x-amz-copy-source": `${bucket}/mp-copy-src`, [SSE]: "aws:kms" } });
    expect(r.status, await r.clone().text()).toBe(200);
    expect(r.headers.get(SSE)).toBe("aws:kms");
    // The source goes away with its parts; the copy shares nothing with it.
    expect((await send("adminA", { method: "DELETE", bucket, key: "mp-copy-src" })).status).toBe(204);
    const got = await send("adminA", { method: "GET", bucket, key: "mp-copy-dst" });
    expect(got.headers.get("etag")).toBe(src.etag);
    expect(got.headers.get("x-amz-meta-k")).toBe("v");
    expect(sameBytes((await readFully(got)).bytes, concat(parts))).toBe(true);
    const range = await send("adminA", { method: "GET", bucket, key: "mp-copy-dst", headers: { range: `bytes=${5 * MiB - 2}-${5 * MiB + 2}` } });
    expect(sameBytes((await readFully(range)).bytes, concat(parts).subarray(5 * MiB - 2, 5 * MiB + 3))).toBe(true);
  });
});

describe("checksums", () => {
  // Moves 10+ MiB through workerd: ~1.3 s alone, over 5 s when the shared machine is loaded.
  it("COMPOSITE CRC32: verified per part, checksum of checksums on the object", { timeout: 30_000 }, async () => {
    const parts = [pseudoRandom(5 * MiB, 71), pseudoRandom(777, 72)];
    const c = await send("adminA", { method: "POST", bucket, key: "crc", query: { uploads: "" }, headers: { "x-amz-checksum-algorithm": "CRC32" } });
    expect(c.headers.get("x-amz-checksum-algorithm")).toBe("CRC32");
    expect(c.headers.get("x-amz-checksum-type")).toBe("COMPOSITE");
    const id = xmlValue(await c.text(), "UploadId")!;
    await expectError(uploadPartRequest("adminA", bucket, "crc", id, 1, parts[0]!, { "x-amz-checksum-crc32": crc32Base64(parts[1]!) }), 400, "BadDigest");
    await expectError(uploadPartRequest("adminA", bucket, "crc", id, 1, parts[0]!, { "x-amz-checksum-sha1": "AAAAAAAAAAAAAAAAAAAAAAAAAAA=" }), 400, "InvalidRequest");
    const p1 = await uploadPartRequest("adminA", bucket, "crc", id, 1, parts[0]!, { "x-amz-checksum-crc32": crc32Base64(parts[0]!) });
    expect(p1.headers.get("x-amz-checksum-crc32")).toBe(crc32Base64(parts[0]!));
    // No checksum sent for this part: the worker computes it.
    const p2 = await uploadPartRequest("adminA", bucket, "crc", id, 2, parts[1]!);
    expect(p2.headers.get("x-amz-checksum-crc32")).toBe(crc32Base64(parts[1]!));
    const done = await completeRequest("adminA", bucket, "crc", id, [
      { partNumber: 1, etag: p1.headers.get("etag")!, extra: `<ChecksumCRC32>${crc32Base64(parts[0]!)}</ChecksumCRC32>` },
      { partNumber: 2, etag: p2.headers.get("etag")! },
    ]);
    const text = await done.text();
    expect(done.status, text).toBe(200);
    const binary = concat(parts.map((p) => Uint8Array.from(atob(crc32Base64(p)), (ch) => ch.charCodeAt(0))));
    const expected = `${crc32Base64(binary)}-2`;
    expect(xmlValue(text, "ChecksumCRC32")).toBe(expected);
    expect(xmlValue(text, "ChecksumType")).toBe("COMPOSITE");
    const head = await send("adminA", { method: "HEAD", bucket, key: "crc", headers: { "x-amz-checksum-mode": "ENABLED" } });
    expect(head.headers.get("x-amz-checksum-crc32")).toBe(expected);
  });

  // Moves 10+ MiB through workerd: ~1.3 s alone, over 5 s when the shared machine is loaded.
  it("FULL_OBJECT CRC32: the part CRCs combine into the CRC of the whole object", { timeout: 30_000 }, async () => {
    const parts = [pseudoRandom(5 * MiB, 81), pseudoRandom(5 * MiB + 3, 82), pseudoRandom(99, 83)];
    const id = await createUpload("adminA", bucket, "crc-full", { "x-amz-checksum-algorithm": "CRC32", "x-amz-checksum-type": "FULL_OBJECT" });
    const etags = [];
    for (const [i, p] of parts.entries()) etags.push(await uploadPart("adminA", bucket, "crc-full", id, i + 1, p, { "x-amz-checksum-crc32": crc32Base64(p) }));
    const full = crc32Base64(concat(parts));
    const parts3 = etags.map((etag, i) => ({ partNumber: i + 1, etag }));
    await expectError(completeRequest("adminA", bucket, "crc-full", id, parts3, { headers: { "x-amz-checksum-crc32": crc32Base64(parts[0]!) } }), 400, "BadDigest");
    const done = await completeRequest("adminA", bucket, "crc-full", id, parts3, { headers: { "x-amz-checksum-crc32": full } });
    const text = await done.text();
    expect(done.status, text).toBe(200);
    expect(xmlValue(text, "ChecksumCRC32")).toBe(full);
    expect(xmlValue(text, "ChecksumType")).toBe("FULL_OBJECT");
  });

  it("rejects checksum settings S3 rejects", async () => {
    await expectError(send("adminA", { method: "POST", bucket, key: "x", query: { uploads: "" }, headers: { "x-amz-checksum-algorithm": "MD4" } }), 400, "InvalidRequest");
    await expectError(
      send("adminA", { method: "POST", bucket, key: "x", query: { uploads: "" }, headers: { "x-amz-checksum-algorithm": "SHA256", "x-amz-checksum-type": "FULL_OBJECT" } }),
      400,
      "InvalidRequest",
    );
    await expectError(send("adminA", { method: "POST", bucket, key: "x", query: { uploads: "" }, headers: { "x-amz-checksum-type": "COMPOSITE" } }), 400, "InvalidRequest");
  });

  it("CRC combination matches direct computation for CRC32C and CRC64NVME too", async () => {
    const { CHECKSUMS } = await import("../../src/checksum");
    const a = pseudoRandom(100_003, 1);
    const b = pseudoRandom(70_001, 2);
    for (const [alg, spec] of [
      ["CRC32C", { width: 32, poly: 0x82f63b78n }],
      ["CRC64NVME", { width: 64, poly: 0x9a6c9329ac4bc9b5n }],
      ["CRC32", { width: 32, poly: 0xedb88320n }],
    ] as const) {
      const digest = async (d: Uint8Array) => {
        const h = CHECKSUMS[alg].create();
        h.update(d);
        return (await h.digest()).reduce((v, x) => (v << 8n) | BigInt(x), 0n);
      };
      expect(combine(spec, await digest(a), await digest(b), b.byteLength)).toBe(await digest(concat([a, b])));
    }
  });
});
