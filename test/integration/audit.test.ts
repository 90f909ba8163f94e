import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import type { AuditPage } from "../../src/audit/audit";
import { DAY_MS } from "../../src/kms/lifecycle";
import { runKeyLifecycle } from "../../src/kms/scheduled";
import { MASTER_V2, adminCall, envWith, kms, s3, uniqueName } from "../support/kms-harness";
import { seedIdentities } from "../support/worker-client";

/** The encryption audit finds every object that is not readable, and says why. */
const bucket = uniqueName("audit");
const kmsHeaders = (id?: string) => ({ "x-amz-server-side-encryption": "aws:kms", ...(id ? { "x-amz-server-side-encryption-aws-kms-key-id": id } : {}) });
const keys = { custom: "", disabled: "", pending: "", doomed: "" };
const arn = (id: string) => `arn:aws:kms:us-east-1:000000000000000000000000000000aa:key/${id}`;

async function put(key: string, body: string, headers: Record<string, string> = {}, e = envWith({})): Promise<void> {
  const r = await s3("adminA", { method: "PUT", bucket, key, body, headers }, e);
  expect(r.status, key).toBe(200);
}

async function rawEdit(key: string, edit: (o: { body: Uint8Array; meta: Record<string, string> }) => void): Promise<void> {
  const o = (await env.OBJECTS.get(`${bucket}/${key}`))!;
  const copy = { body: new Uint8Array(await o.arrayBuffer()), meta: { ...o.customMetadata } };
  edit(copy);
  await env.OBJECTS.put(`${bucket}/${key}`, copy.body, { customMetadata: copy.meta });
}

async function audit(query = ""): Promise<AuditPage> {
  const r = await adminCall("GET", `/buckets/${bucket}/audit${query}`);
  expect(r.status).toBe(200);
  return r.json as unknown as AuditPage;
}

beforeAll(async () => {
  await seedIdentities();
  expect((await s3("adminA", { method: "PUT", bucket })).status).toBe(200);
  for (const name of Object.keys(keys) as Array<keyof typeof keys>) keys[name] = ((await kms("adminA", "CreateKey", {})).body["KeyMetadata"] as { KeyId: string }).KeyId;

  await put("ok/sse-s3-1", "a");
  await put("ok/sse-s3-2", "b", { "x-amz-meta-team": "x" });
  await put("ok/default", "c", kmsHeaders());
  await put("ok/custom", "d".repeat(70_000), kmsHeaders(keys.custom));
  await put("bad/disabled", "e", kmsHeaders(keys.disabled));
  await put("bad/pending", "f", kmsHeaders(keys.pending));
  await put("bad/destroyed", "g", kmsHeaders(keys.doomed));
  await put("bad/meta-tampered", "h", { "x-amz-meta-owner": "alice" });
  await put("bad/envelope-tampered", "i");
  await put("bad/body-tampered", "j".repeat(1000));
  await put("bad/newer-master", "k", {}, envWith({ MASTER_KEY_V2: MASTER_V2 }));
  await env.OBJECTS.put(`${bucket}/bad/no-envelope`, "plaintext dropped straight into R2");

  await kms("adminA", "DisableKey", { KeyId: keys.disabled });
  await kms("adminA", "ScheduleKeyDeletion", { KeyId: keys.pending, PendingWindowInDays: 30 });
  await kms("adminA", "ScheduleKeyDeletion", { KeyId: keys.doomed, PendingWindowInDays: 7 });
  await runKeyLifecycle(env.DB, Date.now() + 8 * DAY_MS);

  await rawEdit("bad/meta-tampered", (o) => (o.meta["x-amz-meta-owner"] = "mallory"));
  await rawEdit("bad/envelope-tampered", (o) => {
    const e = JSON.parse(o.meta["sse-envelope"]!) as { m: string };
    e.m = "aws:kms"; // claim SSE-KMS for an SSE-S3 object
    o.meta["sse-envelope"] = JSON.stringify(e);
  });
  await rawEdit("bad/body-tampered", (o) => (o.body[100] = o.body[100]! ^ 1)); // same size, metadata intact
});

