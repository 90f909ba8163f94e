import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { runMultipartCleanup } from "../../src/multipart/cleanup-job";
import { MiB, concat, createUpload, multipartPut, traces, uploadPart } from "../support/multipart";
import { pseudoRandom } from "../support/sources";
import { createBucket, expectError, readFully, sameBytes, seedIdentities, send, uniqueBucket, xmlValue } from "../support/s3-harness";

/** Part data never outlives its owner: aborted and expired uploads leave nothing at once, deleted or replaced objects once their grace is over. */
const bucket = uniqueBucket("mpu-life");
const HOUR = 3600 * 1000;
const MINUTE = 60 * 1000;
/** The default MULTIPART_RELEASE_GRACE_MINUTES (wrangler.toml). */
const GRACE = 60 * MINUTE;

beforeAll(async () => {
  await seedIdentities();
  await createBucket("adminA", bucket);
});

const small = (seed: number) => [pseudoRandom(5 * MiB, seed), pseudoRandom(1000, seed + 1)];

/** When the object's manifest was first seen dead (null while live or unknown). */
const deadSince = async (uploadId: string) =>
  (await env.DB.prepare("SELECT dead_since FROM multipart_objects WHERE upload_id = ?").bind(uploadId).first<{ dead_since: number | null }>())?.dead_since ?? null;

/** Still all there: the row (marked dead) and every part, readable by a GET that opened the old manifest. */
async function expectHeldDead(uploadId: string, parts: number): Promise<void> {
  expect(await traces(uploadId)).toMatchObject({ uploads: 0, parts: 0, objects: 1 });
  expect((await traces(uploadId)).r2).toHaveLength(parts);
  expect(await deadSince(uploadId)).not.toBeNull();
}

const gone = { uploads: 0, parts: 0, objects: 0, r2: [] };

/**
 * Part data of a replaced or deleted multipart object outlives it by the grace
 * (MULTIPART_RELEASE_GRACE_MINUTES, 60 by default) so reads still streaming it finish
 * (test/integration/read-races.test.ts); the sweep releases it after that.
 */
