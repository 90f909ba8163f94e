/**
 * Faults on the wire (issue 8, item 3; docs/testing.md "Faults"), against the worker on a
 * real socket: a client that disconnects halfway through a PutObject or an UploadPart body,
 * and a 95 MiB aws-chunked upload whose CRC32 trailer does not match. Nothing may be
 * created or overwritten, the previous version must stay byte-identical, and the local
 * R2/D1 state (read from the persistence directory) must hold nothing extra.
 */
import { Sha256 } from "@aws-crypto/sha256-js";
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { SignatureV4 } from "@smithy/signature-v4";
import { createHash, randomBytes } from "node:crypto";
import { request } from "node:http";
import { connect } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { endpoint, IDENTITIES, REGION, runWith, s3, uniqueBucket } from "./support/clients";
import { missing } from "./support/programs";

const MiB = 1024 * 1024;
const here = fileURLToPath(new URL(".", import.meta.url));
const bucket = uniqueBucket("faults");
const client = s3("adminA");
const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const KMS = { "x-amz-server-side-encryption": "aws:kms" };

/** What reached local R2 and D1 is read with python3 (support/*.py, sqlite3). */
const noPython = missing("faults.test.ts", "python3");

beforeAll(async () => {
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
});

// ---- helpers -----------------------------------------------------------------------------------

const signer = new SignatureV4({
  service: "s3",
  region: REGION,
  credentials: { accessKeyId: IDENTITIES.adminA.accessKeyId, secretAccessKey: IDENTITIES.adminA.secretAccessKey },
  sha256: Sha256,
  uriEscapePath: false,
});

/** SigV4 headers for a request whose payload is not hashed (UNSIGNED-PAYLOAD or a streaming mode). */
async function signedHeaders(method: string, path: string, query: Record<string, string>, headers: Record<string, string>): Promise<Record<string, string>> {
  const url = new URL(endpoint());
  const signed = await signer.sign({ method, protocol: "http:", hostname: url.hostname, port: Number(url.port), path, query, headers: { host: url.host, ...headers } });
  return signed.headers as Record<string, string>;
}

function queryString(query: Record<string, string>): string {
  return Object.keys(query)
    .sort()
    .map((k) => (query[k] === "" ? encodeURIComponent(k) : `${encodeURIComponent(k)}=${encodeURIComponent(query[k]!)}`))
    .join("&");
}

/**
 * Sends a signed PUT's head and the first `sent` bytes of a `length`-byte body on a raw
 * socket, waits until the server has taken them, then destroys the socket (a client that
 * crashed or lost its network mid-upload).
 */
async function disconnectMidBody(path: string, query: Record<string, string>, length: number, sent: number, extra: Record<string, string> = {}): Promise<void> {
  const headers = await signedHeaders("PUT", path, query, { "content-length": String(length), "x-amz-content-sha256": "UNSIGNED-PAYLOAD", ...extra });
  const url = new URL(endpoint());
  const qs = queryString(query);
  const head = [`PUT ${path}${qs ? "?" + qs : ""} HTTP/1.1`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), "", ""].join("\r\n");
  const socket = connect(Number(url.port), url.hostname);
  await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject));
  let early = "";
  socket.on("data", (d: Buffer) => (early += d.toString("latin1")));
  socket.on("error", () => {});
  const write = (data: Buffer | string) => new Promise<void>((resolve, reject) => socket.write(data, (e) => (e ? reject(e) : resolve())));
  await write(head);
  const block = randomBytes(256 * 1024);
  for (let at = 0; at < sent; at += block.byteLength) await write(block.subarray(0, Math.min(block.byteLength, sent - at)));
  // Let the worker read what was sent (it is streaming it into R2) before the line drops.
  await new Promise((r) => setTimeout(r, 500));
  expect(early, "the server answered before the body was complete").toBe("");
  socket.destroy();
}

/** What the persisted local R2 holds under a prefix (support/r2_keys.py). */
async function storedKeys(prefix: string): Promise<string[]> {
  const r = await runWith("adminA", "python3", [join(here, "support", "r2_keys.py"), inject("persist"), prefix]);
  expect(r.code, r.stderr).toBe(0);
  const out = JSON.parse(r.stdout) as { keys: string[]; r2Tables: number };
  expect(out.r2Tables).toBeGreaterThan(0);
  return out.keys;
}

/** Rows and part objects for an upload id (support/local_state.py, as multipart.test.ts reads them). */
async function localState(uploadId: string): Promise<{ uploads: number; parts: number; objects: number; r2: number }> {
  const r = await runWith("adminA", "python3", [join(here, "support", "local_state.py"), inject("persist"), uploadId]);
  expect(r.code, r.stderr).toBe(0);
  const { uploads, parts, objects, r2 } = JSON.parse(r.stdout) as { uploads: number; parts: number; objects: number; r2: number };
  return { uploads, parts, objects, r2 };
}

/** Polls until `read` gives `want` (the worker may still be unwinding the dropped request). */
async function settles<T>(read: () => Promise<T>, want: T, ms = 10_000): Promise<T> {
  const until = Date.now() + ms;
  let last = await read();
  while (JSON.stringify(last) !== JSON.stringify(want) && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 250));
    last = await read();
  }
  return last;
}

/** `settles`, then still the same a second later (a late write of the dropped request would show). */
async function settlesAndStays<T>(read: () => Promise<T>, want: T): Promise<void> {
  expect(await settles(read, want)).toEqual(want);
  await new Promise((r) => setTimeout(r, 1000));
  expect(await read()).toEqual(want);
}

async function getSha(key: string): Promise<string> {
  const r = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return sha256(await r.Body!.transformToByteArray());
}

// ---- client disconnects ---------------------------------------------------------------------------

