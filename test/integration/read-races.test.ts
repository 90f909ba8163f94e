import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { MiB, concat, multipartPut } from "../support/multipart";
import { createBucket, expectError, rawGet, rawPut, readFully, sameBytes, seedIdentities, send, uniqueBucket, type RawObject } from "../support/s3-harness";
import { pseudoRandom } from "../support/sources";

/**
 * A GET takes several R2 calls; a writer replacing the object between two of them used to
 * turn the read into a 500 "integrity failure" or a 416 with the new object's size (found
 * by test/e2e/concurrency.soak.test.ts). R2 is wrapped so the overwrite lands exactly between
 * the calls; the read must then be answered from the version that is there now.
 */
const bucket = uniqueBucket("races");

beforeAll(async () => {
  await seedIdentities();
  await createBucket("adminA", bucket);
});

/** The stored form of `body` written at `key` (valid only at that key: the MAC binds it). */
async function storedAt(key: string, body: Uint8Array): Promise<RawObject> {
  const r = await send("adminA", { method: "PUT", bucket, key, body });
  expect(r.status, await r.text()).toBe(200);
  return (await rawGet(bucket, key))!;
}

/** OBJECTS with `before(method, key, options)` run ahead of every get/head. */
function racing(before: (method: "get" | "head", key: string, options?: R2GetOptions) => Promise<void>): R2Bucket {
  const real = env.OBJECTS;
  return new Proxy(real, {
    get(target, prop) {
      if (prop === "get") return async (key: string, options?: R2GetOptions) => (await before("get", key, options), real.get(key, options));
      if (prop === "head") return async (key: string) => (await before("head", key), real.head(key));
      const value = Reflect.get(target, prop) as unknown;
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

async function deletePrefix(prefix: string): Promise<void> {
  const listed = await env.OBJECTS.list({ prefix });
  await env.OBJECTS.delete(listed.objects.map((o) => o.key));
}

describe("a read racing an overwrite", () => {
  it("ranged GET of a multipart object replaced before its manifest is refetched: served from the new object", async () => {
    const v2 = pseudoRandom(100_000, 1);
    const raw2 = await storedAt("mp-then-single", v2);
    await multipartPut("adminA", bucket, "mp-then-single", [pseudoRandom(300_000, 2)]);
    let fired = false;
    const OBJECTS = racing(async (method, _key, options) => {
      if (method === "get" && options?.onlyIf && !fired) {
        fired = true;
        await rawPut(bucket, "mp-then-single", raw2);
      }
    });
    const r = await send("adminA", { method: "GET", bucket, key: "mp-then-single", headers: { range: "bytes=10-20" }, env: { OBJECTS } });
    expect(fired).toBe(true);
    expect(r.status, await r.clone().text()).toBe(206);
    expect(r.headers.get("content-range")).toBe("bytes 10-20/100000");
    expect(sameBytes(new Uint8Array(await r.arrayBuffer()), v2.subarray(10, 21))).toBe(true);
  });

  it("ranged GET past the end of a small object that a larger one replaces: served from the larger, not 416", async () => {
    const v2 = pseudoRandom(200_000, 3);
    const raw2 = await storedAt("grows", v2);
    await storedAt("grows", pseudoRandom(1000, 4));
    let fired = false;
    // The ranged get fails on the small object (the range starts past its end); the
    // larger one lands before the gateway looks at the metadata.
    const OBJECTS = racing(async (method) => {
      if (method === "head" && !fired) {
        fired = true;
        await rawPut(bucket, "grows", raw2);
      }
    });
    const r = await send("adminA", { method: "GET", bucket, key: "grows", headers: { range: "bytes=150000-150009" }, env: { OBJECTS } });
    expect(fired).toBe(true);
    expect(r.status, await r.clone().text()).toBe(206);
    expect(sameBytes(new Uint8Array(await r.arrayBuffer()), v2.subarray(150000, 150010))).toBe(true);
  });

  it("the same range on the small object alone is still 416 with its size", async () => {
    await storedAt("small", pseudoRandom(1000, 5));
    const error = await expectError(send("adminA", { method: "GET", bucket, key: "small", headers: { range: "bytes=150000-150009" } }), 416, "InvalidRange");
    expect(error.text).toContain("<ActualObjectSize>1000</ActualObjectSize>");
  });

  it("GET of a multipart object whose parts were released after a replacing Complete (the sweep, past the grace): served from the new object", async () => {
    const v2 = pseudoRandom(70_000, 6);
    const raw2 = await storedAt("released", v2);
    const { uploadId } = await multipartPut("adminA", bucket, "released", [pseudoRandom(5 * MiB, 7), pseudoRandom(1000, 8)]);
    let fired = false;
    const OBJECTS = racing(async (method, key) => {
      if (method === "get" && key.startsWith("_mpu/") && !fired) {
        fired = true;
        await rawPut(bucket, "released", raw2);
        await deletePrefix(`_mpu/${uploadId}/`);
      }
    });
    const r = await send("adminA", { method: "GET", bucket, key: "released", env: { OBJECTS } });
    expect(fired).toBe(true);
    expect(r.status, await r.clone().text()).toBe(200);
    const { bytes, errored } = await readFully(r);
    expect(errored).toBe(false);
    expect(sameBytes(bytes, v2)).toBe(true);
  });

  it("parts missing under an unchanged manifest are still an integrity failure (500, nothing served)", async () => {
    const { uploadId } = await multipartPut("adminA", bucket, "gutted", [pseudoRandom(5 * MiB, 9), pseudoRandom(1000, 10)]);
    await deletePrefix(`_mpu/${uploadId}/`);
    await expectError(send("adminA", { method: "GET", bucket, key: "gutted" }), 500, "InternalError");
  });
});

describe("a reader streaming a multipart object while it is replaced or deleted", () => {
  // Complete and DeleteObject only mark the replaced manifest dead; its part data is
  // released by the sweep after MULTIPART_RELEASE_GRACE_MINUTES (docs/multipart.md,
  // "Clean-up"), so a GET still streaming the old version reads it to its end, as on S3.
  async function readsToEnd(key: string, seed: number, meanwhile: () => Promise<void>): Promise<void> {
    const old = [pseudoRandom(5 * MiB, seed), pseudoRandom(5 * MiB, seed + 1), pseudoRandom(1000, seed + 2)];
    await multipartPut("adminA", bucket, key, old);
    const r = await send("adminA", { method: "GET", bucket, key });
    expect(r.status).toBe(200);
    const reader = r.body!.getReader();
    const first = await reader.read();
    expect(first.done).toBe(false);
    // The reader holds after its first chunk while the key changes under it.
    await meanwhile();
    let received = first.value!.byteLength;
    const got = new Uint8Array(old.reduce((n, p) => n + p.byteLength, 0));
    got.set(first.value!, 0);
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      got.set(value, received);
      received += value.byteLength;
    }
    expect(received).toBe(got.byteLength);
    expect(sameBytes(got, concat(old))).toBe(true);
  }

  it("reads the old version to its end", async () => {
    await readsToEnd("streamed", 21, async () => {
      await multipartPut("adminA", bucket, "streamed", [pseudoRandom(5 * MiB, 24), pseudoRandom(10, 25)]);
    });
  });

  it("reads a deleted version to its end", async () => {
    await readsToEnd("streamed-deleted", 31, async () => {
      expect((await send("adminA", { method: "DELETE", bucket, key: "streamed-deleted" })).status).toBe(204);
    });
  });
});
