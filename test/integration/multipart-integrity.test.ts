import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { ENVELOPE_KEY } from "../../src/crypto/envelope";
import { MiB, concat, multipartPut, traces } from "../support/multipart";
import { pseudoRandom } from "../support/sources";
import { createBucket, readFully, sameBytes, seedIdentities, send, uniqueBucket } from "../support/s3-harness";

/**
 * Someone with write access to R2 alone (no master secret, no CMK material) edits a
 * multipart object: drops, reorders, swaps or truncates parts, or edits the manifest.
 * Every such object must be refused — an error status before any byte, or a body that
 * errors instead of ending — and never served as if intact.
 */
const bucket = uniqueBucket("mpu-tamper");
const PARTS = [pseudoRandom(5 * MiB, 21), pseudoRandom(5 * MiB, 22), pseudoRandom(200_000, 23)];
const WHOLE = concat(PARTS);

beforeAll(async () => {
  await seedIdentities();
  await createBucket("adminA", bucket);
});

let n = 0;
/** A fresh completed object and the R2 keys of its parts, in order. */
async function fresh(parts = PARTS) {
  const key = `obj-${++n}`;
  const done = await multipartPut("adminA", bucket, key, parts, { "x-amz-server-side-encryption": "aws:kms" });
  const r2 = (await traces(done.uploadId)).r2.sort();
  return { key, r2, uploadId: done.uploadId };
}

async function raw(key: string): Promise<Uint8Array> {
  return new Uint8Array(await (await env.OBJECTS.get(key))!.arrayBuffer());
}

/** Refused: an error status, or a body that errors (never a clean, complete answer). */
async function expectRefused(response: Response, expected?: Uint8Array): Promise<"status" | "aborted"> {
  if (response.status >= 400) {
    await response.text();
    expect(response.status).toBe(500);
    return "status";
  }
  const body = await readFully(response);
  expect(body.errored).toBe(true);
  if (expected) expect(sameBytes(body.bytes, expected)).toBe(false);
  return "aborted";
}

const get = (key: string, headers: Record<string, string> = {}, query: Record<string, string> = {}) => send("adminA", { method: "GET", bucket, key, headers, query });

