import {
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
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
