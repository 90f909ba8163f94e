/**
 * Exact cases the fuzzers (test/fuzz/*.test.ts) found, kept as plain tests so they run in
 * every `npm test` whatever the random sample: each was a 500 or a wrong answer once.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { createBucket, expectError, seedIdentities, send, uniqueBucket } from "../support/s3-harness";

const bucket = uniqueBucket("fz-regress");

beforeAll(async () => {
  await seedIdentities();
  await createBucket("adminA", bucket);
  expect((await send("adminA", { method: "PUT", bucket, key: "obj", body: "hello" })).status).toBe(200);
});

describe("found by fuzzing", () => {
  it.each(["\u0000", "a\nb", "text/html\r\nx-injected: 1"])("GET ?response-* with a value no header can hold (%j) is 400 InvalidArgument, not a 500", async (value) => {
    for (const param of ["response-expires", "response-content-type", "response-content-disposition"]) {
      const e = await expectError(send("adminA", { method: "GET", bucket, key: "obj", query: { [param]: value } }), 400, "InvalidArgument");
      expect(e.text).toContain(`<ArgumentName>${param}</ArgumentName>`);
    }
  });
});