describe("completed objects release their parts after the grace", () => {
  it("on DeleteObject: marked dead at once, released by the first sweep past the grace", async () => {
    const o = await multipartPut("adminA", bucket, "del-one", small(1));
    expect((await traces(o.uploadId)).r2).toHaveLength(2);
    expect(await deadSince(o.uploadId)).toBeNull();
    const before = Date.now();
    expect((await send("adminA", { method: "DELETE", bucket, key: "del-one" })).status).toBe(204);
    await expectHeldDead(o.uploadId, 2);
    const since = (await deadSince(o.uploadId))!;
    expect(since).toBeGreaterThanOrEqual(before);
    await sweepToEnd(since + GRACE - MINUTE);
    await expectHeldDead(o.uploadId, 2);
    expect(await deadSince(o.uploadId)).toBe(since); // a later sighting keeps the first mark
    const r = await sweepToEnd(since + GRACE);
    expect(r.released).toBeGreaterThanOrEqual(1);
    expect(await traces(o.uploadId)).toEqual(gone);
  });

  it("on DeleteObjects", async () => {
    const a = await multipartPut("adminA", bucket, "many/a", small(3));
    const b = await multipartPut("adminA", bucket, "many/b", small(5));
    const body = "<Delete><Object><Key>many/a</Key></Object><Object><Key>many/b</Key></Object><Object><Key>many/none</Key></Object></Delete>";
    const md5 = btoa(String.fromCharCode(...new Uint8Array(await crypto.subtle.digest("MD5", new TextEncoder().encode(body)))));
    const r = await send("adminA", { method: "POST", bucket, query: { delete: "" }, body, headers: { "content-md5": md5 } });
    expect(r.status).toBe(200);
    await expectHeldDead(a.uploadId, 2);
    await expectHeldDead(b.uploadId, 2);
    await sweepToEnd(Date.now() + GRACE - MINUTE);
    await expectHeldDead(a.uploadId, 2);
    await sweepToEnd(Date.now() + GRACE + MINUTE);
    expect(await traces(a.uploadId)).toEqual(gone);
    expect(await traces(b.uploadId)).toEqual(gone);
  });

  it("when another multipart upload completes over the key: the old one is marked, the new one is not", async () => {
    const first = await multipartPut("adminA", bucket, "again", small(7));
    const second = await multipartPut("adminA", bucket, "again", small(9));
    await expectHeldDead(first.uploadId, 2);
    expect(await deadSince(second.uploadId)).toBeNull();
    expect(sameBytes((await readFully(await send("adminA", { method: "GET", bucket, key: "again" }))).bytes, concat(small(9)))).toBe(true);
    await sweepToEnd(Date.now() + GRACE - MINUTE);
    await expectHeldDead(first.uploadId, 2);
    await sweepToEnd(Date.now() + GRACE + MINUTE);
    expect(await traces(first.uploadId)).toEqual(gone);
    expect(await traces(second.uploadId)).toMatchObject({ uploads: 0, parts: 0, objects: 1 });
    expect((await traces(second.uploadId)).r2).toHaveLength(2);
    expect(await deadSince(second.uploadId)).toBeNull();
    expect(sameBytes((await readFully(await send("adminA", { method: "GET", bucket, key: "again" }))).bytes, concat(small(9)))).toBe(true);
  });

  it("when a single PUT replaces it: the sweep marks it dead on first sight and releases it only after the grace, and keeps live ones", async () => {
    const replaced = await multipartPut("adminA", bucket, "put-over", small(11));
    const kept = await multipartPut("adminA", bucket, "kept", small(13));
    expect((await send("adminA", { method: "PUT", bucket, key: "put-over", body: "now small" })).status).toBe(200);
    // The PUT does not look for a multipart object under it: nothing is marked yet.
    expect(await deadSince(replaced.uploadId)).toBeNull();
    const seen = Date.now() + 5 * MINUTE;
    const first = await sweepToEnd(seen);
    expect(first.marked).toBeGreaterThanOrEqual(1);
    await expectHeldDead(replaced.uploadId, 2);
    expect(await deadSince(replaced.uploadId)).toBe(seen);
    await sweepToEnd(seen + GRACE - MINUTE);
    await expectHeldDead(replaced.uploadId, 2);
    await sweepToEnd(seen + GRACE);
    expect(await traces(replaced.uploadId)).toEqual(gone);
    expect((await traces(kept.uploadId)).r2).toHaveLength(2);
    expect((await traces(kept.uploadId)).objects).toBe(1);
    expect(await deadSince(kept.uploadId)).toBeNull();
  });

  it("honours a configured grace", async () => {
    const o = await multipartPut("adminA", bucket, "short-grace", small(19));
    expect((await send("adminA", { method: "DELETE", bucket, key: "short-grace" })).status).toBe(204);
    const since = (await deadSince(o.uploadId))!;
    const short = { ...env, MULTIPART_RELEASE_GRACE_MINUTES: "5" };
    await sweepToEnd(since + 4 * MINUTE, short);
    await expectHeldDead(o.uploadId, 2);
    await sweepToEnd(since + 5 * MINUTE, short);
    expect(await traces(o.uploadId)).toEqual(gone);
  });

  it("a live manifest's mark is cleared (its object is back, e.g. re-put by the rewrap job) and its parts stay", async () => {
    const o = await multipartPut("adminA", bucket, "alive", small(21));
    await env.DB.prepare("UPDATE multipart_objects SET dead_since = ? WHERE upload_id = ?").bind(Date.now() - 2 * GRACE, o.uploadId).run();
    await sweepToEnd(Date.now() + GRACE);
    expect(await deadSince(o.uploadId)).toBeNull();
    expect(await traces(o.uploadId)).toMatchObject({ uploads: 0, parts: 0, objects: 1 });
    expect((await traces(o.uploadId)).r2).toHaveLength(2);
    expect(sameBytes((await readFully(await send("adminA", { method: "GET", bucket, key: "alive" }))).bytes, concat(small(21)))).toBe(true);
  });
});

