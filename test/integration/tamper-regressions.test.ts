/**
 * Deterministic replays of failures the tamper campaign (test/fuzz/tamper-campaign.test.ts)
 * found, kept so they stay fixed whatever the campaign's random draw.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { createBucket, expectError, rawGet, rawPut, seedIdentities, send, uniqueBucket } from "../support/s3-harness";

const bucket = uniqueBucket("tamper-regr");

beforeAll(async () => {
  await seedIdentities();
  await createBucket("adminA", bucket);
});

describe("tamper campaign regressions", () => {
  it("a tampered empty object is refused with an S3 error (the runtime used to fail the request outright)", async () => {
    for (const mode of ["AES256", "aws:kms"]) {
      const key = `empty-${mode}`;
      expect((await send("adminA", { method: "PUT", bucket, key, body: new Uint8Array(0), headers: { "x-amz-server-side-encryption": mode } })).status).toBe(200);
      const raw = (await rawGet(bucket, key))!;
      for (const offset of [0, 20, 40]) {
        const body = raw.body.slice();
        body[offset]! ^= 0x01;
        await rawPut(bucket, key, { ...raw, body });
        await expectError(send("adminA", { method: "GET", bucket, key }), 500, "InternalError");
      }
      await rawPut(bucket, key, raw);
      const r = await send("adminA", { method: "GET", bucket, key });
      expect(r.status).toBe(200);
      expect(r.headers.get("content-length")).toBe("0");
      expect((await r.arrayBuffer()).byteLength).toBe(0);
    }
  });
});
