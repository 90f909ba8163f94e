/**
 * POST Object files larger than one buffer (8 MiB): stored in the multipart layout, read
 * back like any object; limits and checksums that fail half-way leave nothing behind.
 */
import { Crc64Nvme } from "@aws-sdk/crc64-nvme";
import { env, exports } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { STREAM_BUFFER_BYTES } from "../../src/objects/write-streamed";
import { multipartBody, signedForm, type Part } from "../support/post-form";
import { crc32Base64 } from "../support/s3-harness";
import { call, createBucket, CREDENTIALS, HOST, seedIdentities } from "../support/worker-client";

const BUCKET = "post-large";
const MiB = 1024 * 1024;

function pseudoRandom(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 255;
    out[i + 1] = (x >>> 8) & 255;
    out[i + 2] = (x >>> 16) & 255;
    out[i + 3] = (x >>> 24) & 255;
  }
  return out;
}

function form(key: string, file: Uint8Array, extra: { fields?: Record<string, string>; conditions?: unknown[] } = {}): Promise<Part[]> {
  return signedForm(CREDENTIALS.adminA, BUCKET, key, file, extra);
}

async function post(parts: Part[]): Promise<Response> {
  const { body, contentType } = multipartBody(parts);
  return (exports as unknown as { default: Fetcher }).default.fetch(new Request(`http://${HOST}/${BUCKET}`, { method: "POST", headers: { "content-type": contentType }, body }));
}

async function readBack(key: string): Promise<Uint8Array> {
  const r = await call("adminA", { method: "GET", bucket: BUCKET, key });
  expect(r.status).toBe(200);
  return new Uint8Array(await r.arrayBuffer());
}

async function leftovers(): Promise<{ parts: number; uploads: number }> {
  const listed = await env.OBJECTS.list({ prefix: "_mpu/" });
  const row = await env.DB.prepare("SELECT count(*) AS n FROM multipart_uploads").first<{ n: number }>();
  return { parts: listed.objects.length, uploads: row?.n ?? 0 };
}

const equal = (a: Uint8Array, b: Uint8Array) => a.byteLength === b.byteLength && a.every((v, i) => v === b[i]);

beforeAll(async () => {
  await seedIdentities();
  await createBucket("adminA", BUCKET);
});

describe("files larger than one buffer", () => {
  it("are stored in the multipart layout (SSE-KMS) and read back whole and by range", { timeout: 60_000 }, async () => {
    const file = pseudoRandom(2 * STREAM_BUFFER_BYTES + 12345, 7);
    const r = await post(await form("big/three-parts", file, { fields: { "x-amz-server-side-encryption": "aws:kms", success_action_status: "201" } }));
    const text = await r.text();
    expect(r.status, text).toBe(201);
    expect(r.headers.get("etag")).toMatch(/^"[0-9a-f]{32}-3"$/);
    expect(r.headers.get("x-amz-server-side-encryption")).toBe("aws:kms");
    expect(equal(await readBack("big/three-parts"), file)).toBe(true);
    const range = await call("adminA", { method: "GET", bucket: BUCKET, key: "big/three-parts", headers: { range: `bytes=${STREAM_BUFFER_BYTES - 10}-${STREAM_BUFFER_BYTES + 9}` } });
    expect(range.status).toBe(206);
    expect(equal(new Uint8Array(await range.arrayBuffer()), file.subarray(STREAM_BUFFER_BYTES - 10, STREAM_BUFFER_BYTES + 10))).toBe(true);
    const head = await call("adminA", { method: "HEAD", bucket: BUCKET, key: "big/three-parts" });
    expect(head.headers.get("content-length")).toBe(String(file.byteLength));
    expect(head.headers.get("etag")).toBe(r.headers.get("etag"));
    expect(await leftovers()).toEqual({ parts: 3, uploads: 0 });
  });

  it("exactly one buffer stays a single stream; one byte more is two parts", { timeout: 60_000 }, async () => {
    const exact = pseudoRandom(STREAM_BUFFER_BYTES, 1);
    const one = await post(await form("big/exact", exact));
    expect(one.status).toBe(204);
    expect(one.headers.get("etag")).toMatch(/^"[0-9a-f]{32}"$/);
    expect(equal(await readBack("big/exact"), exact)).toBe(true);

    const over = pseudoRandom(STREAM_BUFFER_BYTES + 1, 2);
    const two = await post(await form("big/over", over));
    expect(two.status).toBe(204);
    expect(two.headers.get("etag")).toMatch(/-2"$/);
    expect(equal(await readBack("big/over"), over)).toBe(true);
  });

  it("passing content-length-range half-way aborts: no object, no parts, no upload rows", async () => {
    const before = await leftovers();
    const file = pseudoRandom(20 * MiB, 3);
    const r = await post(await form("big/too-large", file, { conditions: [["content-length-range", 0, 12 * MiB]] }));
    expect(r.status).toBe(400);
    expect(await r.text()).toContain("<Code>EntityTooLarge</Code>");
    expect(await env.OBJECTS.head(`${BUCKET}/big/too-large`)).toBeNull();
    expect(await leftovers()).toEqual(before);
  });

  it("the file's checksum is kept: a CRC field as the object's FULL_OBJECT value, SHA or none as the default CRC64NVME", { timeout: 60_000 }, async () => {
    const file = pseudoRandom(STREAM_BUFFER_BYTES + 4321, 11);
    const crc64 = new Crc64Nvme();
    crc64.update(file);
    const crc64Value = btoa(String.fromCharCode(...(await crc64.digest())));
    const sha = btoa(String.fromCharCode(...new Uint8Array(await crypto.subtle.digest("SHA-256", file))));
    const cases: Array<[string, Record<string, string>, string, string]> = [
      ["big/crc32", { "x-amz-checksum-crc32": crc32Base64(file) }, "x-amz-checksum-crc32", crc32Base64(file)],
      ["big/none", {}, "x-amz-checksum-crc64nvme", crc64Value],
      ["big/sha", { "x-amz-checksum-sha256": sha }, "x-amz-checksum-crc64nvme", crc64Value],
    ];
    for (const [key, fields, header, value] of cases) {
      expect((await post(await form(key, file, { fields }))).status, key).toBe(204);
      const head = await call("adminA", { method: "HEAD", bucket: BUCKET, key, headers: { "x-amz-checksum-mode": "ENABLED" } });
      expect(head.headers.get(header), key).toBe(value);
      expect(head.headers.get("x-amz-checksum-type"), key).toBe("FULL_OBJECT");
    }
  });

  it("a checksum that fails at the end aborts, and an existing object stays", async () => {
    const original = pseudoRandom(1000, 4);
    expect((await post(await form("big/keep", original))).status).toBe(204);
    const before = await leftovers();
    const file = pseudoRandom(STREAM_BUFFER_BYTES + 5 * MiB, 5);
    const wrong = btoa(String.fromCharCode(...new Uint8Array(32)));
    const r = await post(await form("big/keep", file, { fields: { "x-amz-checksum-sha256": wrong } }));
    expect(r.status).toBe(400);
    expect(await r.text()).toContain("<Code>BadDigest</Code>");
    expect(equal(await readBack("big/keep"), original)).toBe(true);
    expect(await leftovers()).toEqual(before);
  });
});
