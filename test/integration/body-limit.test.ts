/**
 * MAX_REQUEST_BODY_BYTES: Cloudflare's request body limit of the zone plan, answered in
 * S3's words. PutObject, UploadPart and POST Object whose body is over it are refused at
 * once with 400 EntityTooLarge (ProposedSize, MaxSizeAllowed), before a byte of the body
 * is read; nothing is stored and what was there stays.
 */
import { beforeAll, describe, expect, it } from "vitest";
import type { Env } from "../../src/env";
import { amzDate, encodePolicy, multipartBody, signV4, v4Fields } from "../support/post-form";
import { createUpload, uploadPartRequest, completeRequest } from "../support/multipart";
import {
  createBucket,
  CREDENTIALS,
  expectError,
  fetchWorker,
  HOST,
  seedIdentities,
  send,
  signerFor,
  uniqueBucket,
  xmlValue,
  xmlValues,
} from "../support/s3-harness";

const bucket = uniqueBucket("body-limit");
const LIMIT = 1000;
const limited: Partial<Env> = { MAX_REQUEST_BODY_BYTES: String(LIMIT) };
const bytes = (n: number, fill = 0x61) => new Uint8Array(n).fill(fill);

beforeAll(async () => {
  await seedIdentities();
  await createBucket("adminA", bucket);
});

async function get(key: string): Promise<{ status: number; text: string }> {
  const r = await send("adminA", { method: "GET", bucket, key });
  return { status: r.status, text: await r.text() };
}

/** The refusal: 400 EntityTooLarge with S3's elements and a message that names multipart upload. */
async function expectTooLarge(r: Response | Promise<Response>, proposed: number, max = LIMIT): Promise<void> {
  const e = await expectError(r, 400, "EntityTooLarge");
  expect(xmlValue(e.text, "ProposedSize")).toBe(String(proposed));
  expect(xmlValue(e.text, "MaxSizeAllowed")).toBe(String(max));
  expect(e.message).toContain(`at most ${max} bytes`);
  expect(e.message).toMatch(/multipart upload/);
}

/**
 * A signed request whose body is a stream that records what was pulled from it and
 * whether it was cancelled, so a test can see that nothing was read.
 */
async function streamed(o: { method: string; key: string; query?: Record<string, string>; headers: Record<string, string>; size: number; env?: Partial<Env> }) {
  const state = { pulled: 0, cancelled: false };
  let left = o.size;
  const body = new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        const n = Math.min(left, 64 * 1024);
        left -= n;
        state.pulled += n;
        if (n > 0) controller.enqueue(bytes(n));
        if (left === 0) controller.close();
      },
      cancel() {
        state.cancelled = true;
      },
    },
    { highWaterMark: 0 },
  );
  const path = `/${bucket}/${o.key}`;
  const query = o.query ?? {};
  const signed = await signerFor("adminA").sign({ method: o.method, protocol: "http:", hostname: HOST, path, query, headers: { host: HOST, ...o.headers } });
  const headers = new Headers();
  for (const [k, v] of Object.entries(signed.headers)) if (k !== "host") headers.set(k, v);
  const qs = new URLSearchParams(query).toString();
  const response = await fetchWorker(`http://${HOST}${path}${qs ? `?${qs}` : ""}`, { method: o.method, headers, body }, o.env ?? limited);
  return { response, state };
}

describe("PutObject", () => {
  it("one byte over the limit: EntityTooLarge, nothing stored, the previous version intact; at the limit it is stored", async () => {
    expect((await send("adminA", { method: "PUT", bucket, key: "kept", body: "version 1", env: limited })).status).toBe(200);
    await expectTooLarge(send("adminA", { method: "PUT", bucket, key: "kept", body: bytes(LIMIT + 1), env: limited }), LIMIT + 1);
    expect(await get("kept")).toEqual({ status: 200, text: "version 1" });

    await expectTooLarge(send("adminA", { method: "PUT", bucket, key: "never", body: bytes(LIMIT + 1), env: limited }), LIMIT + 1);
    expect((await get("never")).status).toBe(404);

    const atLimit = await send("adminA", { method: "PUT", bucket, key: "at-limit", body: bytes(LIMIT, 0x62), env: limited });
    expect(atLimit.status).toBe(200);
    expect(await get("at-limit")).toEqual({ status: 200, text: "b".repeat(LIMIT) });
  });

  it("refused before a byte of the body is read; the body is left unlocked for the runtime to drain", async () => {
    const { response, state } = await streamed({
      method: "PUT",
      key: "streamed",
      headers: { "content-length": String(5 * LIMIT), "x-amz-content-sha256": "UNSIGNED-PAYLOAD" },
      size: 5 * LIMIT,
    });
    await expectTooLarge(response, 5 * LIMIT);
    expect(state).toEqual({ pulled: 0, cancelled: false });
    expect((await get("streamed")).status).toBe(404);
  });

  it("the default limit is 100,000,000 bytes (Cloudflare's 100 MB, decimal); 0 or garbage mean the default", async () => {
    for (const value of [undefined, "0", "lots", "-5", "1e9"]) {
      const { response, state } = await streamed({
        method: "PUT",
        key: "huge",
        headers: { "content-length": "100000001", "x-amz-content-sha256": "UNSIGNED-PAYLOAD" },
        size: 100_000_001,
        env: { MAX_REQUEST_BODY_BYTES: value },
      });
      await expectTooLarge(response, 100_000_001, 100_000_000);
      expect(state.pulled, String(value)).toBe(0);
    }
  });

  it("aws-chunked: the body as sent counts (framing included); without Content-Length the decoded length alone can exceed it", async () => {
    // 990 bytes of data in one chunk: 3e6 hex + CRLFs + the final chunk make the wire body 1002 bytes.
    const framed = { "content-encoding": "aws-chunked", "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER", "x-amz-decoded-content-length": "990" };
    const wire = await streamed({ method: "PUT", key: "chunked", headers: { ...framed, "content-length": "1002" }, size: 1002 });
    await expectTooLarge(wire.response, 1002);
    expect(wire.state.pulled).toBe(0);

    const noLength = await streamed({ method: "PUT", key: "chunked", headers: { ...framed, "x-amz-decoded-content-length": String(LIMIT + 1) }, size: LIMIT + 20 });
    await expectTooLarge(noLength.response, LIMIT + 1);
    expect(noLength.state.pulled).toBe(0);
    expect((await get("chunked")).status).toBe(404);
  });

  it("CopyObject has no body to limit: a copy larger than the limit is made", async () => {
    expect((await send("adminA", { method: "PUT", bucket, key: "big-source", body: bytes(3 * LIMIT) })).status).toBe(200);
    const copy = await send("adminA", { method: "PUT", bucket, key: "big-copy", headers: { "x-amz-copy-source": `/${bucket}/big-source` }, env: limited });
    expect(copy.status, await copy.clone().text()).toBe(200);
    expect((await get("big-copy")).text).toBe("a".repeat(3 * LIMIT));
  });
});

