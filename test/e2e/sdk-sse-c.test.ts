import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetBucketEncryptionCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutBucketEncryptionCommand,
  PutObjectCommand,
  S3ServiceException,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { createHash, randomBytes } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { s3, uniqueBucket } from "./support/clients";

/**
 * Issue 14 (SSE-C) end to end with @aws-sdk/client-s3 on a real socket: SSECustomerKey on
 * PutObject/GetObject/HeadObject, copies between keys and modes, multipart (by hand and
 * with lib-storage's Upload), the bucket switch, and presigned URLs.
 */
const client = s3("adminA");
const member = s3("memberA");
const bucket = uniqueBucket("sdk-ssec");
const MiB = 1024 * 1024;
const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
// The SDK takes the raw key (32 bytes as a string or bytes) and sends it base64 with its MD5.
const KEY1 = randomBytes(32);
const KEY2 = randomBytes(32);
const sseC = (key: Uint8Array) => ({ SSECustomerAlgorithm: "AES256", SSECustomerKey: key as unknown as string });
const b64 = (b: Uint8Array) => Buffer.from(b).toString("base64");
const md5b64 = (b: Uint8Array) => createHash("md5").update(b).digest("base64");

async function bodyBytes(body: unknown): Promise<Buffer> {
  return Buffer.from(await (body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray());
}

async function failure(promise: Promise<unknown>): Promise<{ code: string; status: number | undefined }> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(S3ServiceException);
    const e = error as S3ServiceException;
    return { code: e.name, status: e.$metadata.httpStatusCode };
  }
  throw new Error("expected the call to fail");
}

beforeAll(async () => {
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
});

describe("the bucket switch", () => {
  it("a new bucket blocks SSE-C (403) until PutBucketEncryption unblocks it", async () => {
    const blocked = await client.send(new GetBucketEncryptionCommand({ Bucket: bucket }));
    expect(blocked.ServerSideEncryptionConfiguration?.Rules?.[0]?.BlockedEncryptionTypes?.EncryptionType).toEqual(["SSE-C"]);
    expect(await failure(client.send(new PutObjectCommand({ Bucket: bucket, Key: "early", Body: "x", ...sseC(KEY1) })))).toEqual({ code: "AccessDenied", status: 403 });
    await client.send(
      new PutBucketEncryptionCommand({
        Bucket: bucket,
        ServerSideEncryptionConfiguration: { Rules: [{ ApplyServerSideEncryptionByDefault: { SSEAlgorithm: "AES256" }, BlockedEncryptionTypes: { EncryptionType: ["NONE"] } }] },
      }),
    );
    const open = await client.send(new GetBucketEncryptionCommand({ Bucket: bucket }));
    expect(open.ServerSideEncryptionConfiguration?.Rules?.[0]?.BlockedEncryptionTypes).toBeUndefined();
  });
});