describe("encryption audit", () => {
  it("counts objects by mode, key and master version and lists every object that is not readable, with the reason", async () => {
    const page = await audit();
    expect(page).toMatchObject({ bucket, tenantId: "000000000000000000000000000000aa", scanned: 12, truncated: false, deepVerified: 0 });
    // Modes as each envelope claims them (the tampered one claims aws:kms; it is listed below).
    expect(page.byMode).toEqual({ AES256: 5, "aws:kms": 6, none: 1 });
    expect(page.byMasterVersion).toEqual({ "1": 10, "2": 1 });
    expect(page.byKey[arn(keys.custom)]).toEqual({ objects: 1, kind: "customer", state: "Enabled" });
    expect(page.byKey[arn(keys.disabled)]).toMatchObject({ objects: 1, state: "Disabled" });
    expect(page.byKey[arn(keys.pending)]).toMatchObject({ objects: 1, state: "PendingDeletion" });
    expect(page.byKey[arn(keys.pending)]!.deletionDate).toMatch(/^\d{4}-/);
    expect(page.byKey[arn(keys.doomed)]).toMatchObject({ objects: 1, state: "Destroyed" });
    const kinds = Object.values(page.byKey).map((k) => k.kind).sort();
    expect(kinds).toEqual(["customer", "customer", "customer", "customer", "default", "service"]);

    const reasons = Object.fromEntries(page.problems.map((p) => [p.key, p.reason]));
    expect(reasons).toEqual({
      "bad/disabled": "key-disabled",
      "bad/pending": "key-pending-deletion",
      "bad/destroyed": "key-destroyed",
      "bad/meta-tampered": "tampered",
      "bad/envelope-tampered": "tampered",
      "bad/newer-master": "master-version-missing",
      "bad/no-envelope": "no-envelope",
    });
    // Without deep verification a flipped ciphertext byte is invisible: the metadata is intact.
    expect(page.readable).toBe(5);
    expect(page.macVerified).toBe(7);
    const tampered = page.problems.find((p) => p.key === "bad/meta-tampered")!;
    expect(tampered.detail).toBe("object metadata failed authentication");
    expect(tampered.masterVersion).toBe(1);
  });

  it("deep mode decrypts every body and finds ciphertext tampering", async () => {
    const page = await audit("?deep=1");
    expect(page.deepVerified).toBe(4);
    expect(page.readable).toBe(4);
    expect(page.problems.find((p) => p.key === "bad/body-tampered")).toMatchObject({ reason: "ciphertext-tampered" });
  });

  it("pages with a cursor, and the pages add up to the whole", async () => {
    const whole = await audit();
    let cursor: string | undefined;
    const sum = { scanned: 0, readable: 0, problems: [] as string[], pages: 0 };
    do {
      const page = await audit(`?limit=5${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
      expect(page.scanned).toBeLessThanOrEqual(5);
      sum.scanned += page.scanned;
      sum.readable += page.readable;
      sum.problems.push(...page.problems.map((p) => p.key));
      sum.pages++;
      cursor = page.cursor;
      expect(Boolean(cursor)).toBe(page.truncated);
    } while (cursor);
    expect(sum.pages).toBe(3);
    expect(sum).toMatchObject({ scanned: whole.scanned, readable: whole.readable, problems: whole.problems.map((p) => p.key) });
    // Deep mode also bounds bytes per call.
    const small = await audit("?deep=1&maxBytes=1000");
    expect(small.truncated).toBe(true);
    expect(small.scanned).toBeLessThan(12);
  });

  it("refuses unknown buckets and bad limits", async () => {
    expect((await adminCall("GET", `/buckets/${uniqueName("none")}/audit`)).status).toBe(404);
    expect((await adminCall("GET", `/buckets/${bucket}/audit?limit=0`)).status).toBe(400);
    const listed = await adminCall("GET", "/buckets");
    expect((listed.json["buckets"] as Array<{ name: string }>).map((b) => b.name)).toContain(bucket);
  });
});
