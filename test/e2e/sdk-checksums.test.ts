import { CreateBucketCommand, GetObjectAttributesCommand, GetObjectCommand, HeadObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { Crc64Nvme } from "@aws-sdk/crc64-nvme";
import { Upload } from "@aws-sdk/lib-storage";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import { crc32 } from "node:zlib";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { runWith, s3, uniqueBucket } from "./support/clients";

/**
 * Issue 13 item 1 with the AWS SDK v3's default checksum behaviour on a real socket: a
 * stream body goes up with an aws-chunked CRC32 trailer, which the gateway keeps; every
 * GetObject asks for x-amz-checksum-mode and validates what comes back. The validation
 * must pass for single and multipart (lib-storage) objects, and fail when the checksum
 * is wrong — corrupted in R2 (the gateway refuses the record) or on the way (the SDK
 * refuses the body).
 */
const MiB = 1024 * 1024;
const client = s3("adminA");
const bucket = uniqueBucket("sdk-checksums");
const here = fileURLToPath(new URL(".", import.meta.url));

const crc32b64 = (b: Uint8Array) => {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(crc32(b));
  return out.toString("base64");
};
async function crc64b64(b: Uint8Array): Promise<string> {
  const h = new Crc64Nvme();
  h.update(b);
  return Buffer.from(await h.digest()).toString("base64");
}

/** A body the SDK cannot hash up front: it sends it aws-chunked with a CRC32 trailer. */
function stream(bytes: Uint8Array): Readable {
  return Readable.from((function* () {
    for (let i = 0; i < bytes.byteLength; i += 100_000) yield bytes.subarray(i, i + 100_000);
  })());
}

/** Flips a byte `fromEnd` bytes before the end of an object's stored bytes (support/r2_flip.py). */
async function corruptStored(key: string, fromEnd: number): Promise<void> {
  const r = await runWith("adminA", "python3", [join(here, "support", "r2_flip.py"), inject("persist"), `${bucket}/${key}`, String(fromEnd)]);
  expect(r.code, r.stderr).toBe(0);
  expect(JSON.parse(r.stdout)).toEqual({ flipped: true });
}

beforeAll(async () => {
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
});

describe("SDK v3 default checksums", () => {
  it("a stream-body PutObject (CRC32 trailer): kept, returned on HEAD with ChecksumMode, validated on GetObject", async () => {
    const body = randomBytes(700_000);
    const put = await client.send(new PutObjectCommand({ Bucket: bucket, Key: "stream.bin", Body: stream(body), ContentLength: body.byteLength }));
    expect(put.ChecksumCRC32).toBe(crc32b64(body));
    const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: "stream.bin", ChecksumMode: "ENABLED" }));
    expect(head.ChecksumCRC32).toBe(crc32b64(body));
    expect(head.ChecksumType).toBe("FULL_OBJECT");
    const get = await client.send(new GetObjectCommand({ Bucket: bucket, Key: "stream.bin" }));
    expect(get.ChecksumCRC32).toBe(crc32b64(body));
    expect(Buffer.from(await get.Body!.transformToByteArray()).equals(body)).toBe(true);
    const attrs = await client.send(new GetObjectAttributesCommand({ Bucket: bucket, Key: "stream.bin", ObjectAttributes: ["Checksum", "ObjectSize", "ETag"] }));
    expect(attrs.Checksum?.ChecksumCRC32).toBe(crc32b64(body));
    expect(attrs.Checksum?.ChecksumType).toBe("FULL_OBJECT");
    expect(attrs.ObjectSize).toBe(body.byteLength);
  });

  it("a multipart (lib-storage) object: its checksum is returned and the download validates", { timeout: 60_000 }, async () => {
    const body = randomBytes(11 * MiB + 4321);
    await new Upload({ client, params: { Bucket: bucket, Key: "mp.bin", Body: stream(body) }, partSize: 5 * MiB }).done();
    const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: "mp.bin", ChecksumMode: "ENABLED" }));
    const sent = Object.entries(head).filter(([name, value]) => name.startsWith("Checksum") && name !== "ChecksumType" && value !== undefined);
    expect(sent).toHaveLength(1);
    if (head.ChecksumType === "FULL_OBJECT") {
      // A full-object value is the checksum of the whole body (CRC32 or the default CRC64NVME).
      const [name, value] = sent[0]!;
      expect(value).toBe(name === "ChecksumCRC32" ? crc32b64(body) : await crc64b64(body));
    } else {
      expect(head.ChecksumType).toBe("COMPOSITE");
      expect(String(sent[0]![1])).toMatch(/-3$/);
    }
    const get = await client.send(new GetObjectCommand({ Bucket: bucket, Key: "mp.bin" }));
    expect(Buffer.from(await get.Body!.transformToByteArray()).equals(body)).toBe(true);
  });

  it("a checksum-less upload (Buffer body, checksums only when required) gets CRC64NVME, and the SDK validates it", async () => {
    const plain = s3("adminA", { requestChecksumCalculation: "WHEN_REQUIRED" });
    const body = randomBytes(200_000);
    await plain.send(new PutObjectCommand({ Bucket: bucket, Key: "default.bin", Body: body }));
    const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: "default.bin", ChecksumMode: "ENABLED" }));
    expect(head.ChecksumCRC64NVME).toBe(await crc64b64(body));
    const get = await client.send(new GetObjectCommand({ Bucket: bucket, Key: "default.bin" }));
    expect(get.ChecksumCRC64NVME).toBe(await crc64b64(body));
    expect(Buffer.from(await get.Body!.transformToByteArray()).equals(body)).toBe(true);
  });

  it("download validation fails when the checksum is wrong: a corrupted record in R2 is refused, a wrong value on the way fails the SDK's check", async () => {
    const body = randomBytes(300_000);
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: "bad.bin", Body: stream(body), ContentLength: body.byteLength }));
    // A wrong checksum on the wire: the SDK must refuse the body it validates.
    const lying = s3("adminA");
    lying.middlewareStack.add(
      (next) => async (args) => {
        const out = await next(args);
        const response = out.response as { headers: Record<string, string> };
        response.headers["x-amz-checksum-crc32"] = crc32b64(body.subarray(1));
        return out;
      },
      { step: "deserialize", name: "wrongChecksum", priority: "low" },
    );
    const wire = await lying.send(new GetObjectCommand({ Bucket: bucket, Key: "bad.bin" })).then(
      async (got) => got.Body!.transformToByteArray().then(() => null, (e: unknown) => e),
      (e: unknown) => e,
    );
    expect(String(wire)).toMatch(/checksum/i);

    // The checksum corrupted where it is stored (last bytes: the trailer record's tag).
    await corruptStored("bad.bin", 1);
    const stored = await client.send(new GetObjectCommand({ Bucket: bucket, Key: "bad.bin" })).then(
      async (got) => got.Body!.transformToByteArray().then(() => null, (e: unknown) => e),
      (e: unknown) => e,
    );
    expect(stored).not.toBeNull();
    expect((stored as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode).toBe(500);
  });
});