describe("tampered multipart objects are never served", () => {
  it("an intact object reads back (the control case)", async () => {
    const o = await fresh();
    const body = await readFully(await get(o.key));
    expect(body.errored).toBe(false);
    expect(sameBytes(body.bytes, WHOLE)).toBe(true);
  });

  it("dropped trailing part: refused before any byte is sent", async () => {
    const o = await fresh();
    await env.OBJECTS.delete(o.r2[2]!);
    expect(await expectRefused(await get(o.key))).toBe("status");
    expect(await expectRefused(await get(o.key, { range: `bytes=0-${WHOLE.byteLength - 1}` }))).toBe("status");
    expect(await expectRefused(await get(o.key, {}, { partNumber: "3" }))).toBe("status");
    // Parts that are still there still serve their own ranges.
    const first = await get(o.key, { range: "bytes=0-99" });
    expect(first.status).toBe(206);
    expect(sameBytes((await readFully(first)).bytes, WHOLE.subarray(0, 100))).toBe(true);
  });

  it("dropped middle part: the body errors, never ends cleanly", async () => {
    const o = await fresh();
    await env.OBJECTS.delete(o.r2[1]!);
    await expectRefused(await get(o.key), WHOLE);
  });

  it("reordered parts (part 1 and 2 swapped in place): refused", async () => {
    const o = await fresh();
    const [a, b] = [await raw(o.r2[0]!), await raw(o.r2[1]!)];
    await env.OBJECTS.put(o.r2[0]!, b);
    await env.OBJECTS.put(o.r2[1]!, a);
    expect(await expectRefused(await get(o.key))).toBe("status");
    expect(await expectRefused(await get(o.key, { range: "bytes=100-200" }))).toBe("status");
    expect(await expectRefused(await get(o.key, {}, { partNumber: "2" }))).toBe("status");
  });

  it("a part swapped for another object's part with the same number: refused", async () => {
    const o = await fresh();
    const other = await fresh([pseudoRandom(5 * MiB, 31), pseudoRandom(5 * MiB, 32), pseudoRandom(200_000, 33)]);
    await env.OBJECTS.put(o.r2[1]!, await raw(other.r2[1]!));
    expect(await expectRefused(await get(o.key, {}, { partNumber: "2" }))).toBe("status");
    await expectRefused(await get(o.key), WHOLE);
  });

  it("an earlier attempt of the same part put back: refused (every attempt has its own salt)", async () => {
    const key = `retry-${++n}`;
    const { createUpload, uploadPart, completeRequest } = await import("../support/multipart");
    const id = await createUpload("adminA", bucket, key);
    await uploadPart("adminA", bucket, key, id, 1, pseudoRandom(1000, 1));
    const first = (await traces(id)).r2[0]!;
    const firstBytes = await raw(first);
    const etag = await uploadPart("adminA", bucket, key, id, 1, pseudoRandom(1000, 2));
    expect((await completeRequest("adminA", bucket, key, id, [{ partNumber: 1, etag }])).status).toBe(200);
    const current = (await traces(id)).r2[0]!;
    await env.OBJECTS.put(current, firstBytes);
    expect(await expectRefused(await get(key))).toBe("status");
  });

  it("truncated part: refused (stored size and final-chunk flag)", async () => {
    const o = await fresh();
    const bytes = await raw(o.r2[2]!);
    await env.OBJECTS.put(o.r2[2]!, bytes.subarray(0, bytes.byteLength - 65552));
    expect(await expectRefused(await get(o.key))).toBe("status");
    const mid = await raw(o.r2[1]!);
    await env.OBJECTS.put(o.r2[1]!, mid.subarray(0, 32 + 65552));
    expect(await expectRefused(await get(o.key, {}, { partNumber: "2" }))).toBe("status");
  });

  it("a part with one flipped bit: the body errors at that chunk", async () => {
    const o = await fresh();
    const bytes = await raw(o.r2[1]!);
    bytes[3 * 65552 + 100]! ^= 1;
    await env.OBJECTS.put(o.r2[1]!, bytes);
    await expectRefused(await get(o.key), WHOLE);
  });

  // Moves 10+ MiB through workerd: ~1.3 s alone, over 5 s when the shared machine is loaded.
  it("an edited manifest (an entry dropped, a length changed, parts reordered): refused before any byte", { timeout: 30_000 }, async () => {
    const edits: Array<(m: { p: Array<{ n: number; l: number }> }) => void> = [
      (m) => void m.p.pop(),
      (m) => void (m.p[0]!.l -= 65536),
      (m) => void m.p.reverse(),
    ];
    for (const edit of edits) {
      const o = await fresh();
      const object = await env.OBJECTS.get(`${bucket}/${o.key}`);
      const manifest = JSON.parse(await object!.text());
      edit(manifest);
      await env.OBJECTS.put(`${bucket}/${o.key}`, JSON.stringify(manifest), { customMetadata: object!.customMetadata! });
      expect(await expectRefused(await get(o.key))).toBe("status");
      expect(await expectRefused(await get(o.key, {}, { partNumber: "1" }))).toBe("status");
    }
  });

  it("an edited manifest with its hash and part count updated in the envelope: the MAC refuses it", async () => {
    const o = await fresh();
    const object = await env.OBJECTS.get(`${bucket}/${o.key}`);
    const manifest = JSON.parse(await object!.text());
    manifest.p.pop();
    const bytes = new TextEncoder().encode(JSON.stringify(manifest));
    const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
    const envelope = JSON.parse(object!.customMetadata![ENVELOPE_KEY]!);
    envelope.p = { c: manifest.p.length, h: btoa(String.fromCharCode(...hash)) };
    envelope.n = manifest.p.reduce((s: number, p: { l: number }) => s + p.l, 0);
    await env.OBJECTS.put(`${bucket}/${o.key}`, bytes, { customMetadata: { ...object!.customMetadata!, [ENVELOPE_KEY]: JSON.stringify(envelope) } });
    expect(await expectRefused(await get(o.key))).toBe("status");
    const head = await send("adminA", { method: "HEAD", bucket, key: o.key });
    expect(head.status).toBe(500);
  });

  it("a manifest copied to another key does not verify there (bucket and key are under the MAC)", async () => {
    const o = await fresh();
    const object = await env.OBJECTS.get(`${bucket}/${o.key}`);
    await env.OBJECTS.put(`${bucket}/stolen-${o.key}`, await object!.arrayBuffer(), { customMetadata: object!.customMetadata! });
    expect(await expectRefused(await get(`stolen-${o.key}`))).toBe("status");
  });
});
