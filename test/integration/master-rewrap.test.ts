import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { DAY_MS } from "../../src/kms/lifecycle";
import { runKeyLifecycle } from "../../src/kms/scheduled";
import { RewrapJob } from "../../src/rotation/job";
import { rewrapLoaded } from "../../src/rotation/rewrap";
import { runRewrapTick } from "../../src/rotation/scheduled";
import { masterStatus } from "../../src/rotation/status";
import { makeServices } from "../../src/services";
import { MASTER_V2, MASTER_V3, adminCall, envWith, kms, s3, s3Code, uniqueName } from "../support/kms-harness";
import { seedIdentities } from "../support/worker-client";

/**
 * Master-secret rotation end to end inside workerd: objects written under v1, the rewrap
 * job moving them to v2 (resumably, conditionally, verifying first), the status figure
 * saying when v1 is removable, and everything readable with v1 gone. One file, run in
 * order: each step builds on the state the previous one left.
 */
const v1 = envWith({});
const v12 = envWith({ MASTER_KEY_V2: MASTER_V2 });
const v2only = envWith({ MASTER_KEY_V1: undefined, MASTER_KEY_V2: MASTER_V2 });
const v123 = envWith({ MASTER_KEY_V2: MASTER_V2, MASTER_KEY_V3: MASTER_V3 });
const v3only = envWith({ MASTER_KEY_V1: undefined, MASTER_KEY_V3: MASTER_V3 });

const bucket = uniqueName("rewrap");
let customKey = "";
let disabledKey = "";
let doomedKey = "";

interface Written {
  key: string;
  body: string;
  headers?: Record<string, string>;
}
const objects: Written[] = [];

async function raw(key: string): Promise<{ mv: number; kv: number; lm?: number; uploaded: number; etag: string; sha: string; meta: Record<string, string> }> {
  const o = await env.OBJECTS.get(`${bucket}/${key}`);
  const bytes = new Uint8Array(await o!.arrayBuffer());
  const sha = Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)), (b) => b.toString(16).padStart(2, "0")).join("");
  const envelope = JSON.parse(o!.customMetadata!["sse-envelope"]!) as { mv: number; kv: number; lm?: number };
  return { mv: envelope.mv, kv: envelope.kv, ...(envelope.lm !== undefined ? { lm: envelope.lm } : {}), uploaded: o!.uploaded.getTime(), etag: o!.etag, sha, meta: o!.customMetadata! };
}

async function readAll(e: typeof v1, list: Written[] = objects): Promise<void> {
  for (const o of list) {
    const r = await s3("adminA", { method: "GET", bucket, key: o.key }, e);
    expect(r.status, o.key).toBe(200);
    expect(await r.text(), o.key).toBe(o.body);
  }
}

async function runPass(e: typeof v1, maxObjects: number, maxMoves = maxObjects): Promise<{ steps: number; visitedPerStep: number[] }> {
  const job = new RewrapJob(e);
  await job.start("test");
  const visitedPerStep: number[] = [];
  for (let i = 0; i < 100; i++) {
    const r = await job.step(`test:${i}`, { maxObjects, maxMoves, maxMs: 60_000 });
    visitedPerStep.push(r.visited);
    if (r.outcome === "completed") return { steps: i + 1, visitedPerStep };
    expect(r.outcome).toBe("progressed");
  }
  throw new Error("pass did not complete");
}