/** Runs the clean-up until its sweep has covered all of "_mpu/". */
async function sweepToEnd(now = Date.now(), withEnv: typeof env = env) {
  const total = { aborted: 0, settled: 0, marked: 0, released: 0, orphans: 0 };
  for (let i = 0; i < 50; i++) {
    const r = await runMultipartCleanup(withEnv, now);
    total.aborted += r.aborted;
    total.settled += r.settled;
    total.marked += r.marked;
    total.released += r.released;
    total.orphans += r.orphans;
    if (r.sweepDone) return total;
  }
  throw new Error("sweep did not finish");
}

describe("the scheduled clean-up", () => {
  it("aborts uploads older than MULTIPART_EXPIRY_HOURS, rows and R2 data, and leaves younger ones", async () => {
    const old = await createUpload("adminA", bucket, "expiring");
    await uploadPart("adminA", bucket, "expiring", old, 1, pseudoRandom(3000, 1));
    const young = await createUpload("adminA", bucket, "young");
    await uploadPart("adminA", bucket, "young", young, 1, pseudoRandom(3000, 2));
    await env.DB.prepare("UPDATE multipart_uploads SET created_at = ? WHERE upload_id = ?").bind(Date.now() - 169 * HOUR, old).run();
    const r = await runMultipartCleanup(env);
    expect(r.aborted).toBeGreaterThanOrEqual(1);
    expect(await traces(old)).toEqual({ uploads: 0, parts: 0, objects: 0, r2: [] });
    expect((await traces(young)).r2).toHaveLength(1);
    await expectError(send("adminA", { method: "GET", bucket, key: "expiring", query: { uploadId: old } }), 404, "NoSuchUpload");
  });

  it("honours a configured expiry", async () => {
    const id = await createUpload("adminA", bucket, "short-lived");
    await env.DB.prepare("UPDATE multipart_uploads SET created_at = ? WHERE upload_id = ?").bind(Date.now() - 2 * HOUR, id).run();
    await runMultipartCleanup({ ...env, MULTIPART_EXPIRY_HOURS: "3" });
    expect((await traces(id)).uploads).toBe(1);
    await runMultipartCleanup({ ...env, MULTIPART_EXPIRY_HOURS: "1" });
    expect((await traces(id)).uploads).toBe(0);
  });

  it("deletes part data no row owns (a crash between steps), after a grace period", async () => {
    const orphan = "0000000001AbCdEfGhIjKlMnOpQrStUvWx";
    await env.OBJECTS.put(`_mpu/${orphan}/00001/aaaa`, "junk");
    await env.OBJECTS.put(`_mpu/${orphan}/00002/bbbb`, "junk");
    const fresh = `${Date.now().toString(36).padStart(9, "0")}AbCdEfGhIjKlMnOpQrStUvWx`;
    await env.OBJECTS.put(`_mpu/${fresh}/00001/cccc`, "junk");
    const r = await sweepToEnd();
    expect(r.orphans).toBeGreaterThanOrEqual(1);
    expect((await env.OBJECTS.list({ prefix: `_mpu/${orphan}/` })).objects).toEqual([]);
    expect((await env.OBJECTS.list({ prefix: `_mpu/${fresh}/` })).objects).toHaveLength(1);
    await env.OBJECTS.delete(`_mpu/${fresh}/00001/cccc`);
  });

  it("settles a complete that died after writing its manifest, and gives back one that died before", async () => {
    // Died after the manifest: the object is live; the rows are finished for it.
    const done = await multipartPut("adminA", bucket, "crashed-late", small(15));
    const hash = (await env.DB.prepare("SELECT manifest_hash FROM multipart_objects WHERE upload_id = ?").bind(done.uploadId).first<{ manifest_hash: ArrayBuffer }>())!.manifest_hash;
    await env.DB.prepare("DELETE FROM multipart_objects WHERE upload_id = ?").bind(done.uploadId).run();
    await env.DB.prepare(
      `INSERT INTO multipart_uploads (upload_id, bucket, object_key, tenant_id, initiator_id, initiator_name, state, mode, key_arn, key_version, master_version,
         wrapped_key, http, user_metadata, created_at, completing_at, manifest_hash)
       VALUES (?, ?, 'crashed-late', '000000000000000000000000000000aa', 'u', 'u', 'completing', 'AES256', 'arn', 1, 1, x'00', '{}', '{}', ?, ?, ?)`,
    )
      .bind(done.uploadId, bucket, Date.now(), Date.now() - 20 * 60 * 1000, hash)
      .run();
    // Died before the manifest: the upload is active again and can still be completed.
    const id = await createUpload("adminA", bucket, "crashed-early");
    const etag = await uploadPart("adminA", bucket, "crashed-early", id, 1, pseudoRandom(100, 1));
    await env.DB.prepare("UPDATE multipart_uploads SET state = 'completing', completing_at = ?, manifest_hash = x'01' WHERE upload_id = ?").bind(Date.now() - 20 * 60 * 1000, id).run();

    const r = await runMultipartCleanup(env);
    expect(r.settled).toBeGreaterThanOrEqual(2);
    expect(await traces(done.uploadId)).toMatchObject({ uploads: 0, objects: 1 });
    expect((await traces(done.uploadId)).r2).toHaveLength(2);
    const state = await env.DB.prepare("SELECT state FROM multipart_uploads WHERE upload_id = ?").bind(id).first<{ state: string }>();
    expect(state?.state).toBe("active");
    const { completeRequest } = await import("../support/multipart");
    expect((await completeRequest("adminA", bucket, "crashed-early", id, [{ partNumber: 1, etag }])).status).toBe(200);
  });

  it("a complete racing an abort: the loser gets OperationAborted while the upload is held", async () => {
    const id = await createUpload("adminA", bucket, "held");
    await env.DB.prepare("UPDATE multipart_uploads SET state = 'completing', completing_at = ? WHERE upload_id = ?").bind(Date.now(), id).run();
    await expectError(send("adminA", { method: "DELETE", bucket, key: "held", query: { uploadId: id } }), 409, "OperationAborted");
    await env.DB.prepare("UPDATE multipart_uploads SET state = 'active', completing_at = NULL WHERE upload_id = ?").bind(id).run();
    expect((await send("adminA", { method: "DELETE", bucket, key: "held", query: { uploadId: id } })).status).toBe(204);
  });
});

