/**
 * R2 failures injected while the worker writes, completes, reads, copies, aborts and
 * deletes (issue 8, item 3; docs/testing.md "Faults"). Requests go to the worker module
 * with an env whose OBJECTS binding fails at chosen calls (test/support/faulty-r2.ts).
 * Whatever fails: the answer is an S3 XML error (500 InternalError for a storage failure,
 * never a stack or an internal message), a read never delivers a byte that is not the
 * object's, no object is created or overwritten by a failed write, the previous version
 * stays intact and readable, and nothing is left behind once the documented clean-up ran.
 */
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { runMultipartCleanup } from "../../src/multipart/cleanup-job";
import { multipartEtag } from "../../src/multipart/complete";
import { faultyBucket, type Fault, type FaultyBucket } from "../support/faulty-r2";
import { completeRequest, createUpload, multipartPut, traces, uploadPart, uploadPartRequest, xmlValues } from "../support/multipart";
import { pseudoRandom } from "../support/sources";
import { createBucket, expectError, rawGet, readFully, sameBytes, seedIdentities, send, uniqueBucket, xmlValue, type RawObject, type Send } from "../support/s3-harness";

const bucket = uniqueBucket("faults");
const KMS = { "x-amz-server-side-encryption": "aws:kms" };
const MiB = 1024 * 1024;
let n = 0;
const fresh = (what: string) => `${what}-${++n}`;

beforeAll(async () => {
  await seedIdentities();
  await createBucket("adminA", bucket);
});

/** A request through the failing binding. */
function through(faulty: FaultyBucket, c: Send): Promise<Response> {
  return send("adminA", { ...c, env: { OBJECTS: faulty.bucket } });
}