beforeAll(async () => {
  await seedIdentities();
  expect((await s3("adminA", { method: "PUT", bucket }, v1)).status).toBe(200);
  const create = async () => ((await kms("adminA", "CreateKey", {}, { env: v1 })).body["KeyMetadata"] as { KeyId: string }).KeyId;
  customKey = await create();
  disabledKey = await create();
  doomedKey = await create();
  const kmsHeaders = (id?: string) => ({ "x-amz-server-side-encryption": "aws:kms", ...(id ? { "x-amz-server-side-encryption-aws-kms-key-id": id } : {}) });
  objects.push(
    { key: "plain/sse-s3.txt", body: "sse-s3 body", headers: { "content-type": "text/plain", "x-amz-meta-owner": "alice" } },
    { key: "kms/default.bin", body: "default key body", headers: kmsHeaders() },
    { key: "kms/custom-1", body: "custom key body 1", headers: kmsHeaders(customKey) },
    { key: "kms/custom-2", body: "x".repeat(200_000), headers: kmsHeaders(customKey) },
    { key: "kms/disabled", body: "under a disabled key", headers: kmsHeaders(disabledKey) },
    { key: "empty", body: "" },
    // Tags are keyed by the R2 etag of the stored bytes, which a rewrap re-puts unchanged.
    { key: "tagged.txt", body: "tagged body", headers: { "x-amz-tagging": "keep=me" } },
    { key: "nested/deep/key with spaces", body: "spaces" },
  );
  for (const o of objects) {
    const r = await s3("adminA", { method: "PUT", bucket, key: o.key, body: o.body, headers: o.headers ?? {} }, v1);
    expect(r.status, o.key).toBe(200);
  }
  // Rotated after the first write: the object keeps key version 1, new ones get 2.
  await kms("adminA", "RotateKeyOnDemand", { KeyId: customKey }, { env: v1 });
  objects.push({ key: "kms/custom-after-rotation", body: "custom key v2 body", headers: kmsHeaders(customKey) });
  await s3("adminA", { method: "PUT", bucket, key: "kms/custom-after-rotation", body: "custom key v2 body", headers: kmsHeaders(customKey) }, v1);

  await kms("adminA", "DisableKey", { KeyId: disabledKey }, { env: v1 });
  // Crypto-shredded: no secret can read it any more, so it must not block removing v1.
  await s3("adminA", { method: "PUT", bucket, key: "shredded", body: "gone", headers: kmsHeaders(doomedKey) }, v1);
  await kms("adminA", "ScheduleKeyDeletion", { KeyId: doomedKey, PendingWindowInDays: 7 }, { env: v1 });
  await runKeyLifecycle(env.DB, Date.now() + 8 * DAY_MS);
  // Tampered: user metadata changed straight in R2 (MAC no longer verifies).
  await s3("adminA", { method: "PUT", bucket, key: "tampered", body: "tamper me" }, v1);
  const t = await env.OBJECTS.get(`${bucket}/tampered`);
  await env.OBJECTS.put(`${bucket}/tampered`, await t!.arrayBuffer(), { customMetadata: { ...t!.customMetadata, "x-amz-meta-owner": "mallory" } });
  // Internal data is not an object and is never touched.
  await env.OBJECTS.put("_mpu/not-an-object/00001/a", "internal");
});

