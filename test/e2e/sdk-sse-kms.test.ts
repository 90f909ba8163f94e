import {
  CopyObjectCommand,
  CreateBucketCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutBucketPolicyCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  type PutObjectCommandInput,
  type ServerSideEncryption,
} from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { createHash, randomBytes } from "node:crypto";
import { createReadStream, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { IDENTITIES, s3, uniqueBucket } from "./support/clients";
import { createKmsKey, kmsOk } from "./support/kms";

/**
 * Issue 3 end to end with @aws-sdk/client-s3 (default checksums: CRC32 trailers on
 * aws-chunked uploads) against the worker on a real socket.
 */
const client = s3("adminA");
const bucket = uniqueBucket("sdk-kms");
const dir = mkdtempSync(join(tmpdir(), "sdk-kms-"));
const MiB = 1024 * 1024;
const BIG = 50 * MiB;
const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const ARN = /^arn:aws:kms:us-east-1:[0-9a-f]{32}:key\/[0-9a-f-]{36}$/;

let defaultArn = "";
let bigSha = "";
let bigPath = "";

async function bodyBytes(body: unknown): Promise<Buffer> {
  return Buffer.from(await (body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray());
}

/** The S3 error of a failed SDK call: code (the SDK's error name) and HTTP status. */
async function failure(promise: Promise<unknown>): Promise<{ code: string; status: number | undefined; message: string }> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(S3ServiceException);
    const e = error as S3ServiceException;
    return { code: e.name, status: e.$metadata.httpStatusCode, message: e.message };
  }
  throw new Error("expected the call to fail");
}

/** A fresh customer key (through the worker's KMS API, signed by the SDK's signer). */
function kmsKey(): Promise<{ KeyId: string; Arn: string }> {
  return createKmsKey("adminA", "sdk e2e");
}

