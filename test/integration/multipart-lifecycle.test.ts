import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { runMultipartCleanup } from "../../src/multipart/cleanup-job";
import { MiB, concat, createUpload, multipartPut, traces, uploadPart } from "../support/multipart";
import { pseudoRandom } from "../support/sources";
import { createBucket, expectError, readFully, sameBytes, seedIdentities, send, uniqueBucket, xmlValue } from "../support/s3-harness";

/** Part data never outlives its owner: aborted, expired, deleted or replaced objects leave nothing. */
const bucket = uniqueBucket("mpu-life");
const HOUR = 3600 * 1000;

beforeAll(async () => {
  await seedIdentities();
  await createBucket("adminA", bucket);
});

const small = (seed: number) => [pseudoRandom(5 * MiB, seed), pseudoRandom(1000, seed + 1)];

describe("completed objects release their parts", () => {
  it("on DeleteObject", async () => {
    const o = await multipartPut("adminA", bucket, "del-one", small(1));
    expect((await traces(o.uploadId)).r2).toHaveLength(2);
    expect((await send("adminA", { method: "DELETE", bucket, key: "del-one" })).status).toBe(204);
    expect(await traces(o.uploadId)).toEqual({ uploads: 0, parts: 0, objects: 0, r2: [] });
  });

  it("on DeleteObjects", async () => {
    const a = await multipartPut("adminA", bucket, "many/a", small(3));
    const b = await multipartPut("adminA", bucket, "many/b", small(5));
    const body = "<Delete><Object><Key>many/a</Key></Object><Object><Key>many/b</Key></Object><Object><Key>many/none</Key></Object></Delete>";
    const md5 = btoa(String.fromCharCode(...new Uint8Array(await crypto.subtle.digest("MD5", new TextEncoder().encode(body)))));
    const r = await send("adminA", { method: "POST", bucket, query: { delete: "" }, body, headers: { "content-md5": md5 } });
    expect(r.status).toBe(200);
    expect((await traces(a.uploadId)).r2).toEqual([]);
    expect((await traces(b.uploadId)).r2).toEqual([]);
  });

  it("when another multipart upload completes over the key", async () => {
    const first = await multipartPut("adminA", bucket, "again", small(7));
    const second = await multipartPut("adminA", bucket, "again", small(9));
    expect(await traces(first.uploadId)).toEqual({ uploads: 0, parts: 0, objects: 0, r2: [] });
    expect((await traces(second.uploadId)).r2).toHaveLength(2);
    expect(sameBytes((await readFully(await send("adminA", { method: "GET", bucket, key: "again" }))).bytes, concat(small(9)))).toBe(true);
  });

  it("when a single PUT replaces it: the sweep releases the parts, and keeps live ones", async () => {
    const replaced = await multipartPut("adminA", bucket, "put-over", small(11));
    const kept = await multipartPut("adminA", bucket, "kept", small(13));
    expect((await send("adminA", { method: "PUT", bucket, key: "put-over", body: "now small" })).status).toBe(200);
    await sweepToEnd();
    expect(await traces(replaced.uploadId)).toEqual({ uploads: 0, parts: 0, objects: 0, r2: [] });
    expect((await traces(kept.uploadId)).r2).toHaveLength(2);
    expect((await traces(kept.uploadId)).objects).toBe(1);
  });
});

/** Runs the clean-up until its sweep has covered all of "_mpu/". */
async function sweepToEnd(now = Date.now()) {
  const total = { aborted: 0, settled: 0, released: 0, orphans: 0 };
  for (let i = 0; i < 50; i++) {
    const r = await runMultipartCleanup(env, now);
    total.aborted += r.aborted;
    total.settled += r.settled;
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

  it("still refuses while a completed multipart object is in the bucket", async () => {
    const b = uniqueBucket("mpu-full");
    await createBucket("adminA", b);
    const o = await multipartPut("adminA", b, "obj", small(17));
    await expectError(send("adminA", { method: "DELETE", bucket: b }), 409, "BucketNotEmpty");
    expect((await traces(o.uploadId)).r2).toHaveLength(2);
  });
});
