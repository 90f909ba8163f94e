import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListPartsCommand,
  PutObjectCommand,
  UploadPartCommand,
  UploadPartCopyCommand,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { createHash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { endpoint, runWith, s3, uniqueBucket } from "./support/clients";
import { missing } from "./support/programs";

/**
 * Issue 4 end to end with real clients against the worker on a socket: aws-cli, the AWS
 * SDK's lib-storage Upload, boto3 with unequal parts, and the SDK's multipart calls.
 */
const MiB = 1024 * 1024;
const here = fileURLToPath(new URL(".", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "mpu-e2e-"));
const bucket = uniqueBucket("mpu");
const client = s3("adminA");
const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

async function bodyBytes(body: unknown): Promise<Buffer> {
  return Buffer.from(await (body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray());
}

/** Rows and stored part objects the local D1/R2 hold for an upload (read from the state files). */
async function localState(uploadId: string): Promise<{ uploads: number; parts: number; objects: number; r2: number }> {
  const r = await runWith("adminA", "python3", [join(here, "support", "local_state.py"), inject("persist"), uploadId]);
  expect(r.code, r.stderr).toBe(0);
  const state = JSON.parse(r.stdout) as { uploads: number; parts: number; objects: number; r2: number; r2Tables: number };
  expect(state.r2Tables).toBeGreaterThan(0);
  return { uploads: state.uploads, parts: state.parts, objects: state.objects, r2: state.r2 };
}


beforeAll(async () => {
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(missing("multipart.test.ts › aws-cli", "aws-cli-v1"))("aws-cli", () => {
  it("s3 cp of a 200 MiB file with --sse aws:kms, up and back, equal by sha256", async () => {
    const src = join(dir, "big.bin");
    const back = join(dir, "big.back");
    const out = createWriteStream(src);
    const hash = createHash("sha256");
    for (let i = 0; i < 25; i++) {
      const block = randomBytes(8 * MiB);
      hash.update(block);
      if (!out.write(block)) await new Promise<void>((resolve) => out.once("drain", () => resolve()));
    }
    await new Promise<void>((resolve) => out.end(() => resolve()));
    const sent = hash.digest("hex");

    const started = Date.now();
    const up = await runWith("adminA", "aws", ["--endpoint-url", endpoint(), "s3", "cp", src, `s3://${bucket}/cli/big.bin`, "--sse", "aws:kms"]);
    expect(up.code, up.stderr).toBe(0);
    const uploadSeconds = (Date.now() - started) / 1000;
    rmSync(src);

    const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: "cli/big.bin" }));
    expect(head.ContentLength).toBe(200 * MiB);
    expect(head.ServerSideEncryption).toBe("aws:kms");
    expect(head.ETag).toMatch(/^"[0-9a-f]{32}-25"$/);

    const down = await runWith("adminA", "aws", ["--endpoint-url", endpoint(), "s3", "cp", `s3://${bucket}/cli/big.bin`, back]);
    expect(down.code, down.stderr).toBe(0);
    const got = createHash("sha256");
    for await (const piece of createReadStream(back)) got.update(piece as Buffer);
    rmSync(back);
    expect(got.digest("hex")).toBe(sent);
    console.log(`aws s3 cp 200 MiB: upload ${uploadSeconds.toFixed(1)} s, total ${((Date.now() - started) / 1000).toFixed(1)} s`);
  });
});

describe("@aws-sdk/lib-storage Upload", () => {
  it("5 MiB parts, queueSize 4, SSE-KMS, from a stream; reads back equal", async () => {
    const data = randomBytes(23 * MiB + 12345);
    const upload = new Upload({
      client,
      params: { Bucket: bucket, Key: "sdk/lib-storage.bin", Body: Readable.from([data.subarray(0, 9 * MiB), data.subarray(9 * MiB)]), ServerSideEncryption: "aws:kms" },
      partSize: 5 * MiB,
      queueSize: 4,
    });
    const done = await upload.done();
    expect(done.ETag).toMatch(/-5"$/);
    const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: "sdk/lib-storage.bin" }));
    expect(got.ServerSideEncryption).toBe("aws:kms");
    expect(got.SSEKMSKeyId).toMatch(/^arn:aws:kms:us-east-1:[0-9a-f]{32}:key\//);
    expect(sha256(await bodyBytes(got.Body))).toBe(sha256(data));
  });
});

