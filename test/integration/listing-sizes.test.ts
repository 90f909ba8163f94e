/**
 * Listings show sizes they can stand behind. A listing has no data key, so it cannot check
 * the envelope's MAC; an envelope whose `n` was edited in R2 must not have its forged size
 * listed. Objects carry their length in the sealed facts (authenticated by the tenant's
 * seal key, which listings have); objects written before that are listed with the size
 * their ciphertext implies when the envelope disagrees with it. GET refuses the edited
 * objects and the audit names them.
 */
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import type { AuditPage } from "../../src/audit/audit";
import { decodeEnvelope, ENVELOPE_KEY } from "../../src/crypto/envelope";
import { sealFacts, unsealFacts } from "../../src/crypto/facts";
import { makeServices } from "../../src/services";
import { adminCall } from "../support/kms-harness";
import { multipartPut, MiB } from "../support/multipart";
import { TENANT_A, createBucket, rawGet, rawPut, readFully, seedIdentities, send, uniqueBucket, xmlBlocks, xmlValue } from "../support/s3-harness";
import { pseudoRandom } from "../support/sources";

const bucket = uniqueBucket("listsize");

beforeAll(async () => {
  await seedIdentities();
  await createBucket("adminA", bucket);
});

async function listedSizes(prefix: string): Promise<Record<string, number>> {
  const r = await send("adminA", { method: "GET", bucket, query: { "list-type": "2", prefix } });
  const text = await r.text();
  expect(r.status, text).toBe(200);
  return Object.fromEntries(xmlBlocks(text, "Contents").map((c) => [xmlValue(c, "Key")!, Number(xmlValue(c, "Size"))]));
}

/** Rewrites the envelope's `n` (and optionally its sealed facts) in R2, leaving the body alone. */
async function editEnvelope(key: string, edit: (stored: Record<string, unknown>) => Promise<void> | void): Promise<void> {
  const raw = (await rawGet(bucket, key))!;
  const stored = JSON.parse(raw.customMetadata[ENVELOPE_KEY]!) as Record<string, unknown>;
  await edit(stored);
  raw.customMetadata[ENVELOPE_KEY] = JSON.stringify(stored);
  await rawPut(bucket, key, raw);
}

const b64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes));

async function sealedFacts(key: string) {
  const raw = (await rawGet(bucket, key))!;
  const envelope = decodeEnvelope(raw.customMetadata[ENVELOPE_KEY]);
  const sealKey = await makeServices(env).keys.sealKey(TENANT_A, envelope.masterVersion);
  return { envelope, sealKey, facts: await unsealFacts(sealKey, bucket, key, envelope.sealed) };
}

async function auditProblems(): Promise<Record<string, string>> {
  const r = await adminCall("GET", `/buckets/${bucket}/audit`);
  expect(r.status).toBe(200);
  return Object.fromEntries((r.json as unknown as AuditPage).problems.map((p) => [p.key, p.reason]));
}

describe("listed sizes under an edited envelope length", () => {
  it("new objects seal their length; single and multipart objects keep their true size in the listing when `n` is forged", async () => {
    await send("adminA", { method: "PUT", bucket, key: "s/single", body: pseudoRandom(100_000, 1) });
    const parts = [pseudoRandom(5 * MiB, 2), pseudoRandom(1234, 3)];
    await multipartPut("adminA", bucket, "s/multi", parts);
    const copy = await send("adminA", { method: "PUT", bucket, key: "s/copy", headers: { "x-amz-copy-source": `/${bucket}/s/single` } });
    expect(copy.status).toBe(200);

    // The sealed facts carry exactly the envelope's length.
    expect((await sealedFacts("s/single")).facts.length).toBe(100_000);
    expect((await sealedFacts("s/multi")).facts.length).toBe(5 * MiB + 1234);
    expect((await sealedFacts("s/copy")).facts.length).toBe(100_000);

    expect(await listedSizes("s/")).toEqual({ "s/single": 100_000, "s/multi": 5 * MiB + 1234, "s/copy": 100_000 });
    for (const key of ["s/single", "s/multi", "s/copy"]) await editEnvelope(key, (e) => void (e["n"] = 7));
    expect(await listedSizes("s/")).toEqual({ "s/single": 100_000, "s/multi": 5 * MiB + 1234, "s/copy": 100_000 });

    // GET refuses the edited objects; the audit names them.
    for (const key of ["s/single", "s/multi"]) {
      const r = await send("adminA", { method: "GET", bucket, key });
      const { errored } = await readFully(r);
      expect(r.status !== 200 || errored, key).toBe(true);
    }
    const problems = await auditProblems();
    expect(problems["s/single"]).toBe("tampered");
    expect(problems["s/multi"]).toBe("tampered");
    expect(problems["s/copy"]).toBe("tampered");
  });

  it("objects whose facts predate the sealed length: a single-layout envelope whose `n` disagrees with the ciphertext is listed with the ciphertext's size", async () => {
    await send("adminA", { method: "PUT", bucket, key: "old/single", body: pseudoRandom(70_000, 4) });
    // Reseal the facts as they were written before they carried the length.
    const { facts, sealKey } = await sealedFacts("old/single");
    const legacy = await sealFacts(sealKey, bucket, "old/single", { etag: facts.etag });
    await editEnvelope("old/single", (e) => void (e["e"] = b64(legacy)));
    expect((await sealedFacts("old/single")).facts.length).toBeUndefined();
    expect(await listedSizes("old/")).toEqual({ "old/single": 70_000 });

    for (const forged of [1, 69_999, 70_001, 10_000_000]) {
      await editEnvelope("old/single", (e) => void (e["n"] = forged));
      expect(await listedSizes("old/"), `n = ${forged}`).toEqual({ "old/single": 70_000 });
    }
  });

  it("sealed facts with a length that is not a count are refused (the object is listed from its ciphertext, without ETag)", async () => {
    await send("adminA", { method: "PUT", bucket, key: "bad/n", body: pseudoRandom(1000, 5) });
    const { sealKey, facts } = await sealedFacts("bad/n");
    const bad = await sealFacts(sealKey, bucket, "bad/n", { ...facts, length: -1 });
    await editEnvelope("bad/n", (e) => void (e["e"] = b64(bad)));
    await expect(unsealFacts(sealKey, bucket, "bad/n", bad)).rejects.toThrow(/malformed/);
    const r = await send("adminA", { method: "GET", bucket, query: { "list-type": "2", prefix: "bad/" } });
    const text = await r.text();
    expect(xmlValue(xmlBlocks(text, "Contents")[0]!, "Size")).toBe("1000");
    expect(xmlValue(xmlBlocks(text, "Contents")[0]!, "ETag")).toBe('""');
  });
});
