import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectTaggingCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  PutObjectCommand,
  PutObjectTaggingCommand,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { createHash, randomBytes } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { s3, uniqueBucket } from "./support/clients";

/**
 * Issue 13 with the AWS SDK v3 (default checksums: CRC32 trailers) on a real socket:
 * S3-style part ETags (item 3) and object tagging (item 2).
 */
const MiB = 1024 * 1024;
const client = s3("adminA");
const bucket = uniqueBucket("sdk-tags");
const md5 = (b: Uint8Array) => createHash("md5").update(b).digest();

beforeAll(async () => {
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
});

describe("part ETags as S3 makes them", () => {
  it("UploadPart answers the MD5 of the part; a resent identical part gets the same ETag; the object ETag is MD5 of the part MD5s -N", async () => {
    const p1 = randomBytes(5 * MiB);
    const p2 = randomBytes(123_457);
    const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: "etags.bin", ServerSideEncryption: "aws:kms" }));
    const first = await client.send(new UploadPartCommand({ Bucket: bucket, Key: "etags.bin", UploadId, PartNumber: 1, Body: p1 }));
    expect(first.ETag).toBe(`"${md5(p1).toString("hex")}"`);
    const again = await client.send(new UploadPartCommand({ Bucket: bucket, Key: "etags.bin", UploadId, PartNumber: 1, Body: p1 }));
    expect(again.ETag).toBe(first.ETag);
    const second = await client.send(new UploadPartCommand({ Bucket: bucket, Key: "etags.bin", UploadId, PartNumber: 2, Body: p2 }));
    expect(second.ETag).toBe(`"${md5(p2).toString("hex")}"`);
    const done = await client.send(
      new CompleteMultipartUploadCommand({
        Bucket: bucket,
        Key: "etags.bin",
        UploadId,
        MultipartUpload: { Parts: [{ PartNumber: 1, ETag: first.ETag }, { PartNumber: 2, ETag: second.ETag }] },
      }),
    );
    const expected = `"${md5(Buffer.concat([md5(p1), md5(p2)])).toString("hex")}-2"`;
    expect(done.ETag).toBe(expected);
    expect((await client.send(new HeadObjectCommand({ Bucket: bucket, Key: "etags.bin" }))).ETag).toBe(expected);
    const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: "etags.bin" }));
    expect(md5(await got.Body!.transformToByteArray())).toEqual(md5(Buffer.concat([p1, p2])));
  });
});

describe("object tagging", () => {
  it("PutObject with Tagging, GetObjectTagging, TagCount on GET/HEAD, PutObjectTagging, DeleteObjectTagging (SSE-KMS object)", async () => {
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: "t.txt", Body: "tagged", ServerSideEncryption: "aws:kms", Tagging: "project=blue&class=two words" }));
    const got = await client.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: "t.txt" }));
    expect(got.TagSet).toEqual([{ Key: "class", Value: "two words" }, { Key: "project", Value: "blue" }]);
    expect((await client.send(new HeadObjectCommand({ Bucket: bucket, Key: "t.txt" }))).$metadata.httpStatusCode).toBe(200);
    const get = await client.send(new GetObjectCommand({ Bucket: bucket, Key: "t.txt" }));
    expect(get.TagCount).toBe(2);
    expect(await get.Body!.transformToString()).toBe("tagged");
    await client.send(new PutObjectTaggingCommand({ Bucket: bucket, Key: "t.txt", Tagging: { TagSet: [{ Key: "only", Value: "ünï côdé" }] } }));
    expect((await client.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: "t.txt" }))).TagSet).toEqual([{ Key: "only", Value: "ünï côdé" }]);
    await client.send(new DeleteObjectTaggingCommand({ Bucket: bucket, Key: "t.txt" }));
    expect((await client.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: "t.txt" }))).TagSet).toEqual([]);
    expect((await client.send(new GetObjectCommand({ Bucket: bucket, Key: "t.txt" }))).TagCount).toBeUndefined();
  });

  it("limits: 11 tags and an aws: key are refused with S3's codes", async () => {
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: "l.txt", Body: "x" }));
    const eleven = Array.from({ length: 11 }, (_, i) => ({ Key: `k${i}`, Value: "v" }));
    await expect(client.send(new PutObjectTaggingCommand({ Bucket: bucket, Key: "l.txt", Tagging: { TagSet: eleven } }))).rejects.toMatchObject({ name: "BadRequest", $metadata: { httpStatusCode: 400 } });
    await expect(client.send(new PutObjectTaggingCommand({ Bucket: bucket, Key: "l.txt", Tagging: { TagSet: [{ Key: "aws:x", Value: "v" }] } }))).rejects.toMatchObject({ name: "InvalidTag", $metadata: { httpStatusCode: 400 } });
  });

  it("CopyObject COPY/REPLACE and a lib-storage multipart Upload with Tags", async () => {
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: "s.txt", Body: "src", Tagging: "a=1" }));
    await client.send(new CopyObjectCommand({ Bucket: bucket, Key: "copy.txt", CopySource: `${bucket}/s.txt` }));
    expect((await client.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: "copy.txt" }))).TagSet).toEqual([{ Key: "a", Value: "1" }]);
    await client.send(new CopyObjectCommand({ Bucket: bucket, Key: "copy2.txt", CopySource: `${bucket}/s.txt`, TaggingDirective: "REPLACE", Tagging: "b=2" }));
    expect((await client.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: "copy2.txt" }))).TagSet).toEqual([{ Key: "b", Value: "2" }]);
    const upload = new Upload({ client, params: { Bucket: bucket, Key: "big.bin", Body: randomBytes(11 * MiB) }, partSize: 5 * MiB, tags: [{ Key: "via", Value: "lib-storage" }] });
    await upload.done();
    expect((await client.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: "big.bin" }))).TagSet).toEqual([{ Key: "via", Value: "lib-storage" }]);
  });
});