describe("master-secret rotation", () => {
  let before: Map<string, Awaited<ReturnType<typeof raw>>>;
  let lastModified: Map<string, string>;

  it("everything is on v1; with v2 configured new writes use v2 and old objects still read", async () => {
    for (const o of objects) expect((await raw(o.key)).mv, o.key).toBe(1);
    await kms("adminA", "EnableKey", { KeyId: disabledKey }, { env: v12 });
    await readAll(v12);
    await kms("adminA", "DisableKey", { KeyId: disabledKey }, { env: v12 });
    const r = await s3("adminA", { method: "PUT", bucket, key: "written-on-v2", body: "new" }, v12);
    expect(r.status).toBe(200);
    expect((await raw("written-on-v2")).mv).toBe(2);
    objects.push({ key: "written-on-v2", body: "new" });
    // The status figure knows nothing about objects until a pass has counted them.
    const status = await masterStatus(new RewrapJob(v12));
    expect(status.writeVersion).toBe(2);
    expect(status.versions.find((v) => v.version === 1)).toMatchObject({ removable: false, objects: null, accessKeys: 3 });
  });

  it("a pass moves every object to v2, resumably, without changing a body, ETag or LastModified", async () => {
    before = new Map();
    lastModified = new Map();
    for (const o of objects) {
      before.set(o.key, await raw(o.key));
      lastModified.set(o.key, (await s3("adminA", { method: "HEAD", bucket, key: o.key }, v12)).headers.get("last-modified")!);
    }
    // R2 stamps puts with the time: make sure a re-put lands in a later second.
    await new Promise((r) => setTimeout(r, 1100));
    // Small budgets: at most 4 objects visited and 3 moved per step, resumed step after step.
    const { steps, visitedPerStep } = await runPass(v12, 4, 3);
    expect(steps).toBeGreaterThanOrEqual(4);
    expect(Math.max(...visitedPerStep)).toBeLessThanOrEqual(4);

    for (const o of objects) {
      const now = await raw(o.key);
      const was = before.get(o.key)!;
      expect(now.mv, o.key).toBe(2);
      expect(now.kv, o.key).toBe(was.kv);
      expect(now.sha, o.key).toBe(was.sha); // ciphertext streamed through unchanged
      if (was.mv === 1) {
        expect(now.lm, o.key).toBe(was.uploaded);
        expect(now.uploaded, o.key).toBeGreaterThan(was.uploaded);
      }
      const head = await s3("adminA", { method: "HEAD", bucket, key: o.key }, v12);
      expect(head.headers.get("last-modified"), o.key).toBe(lastModified.get(o.key));
    }
    expect((await env.OBJECTS.head("_mpu/not-an-object/00001/a"))?.customMetadata).toEqual({});
    expect((await raw("tagged.txt")).etag).toBe(before.get("tagged.txt")!.etag);
    // Resealed facts keep what they held: the listing still names each object's checksum algorithm.
    const listing = await (await s3("adminA", { method: "GET", bucket, query: { "list-type": "2", prefix: "plain/" } }, v12)).text();
    expect(listing).toContain("<Key>plain/sse-s3.txt</Key>");
    expect(listing).toContain("<ChecksumAlgorithm>CRC64NVME</ChecksumAlgorithm><ChecksumType>FULL_OBJECT</ChecksumType>");
    const tagging = await s3("adminA", { method: "GET", bucket, key: "tagged.txt", query: { tagging: "" } }, v12);
    expect(await tagging.text()).toContain("<Tag><Key>keep</Key><Value>me</Value></Tag>");

    const pass = (await new RewrapJob(v12).latest())!;
    expect(pass).toMatchObject({ status: "completed", targetVersion: 2, rewrapped: objects.length - 1, current: 1, failed: 2, conflicts: 0 });
    expect(pass.census).toEqual({ "2": { objects: objects.length, unreadable: 0 }, "1": { objects: 2, unreadable: 2 } });
    const failures = await new RewrapJob(v12).failures(pass.id, null, 10);
    expect(failures.map((f) => [f.r2Key, f.reason, f.blocking])).toEqual([
      [`${bucket}/shredded`, "key-destroyed", false],
      [`${bucket}/tampered`, "tampered", false],
    ]);
    expect((await raw("tampered")).meta["x-amz-meta-owner"]).toBe("mallory"); // left exactly as found
  });

  it("re-seals access-key secrets and reports v1 removable", async () => {
    const keys = await env.DB.prepare("SELECT master_version AS v, count(*) AS n FROM access_keys GROUP BY master_version").all<{ v: number; n: number }>();
    expect(keys.results).toEqual([{ v: 2, n: 3 }]);
    const status = await masterStatus(new RewrapJob(v12));
    expect(status.evidence?.targetVersion).toBe(2);
    expect(status.versions.find((v) => v.version === 1)).toMatchObject({ configured: true, removable: true, objects: 2, unreadableObjects: 2, accessKeys: 0, multipartUploads: 0 });
    expect(status.versions.find((v) => v.version === 2)).toMatchObject({ write: true, removable: false });
    // The same figure over the admin API.
    const api = await adminCall("GET", "/master/status", undefined, v12);
    expect(api.status).toBe(200);
    expect((api.json["versions"] as Array<{ version: number; removable: boolean }>).find((v) => v.version === 1)?.removable).toBe(true);
  });

  it("with v1 deleted every object and every access key still works", async () => {
    await kms("adminA", "EnableKey", { KeyId: disabledKey }, { env: v2only });
    await readAll(v2only);
    const list = await s3("adminA", { method: "GET", bucket, query: { "list-type": "2" } }, v2only);
    expect(await list.text()).toContain("<Key>kms/custom-2</Key>");
    const tampered = await s3("adminA", { method: "GET", bucket, key: "tampered" }, v2only);
    expect(tampered.status).toBe(500);
  });

  it("a second pass is idempotent: nothing left to move", async () => {
    const shaBefore = (await raw("kms/custom-1")).sha;
    // Objects already on the target cost only the listing; the two unmovable ones still cost
    // an attempt each: a two-move budget finishes in one step, a one-move budget does not.
    expect((await runPass(v12, 1000, 2)).steps).toBe(1);
    expect((await runPass(v12, 1000, 1)).steps).toBe(2);
    const pass = (await new RewrapJob(v12).latest())!;
    expect(pass).toMatchObject({ status: "completed", rewrapped: 0, current: objects.length, failed: 2 });
    expect((await raw("kms/custom-1")).sha).toBe(shaBefore);
  });

  it("the scheduled tick starts and finishes a pass on its own when a new version appears", async () => {
    await runRewrapTick(v123, "cron:test");
    const pass = (await new RewrapJob(v123).latest())!;
    expect(pass).toMatchObject({ status: "completed", targetVersion: 3, startedBy: "cron", rewrapped: objects.length });
    for (const o of objects) expect((await raw(o.key)).mv).toBe(3);
    await readAll(v3only);
    // Nothing more to do on the next tick.
    await runRewrapTick(v123, "cron:test2");
    expect((await new RewrapJob(v123).latest())!.id).toBe(pass.id);
    const status = await masterStatus(new RewrapJob(v123));
    expect(status.versions.filter((v) => v.removable).map((v) => v.version)).toEqual([1, 2]);
  });
});

