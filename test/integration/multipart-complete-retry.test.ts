import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { runMultipartCleanup } from "../../src/multipart/cleanup-job";
import { COMPLETE_WAIT_MS } from "../../src/multipart/complete";
import { readConfig, type Env } from "../../src/env";
import { MiB, completeRequest, concat, createUpload, traces, uploadPart } from "../support/multipart";
import { pseudoRandom } from "../support/sources";
import { crc32Base64, createBucket, expectError, readFully, sameBytes, seedIdentities, send, uniqueBucket, xmlValue, type Who } from "../support/s3-harness";

/**
 * A retried CompleteMultipartUpload (docs/multipart.md, "Complete and its retries"): SDKs
 * repeat Complete when its response is lost. The same part list answers the recorded 200
 * (same body, same headers) without writing the object again; any other list is
 * NoSuchUpload, as on AWS; the record goes after MULTIPART_COMPLETION_RETENTION_HOURS.
 */
const SSE = "x-amz-server-side-encryption";
const KMS = { [SSE]: "aws:kms" };
const HOUR = 3600 * 1000;
const bucket = uniqueBucket("mpu-retry");

beforeAll(async () => {
  await seedIdentities();
  await createBucket("adminA", bucket);
});

type Part = { partNumber: number; etag: string; extra?: string };

/** Two parts (5 MiB + a tail); returns the upload id, the part list and the plaintext. */
async function twoParts(key: string, headers: Record<string, string> = {}, seed = 1) {
  const bodies = [pseudoRandom(5 * MiB, seed), pseudoRandom(1000, seed + 1)];
  const id = await createUpload("adminA", bucket, key, headers);
  const parts: Part[] = [];
  for (const [i, body] of bodies.entries()) parts.push({ partNumber: i + 1, etag: await uploadPart("adminA", bucket, key, id, i + 1, body) });
  return { id, parts, plaintext: concat(bodies) };
}

/** Headers that describe the answer (not the per-request id and date). */
function answerHeaders(r: Response): Array<[string, string]> {
  return [...r.headers].filter(([name]) => !["date", "x-amz-request-id", "x-amz-id-2"].includes(name)).sort();
}

async function complete(who: Who, key: string, id: string, parts: Part[], extra: Parameters<typeof completeRequest>[5] = {}) {
  const r = await completeRequest(who, bucket, key, id, parts, extra);
  return { status: r.status, text: await r.text(), headers: answerHeaders(r) };
}

async function expectSameAnswer(who: Who, key: string, id: string, parts: Part[], first: { status: number; text: string; headers: Array<[string, string]> }) {
  const again = await complete(who, key, id, parts);
  expect(again.status, again.text).toBe(200);
  expect(again.text).toBe(first.text);
  expect(again.headers).toEqual(first.headers);
}

/** The stored manifest object: its R2 etag and upload time change with every put. */
async function storedVersion(key: string): Promise<string | null> {
  const head = await env.OBJECTS.head(`${bucket}/${key}`);
  return head ? `${head.etag}@${head.uploaded.getTime()}` : null;
}

const completionRows = async (id: string) =>
  (await env.DB.prepare("SELECT COUNT(*) AS n FROM multipart_completions WHERE upload_id = ?").bind(id).first<{ n: number }>())!.n;