describe("DeleteBucket", () => {
  it("succeeds with uploads in progress (as S3 does) and takes their rows and part data with it", async () => {
    const b = uniqueBucket("mpu-gone");
    await createBucket("adminA", b);
    const id = await createUpload("adminA", b, "pending");
    await uploadPart("adminA", b, "pending", id, 1, pseudoRandom(4000, 1));
    const listed = await (await send("adminA", { method: "GET", bucket: b, query: { uploads: "" } })).text();
    expect(xmlValue(listed, "UploadId")).toBe(id);
    expect((await send("adminA", { method: "DELETE", bucket: b })).status).toBe(204);
    expect(await traces(id)).toEqual({ uploads: 0, parts: 0, objects: 0, r2: [] });
  });

  it("after its multipart objects were deleted: their parts stay for the grace (a GET may still stream one), then the sweep releases them", async () => {
    const b = uniqueBucket("mpu-emptied");
    await createBucket("adminA", b);
    const o = await multipartPut("adminA", b, "obj", small(23));
    // The row is unmarked, as if the object had gone without telling us (the sweep has not seen it yet).
    expect((await send("adminA", { method: "DELETE", bucket: b, key: "obj" })).status).toBe(204);
    await env.DB.prepare("UPDATE multipart_objects SET dead_since = NULL WHERE upload_id = ?").bind(o.uploadId).run();
    expect((await send("adminA", { method: "DELETE", bucket: b })).status).toBe(204);
    await expectHeldDead(o.uploadId, 2);
    const since = (await deadSince(o.uploadId))!;
    await sweepToEnd(since + GRACE - MINUTE);
    await expectHeldDead(o.uploadId, 2);
    await sweepToEnd(since + GRACE);
    expect(await traces(o.uploadId)).toEqual(gone);
  });

  it("still refuses while a completed multipart object is in the bucket", async () => {
    const b = uniqueBucket("mpu-full");
    await createBucket("adminA", b);
    const o = await multipartPut("adminA", b, "obj", small(17));
    await expectError(send("adminA", { method: "DELETE", bucket: b }), 409, "BucketNotEmpty");
    expect((await traces(o.uploadId)).r2).toHaveLength(2);
  });
});
