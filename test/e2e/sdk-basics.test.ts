import { CreateBucketCommand, DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand } from "@aws-sdk/client-s3";
import { createHash, randomBytes } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { s3, uniqueBucket } from "./support/clients";

const client = s3("adminA");
const bucket = uniqueBucket("sdk");

beforeAll(async () => {
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
});

describe("AWS SDK v3 with default checksums", () => {
  it("round-trips an object and lists it", async () => {
    const body = randomBytes(300_000);
    const put = await client.send(new PutObjectCommand({ Bucket: bucket, Key: "a/b.bin", Body: body, Metadata: { owner: "test" } }));
    expect(put.ServerSideEncryption).toBe("AES256");
    expect(put.ChecksumCRC32).toBeTruthy();
    const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: "a/b.bin" }));
    const bytes = Buffer.from(await got.Body!.transformToByteArray());
    expect(createHash("sha256").update(bytes).digest("hex")).toBe(createHash("sha256").update(body).digest("hex"));
    expect(got.Metadata).toEqual({ owner: "test" });
    const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: "a/b.bin" }));
    expect(head.ContentLength).toBe(body.length);
    const list = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: "a/" }));
    expect(list.Contents?.map((c) => [c.Key, c.Size])).toEqual([["a/b.bin", body.length]]);
    await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: "a/b.bin" }));
    await expect(client.send(new HeadObjectCommand({ Bucket: bucket, Key: "a/b.bin" }))).rejects.toMatchObject({ $metadata: { httpStatusCode: 404 } });
  });
});