beforeAll(async () => {
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  const big = randomBytes(BIG);
  bigSha = sha256(big);
  bigPath = join(dir, "big.bin");
  writeFileSync(bigPath, big);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("SSE-KMS round trips with the SDK", () => {
  it.each([0, 1, 65536, 65537])("%i bytes: PUT with aws:kms, GET and HEAD, sha256 equal", async (size) => {
    const data = randomBytes(size);
    const key = `rt/${size}.bin`;
    const put = await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: data, ServerSideEncryption: "aws:kms" }));
    expect(put.ServerSideEncryption).toBe("aws:kms");
    expect(put.SSEKMSKeyId).toMatch(ARN);
    expect(put.ChecksumCRC32).toBeTruthy();
    defaultArn ||= put.SSEKMSKeyId!;
    expect(put.SSEKMSKeyId).toBe(defaultArn);
    const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    expect(got.ServerSideEncryption).toBe("aws:kms");
    expect(got.SSEKMSKeyId).toBe(defaultArn);
    expect(got.ContentLength).toBe(size);
    expect(sha256(await bodyBytes(got.Body))).toBe(sha256(data));
    const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    expect(head.ContentLength).toBe(size);
    expect(head.SSEKMSKeyId).toBe(defaultArn);
  });

  it("50 MiB from a file, with a customer key by ARN: sha256 equal; ranges on and across chunk boundaries", async () => {
    const key = await kmsKey();
    const put = await client.send(
      new PutObjectCommand({ Bucket: bucket, Key: "big.bin", Body: createReadStream(bigPath), ContentLength: BIG, ServerSideEncryption: "aws:kms", SSEKMSKeyId: key.Arn }),
    );
    expect(put.SSEKMSKeyId).toBe(key.Arn);
    const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: "big.bin" }));
    expect(got.ContentLength).toBe(BIG);
    expect(got.SSEKMSKeyId).toBe(key.Arn);
    const hash = createHash("sha256");
    for await (const piece of got.Body as Readable) hash.update(piece as Buffer);
    expect(hash.digest("hex")).toBe(bigSha);

    const { readFileSync } = await import("node:fs");
    const big = readFileSync(bigPath);
    const C = 65536;
    const ranges: Array<[string, number, number]> = [
      ["bytes=0-0", 0, 0],
      [`bytes=${C - 1}-${C}`, C - 1, C],
      [`bytes=${C}-${2 * C - 1}`, C, 2 * C - 1],
      [`bytes=${400 * C - 100}-${402 * C + 99}`, 400 * C - 100, 402 * C + 99],
      [`bytes=${BIG - 1}-`, BIG - 1, BIG - 1],
      [`bytes=${BIG - C - 1}-`, BIG - C - 1, BIG - 1],
      ["bytes=-1", BIG - 1, BIG - 1],
      ["bytes=-65537", BIG - 65537, BIG - 1],
      [`bytes=${BIG - 10}-${BIG + 1000}`, BIG - 10, BIG - 1],
    ];
    for (const [range, first, last] of ranges) {
      const r = await client.send(new GetObjectCommand({ Bucket: bucket, Key: "big.bin", Range: range }));
      expect(r.ContentRange, range).toBe(`bytes ${first}-${last}/${BIG}`);
      expect(r.ContentLength, range).toBe(last - first + 1);
      expect((await bodyBytes(r.Body)).equals(big.subarray(first, last + 1)), range).toBe(true);
    }
    const past = await failure(client.send(new GetObjectCommand({ Bucket: bucket, Key: "big.bin", Range: `bytes=${BIG}-` })));
    expect(past).toMatchObject({ code: "InvalidRange", status: 416 });
  });

  it("a presigned GET (s3-request-presigner) works with plain fetch", async () => {
    const data = randomBytes(70_000);
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: "presigned.bin", Body: data, ServerSideEncryption: "aws:kms" }));
    const url = await getSignedUrl(client, new GetObjectCommand({ Bucket: bucket, Key: "presigned.bin" }), { expiresIn: 300 });
    const r = await fetch(url);
    expect(r.status).toBe(200);
    expect(r.headers.get("x-amz-server-side-encryption")).toBe("aws:kms");
    expect(r.headers.get("content-length")).toBe(String(data.length));
    expect(sha256(new Uint8Array(await r.arrayBuffer()))).toBe(sha256(data));
    const ranged = await fetch(url, { headers: { range: "bytes=65530-65545" } });
    expect(ranged.status).toBe(206);
    expect(Buffer.from(await ranged.arrayBuffer()).equals(data.subarray(65530, 65546))).toBe(true);
    const tampered = url.replace(/X-Amz-Signature=([0-9a-f])/, (_m, d: string) => `X-Amz-Signature=${d === "0" ? "1" : "0"}`);
    const refused = await fetch(tampered);
    expect(refused.status).toBe(403);
    expect(await refused.text()).toContain("<Code>SignatureDoesNotMatch</Code>");
  });

  it("multi-delete (DeleteObjects with the SDK's checksum) and listing", async () => {
    const keys = ["md/a", "md/b c", "md/ü"];
    for (const Key of keys) await client.send(new PutObjectCommand({ Bucket: bucket, Key, Body: Key, ServerSideEncryption: "aws:kms" }));
    const listed = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: "md/" }));
    expect(listed.Contents?.map((c) => c.Key).sort()).toEqual([...keys].sort());
    const deleted = await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: [...keys, "md/none"].map((Key) => ({ Key })) } }));
    expect(deleted.Deleted?.map((d) => d.Key).sort()).toEqual([...keys, "md/none"].sort());
    expect(deleted.Errors ?? []).toEqual([]);
    expect((await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: "md/" }))).KeyCount).toBe(0);
  });

  it("a request whose signature is altered after signing is refused with 403 SignatureDoesNotMatch", async () => {
    const tampering = s3("adminA");
    tampering.middlewareStack.add(
      (next) => async (args) => {
        const request = args.request as { headers: Record<string, string> };
        request.headers["authorization"] = request.headers["authorization"]!.replace(/Signature=([0-9a-f])/, (_m, d: string) => `Signature=${d === "0" ? "1" : "0"}`);
        return next(args);
      },
      { step: "deserialize", name: "tamperSignature" },
    );
    const e = await failure(tampering.send(new PutObjectCommand({ Bucket: bucket, Key: "tampered", Body: "x", ServerSideEncryption: "aws:kms" })));
    expect(e).toMatchObject({ code: "SignatureDoesNotMatch", status: 403 });
    expect((await failure(client.send(new HeadObjectCommand({ Bucket: bucket, Key: "tampered" })))).status).toBe(404);
  });

  it("CopyObject between CMKs with REPLACE metadata", async () => {
    const key = await kmsKey();
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: "copy-src", Body: "copy me", ServerSideEncryption: "aws:kms", Metadata: { a: "1" } }));
    const copied = await client.send(
      new CopyObjectCommand({ Bucket: bucket, Key: "copy-dst", CopySource: `${bucket}/copy-src`, ServerSideEncryption: "aws:kms", SSEKMSKeyId: key.KeyId, MetadataDirective: "REPLACE", Metadata: { b: "2" } }),
    );
    expect(copied.SSEKMSKeyId).toBe(key.Arn);
    const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: "copy-dst" }));
    expect(got.Metadata).toEqual({ b: "2" });
    expect(got.SSEKMSKeyId).toBe(key.Arn);
    expect((await bodyBytes(got.Body)).toString()).toBe("copy me");
  });

  it("encryption context and bucket key round-trip", async () => {
    const context = Buffer.from(JSON.stringify({ team: "e2e" })).toString("base64");
    const put = await client.send(new PutObjectCommand({ Bucket: bucket, Key: "ctx", Body: "c", ServerSideEncryption: "aws:kms", SSEKMSEncryptionContext: context, BucketKeyEnabled: true }));
    expect(put.BucketKeyEnabled).toBe(true);
    const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: "ctx" }));
    expect(head.BucketKeyEnabled).toBe(true);
    expect(head.ServerSideEncryption).toBe("aws:kms");
  });
});