describe.skipIf(missing("multipart.test.ts › boto3", "boto3"))("boto3", () => {
  it("unequal parts of 5, 7 and 3 MiB complete and read back (whole, range across a boundary, part 2)", async () => {
    const r = await runWith("adminA", "python3", [join(here, "support", "boto3_multipart.py"), endpoint(), bucket, "boto3/unequal.bin"]);
    expect(r.code, r.stderr).toBe(0);
    const seen = JSON.parse(r.stdout.trim().split("\n").at(-1)!);
    expect(seen).toMatchObject({
      createSse: "aws:kms",
      partSse: ["aws:kms", "aws:kms", "aws:kms"],
      listedSizes: [5 * MiB, 7 * MiB, 3 * MiB],
      getSse: "aws:kms",
      contentType: "application/x-boto3",
      metadata: { via: "boto3" },
      rangeOk: true,
      part2Ok: true,
      partsCount: 3,
    });
    expect(seen.sha256Got).toBe(seen.sha256Sent);
    expect(seen.etag).toMatch(/-3"$/);
    expect(seen.getKeyId).toBe(seen.createKeyId);
  });
});

describe("the SDK's multipart calls", () => {
  it("UploadPartCopy from an SSE-KMS source, with a range, and a range GET across the part boundary", async () => {
    const src = randomBytes(6 * MiB);
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: "sdk/copy-src", Body: src, ServerSideEncryption: "aws:kms" }));
    const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: "sdk/copied", ServerSideEncryption: "aws:kms" }));
    const p1 = await client.send(new UploadPartCopyCommand({ Bucket: bucket, Key: "sdk/copied", UploadId, PartNumber: 1, CopySource: `${bucket}/sdk/copy-src` }));
    expect(p1.ServerSideEncryption).toBe("aws:kms");
    const p2 = await client.send(
      new UploadPartCopyCommand({ Bucket: bucket, Key: "sdk/copied", UploadId, PartNumber: 2, CopySource: `${bucket}/sdk/copy-src`, CopySourceRange: "bytes=100-1099" }),
    );
    const done = await client.send(
      new CompleteMultipartUploadCommand({
        Bucket: bucket,
        Key: "sdk/copied",
        UploadId,
        MultipartUpload: { Parts: [{ PartNumber: 1, ETag: p1.CopyPartResult!.ETag }, { PartNumber: 2, ETag: p2.CopyPartResult!.ETag }] },
      }),
    );
    expect(done.ServerSideEncryption).toBe("aws:kms");
    const expected = Buffer.concat([src, src.subarray(100, 1100)]);
    const whole = await client.send(new GetObjectCommand({ Bucket: bucket, Key: "sdk/copied" }));
    expect(sha256(await bodyBytes(whole.Body))).toBe(sha256(expected));
    const range = await client.send(new GetObjectCommand({ Bucket: bucket, Key: "sdk/copied", Range: `bytes=${6 * MiB - 50}-${6 * MiB + 49}` }));
    expect(range.ContentRange).toBe(`bytes ${6 * MiB - 50}-${6 * MiB + 49}/${expected.length}`);
    expect(Buffer.compare(await bodyBytes(range.Body), expected.subarray(6 * MiB - 50, 6 * MiB + 50))).toBe(0);
  });

  it("complete with a wrong ETag is InvalidPart", async () => {
    const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: "sdk/wrong-etag" }));
    await client.send(new UploadPartCommand({ Bucket: bucket, Key: "sdk/wrong-etag", UploadId, PartNumber: 1, Body: randomBytes(1000) }));
    const error = await client
      .send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: "sdk/wrong-etag", UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: `"${"a".repeat(32)}"` }] } }))
      .catch((e: unknown) => e as { name: string; $metadata: { httpStatusCode: number } });
    expect(error).toMatchObject({ name: "InvalidPart", $metadata: { httpStatusCode: 400 } });
  });

  it.skipIf(missing("multipart.test.ts › abort", "python3"))("abort leaves no object, no upload, no D1 rows and no stored parts", async () => {
    const key = "sdk/aborted";
    const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key, ServerSideEncryption: "aws:kms" }));
    for (const n of [1, 2]) await client.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: n, Body: randomBytes(5 * MiB) }));
    expect(await localState(UploadId!)).toEqual({ uploads: 1, parts: 2, objects: 0, r2: 2 });
    await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId }));
    expect(await localState(UploadId!)).toEqual({ uploads: 0, parts: 0, objects: 0, r2: 0 });
    const uploads = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
    expect((uploads.Uploads ?? []).map((u) => u.UploadId)).not.toContain(UploadId);
    await expect(client.send(new ListPartsCommand({ Bucket: bucket, Key: key, UploadId }))).rejects.toMatchObject({ name: "NoSuchUpload" });
    await expect(client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))).rejects.toMatchObject({ $metadata: { httpStatusCode: 404 } });
  });
});