describe("SSECustomerKey", () => {
  const data = randomBytes(200_000);

  it("PutObject / GetObject / HeadObject with the key; ranges; the response echoes algorithm and key MD5", async () => {
    const put = await client.send(new PutObjectCommand({ Bucket: bucket, Key: "obj", Body: data, ...sseC(KEY1) }));
    expect(put.SSECustomerAlgorithm).toBe("AES256");
    expect(put.SSECustomerKeyMD5).toBe(md5b64(KEY1));
    expect(put.ServerSideEncryption).toBeUndefined();
    const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: "obj", ...sseC(KEY1) }));
    expect(sha256(await bodyBytes(got.Body))).toBe(sha256(data));
    expect(got.SSECustomerKeyMD5).toBe(md5b64(KEY1));
    const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: "obj", ...sseC(KEY1) }));
    expect(head.ContentLength).toBe(data.byteLength);
    const range = await client.send(new GetObjectCommand({ Bucket: bucket, Key: "obj", Range: "bytes=65530-131080", ...sseC(KEY1) }));
    expect(sha256(await bodyBytes(range.Body))).toBe(sha256(data.subarray(65530, 131081)));
  });

  it("without the key 400 InvalidRequest, with another 403 AccessDenied", async () => {
    expect(await failure(client.send(new GetObjectCommand({ Bucket: bucket, Key: "obj" })))).toEqual({ code: "InvalidRequest", status: 400 });
    expect(await failure(client.send(new GetObjectCommand({ Bucket: bucket, Key: "obj", ...sseC(KEY2) })))).toEqual({ code: "AccessDenied", status: 403 });
    expect((await failure(client.send(new HeadObjectCommand({ Bucket: bucket, Key: "obj", ...sseC(KEY2) })))).status).toBe(403);
  });

  it("members may use SSE-C", async () => {
    await member.send(new PutObjectCommand({ Bucket: bucket, Key: "member", Body: "m", ...sseC(KEY2) }));
    const got = await member.send(new GetObjectCommand({ Bucket: bucket, Key: "member", ...sseC(KEY2) }));
    expect((await bodyBytes(got.Body)).toString()).toBe("m");
  });

  it("CopyObject: SSE-C → SSE-C under a new key (onto itself), → SSE-KMS, and back", async () => {
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: "rotate", Body: data, ...sseC(KEY1) }));
    await client.send(
      new CopyObjectCommand({
        Bucket: bucket,
        Key: "rotate",
        CopySource: `${bucket}/rotate`,
        CopySourceSSECustomerAlgorithm: "AES256",
        CopySourceSSECustomerKey: KEY1 as unknown as string,
        ...sseC(KEY2),
      }),
    );
    expect((await failure(client.send(new GetObjectCommand({ Bucket: bucket, Key: "rotate", ...sseC(KEY1) })))).status).toBe(403);
    const rotated = await client.send(new GetObjectCommand({ Bucket: bucket, Key: "rotate", ...sseC(KEY2) }));
    expect(sha256(await bodyBytes(rotated.Body))).toBe(sha256(data));

    const toKms = await client.send(
      new CopyObjectCommand({ Bucket: bucket, Key: "kms", CopySource: `${bucket}/rotate`, CopySourceSSECustomerAlgorithm: "AES256", CopySourceSSECustomerKey: KEY2 as unknown as string, ServerSideEncryption: "aws:kms" }),
    );
    expect(toKms.ServerSideEncryption).toBe("aws:kms");
    const back = await client.send(new CopyObjectCommand({ Bucket: bucket, Key: "back", CopySource: `${bucket}/kms`, ...sseC(KEY1) }));
    expect(back.SSECustomerKeyMD5).toBe(md5b64(KEY1));
    const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: "back", ...sseC(KEY1) }));
    expect(sha256(await bodyBytes(got.Body))).toBe(sha256(data));
  });

  it("multipart by hand: every part with the key; another key on a part is 400; Complete without the key", async () => {
    const parts = [randomBytes(5 * MiB), randomBytes(1234)];
    const created = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: "mpu", ...sseC(KEY1) }));
    expect(created.SSECustomerKeyMD5).toBe(md5b64(KEY1));
    const uploadId = created.UploadId!;
    expect(await failure(client.send(new UploadPartCommand({ Bucket: bucket, Key: "mpu", UploadId: uploadId, PartNumber: 1, Body: parts[0], ...sseC(KEY2) })))).toEqual({ code: "InvalidRequest", status: 400 });
    const etags: string[] = [];
    for (const [i, body] of parts.entries()) {
      const r = await client.send(new UploadPartCommand({ Bucket: bucket, Key: "mpu", UploadId: uploadId, PartNumber: i + 1, Body: body, ...sseC(KEY1) }));
      etags.push(r.ETag!);
    }
    await client.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: "mpu", UploadId: uploadId, MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) } }));
    const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: "mpu", ...sseC(KEY1) }));
    expect(sha256(await bodyBytes(got.Body))).toBe(sha256(Buffer.concat(parts)));
  });

  it("lib-storage Upload (12 MiB, parts of 5 MiB) with SSECustomerKey", async () => {
    const big = randomBytes(12 * MiB);
    await new Upload({ client, params: { Bucket: bucket, Key: "upload", Body: big, ...sseC(KEY2) }, partSize: 5 * MiB, queueSize: 2 }).done();
    const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: "upload", ...sseC(KEY2) }));
    expect(sha256(await bodyBytes(got.Body))).toBe(sha256(big));
  }, 120_000);
});

describe("presigned URLs", () => {
  const names = ["x-amz-server-side-encryption-customer-algorithm", "x-amz-server-side-encryption-customer-key", "x-amz-server-side-encryption-customer-key-md5"];

  it("the presigner keeps the SSE-C headers as signed headers: the URL carries no key, the request sends it", async () => {
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: "presigned", Body: "presigned", ...sseC(KEY1) }));
    const url = await getSignedUrl(client, new GetObjectCommand({ Bucket: bucket, Key: "presigned", ...sseC(KEY1) }), { expiresIn: 300 });
    expect(url.includes(encodeURIComponent(b64(KEY1)))).toBe(false);
    expect(new URL(url).searchParams.get("X-Amz-SignedHeaders")).toContain("x-amz-server-side-encryption-customer-key");
    expect((await fetch(url)).status).toBe(403); // signed headers not sent
    const r = await fetch(url, { headers: { [names[0]!]: "AES256", [names[1]!]: b64(KEY1), [names[2]!]: md5b64(KEY1) } });
    expect(r.status).toBe(200);
    expect(await r.text()).toBe("presigned");
  });

  it("a presigned URL with the key hoisted into its query is refused (400), never used", async () => {
    const url = await getSignedUrl(client, new GetObjectCommand({ Bucket: bucket, Key: "presigned", ...sseC(KEY1) }), { expiresIn: 300, hoistableHeaders: new Set(names) });
    expect(new URL(url).searchParams.has("x-amz-server-side-encryption-customer-key")).toBe(true);
    const r = await fetch(url);
    expect(r.status).toBe(400);
    const text = await r.text();
    expect(text).toContain("<Code>InvalidArgument</Code>");
    expect(text.includes(b64(KEY1))).toBe(false);
  });
});