/** 500 InternalError as a complete S3 XML document, saying nothing about the failure inside. */
async function expectStorageError(response: Response | Promise<Response>, faulty: FaultyBucket, faults = 1): Promise<void> {
  const e = await expectError(response, 500, "InternalError");
  expect(e.text).not.toMatch(/injected|InjectedR2Error|\bat .*\(|\.ts:\d/i);
  expect(faulty.fired.length, "the injected fault was reached").toBeGreaterThanOrEqual(faults);
}

async function put(key: string, body: Uint8Array, headers: Record<string, string> = KMS): Promise<void> {
  const r = await send("adminA", { method: "PUT", bucket, key, body, headers });
  expect(r.status, await r.clone().text()).toBe(200);
}

/** The object reads back exactly (GET through the real binding), and R2 holds what it held. */
async function expectIntact(key: string, plaintext: Uint8Array, stored?: RawObject | null): Promise<void> {
  const r = await send("adminA", { method: "GET", bucket, key });
  const { bytes, errored } = await readFully(r);
  expect(r.status).toBe(200);
  expect(errored).toBe(false);
  expect(sameBytes(bytes, plaintext), `${key} reads back`).toBe(true);
  if (stored) {
    const now = (await rawGet(bucket, key))!;
    expect(sameBytes(now.body, stored.body)).toBe(true);
    expect(now.customMetadata).toEqual(stored.customMetadata);
  }
}

async function rawKeys(prefix: string): Promise<string[]> {
  return (await env.OBJECTS.list({ prefix })).objects.map((o) => o.key).sort();
}

async function bucketKeys(): Promise<string[]> {
  return (await rawKeys(`${bucket}/`)).map((k) => k.slice(bucket.length + 1));
}

/** The default MULTIPART_RELEASE_GRACE_MINUTES: a dead multipart object's parts outlive it this long. */
const GRACE = 60 * 60 * 1000;
const deadSince = async (uploadId: string) =>
  (await env.DB.prepare("SELECT dead_since FROM multipart_objects WHERE upload_id = ?").bind(uploadId).first<{ dead_since: number | null }>())?.dead_since ?? null;

const uploadState = async (uploadId: string) =>
  (await env.DB.prepare("SELECT state FROM multipart_uploads WHERE upload_id = ?").bind(uploadId).first<{ state: string }>())?.state ?? null;

/** The clean-up job run until its sweep covered "_mpu/" (this file's storage is its own). */
async function sweep(now = Date.now()): Promise<void> {
  for (let i = 0; i < 20; i++) if ((await runMultipartCleanup(env, now)).sweepDone) return;
  throw new Error("sweep did not finish");
}

const is = (key: string) => (k: string) => k === key;
const under = (prefix: string) => (k: string) => k.startsWith(prefix);

describe("PutObject", () => {
  const cases: Array<[string, Fault["kind"]]> = [
    ["R2 refuses the put", "throw"],
    ["the connection to R2 drops mid-upload", "abort-upload"],
  ];
  it.each(cases)("%s: 500, the previous version intact, no new object created", async (_name, kind) => {
    const key = fresh("put");
    const before = pseudoRandom(200_000, 1);
    await put(key, before);
    const stored = await rawGet(bucket, key);
    const keysBefore = await bucketKeys();
    const faulty = faultyBucket([{ op: "put", kind }]);
    await expectStorageError(through(faulty, { method: "PUT", bucket, key, body: pseudoRandom(3 * MiB, 2), headers: KMS }), faulty);
    await expectIntact(key, before, stored);
    // A new key is not created either.
    const other = faultyBucket([{ op: "put", kind }]);
    await expectStorageError(through(other, { method: "PUT", bucket, key: `${key}-new`, body: pseudoRandom(3 * MiB, 3), headers: KMS }), other);
    expect(await rawGet(bucket, `${key}-new`)).toBeNull();
    expect(await bucketKeys()).toEqual(keysBefore);
  });

  it("R2 commits, then reports an error (ambiguous): 500, and the key holds one complete version", async () => {
    const key = fresh("put-ambiguous");
    const before = pseudoRandom(100_000, 4);
    const after = pseudoRandom(150_000, 5);
    await put(key, before);
    const faulty = faultyBucket([{ op: "put", kind: "throw-after" }]);
    await expectStorageError(through(faulty, { method: "PUT", bucket, key, body: after, headers: KMS }), faulty);
    // The write landed (nothing can undo a commit R2 made): the new version, whole.
    await expectIntact(key, after);
  });

  it("a failed PUT over a multipart object leaves that object and its parts in place", async () => {
    const key = fresh("put-over-mpu");
    const parts = [pseudoRandom(120_000, 6)];
    const done = await multipartPut("adminA", bucket, key, parts, KMS);
    const faulty = faultyBucket([{ op: "put", kind: "abort-upload" }]);
    await expectStorageError(through(faulty, { method: "PUT", bucket, key, body: pseudoRandom(2 * MiB, 7), headers: KMS }), faulty);
    await expectIntact(key, parts[0]!);
    expect(await traces(done.uploadId)).toMatchObject({ uploads: 0, objects: 1 });
    expect((await traces(done.uploadId)).r2).toHaveLength(1);
    await sweep();
    await expectIntact(key, parts[0]!);
  });
});

describe("GetObject, HeadObject, ListObjectsV2", () => {
  const key = "read-me";
  const plaintext = pseudoRandom(300_000, 8);
  beforeAll(() => put(key, plaintext));

  it("R2 refuses every get: 500 without any object byte (whole and ranged)", async () => {
    const ranges: Array<Record<string, string>> = [{}, { range: "bytes=1000-70000" }, { range: "bytes=-10" }];
    for (const headers of ranges) {
      const faulty = faultyBucket([{ op: "get", nth: "every", kind: "throw" }]);
      await expectStorageError(through(faulty, { method: "GET", bucket, key, headers }), faulty);
    }
  });

  it("a ranged read whose first get fails is read again (src/objects/read.ts): the right bytes, or nothing", async () => {
    const faulty = faultyBucket([{ op: "get", kind: "throw" }]);
    const r = await through(faulty, { method: "GET", bucket, key, headers: { range: "bytes=1000-70000" } });
    expect(r.status).toBe(206);
    const { bytes, errored } = await readFully(r);
    expect(errored).toBe(false);
    expect(sameBytes(bytes, plaintext.subarray(1000, 70001))).toBe(true);
    expect(faulty.fired).toHaveLength(1);
  });

  it("the stored body of a small object errors mid-read: 500 before any byte (it is read whole before the answer)", async () => {
    for (const headers of [{}, { range: "bytes=70000-" }] as Array<Record<string, string>>) {
      const faulty = faultyBucket([{ op: "get", kind: "body-error", afterBytes: 150_000 }]);
      await expectStorageError(through(faulty, { method: "GET", bucket, key, headers }), faulty);
    }
  });

  it("the stored body of a large object errors mid-stream: the response aborts, and what it delivered is the object's own prefix", async () => {
    const large = "read-me-large";
    const plain = pseudoRandom(3 * 1024 * 1024 + 5, 9);
    await put(large, plain);
    for (const [headers, first] of [[{}, 0], [{ range: "bytes=70000-" }, 70000]] as const) {
      // Past the first decryption step (CHUNKS_PER_STEP chunks), so authentic bytes went out first.
      const faulty = faultyBucket([{ op: "get", kind: "body-error", afterBytes: 1_500_000 }]);
      const r = await through(faulty, { method: "GET", bucket, key: large, headers });
      expect(r.status).toBe(first === 0 ? 200 : 206);
      const { bytes, errored } = await readFully(r);
      expect(errored).toBe(true);
      expect(bytes.byteLength).toBeGreaterThan(0);
      expect(bytes.byteLength).toBeLessThan(plain.byteLength - first);
      expect(sameBytes(bytes, plain.subarray(first, first + bytes.byteLength))).toBe(true);
      expect(faulty.fired).toHaveLength(1);
    }
  });

  it("HEAD: R2 refuses the head: 500 without a body", async () => {
    const faulty = faultyBucket([{ op: "head", kind: "throw" }]);
    const r = await through(faulty, { method: "HEAD", bucket, key });
    expect(r.status).toBe(500);
    expect((await r.arrayBuffer()).byteLength).toBe(0);
    expect(faulty.fired).toHaveLength(1);
  });

  it("ListObjectsV2: R2 refuses the list: 500 InternalError", async () => {
    const faulty = faultyBucket([{ op: "list", kind: "throw" }]);
    await expectStorageError(through(faulty, { method: "GET", bucket, query: { "list-type": "2" } }), faulty);
  });

  it("a multipart object: a failing first part (or manifest) is refused before any byte; a later part aborts the body after authentic bytes", async () => {
    const mkey = fresh("read-mpu");
    const parts = [pseudoRandom(5 * MiB, 9), pseudoRandom(80_000, 10)];
    const whole = new Uint8Array([...parts[0]!, ...parts[1]!]);
    const done = await multipartPut("adminA", bucket, mkey, parts, KMS);
    const [first, second] = (await traces(done.uploadId)).r2.sort();

    for (const fault of [
      { op: "get", key: is(first!), kind: "throw" },
      { op: "get", key: is(`${bucket}/${mkey}`), kind: "body-error", afterBytes: 10 },
      { op: "head", key: is(second!), kind: "throw" },
    ] satisfies Fault[]) {
      const faulty = faultyBucket([fault]);
      await expectStorageError(through(faulty, { method: "GET", bucket, key: mkey }), faulty);
    }
    for (const fault of [
      { op: "get", key: is(second!), kind: "throw" },
      { op: "get", key: is(first!), kind: "body-error", afterBytes: 2 * MiB },
    ] satisfies Fault[]) {
      const faulty = faultyBucket([fault]);
      const r = await through(faulty, { method: "GET", bucket, key: mkey });
      expect(r.status).toBe(200);
      const { bytes, errored } = await readFully(r);
      expect(errored).toBe(true);
      expect(bytes.byteLength).toBeLessThanOrEqual(parts[0]!.byteLength);
      expect(sameBytes(bytes, whole.subarray(0, bytes.byteLength))).toBe(true);
      expect(faulty.fired).toHaveLength(1);
    }
    await expectIntact(mkey, whole);
  });
});

describe("CopyObject", () => {
  it("the target's put fails: 500; the target keeps its previous version, the source is intact (single-stream and multipart sources)", async () => {
    const source = fresh("copy-src");
    const mpuSource = fresh("copy-src-mpu");
    const target = fresh("copy-dst");
    const plaintext = pseudoRandom(2 * MiB, 11);
    await put(source, plaintext);
    await multipartPut("adminA", bucket, mpuSource, [plaintext], KMS);
    const previous = pseudoRandom(1000, 12);
    await put(target, previous);
    const stored = await rawGet(bucket, target);
    for (const src of [source, mpuSource]) {
      for (const kind of ["throw", "abort-upload"] as const) {
        const faulty = faultyBucket([{ op: "put", key: is(`${bucket}/${target}`), kind }]);
        await expectStorageError(through(faulty, { method: "PUT", bucket, key: target, headers: { "x-amz-copy-source": `/${bucket}/${src}` } }), faulty);
        await expectIntact(target, previous, stored);
        await expectIntact(src, plaintext);
      }
    }
  });
});

describe("UploadPart", () => {
  it("the connection to R2 drops mid-part: 500; the part is not recorded and nothing is stored for it", async () => {
    const key = fresh("part-abort");
    const id = await createUpload("adminA", bucket, key, KMS);
    const one = pseudoRandom(100_000, 13);
    const etag = await uploadPart("adminA", bucket, key, id, 1, one);
    const faulty = faultyBucket([{ op: "put", kind: "abort-upload" }]);
    await expectStorageError(uploadPartRequest("adminA", bucket, key, id, 2, pseudoRandom(3 * MiB, 14), {}, { env: { OBJECTS: faulty.bucket } }), faulty);
    const listed = await send("adminA", { method: "GET", bucket, key, query: { uploadId: id } });
    expect(xmlValues(await listed.text(), "PartNumber")).toEqual(["1"]);
    expect(await traces(id)).toMatchObject({ uploads: 1, parts: 1 });
    expect((await traces(id)).r2).toHaveLength(1);
    // The upload goes on: completing it with part 1 gives exactly that object.
    expect((await completeRequest("adminA", bucket, key, id, [{ partNumber: 1, etag }])).status).toBe(200);
    await expectIntact(key, one);
    expect(await traces(id)).toMatchObject({ uploads: 0, parts: 0, objects: 1 });
    expect((await traces(id)).r2).toHaveLength(1);
  });

  it("R2 stores the part, then reports an error: 500; the unrecorded attempt is not listed, and complete or abort removes it", async () => {
    for (const end of ["complete", "abort"] as const) {
      const key = fresh(`part-ambiguous-${end}`);
      const id = await createUpload("adminA", bucket, key, KMS);
      const one = pseudoRandom(100_000, 15);
      const etag = await uploadPart("adminA", bucket, key, id, 1, one);
      const faulty = faultyBucket([{ op: "put", kind: "throw-after" }]);
      await expectStorageError(uploadPartRequest("adminA", bucket, key, id, 2, pseudoRandom(50_000, 16), {}, { env: { OBJECTS: faulty.bucket } }), faulty);
      const listed = await send("adminA", { method: "GET", bucket, key, query: { uploadId: id } });
      expect(xmlValues(await listed.text(), "PartNumber")).toEqual(["1"]);
      expect((await traces(id)).r2).toHaveLength(2);
      if (end === "complete") {
        expect((await completeRequest("adminA", bucket, key, id, [{ partNumber: 1, etag }])).status).toBe(200);
        await expectIntact(key, one);
        expect((await traces(id)).r2).toHaveLength(1);
      } else {
        expect((await send("adminA", { method: "DELETE", bucket, key, query: { uploadId: id } })).status).toBe(204);
        expect(await traces(id)).toEqual({ uploads: 0, parts: 0, objects: 0, r2: [] });
        expect(await rawGet(bucket, key)).toBeNull();
      }
    }
  });

  it("the superseded attempt cannot be deleted: 200 (the new attempt is recorded); the stale attempt goes at complete", async () => {
    const key = fresh("part-retry");
    const id = await createUpload("adminA", bucket, key, KMS);
    await uploadPart("adminA", bucket, key, id, 1, pseudoRandom(10_000, 17));
    const second = pseudoRandom(20_000, 18);
    const faulty = faultyBucket([{ op: "delete", key: under(`_mpu/${id}/`), kind: "throw" }]);
    const retried = await uploadPartRequest("adminA", bucket, key, id, 1, second, {}, { env: { OBJECTS: faulty.bucket } });
    expect(retried.status, await retried.clone().text()).toBe(200);
    expect(faulty.fired.length, "the injected fault was reached").toBe(1);
    expect((await traces(id)).r2).toHaveLength(2);
    const listed = await (await send("adminA", { method: "GET", bucket, key, query: { uploadId: id } })).text();
    const etag = xmlValues(listed, "ETag")[0]!;
    expect((await completeRequest("adminA", bucket, key, id, [{ partNumber: 1, etag }])).status).toBe(200);
    await expectIntact(key, second);
    expect((await traces(id)).r2).toHaveLength(1);
  });
});

describe("CompleteMultipartUpload", () => {
  it("listing the upload's parts fails: 500; the upload is untouched, the previous object intact, and a retry completes", async () => {
    const key = fresh("complete-list");
    const before = pseudoRandom(5000, 19);
    await put(key, before);
    const stored = await rawGet(bucket, key);
    const id = await createUpload("adminA", bucket, key, KMS);
    const part = pseudoRandom(90_000, 20);
    const etag = await uploadPart("adminA", bucket, key, id, 1, part);
    const faulty = faultyBucket([{ op: "list", kind: "throw" }]);
    await expectStorageError(completeRequest("adminA", bucket, key, id, [{ partNumber: 1, etag }], { env: { OBJECTS: faulty.bucket } }), faulty);
    expect(await uploadState(id)).toBe("active");
    await expectIntact(key, before, stored);
    expect((await completeRequest("adminA", bucket, key, id, [{ partNumber: 1, etag }])).status).toBe(200);
    await expectIntact(key, part);
  });

  it("the manifest put fails: 500; the upload is given back, the previous version intact; an abort then leaves nothing", async () => {
    const key = fresh("complete-manifest");
    const before = pseudoRandom(5000, 21);
    await put(key, before);
    const stored = await rawGet(bucket, key);
    const id = await createUpload("adminA", bucket, key, KMS);
    const etag = await uploadPart("adminA", bucket, key, id, 1, pseudoRandom(90_000, 22));
    const faulty = faultyBucket([{ op: "put", key: is(`${bucket}/${key}`), kind: "throw" }]);
    await expectStorageError(completeRequest("adminA", bucket, key, id, [{ partNumber: 1, etag }], { env: { OBJECTS: faulty.bucket } }), faulty);
    expect(await uploadState(id)).toBe("active");
    await expectIntact(key, before, stored);
    expect((await send("adminA", { method: "DELETE", bucket, key, query: { uploadId: id } })).status).toBe(204);
    expect(await traces(id)).toEqual({ uploads: 0, parts: 0, objects: 0, r2: [] });
    await expectIntact(key, before, stored);
  });

  it("the manifest lands but R2 reports an error: 500; the object is complete, and the clean-up settles the upload and releases the object it replaced after the grace", async () => {
    const key = fresh("complete-ambiguous");
    const old = await multipartPut("adminA", bucket, key, [pseudoRandom(40_000, 23)], KMS);
    const id = await createUpload("adminA", bucket, key, KMS);
    const part = pseudoRandom(90_000, 24);
    const etag = await uploadPart("adminA", bucket, key, id, 1, part);
    const faulty = faultyBucket([{ op: "put", key: is(`${bucket}/${key}`), kind: "throw-after" }]);
    await expectStorageError(completeRequest("adminA", bucket, key, id, [{ partNumber: 1, etag }], { env: { OBJECTS: faulty.bucket } }), faulty);
    await expectIntact(key, part);
    // Nobody retries: the upload stays held until the clean-up sees the complete has died
    // (STALE_COMPLETE_MS). A retry settles it at once (next test).
    expect(await uploadState(id)).toBe("completing");
    const settledAt = Date.now() + 16 * 60 * 1000;
    await sweep(settledAt);
    expect(await traces(id)).toMatchObject({ uploads: 0, parts: 0, objects: 1 });
    expect((await traces(id)).r2).toHaveLength(1);
    // The replaced object: seen dead by that sweep, its parts kept for the grace.
    expect(await traces(old.uploadId)).toMatchObject({ uploads: 0, parts: 0, objects: 1 });
    expect((await traces(old.uploadId)).r2).toHaveLength(1);
    expect(await deadSince(old.uploadId)).toBe(settledAt);
    await sweep(settledAt + GRACE);
    expect(await traces(old.uploadId)).toEqual({ uploads: 0, parts: 0, objects: 0, r2: [] });
    expect(await deadSince(id)).toBeNull();
    expect((await traces(id)).r2).toHaveLength(1);
    await expectIntact(key, part);
  });

  it("the manifest lands but R2 reports an error: the client's retry of the Complete answers 200 with the object's ETag and settles the upload", async () => {
    const key = fresh("complete-ambiguous-retry");
    const old = await multipartPut("adminA", bucket, key, [pseudoRandom(40_000, 28)], KMS);
    const id = await createUpload("adminA", bucket, key, KMS);
    const part = pseudoRandom(90_000, 29);
    const etag = await uploadPart("adminA", bucket, key, id, 1, part);
    const faulty = faultyBucket([{ op: "put", key: is(`${bucket}/${key}`), kind: "throw-after" }]);
    await expectStorageError(completeRequest("adminA", bucket, key, id, [{ partNumber: 1, etag }], { env: { OBJECTS: faulty.bucket } }), faulty);
    expect(await uploadState(id)).toBe("completing");
    const stored = await rawGet(bucket, key);
    // The SDK retries: the object is there with this part list, so the answer is success (was 409 OperationAborted until the clean-up ran).
    const before = Date.now();
    const retry = await completeRequest("adminA", bucket, key, id, [{ partNumber: 1, etag }]);
    const text = await retry.text();
    expect(retry.status, text).toBe(200);
    expect(xmlValue(text, "ETag")).toBe(`"${await multipartEtag([etag.replace(/"/g, "")])}"`);
    expect(retry.headers.get("x-amz-server-side-encryption")).toBe("aws:kms");
    expect(await traces(id)).toMatchObject({ uploads: 0, parts: 0, objects: 1 });
    // Nothing was written again; the object it replaced is marked dead now (released after the grace).
    expect(await rawGet(bucket, key)).toEqual(stored);
    expect(await deadSince(old.uploadId)).toBeGreaterThanOrEqual(before);
    const again = await completeRequest("adminA", bucket, key, id, [{ partNumber: 1, etag }]);
    expect(await again.text()).toBe(text);
    await expectIntact(key, part);
  });

  it("deleting unused parts fails after the manifest landed (the replaced object is not marked dead then): 200; leftovers go with the object or at the sweep after the grace", async () => {
    const key = fresh("complete-cleanup");
    const old = await multipartPut("adminA", bucket, key, [pseudoRandom(40_000, 25)], KMS);
    const id = await createUpload("adminA", bucket, key, KMS);
    const part = pseudoRandom(90_000, 26);
    const etag = await uploadPart("adminA", bucket, key, id, 1, part);
    await uploadPart("adminA", bucket, key, id, 2, pseudoRandom(1000, 27)); // uploaded, never listed
    const faulty = faultyBucket([
      { op: "delete", key: under(`_mpu/${id}/`), kind: "throw" },
      { op: "list", key: under(`_mpu/${old.uploadId}/`), kind: "throw" },
    ]);
    const r = await completeRequest("adminA", bucket, key, id, [{ partNumber: 1, etag }], { env: { OBJECTS: faulty.bucket } });
    expect(r.status, await r.clone().text()).toBe(200);
    expect(faulty.fired).toHaveLength(1); // the unused part's delete; marking the replaced object is not reached after it
    await expectIntact(key, part);
    // The unused part stays with the object (its prefix is the object's) until the object goes.
    expect((await traces(id)).r2).toHaveLength(2);
    // The replaced object: unmarked; the sweep sees its manifest is no longer live, marks
    // it, and releases its parts once the grace is over.
    expect((await traces(old.uploadId)).r2).toHaveLength(1);
    expect(await deadSince(old.uploadId)).toBeNull();
    const seen = Date.now();
    await sweep(seen);
    expect((await traces(old.uploadId)).r2).toHaveLength(1);
    expect(await deadSince(old.uploadId)).toBe(seen);
    await sweep(seen + GRACE);
    expect(await traces(old.uploadId)).toEqual({ uploads: 0, parts: 0, objects: 0, r2: [] });
    const deletedAt = Date.now();
    expect((await send("adminA", { method: "DELETE", bucket, key })).status).toBe(204);
    expect((await traces(id)).r2).toHaveLength(2);
    await sweep(deletedAt + GRACE + 60_000);
    expect(await traces(id)).toEqual({ uploads: 0, parts: 0, objects: 0, r2: [] });
  });
});

describe("AbortMultipartUpload and DeleteObject", () => {
  it("abort: deleting the parts fails: 204 (the upload is gone); the sweep removes its data after the grace period", async () => {
    const key = fresh("abort");
    const id = await createUpload("adminA", bucket, key, KMS);
    await uploadPart("adminA", bucket, key, id, 1, pseudoRandom(30_000, 28));
    await uploadPart("adminA", bucket, key, id, 2, pseudoRandom(30_000, 29));
    const faulty = faultyBucket([{ op: "list", key: under(`_mpu/${id}/`), kind: "throw" }]);
    expect((await through(faulty, { method: "DELETE", bucket, key, query: { uploadId: id } })).status).toBe(204);
    expect(faulty.fired.length, "the injected fault was reached").toBe(1);
    expect(await traces(id)).toMatchObject({ uploads: 0, parts: 0, objects: 0 });
    expect((await traces(id)).r2).toHaveLength(2);
    await expectError(send("adminA", { method: "DELETE", bucket, key, query: { uploadId: id } }), 404, "NoSuchUpload");
    await sweep();
    expect((await traces(id)).r2).toHaveLength(2); // within the hour's grace
    await sweep(Date.now() + 2 * 3600 * 1000);
    expect(await traces(id)).toEqual({ uploads: 0, parts: 0, objects: 0, r2: [] });
  });

  it("delete: R2 refuses the delete: 500, the object is still there", async () => {
    const key = fresh("delete");
    const plaintext = pseudoRandom(1000, 30);
    await put(key, plaintext);
    const stored = await rawGet(bucket, key);
    const faulty = faultyBucket([{ op: "delete", kind: "throw" }]);
    await expectStorageError(through(faulty, { method: "DELETE", bucket, key }), faulty);
    await expectIntact(key, plaintext, stored);
  });

  it("delete of a multipart object that cannot be marked dead (its liveness check fails): 204; the sweep marks it and releases the parts after the grace", async () => {
    const key = fresh("delete-mpu");
    const done = await multipartPut("adminA", bucket, key, [pseudoRandom(30_000, 31)], KMS);
    const faulty = faultyBucket([{ op: "head", key: is(`${bucket}/${key}`), kind: "throw" }]);
    expect((await through(faulty, { method: "DELETE", bucket, key })).status).toBe(204);
    expect(faulty.fired).toHaveLength(1);
    expect(await rawGet(bucket, key)).toBeNull();
    expect((await traces(done.uploadId)).r2).toHaveLength(1);
    expect(await deadSince(done.uploadId)).toBeNull();
    const seen = Date.now();
    await sweep(seen);
    expect((await traces(done.uploadId)).r2).toHaveLength(1);
    expect(await deadSince(done.uploadId)).toBe(seen);
    await sweep(seen + GRACE);
    expect(await traces(done.uploadId)).toEqual({ uploads: 0, parts: 0, objects: 0, r2: [] });
  });
});