describe("rewrap safety", () => {
  it("never clobbers a concurrent overwrite, even one that kept the ciphertext (CopyObject onto itself)", async () => {
    const key = "race/copy";
    expect((await s3("adminA", { method: "PUT", bucket, key, body: "race body", headers: { "x-amz-meta-v": "1" } }, v12)).status).toBe(200);
    const stale = (await env.OBJECTS.get(`${bucket}/${key}`))!;
    await new Promise((r) => setTimeout(r, 5));
    const copy = await s3("adminA", { method: "PUT", bucket, key, headers: { "x-amz-copy-source": `/${bucket}/${key}`, "x-amz-metadata-directive": "REPLACE", "x-amz-meta-v": "2" } }, v12);
    expect(copy.status).toBe(200);
    const fresh = (await env.OBJECTS.head(`${bucket}/${key}`))!;
    expect(fresh.etag).toBe(stale.etag); // same ciphertext, so R2's ETag alone cannot tell
    const services = makeServices(v123);
    const outcome = await rewrapLoaded({ ...services.objects, buckets: services.buckets }, (await services.buckets.get(bucket))!, key, stale, 3);
    expect(outcome.kind).toBe("conflict");
    const got = await s3("adminA", { method: "HEAD", bucket, key }, v123);
    expect(got.headers.get("x-amz-meta-v")).toBe("2");
    expect((await raw(key)).mv).toBe(2);

    // Deleted meanwhile: the rewrap must not bring it back.
    expect((await s3("adminA", { method: "PUT", bucket, key: "race/deleted", body: "bye" }, v12)).status).toBe(200);
    const before = (await env.OBJECTS.get(`${bucket}/race/deleted`))!;
    expect((await s3("adminA", { method: "DELETE", bucket, key: "race/deleted" }, v12)).status).toBe(204);
    const gone = await rewrapLoaded({ ...services.objects, buckets: services.buckets }, (await services.buckets.get(bucket))!, "race/deleted", before, 3);
    expect(gone.kind).toBe("conflict");
    expect(await env.OBJECTS.head(`${bucket}/race/deleted`)).toBeNull();
  });

  it("a runner holding the lease keeps others out; a write-version change cancels the pass", async () => {
    const job = new RewrapJob(v123);
    const pass = await job.start("test");
    await env.DB.prepare("UPDATE rewrap_passes SET lease_owner = 'someone', lease_until = ? WHERE id = ?").bind(Date.now() + 60_000, pass.id).run();
    expect((await job.step("me", { maxObjects: 10, maxMoves: 10, maxMs: 1000 })).outcome).toBe("busy");
    // Expired leases are taken over.
    await env.DB.prepare("UPDATE rewrap_passes SET lease_until = ? WHERE id = ?").bind(Date.now() - 1, pass.id).run();
    expect((await job.step("me", { maxObjects: 1, maxMoves: 1, maxMs: 1000 })).outcome).toBe("progressed");
    // The operator pins writes back to v2: the pass towards v3 no longer describes the target.
    const pinned = envWith({ MASTER_KEY_V2: MASTER_V2, MASTER_KEY_V3: MASTER_V3, MASTER_KEY_WRITE_VERSION: "2" });
    const r = await new RewrapJob(pinned).step("me", { maxObjects: 10, maxMoves: 10, maxMs: 1000 });
    expect(r.outcome).toBe("cancelled");
    expect(r.pass?.status).toBe("cancelled");
    // A cancelled pass is not restarted by the cron.
    await runRewrapTick(v123, "cron:test3");
    expect((await new RewrapJob(v123).latest())!.status).toBe("cancelled");
  });

  it("the admin API starts, continues and reports a pass", async () => {
    const started = await adminCall("POST", "/master/rewrap", { maxObjects: 2 }, v123);
    expect(started.status).toBe(200);
    expect(started.json).toMatchObject({ outcome: "progressed", visited: 2, targetVersion: 3 });
    let outcome = started.json["outcome"];
    for (let i = 0; i < 50 && outcome !== "completed"; i++) outcome = (await adminCall("POST", "/master/rewrap", { start: false, maxObjects: 5 }, v123)).json["outcome"];
    expect(outcome).toBe("completed");
    const idle = await adminCall("POST", "/master/rewrap", { start: false }, v123);
    expect(idle.json["outcome"]).toBe("idle");
    const report = await adminCall("GET", "/master/rewrap", undefined, v123);
    expect((report.json["failures"] as unknown[]).length).toBe(2);
    expect((await adminCall("POST", "/master/rewrap", { maxObjects: 0 }, v123)).status).toBe(400);
    expect((await adminCall("POST", "/master/rewrap/cancel", undefined, v123)).status).toBe(404);
    expect(await s3Code(await s3("adminA", { method: "GET", bucket, key: "nope" }, v3only))).toBe("NoSuchKey");
  });
});