describe("an identical retry", () => {
  it("answers the same 200 — body, SSE-KMS headers, checksum fields — and does not write the object again", async () => {
    const key = "same";
    const { id, parts, plaintext } = await twoParts(key, { ...KMS, "x-amz-checksum-algorithm": "CRC32" });
    // The part list with the checksums the SDK sends alongside.
    const listed = await (await send("adminA", { method: "GET", bucket, key, query: { uploadId: id } })).text();
    const crcs = [...listed.matchAll(/<ChecksumCRC32>([^<]+)<\/ChecksumCRC32>/g)].map((m) => m[1]!);
    const withCrc = parts.map((p, i) => ({ ...p, extra: `<ChecksumCRC32>${crcs[i]}</ChecksumCRC32>` }));
    const first = await complete("adminA", key, id, withCrc);
    expect(first.status, first.text).toBe(200);
    expect(xmlValue(first.text, "ChecksumCRC32")).toMatch(/-2$/);
    expect(xmlValue(first.text, "ChecksumType")).toBe("COMPOSITE");
    expect(new Map(first.headers).get(SSE)).toBe("aws:kms");
    expect(new Map(first.headers).get(`${SSE}-aws-kms-key-id`)).toMatch(/^arn:aws:kms:/);
    const version = await storedVersion(key);

    await expectSameAnswer("adminA", key, id, withCrc, first);
    // The same list without the optional checksums, with unquoted and upper-case ETags: S3 compares ETags without quotes.
    await expectSameAnswer("adminA", key, id, parts.map((p) => ({ partNumber: p.partNumber, etag: p.etag.replace(/"/g, "").toUpperCase() })), first);
    expect(await storedVersion(key)).toBe(version);
    expect(sameBytes((await readFully(await send("adminA", { method: "GET", bucket, key }))).bytes, plaintext)).toBe(true);
    // The upload itself is gone: parts cannot be added, ListParts and Abort say NoSuchUpload.
    await expectError(send("adminA", { method: "GET", bucket, key, query: { uploadId: id } }), 404, "NoSuchUpload");
    await expectError(send("adminA", { method: "DELETE", bucket, key, query: { uploadId: id } }), 404, "NoSuchUpload");
    expect(await traces(id)).toMatchObject({ uploads: 0, parts: 0, objects: 1 });
    expect(await completionRows(id)).toBe(1);
  });

  it("after the object was overwritten or deleted: the same 200, and the newer state stands", async () => {
    const { id, parts } = await twoParts("replaced", {}, 3);
    const first = await complete("adminA", "replaced", id, parts);
    expect(first.status, first.text).toBe(200);
    expect((await send("adminA", { method: "PUT", bucket, key: "replaced", body: "someone else's" })).status).toBe(200);
    const overwritten = await storedVersion("replaced");
    await expectSameAnswer("adminA", "replaced", id, parts, first);
    expect(await storedVersion("replaced")).toBe(overwritten);
    expect(await (await send("adminA", { method: "GET", bucket, key: "replaced" })).text()).toBe("someone else's");

    expect((await send("adminA", { method: "DELETE", bucket, key: "replaced" })).status).toBe(204);
    await expectSameAnswer("adminA", "replaced", id, parts, first);
    await expectError(send("adminA", { method: "GET", bucket, key: "replaced" }), 404, "NoSuchKey");
  });

  it("a full-object checksum header is checked against the recorded one, as on the first Complete (BadDigest)", async () => {
    const { id, parts, plaintext } = await twoParts("full-crc", { "x-amz-checksum-algorithm": "CRC32", "x-amz-checksum-type": "FULL_OBJECT" }, 39);
    const full = crc32Base64(plaintext);
    const first = await complete("adminA", "full-crc", id, parts, { headers: { "x-amz-checksum-crc32": full } });
    expect(first.status, first.text).toBe(200);
    expect(xmlValue(first.text, "ChecksumType")).toBe("FULL_OBJECT");
    await expectError(completeRequest("adminA", bucket, "full-crc", id, parts, { headers: { "x-amz-checksum-crc32": "AAAAAA==" } }), 400, "BadDigest");
    expect(await complete("adminA", "full-crc", id, parts, { headers: { "x-amz-checksum-crc32": full } })).toEqual(first);
  });

  it("ignores If-None-Match: * (the write it repeats was made when the key was free)", async () => {
    const { id, parts } = await twoParts("conditional", {}, 5);
    const first = await complete("adminA", "conditional", id, parts, { headers: { "if-none-match": "*" } });
    expect(first.status, first.text).toBe(200);
    const again = await complete("adminA", "conditional", id, parts, { headers: { "if-none-match": "*" } });
    expect(again).toEqual(first);
  });
});

describe("another part list after completion", () => {
  it("is 404 NoSuchUpload: fewer, extra, reordered parts or another ETag; the object is untouched", async () => {
    const { id, parts, plaintext } = await twoParts("other-list", {}, 7);
    const first = await complete("adminA", "other-list", id, parts);
    expect(first.status, first.text).toBe(200);
    const version = await storedVersion("other-list");
    const [p1, p2] = parts as [Part, Part];
    const others: Part[][] = [
      [p1],
      [p2],
      [p1, p2, { partNumber: 3, etag: p2.etag }],
      [p2, p1],
      [p1, { partNumber: 2, etag: `"${"0".repeat(32)}"` }],
      [p1, { partNumber: 3, etag: p2.etag }],
    ];
    for (const list of others) {
      const e = await expectError(completeRequest("adminA", bucket, "other-list", id, list), 404, "NoSuchUpload");
      expect(xmlValue(e.text, "UploadId")).toBe(id);
    }
    expect(await storedVersion("other-list")).toBe(version);
    expect(sameBytes((await readFully(await send("adminA", { method: "GET", bucket, key: "other-list" }))).bytes, plaintext)).toBe(true);
    // The identical list still answers.
    await expectSameAnswer("adminA", "other-list", id, parts, first);
  });

  it("is NoSuchUpload at another key of the bucket", async () => {
    const { id, parts } = await twoParts("at-key", {}, 9);
    expect((await complete("adminA", "at-key", id, parts)).status).toBe(200);
    await expectError(completeRequest("adminA", bucket, "not-at-key", id, parts), 404, "NoSuchUpload");
  });

  it("a reordered list on an upload in progress is still 400 InvalidPartOrder", async () => {
    const { id, parts } = await twoParts("in-progress-order", {}, 11);
    await expectError(completeRequest("adminA", bucket, "in-progress-order", id, [parts[1]!, parts[0]!]), 400, "InvalidPartOrder");
    expect((await complete("adminA", "in-progress-order", id, parts)).status).toBe(200);
  });
});

describe("the record", () => {
  it("holds no ETag or checksum in the clear, and a sealed result copied from another upload does not answer", async () => {
    const a = await twoParts("sealed-a", { "x-amz-checksum-algorithm": "CRC32" }, 35);
    const b = await twoParts("sealed-b", {}, 37);
    const first = await complete("adminA", "sealed-a", a.id, a.parts);
    expect(first.status).toBe(200);
    expect((await complete("adminA", "sealed-b", b.id, b.parts)).status).toBe(200);
    const row = await env.DB.prepare("SELECT * FROM multipart_completions WHERE upload_id = ?").bind(a.id).first<Record<string, unknown>>();
    const dump = JSON.stringify(row, (_k, v: unknown) => (v instanceof ArrayBuffer ? [...new Uint8Array(v)] : v));
    const etagHex = xmlValue(first.text, "ETag")!.replace(/"/g, "").split("-")[0]!;
    expect(dump).not.toContain(etagHex);
    expect(dump).not.toContain(xmlValue(first.text, "ChecksumCRC32")!);
    // Moving b's sealed result onto a's record: it fails authentication (upload id, bucket, key are bound in).
    await env.DB.prepare("UPDATE multipart_completions SET result = (SELECT result FROM multipart_completions WHERE upload_id = ?) WHERE upload_id = ?").bind(b.id, a.id).run();
    await expectError(completeRequest("adminA", bucket, "sealed-a", a.id, a.parts), 404, "NoSuchUpload");
  });
});

describe("authorization of a retry", () => {
  it("another tenant gets what a first Complete would answer it (403), never the result", async () => {
    const live = await twoParts("tenant-live", KMS, 13);
    const done = await twoParts("tenant-done", KMS, 15);
    expect((await complete("adminA", "tenant-done", done.id, done.parts)).status).toBe(200);
    const onLive = await expectError(completeRequest("adminB", bucket, "tenant-live", live.id, live.parts), 403, "AccessDenied");
    const onDone = await expectError(completeRequest("adminB", bucket, "tenant-done", done.id, done.parts), 403, "AccessDenied");
    expect(onDone.message).toBe(onLive.message);
    expect(onDone.text).not.toContain("ETag");
  });

  it("with a policy that lets everyone PutObject, the SSE-KMS tenant rule still refuses another tenant's retry, as it refuses its first Complete", async () => {
    const b = uniqueBucket("mpu-retry-open");
    await createBucket("adminA", b);
    // A public policy: Block Public Access (on for new buckets) is lifted first, as a user would.
    expect((await send("adminA", { method: "DELETE", bucket: b, query: { publicAccessBlock: "" } })).status).toBe(204);
    const policy = { Version: "2012-10-17", Statement: [{ Effect: "Allow", Principal: "*", Action: "s3:PutObject", Resource: `arn:aws:s3:::${b}/*` }] };
    expect((await send("adminA", { method: "PUT", bucket: b, query: { policy: "" }, body: JSON.stringify(policy) })).status).toBe(204);
    const upload = async (key: string, seed: number) => {
      const id = await createUpload("adminA", b, key, KMS);
      const parts = [{ partNumber: 1, etag: await uploadPart("adminA", b, key, id, 1, pseudoRandom(100, seed)) }];
      return { id, parts };
    };
    const live = await upload("live", 17);
    const done = await upload("done", 18);
    expect((await completeRequest("adminA", b, "done", done.id, done.parts)).status).toBe(200);
    const onLive = await expectError(completeRequest("adminB", b, "live", live.id, live.parts), 403, "AccessDenied");
    const onDone = await expectError(completeRequest("adminB", b, "done", done.id, done.parts), 403, "AccessDenied");
    expect(onLive.message).toContain("SSE-KMS");
    expect(onDone.message).toBe(onLive.message);
  });

  it("the bucket policy sees the upload's recorded encryption on a retry, and a deny applies to it", async () => {
    const b = uniqueBucket("mpu-retry-policy");
    await createBucket("adminA", b);
    const upload = async (key: string, headers: Record<string, string>, seed: number) => {
      const id = await createUpload("adminA", b, key, headers);
      const parts = [{ partNumber: 1, etag: await uploadPart("adminA", b, key, id, 1, pseudoRandom(100, seed)) }];
      const r = await completeRequest("adminA", b, key, id, parts);
      expect(r.status).toBe(200);
      return { id, parts, text: await r.text() };
    };
    const kms = await upload("kms", KMS, 19);
    const plain = await upload("plain", {}, 20);
    const setPolicy = async (statement: Record<string, unknown>) =>
      expect((await send("adminA", { method: "PUT", bucket: b, query: { policy: "" }, body: JSON.stringify({ Version: "2012-10-17", Statement: [statement] }) })).status).toBe(204);
    await setPolicy({
      Effect: "Deny",
      Principal: "*",
      Action: "s3:PutObject",
      Resource: `arn:aws:s3:::${b}/*`,
      Condition: { StringNotEquals: { "s3:x-amz-server-side-encryption": "aws:kms" } },
    });
    const again = await completeRequest("adminA", b, "kms", kms.id, kms.parts);
    expect(again.status).toBe(200);
    expect(await again.text()).toBe(kms.text);
    await expectError(completeRequest("adminA", b, "plain", plain.id, plain.parts), 403, "AccessDenied");
    await setPolicy({ Effect: "Deny", Principal: "*", Action: "s3:PutObject", Resource: `arn:aws:s3:::${b}/*` });
    await expectError(completeRequest("adminA", b, "kms", kms.id, kms.parts), 403, "AccessDenied");
  });
});

/** R2 with every put of `key` delayed and counted (the manifest put of a Complete). */
function slowPuts(r2Key: string, delayMs: number) {
  const counter = { puts: 0 };
  const OBJECTS = new Proxy(env.OBJECTS, {
    get(target, prop) {
      if (prop === "put")
        return async (key: string, value: unknown, options?: R2PutOptions) => {
          if (key === r2Key) {
            counter.puts++;
            await new Promise((resolve) => setTimeout(resolve, delayMs));
          }
          return target.put(key, value as ReadableStream, options);
        };
      const v = Reflect.get(target, prop) as unknown;
      return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  return { OBJECTS, counter };
}

describe("concurrent Completes of one upload", () => {
  it("the same list twice at once: one manifest write, both 200 with the same answer", async () => {
    const { id, parts, plaintext } = await twoParts("race", {}, 21);
    const { OBJECTS, counter } = slowPuts(`${bucket}/race`, 300);
    const [a, b] = await Promise.all([
      completeRequest("adminA", bucket, "race", id, parts, { env: { OBJECTS } }),
      completeRequest("adminA", bucket, "race", id, parts, { env: { OBJECTS } }),
    ]);
    const [ta, tb] = [await a.text(), await b.text()];
    expect([a.status, b.status], ta + tb).toEqual([200, 200]);
    expect(tb).toBe(ta);
    expect(answerHeaders(b)).toEqual(answerHeaders(a));
    expect(counter.puts).toBe(1);
    expect(sameBytes((await readFully(await send("adminA", { method: "GET", bucket, key: "race" }))).bytes, plaintext)).toBe(true);
    expect(await traces(id)).toMatchObject({ uploads: 0, parts: 0, objects: 1 });
  });

  it("another list racing the winner: NoSuchUpload once the winner has completed; one write", async () => {
    const { id, parts } = await twoParts("race-other", {}, 23);
    const { OBJECTS, counter } = slowPuts(`${bucket}/race-other`, 300);
    const winner = completeRequest("adminA", bucket, "race-other", id, parts, { env: { OBJECTS } });
    // Let the winner claim the upload first.
    await new Promise((resolve) => setTimeout(resolve, 150));
    const loser = completeRequest("adminA", bucket, "race-other", id, [parts[1]!], { env: { OBJECTS } });
    const w = await winner;
    expect(w.status, await w.clone().text()).toBe(200);
    await expectError(loser, 404, "NoSuchUpload");
    expect(counter.puts).toBe(1);
  });

  it("the wait for a Complete held by another is MULTIPART_COMPLETE_WAIT_SECONDS, 10 s by default", () => {
    expect(readConfig({} as Env).multipartCompleteWaitMs).toBe(COMPLETE_WAIT_MS);
    expect(COMPLETE_WAIT_MS).toBe(10_000);
    expect(readConfig({ MULTIPART_COMPLETE_WAIT_SECONDS: "1.5" } as Env).multipartCompleteWaitMs).toBe(1_500);
  });

  it("a Complete still held by another after the wait (MULTIPART_COMPLETE_WAIT_SECONDS) is 409 OperationAborted", { timeout: 30_000 }, async () => {
    const { id, parts } = await twoParts("held", {}, 25);
    // Held by a complete that has not written its manifest (and has not died: it is fresh).
    await env.DB.prepare("UPDATE multipart_uploads SET state = 'completing', completing_at = ?, manifest_hash = x'00', completion = x'00' WHERE upload_id = ?")
      .bind(Date.now(), id)
      .run();
    const started = Date.now();
    await expectError(completeRequest("adminA", bucket, "held", id, parts, { env: { MULTIPART_COMPLETE_WAIT_SECONDS: "1.5" } }), 409, "OperationAborted");
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_400);
    await env.DB.prepare("UPDATE multipart_uploads SET state = 'active', completing_at = NULL, manifest_hash = NULL, completion = NULL WHERE upload_id = ?").bind(id).run();
    expect((await complete("adminA", "held", id, parts)).status).toBe(200);
  });
});

describe("how long a completed upload answers retries", () => {
  /** Runs the clean-up until its sweep has covered all of "_mpu/" (the record expiry runs on every tick). */
  async function cleanup(now: number, withEnv: typeof env = env) {
    for (let i = 0; i < 50; i++) if ((await runMultipartCleanup(withEnv, now)).sweepDone) return;
    throw new Error("sweep did not finish");
  }

  it("MULTIPART_COMPLETION_RETENTION_HOURS (default 24): kept through it, deleted by the cron job after it, then NoSuchUpload", async () => {
    const { id, parts } = await twoParts("retained", {}, 27);
    const first = await complete("adminA", "retained", id, parts);
    expect(first.status).toBe(200);
    const at = (await env.DB.prepare("SELECT completed_at FROM multipart_completions WHERE upload_id = ?").bind(id).first<{ completed_at: number }>())!.completed_at;
    await cleanup(at + 24 * HOUR - 1);
    expect(await completionRows(id)).toBe(1);
    await expectSameAnswer("adminA", "retained", id, parts, first);
    await cleanup(at + 24 * HOUR);
    expect(await completionRows(id)).toBe(0);
    await expectError(completeRequest("adminA", bucket, "retained", id, parts), 404, "NoSuchUpload");
    // The object itself stays, of course.
    expect((await send("adminA", { method: "HEAD", bucket, key: "retained" })).status).toBe(200);
  });

  it("honours a configured retention", async () => {
    const { id, parts } = await twoParts("retained-short", {}, 29);
    expect((await complete("adminA", "retained-short", id, parts)).status).toBe(200);
    const at = (await env.DB.prepare("SELECT completed_at FROM multipart_completions WHERE upload_id = ?").bind(id).first<{ completed_at: number }>())!.completed_at;
    const short = { ...env, MULTIPART_COMPLETION_RETENTION_HOURS: "1" };
    await cleanup(at + HOUR - 1, short);
    expect(await completionRows(id)).toBe(1);
    await cleanup(at + HOUR, short);
    expect(await completionRows(id)).toBe(0);
  });

  it("a record past the retention that the cron job has not deleted yet no longer answers", async () => {
    const { id, parts } = await twoParts("stale-record", {}, 31);
    expect((await complete("adminA", "stale-record", id, parts)).status).toBe(200);
    await env.DB.prepare("UPDATE multipart_completions SET completed_at = ? WHERE upload_id = ?").bind(Date.now() - 24 * HOUR - 1000, id).run();
    await expectError(completeRequest("adminA", bucket, "stale-record", id, parts), 404, "NoSuchUpload");
  });

  it("DeleteBucket deletes its records: a bucket re-created under the name does not answer for the old one", async () => {
    const b = uniqueBucket("mpu-retry-gone");
    await createBucket("adminA", b);
    const id = await createUpload("adminA", b, "k");
    const parts = [{ partNumber: 1, etag: await uploadPart("adminA", b, "k", id, 1, pseudoRandom(100, 33)) }];
    expect((await completeRequest("adminA", b, "k", id, parts)).status).toBe(200);
    expect((await send("adminA", { method: "DELETE", bucket: b, key: "k" })).status).toBe(204);
    expect((await send("adminA", { method: "DELETE", bucket: b })).status).toBe(204);
    expect(await completionRows(id)).toBe(0);
    await expectError(completeRequest("adminA", b, "k", id, parts), 404, "NoSuchBucket");
    await createBucket("adminA", b);
    await expectError(completeRequest("adminA", b, "k", id, parts), 404, "NoSuchUpload");
  });
});