describe("SSE errors through the SDK, by code and status", () => {
  const put = (input: Partial<PutObjectCommandInput>, c: S3Client = client) => c.send(new PutObjectCommand({ Bucket: bucket, Key: "err", Body: "x", ...input }));

  it("key id without aws:kms → 400 InvalidArgument", async () => {
    const { Arn } = await kmsKey();
    expect(await failure(put({ SSEKMSKeyId: Arn }))).toMatchObject({ code: "InvalidArgument", status: 400 });
    expect(await failure(put({ ServerSideEncryption: "AES256", SSEKMSKeyId: Arn }))).toMatchObject({ code: "InvalidArgument", status: 400 });
  });

  it("a bad algorithm → 400 InvalidArgument", async () => {
    expect(await failure(put({ ServerSideEncryption: "AES128" as ServerSideEncryption }))).toMatchObject({ code: "InvalidArgument", status: 400 });
  });

  it("SSE headers on GET → 400 InvalidArgument", async () => {
    const withHeader = s3("adminA");
    withHeader.middlewareStack.add(
      (next) => async (args) => {
        (args.request as { headers: Record<string, string> }).headers["x-amz-server-side-encryption"] = "aws:kms";
        return next(args);
      },
      { step: "build", name: "sseOnGet" },
    );
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: "readable", Body: "r" }));
    expect(await failure(withHeader.send(new GetObjectCommand({ Bucket: bucket, Key: "readable" })))).toMatchObject({ code: "InvalidArgument", status: 400 });
  });

  it("an unknown key → 400 KMS.NotFoundException", async () => {
    const uuid = "11111111-2222-3333-4444-555555555555";
    expect(await failure(put({ ServerSideEncryption: "aws:kms", SSEKMSKeyId: uuid }))).toMatchObject({ code: "KMS.NotFoundException", status: 400 });
    expect(await failure(put({ ServerSideEncryption: "aws:kms", SSEKMSKeyId: `arn:aws:kms:us-east-1:${IDENTITIES.adminA.tenantId}:key/${uuid}` }))).toMatchObject({
      code: "KMS.NotFoundException",
      status: 400,
    });
  });

  it("a disabled key → 400 KMS.DisabledException for PUT and GET", async () => {
    const key = await kmsKey();
    await put({ Key: "dis", ServerSideEncryption: "aws:kms", SSEKMSKeyId: key.Arn });
    await kmsOk("adminA", "DisableKey", { KeyId: key.KeyId });
    expect(await failure(put({ ServerSideEncryption: "aws:kms", SSEKMSKeyId: key.Arn }))).toMatchObject({ code: "KMS.DisabledException", status: 400 });
    expect(await failure(client.send(new GetObjectCommand({ Bucket: bucket, Key: "dis" })))).toMatchObject({ code: "KMS.DisabledException", status: 400 });
  });

  it("a key pending deletion → 400 KMS.KMSInvalidStateException for PUT and GET", async () => {
    const key = await kmsKey();
    await put({ Key: "pending", ServerSideEncryption: "aws:kms", SSEKMSKeyId: key.KeyId });
    await kmsOk("adminA", "ScheduleKeyDeletion", { KeyId: key.KeyId, PendingWindowInDays: 7 });
    expect(await failure(put({ ServerSideEncryption: "aws:kms", SSEKMSKeyId: key.KeyId }))).toMatchObject({ code: "KMS.KMSInvalidStateException", status: 400 });
    expect(await failure(client.send(new GetObjectCommand({ Bucket: bucket, Key: "pending" })))).toMatchObject({ code: "KMS.KMSInvalidStateException", status: 400 });
  });

  it("a member (not tenant_admin) asking for aws:kms → 403 AccessDenied", async () => {
    expect(await failure(put({ Key: "by-member", ServerSideEncryption: "aws:kms" }, s3("memberA")))).toMatchObject({ code: "AccessDenied", status: 403 });
    const ok = await put({ Key: "by-member", ServerSideEncryption: "AES256" }, s3("memberA"));
    expect(ok.ServerSideEncryption).toBe("AES256");
  });

  it("another tenant cannot read an SSE-KMS object though the bucket policy grants it; it can read SSE-S3", async () => {
    const shared = uniqueBucket("sdk-shared");
    await client.send(new CreateBucketCommand({ Bucket: shared }));
    await client.send(new PutObjectCommand({ Bucket: shared, Key: "kms", Body: "k", ServerSideEncryption: "aws:kms" }));
    await client.send(new PutObjectCommand({ Bucket: shared, Key: "s3", Body: "s", ServerSideEncryption: "AES256" }));
    const policy = {
      Version: "2012-10-17",
      Statement: [{ Effect: "Allow", Principal: { AWS: `arn:aws:iam::${IDENTITIES.adminB.tenantId}:root` }, Action: "s3:GetObject", Resource: `arn:aws:s3:::${shared}/*` }],
    };
    await client.send(new PutBucketPolicyCommand({ Bucket: shared, Policy: JSON.stringify(policy) }));
    const b = s3("adminB");
    expect((await bodyBytes((await b.send(new GetObjectCommand({ Bucket: shared, Key: "s3" }))).Body)).toString()).toBe("s");
    expect(await failure(b.send(new GetObjectCommand({ Bucket: shared, Key: "kms" })))).toMatchObject({ code: "AccessDenied", status: 403 });
    expect((await failure(b.send(new HeadObjectCommand({ Bucket: shared, Key: "kms" })))).status).toBe(403);
  });
});