describe("UploadPart", () => {
  it("a part over the limit is refused and not recorded; smaller parts complete the upload", async () => {
    const uploadId = await createUpload("adminA", bucket, "parts");
    await expectTooLarge(uploadPartRequest("adminA", bucket, "parts", uploadId, 1, bytes(LIMIT + 1), {}, { env: limited }), LIMIT + 1);
    const listed = await send("adminA", { method: "GET", bucket, key: "parts", query: { uploadId } });
    expect(xmlValues(await listed.text(), "PartNumber")).toEqual([]);

    const part = await uploadPartRequest("adminA", bucket, "parts", uploadId, 1, bytes(LIMIT), {}, { env: limited });
    expect(part.status).toBe(200);
    const done = await completeRequest("adminA", bucket, "parts", uploadId, [{ partNumber: 1, etag: part.headers.get("etag")! }]);
    expect(done.status, await done.clone().text()).toBe(200);
    expect(await get("parts")).toEqual({ status: 200, text: "a".repeat(LIMIT) });
  });

  it("refused before a byte is read", async () => {
    const uploadId = await createUpload("adminA", bucket, "parts-streamed");
    const { response, state } = await streamed({
      method: "PUT",
      key: "parts-streamed",
      query: { partNumber: "1", uploadId },
      headers: { "content-length": String(2 * LIMIT), "x-amz-content-sha256": "UNSIGNED-PAYLOAD" },
      size: 2 * LIMIT,
    });
    await expectTooLarge(response, 2 * LIMIT);
    expect(state).toEqual({ pulled: 0, cancelled: false });
  });
});

describe("POST Object", () => {
  // A form's fields and policy take ~1.3 KB, so the forms here have a limit of their own.
  const POST_LIMIT = 3000;
  const postLimited: Partial<Env> = { MAX_REQUEST_BODY_BYTES: String(POST_LIMIT) };
  async function form(key: string, file: Uint8Array) {
    const { accessKeyId, secretAccessKey } = CREDENTIALS.adminA;
    const date = amzDate();
    const fields = { bucket, ...v4Fields(accessKeyId, date) };
    const policy = encodePolicy([...Object.entries(fields).map(([k, v]) => ({ [k]: v })), ["starts-with", "$key", ""]]);
    const signature = await signV4(policy, secretAccessKey, date);
    return multipartBody([
      { name: "key", value: key },
      ...Object.entries(fields).map(([name, value]) => ({ name, value })),
      { name: "Policy", value: policy },
      { name: "X-Amz-Signature", value: signature },
      { name: "file", file, filename: "f.bin", contentType: "application/octet-stream" },
    ]);
  }
  // A Request handed to the worker module has no Content-Length unless given, as a chunked one.
  const post = (body: Uint8Array, contentType: string, chunked = false) =>
    fetchWorker(`http://${HOST}/${bucket}`, { method: "POST", headers: { "content-type": contentType, ...(chunked ? {} : { "content-length": String(body.byteLength) }) }, body }, postLimited);

  it("a form whose body is over the limit is refused (the form counts, not only its file); nothing stored; a smaller one is stored", async () => {
    const big = await form("posted", bytes(POST_LIMIT - 1000));
    expect(big.body.byteLength).toBeGreaterThan(POST_LIMIT);
    await expectTooLarge(post(big.body, big.contentType), big.body.byteLength, POST_LIMIT);
    expect((await get("posted")).status).toBe(404);

    const small = await form("posted", bytes(50));
    expect(small.body.byteLength).toBeLessThanOrEqual(POST_LIMIT);
    expect((await post(small.body, small.contentType)).status).toBe(204);
    expect(await get("posted")).toEqual({ status: 200, text: "a".repeat(50) });
  });

  it("a form sent without Content-Length: its file alone may not pass the limit (refused while streaming, nothing stored)", async () => {
    const big = await form("chunked-post", bytes(POST_LIMIT + 1));
    const e = await expectError(post(big.body, big.contentType, true), 400, "EntityTooLarge");
    expect(xmlValue(e.text, "MaxSizeAllowed")).toBe(String(POST_LIMIT));
    expect((await get("chunked-post")).status).toBe(404);

    const fits = await form("chunked-post", bytes(POST_LIMIT));
    expect((await post(fits.body, fits.contentType, true)).status).toBe(204);
  });
});