describe.skipIf(noPython)("a client disconnects mid-upload", () => {
  it("PutObject: nothing is created or overwritten; the previous version stays byte-identical", async () => {
    const key = "disconnect/put";
    const previous = randomBytes(3 * MiB + 17);
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: previous, ServerSideEncryption: "aws:kms" }));
    const keysBefore = await storedKeys(`${bucket}/`);
    await disconnectMidBody(`/${bucket}/${key}`, {}, 16 * MiB, 8 * MiB, KMS);
    await disconnectMidBody(`/${bucket}/disconnect/new`, {}, 16 * MiB, 8 * MiB, KMS);
    await settlesAndStays(() => storedKeys(`${bucket}/`), keysBefore);
    expect(await getSha(key)).toBe(sha256(previous));
    const listed = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: "disconnect/" }));
    expect((listed.Contents ?? []).map((o) => o.Key)).toEqual([key]);
  });

  it("UploadPart (a new part, and a retry of a recorded one): not recorded, nothing stored; complete and abort leave exactly what they should", async () => {
    const key = "disconnect/mpu";
    const previous = randomBytes(1 * MiB);
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: previous }));
    for (const end of ["complete", "abort"] as const) {
      const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key, ServerSideEncryption: "aws:kms" }));
      const part1 = randomBytes(2 * MiB);
      const { ETag } = await client.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: 1, Body: part1 }));
      const attempt = await storedKeys(`_mpu/${UploadId}/`);
      expect(attempt).toHaveLength(1);
      await disconnectMidBody(`/${bucket}/${key}`, { partNumber: "2", uploadId: UploadId! }, 12 * MiB, 6 * MiB);
      await disconnectMidBody(`/${bucket}/${key}`, { partNumber: "1", uploadId: UploadId! }, 12 * MiB, 6 * MiB);
      // Only the first attempt of part 1 is there, recorded and stored.
      await settlesAndStays(() => storedKeys(`_mpu/${UploadId}/`), attempt);
      expect(await localState(UploadId!)).toEqual({ uploads: 1, parts: 1, objects: 0, r2: 1 });
      const parts = await client.send(new ListPartsCommand({ Bucket: bucket, Key: key, UploadId }));
      expect((parts.Parts ?? []).map((p) => [p.PartNumber, p.ETag, p.Size])).toEqual([[1, ETag, part1.byteLength]]);
      expect(await getSha(key)).toBe(sha256(previous));
      if (end === "complete") {
        await client.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag }] } }));
        expect(await getSha(key)).toBe(sha256(part1));
        expect(await localState(UploadId!)).toEqual({ uploads: 0, parts: 0, objects: 1, r2: 1 });
        // Back to the single-stream previous version for the abort round (releases the parts).
        await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: previous }));
      } else {
        await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId }));
        expect(await localState(UploadId!)).toEqual({ uploads: 0, parts: 0, objects: 0, r2: 0 });
        expect(await getSha(key)).toBe(sha256(previous));
      }
    }
  });
});

// ---- a bad trailer at the end of 95 MiB ----------------------------------------------------------

describe.skipIf(noPython)("aws-chunked upload with a wrong trailer", () => {
  it("95 MiB, STREAMING-UNSIGNED-PAYLOAD-TRAILER, x-amz-checksum-crc32 that does not match: 400 BadDigest, nothing stored, the previous version intact", async () => {
    const key = "trailer/big";
    const previous = randomBytes(MiB + 3);
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: previous, ServerSideEncryption: "aws:kms" }));
    const keysBefore = await storedKeys(`${bucket}/`);

    // As large as a request body may be: just under MAX_REQUEST_BODY_BYTES (100,000,000 by
    // default; Cloudflare's limit for Free and Pro zones), framing included.
    const total = 95 * MiB;
    const chunk = 64 * 1024;
    const trailer = "x-amz-checksum-crc32:AAAAAA==\r\n"; // CRC32 0x00000000: not this body's (2^-32 odds)
    const chunks = Math.ceil(total / chunk);
    const frame = (size: number) => size.toString(16).length + 2 + size + 2;
    const encodedLength = (chunks - 1) * frame(chunk) + frame(total - (chunks - 1) * chunk) + "0\r\n".length + trailer.length + 2;
    const path = `/${bucket}/${key}`;
    const headers = await signedHeaders("PUT", path, {}, {
      "content-encoding": "aws-chunked",
      "content-length": String(encodedLength),
      "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
      "x-amz-decoded-content-length": String(total),
      "x-amz-trailer": "x-amz-checksum-crc32",
      ...KMS,
    });
    const url = new URL(endpoint());
    const started = Date.now();
    const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request({ host: url.hostname, port: url.port, method: "PUT", path, headers }, (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => (text += d));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
      });
      req.on("error", reject);
      // Generated as it is sent: one 64 KiB block of random bytes, varied per chunk.
      const block = randomBytes(chunk);
      void (async () => {
        let sent = 0;
        for (let i = 0; i < chunks; i++) {
          const size = Math.min(chunk, total - sent);
          block.writeUInt32BE(i, 0);
          const piece = Buffer.concat([Buffer.from(`${size.toString(16)}\r\n`), block.subarray(0, size), Buffer.from("\r\n")]);
          sent += size;
          if (!req.write(piece)) await new Promise((r) => req.once("drain", r));
        }
        req.end(`0\r\n${trailer}\r\n`);
      })().catch(reject);
    });
    console.log(`95 MiB aws-chunked upload with a bad trailer: ${status} after ${((Date.now() - started) / 1000).toFixed(1)} s`);
    expect(status, body).toBe(400);
    expect(body).toContain("<Code>BadDigest</Code>");
    await settlesAndStays(() => storedKeys(`${bucket}/`), keysBefore);
    expect(await getSha(key)).toBe(sha256(previous));
  });
});
