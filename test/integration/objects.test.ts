import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { call, createBucket, seedIdentities } from "../support/worker-client";
import { pseudoRandom } from "../support/sources";

beforeAll(async () => {
  await seedIdentities();
  await createBucket("adminA", "objects");
});

describe("PutObject / GetObject through the worker", () => {
  it("stores ciphertext only and round-trips", async () => {
    const body = pseudoRandom(200_000, 3);
    const put = await call("adminA", { method: "PUT", bucket: "objects", key: "a.bin", body, headers: { "content-type": "application/x-test", "x-amz-meta-color": "blue" } });
    expect(put.status).toBe(200);
    expect(put.headers.get("x-amz-server-side-encryption")).toBe("AES256");
    const raw = await env.OBJECTS.get("objects/a.bin");
    const stored = new Uint8Array(await raw!.arrayBuffer());
    // Header, 4 sealed chunks, and the 52-byte trailer record with the object's checksum.
    expect(stored.length).toBe(200_000 + 32 + 16 * 4 + 52);
    const hay = Array.from(stored).join(",");
    expect(hay.includes(Array.from(body.subarray(5000, 5024)).join(","))).toBe(false);
    const get = await call("adminA", { method: "GET", bucket: "objects", key: "a.bin" });
    expect(get.status).toBe(200);
    expect(get.headers.get("content-type")).toBe("application/x-test");
    expect(get.headers.get("x-amz-meta-color")).toBe("blue");
    expect(new Uint8Array(await get.arrayBuffer())).toEqual(body);
  });
});
