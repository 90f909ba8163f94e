import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { RewrapJob } from "../../src/rotation/job";
import { masterStatus } from "../../src/rotation/status";
import { MASTER_V2, envWith } from "../support/kms-harness";
import { MiB, concat, createUpload, multipartPut, traces, uploadPart } from "../support/multipart";
import { createBucket, readFully, sameBytes, seedIdentities, send, uniqueBucket } from "../support/s3-harness";
import { pseudoRandom } from "../support/sources";

/**
 * Master rotation with multipart-layout objects: only the manifest object at the key is
 * re-put; part streams under _mpu/ are not touched. Uploads still in progress keep their
 * data key wrapped under the old version in D1, so they hold the old secret in use.
 */
const bucket = uniqueBucket("rewrap-mpu");
const PARTS = [pseudoRandom(5 * MiB, 31), pseudoRandom(70_000, 32)];
const WHOLE = concat(PARTS);
const v12 = envWith({ MASTER_KEY_V2: MASTER_V2 });
const v2only = envWith({ MASTER_KEY_V1: undefined, MASTER_KEY_V2: MASTER_V2 });

let uploadId = "";
let pendingUpload = "";

async function sha(key: string): Promise<string> {
  const bytes = new Uint8Array(await (await env.OBJECTS.get(key))!.arrayBuffer());
  return Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)), (b) => b.toString(16).padStart(2, "0")).join("");
}

beforeAll(async () => {
  await seedIdentities();
  await createBucket("adminA", bucket);
  uploadId = (await multipartPut("adminA", bucket, "big", PARTS, { "x-amz-server-side-encryption": "aws:kms", "x-amz-meta-kind": "multipart" })).uploadId;
  pendingUpload = await createUpload("adminA", bucket, "in-progress");
  await uploadPart("adminA", bucket, "in-progress", pendingUpload, 1, pseudoRandom(1000, 33));
});

describe("rewrap of multipart-layout objects", () => {
  it("re-puts only the manifest; the object reads back whole and by range with v1 gone", async () => {
    const parts = (await traces(uploadId)).r2.sort();
    const before = new Map<string, string>();
    for (const k of parts) before.set(k, await sha(k));
    const manifestBefore = await sha(`${bucket}/big`);

    const job = new RewrapJob(v12);
    await job.start("test");
    const r = await job.step("test", { maxObjects: 1000, maxMoves: 400, maxMs: 60_000 });
    expect(r.outcome).toBe("completed");
    expect(r.pass).toMatchObject({ rewrapped: 1, failed: 0, scanned: 1 });

    const envelope = JSON.parse((await env.OBJECTS.head(`${bucket}/big`))!.customMetadata!["sse-envelope"]!) as { mv: number; p: unknown };
    expect(envelope.mv).toBe(2);
    expect(envelope.p).toBeTruthy();
    expect(await sha(`${bucket}/big`)).toBe(manifestBefore);
    for (const k of parts) expect(await sha(k), k).toBe(before.get(k));

    const whole = await readFully(await send("adminA", { method: "GET", bucket, key: "big", env: v2only }));
    expect(whole.errored).toBe(false);
    expect(sameBytes(whole.bytes, WHOLE)).toBe(true);
    const first = 5 * MiB - 10;
    const range = await send("adminA", { method: "GET", bucket, key: "big", headers: { range: `bytes=${first}-${first + 19}` }, env: v2only });
    expect(range.status).toBe(206);
    expect(sameBytes((await readFully(range)).bytes, WHOLE.subarray(first, first + 20))).toBe(true);
    const head = await send("adminA", { method: "HEAD", bucket, key: "big", env: v2only });
    expect(head.headers.get("x-amz-meta-kind")).toBe("multipart");
    // The clean-up job still sees the parts as referenced: the manifest hash is unchanged.
    expect((await traces(uploadId)).objects).toBe(1);
  });

  it("an upload in progress keeps v1 in use until it is aborted", async () => {
    const job = new RewrapJob(v12);
    let v1 = (await masterStatus(job)).versions.find((v) => v.version === 1)!;
    expect(v1).toMatchObject({ objects: 0, multipartUploads: 1, removable: false });
    expect(v1.reason).toContain("in-progress multipart upload");
    const abort = await send("adminA", { method: "DELETE", bucket, key: "in-progress", query: { uploadId: pendingUpload } });
    expect(abort.status).toBe(204);
    v1 = (await masterStatus(job)).versions.find((v) => v.version === 1)!;
    expect(v1).toMatchObject({ multipartUploads: 0, removable: true });
  });
});
