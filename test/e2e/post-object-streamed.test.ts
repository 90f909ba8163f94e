/**
 * POST Object over a real socket (issue 18): forms from @aws-sdk/s3-presigned-post sent by
 * Node's fetch(FormData) (undici: Content-Length known, the streamed path) and by a raw
 * HTTP client — with a field after the file (S3 ignores it; the gateway's length
 * prediction is wrong and the last part is read back) and chunked (no Content-Length: the
 * buffered path). Every way stores exactly the file, with the same ETag and checksum.
 */
import { CreateBucketCommand, GetObjectCommand, HeadObjectCommand } from "@aws-sdk/client-s3";
import { createPresignedPost } from "@aws-sdk/s3-presigned-post";
import { createHash, randomBytes } from "node:crypto";
import http from "node:http";
import { beforeAll, describe, expect, it } from "vitest";
import { endpoint, s3, uniqueBucket } from "./support/clients";

const client = s3("adminA");
const bucket = uniqueBucket("post-streamed");
const MiB = 1024 * 1024;
const PART = 8 * MiB;
const file = randomBytes(20 * MiB + 12_345);

const md5 = (data: Uint8Array) => createHash("md5").update(data).digest();
/** The ETag of the file as 8 MiB parts (the gateway's layout for POSTs over 8 MiB). */
function partsEtag(data: Uint8Array): string {
  const digests: Buffer[] = [];
  for (let at = 0; at < data.byteLength; at += PART) digests.push(md5(data.subarray(at, at + PART)));
  return `"${md5(Buffer.concat(digests)).toString("hex")}-${digests.length}"`;
}

async function presigned(key: string) {
  return createPresignedPost(client, { Bucket: bucket, Key: key, Fields: { "x-amz-server-side-encryption": "aws:kms" }, Conditions: [["content-length-range", 0, 100 * MiB]], Expires: 600 });
}

/** A form sent by hand: the fields, the file, `after` (more parts), the closing delimiter. */
function rawPost(url: string, fields: Record<string, string>, after: string, chunked: boolean): Promise<{ status: number; etag: string | undefined; body: string }> {
  const boundary = "----RawBoundary" + randomBytes(8).toString("hex");
  let head = "";
  for (const [name, value] of Object.entries(fields)) head += `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`;
  head += `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="f.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`;
  const tail = `\r\n${after ? `--${boundary}\r\nContent-Disposition: form-data; name="after"\r\n\r\n${after}\r\n` : ""}--${boundary}--\r\n`;
  const body = Buffer.concat([Buffer.from(head), file, Buffer.from(tail)]);
  return new Promise((resolve, reject) => {
    const headers = { "content-type": `multipart/form-data; boundary=${boundary}`, ...(chunked ? { "transfer-encoding": "chunked" } : { "content-length": String(body.byteLength) }) };
    const req = http.request(url, { method: "POST", headers }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d) => (text += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, etag: res.headers.etag, body: text }));
    });
    req.on("error", reject);
    for (let at = 0; at < body.byteLength; at += MiB) req.write(body.subarray(at, at + MiB));
    req.end();
  });
}

async function expectStored(key: string): Promise<void> {
  const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const bytes = await got.Body!.transformToByteArray();
  expect(bytes.byteLength).toBe(file.byteLength);
  expect(createHash("sha256").update(bytes).digest("hex")).toBe(createHash("sha256").update(file).digest("hex"));
  const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key, ChecksumMode: "ENABLED" }));
  expect(head.ETag).toBe(partsEtag(file));
  expect(head.ServerSideEncryption).toBe("aws:kms");
  expect(head.ChecksumType).toBe("FULL_OBJECT");
}

beforeAll(async () => {
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
});

describe("POST Object files over 8 MiB on a real socket", () => {
  it("fetch(FormData) (Content-Length known: streamed), a field after the file, and chunked: the same object", { timeout: 120_000 }, async () => {
    const viaFetch = await presigned("fetch");
    const data = new FormData();
    for (const [name, value] of Object.entries(viaFetch.fields)) data.append(name, value);
    data.append("file", new Blob([file]), "f.bin");
    const r = await fetch(viaFetch.url, { method: "POST", body: data });
    expect(r.status, await r.clone().text()).toBe(204);
    expect(r.headers.get("etag")).toBe(partsEtag(file));

    const after = await presigned("after");
    const withField = await rawPost(`${endpoint()}/${bucket}`, after.fields, "x".repeat(10_000), false);
    expect(withField.status, withField.body).toBe(204);
    expect(withField.etag).toBe(partsEtag(file));

    const chunked = await presigned("chunked");
    const buffered = await rawPost(`${endpoint()}/${bucket}`, chunked.fields, "", true);
    expect(buffered.status, buffered.body).toBe(204);
    expect(buffered.etag).toBe(partsEtag(file));

    for (const key of ["fetch", "after", "chunked"]) await expectStored(key);
    const checksums = await Promise.all(["fetch", "after", "chunked"].map(async (Key) => (await client.send(new HeadObjectCommand({ Bucket: bucket, Key, ChecksumMode: "ENABLED" }))).ChecksumCRC64NVME));
    expect(new Set(checksums).size).toBe(1);
    expect(checksums[0]).toBeTruthy();
  });
});
