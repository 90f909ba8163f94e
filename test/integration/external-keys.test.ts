import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { IntegrityError } from "../../src/crypto/errors";
import { externalCallCounts } from "../../src/kms/external-client";
import { DAY_MS } from "../../src/kms/lifecycle";
import type { KmsKey } from "../../src/kms/registry";
import { runKeyLifecycle } from "../../src/kms/scheduled";
import { masterStatus } from "../../src/rotation/status";
import { RewrapJob } from "../../src/rotation/job";
import { makeServices } from "../../src/services";
import { MASTER_V2, adminCall, envWith } from "../support/kms-harness";
import { TENANT_A, seedIdentities } from "../support/worker-client";

/**
 * CMKs rooted in an external KMS, the parts that need no external server (those are in
 * test/e2e/external-kms.test.ts): the admin API's validation, credentials sealed under the
 * master secret and re-sealed by master rotation (and counted by the master status), and
 * the binding and bucket keys going with a destroyed key, envelopes that name a bucket key
 * they cannot have.
 */
const SECRET = "external-kms-secret-that-must-never-be-stored-in-clear";
const v1 = envWith({});
const v12 = envWith({ MASTER_KEY_V2: MASTER_V2 });
const v2only = envWith({ MASTER_KEY_V1: undefined, MASTER_KEY_V2: MASTER_V2 });

beforeAll(async () => {
  await seedIdentities();
});

/** A customer key row with a sealed binding, as createKey leaves it (without calling out). */
async function boundKey(e = v1): Promise<KmsKey> {
  const services = makeServices(e);
  const key = await services.keys.registry.create({ tenantId: TENANT_A, region: "us-east-1", kind: "customer", description: "bound" });
  const statement = await services.keys.external.bindStatement(
    key.id,
    { endpoint: "https://kms.eu-west-1.amazonaws.com", region: "eu-west-1", externalKeyId: "arn:aws:kms:eu-west-1:111122223333:key/abc", accessKeyId: "AKIAEXTERNAL", secretAccessKey: SECRET },
    Date.now(),
  );
  await statement.run();
  await env.DB.prepare("UPDATE kms_keys SET origin = 'EXTERNAL_KEY_STORE' WHERE id = ?").bind(key.id).run();
  return { ...key, origin: "EXTERNAL_KEY_STORE" };
}

describe("admin API: binding requests are checked before any external call", () => {
  it("answers 404 for an unknown tenant and 400 for incomplete or contradictory bindings", async () => {
    const good = { endpoint: "https://kms.example", region: "us-east-1", externalKeyId: "k", accessKeyId: "A", secretAccessKey: "S" };
    expect((await adminCall("POST", "/tenants/ffffffffffffffffffffffffffffffff/external-keys", good)).status).toBe(404);
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ ...good, endpoint: undefined }, "endpoint, region and externalKeyId are required"],
      [{ ...good, endpoint: "ftp://kms.example" }, "endpoint must be an http(s) URL"],
      [{ ...good, endpoint: "https://user:pw@kms.example" }, "endpoint must not carry a query, fragment or user info"],
      [{ ...good, region: "Not A Region" }, "region must be an AWS region name"],
      [{ ...good, secretAccessKey: undefined }, "accessKeyId and secretAccessKey (or credentialsSecret) are required"],
      [{ ...good, credentialsSecret: "ACME_KMS" }, "give either credentialsSecret or accessKeyId + secretAccessKey, not both"],
      [{ endpoint: good.endpoint, region: good.region, externalKeyId: "k", credentialsSecret: "lower" }, "credentialsSecret must be an upper-case Worker secret name prefix"],
      [{ endpoint: good.endpoint, region: good.region, externalKeyId: "k", credentialsSecret: "ACME_KMS" }, "Worker secrets ACME_KMS_ACCESS_KEY_ID and ACME_KMS_SECRET_ACCESS_KEY are not both set"],
      [{ ...good, externalKeyId: 5 }, "externalKeyId must be a string"],
    ];
    for (const [body, error] of cases) {
      const r = await adminCall("POST", `/tenants/${TENANT_A}/external-keys`, body);
      expect([r.status, r.json["error"]], JSON.stringify(body)).toEqual([400, error]);
    }
    const stored = await env.DB.prepare("SELECT count(*) AS n FROM kms_external_keys").first<{ n: number }>();
    expect(stored?.n).toBe(0);
  });

  it("shows no binding for a key that has none, and replaces no credentials there", async () => {
    const key = await makeServices(v1).keys.registry.create({ tenantId: TENANT_A, region: "us-east-1", kind: "customer" });
    expect((await adminCall("GET", `/kms/keys/${key.id}/external`)).status).toBe(404);
    expect((await adminCall("PUT", `/kms/keys/${key.id}/external/credentials`, { accessKeyId: "A", secretAccessKey: "S" })).status).toBe(404);
  });

  it("checks new credentials before asking the external KMS", async () => {
    const key = await boundKey();
    for (const [body, error] of [
      [{}, "accessKeyId and secretAccessKey (or credentialsSecret) are required"],
      [{ accessKeyId: "A", secretAccessKey: "S", credentialsSecret: "X" }, "give either credentialsSecret or accessKeyId + secretAccessKey, not both"],
      [{ credentialsSecret: "UNSET" }, "Worker secrets UNSET_ACCESS_KEY_ID and UNSET_SECRET_ACCESS_KEY are not both set"],
      [{ accessKeyId: 1 }, "accessKeyId must be a string"],
    ] as const) {
      const r = await adminCall("PUT", `/kms/keys/${key.id}/external/credentials`, body);
      expect([r.status, r.json["error"]], JSON.stringify(body)).toEqual([400, error]);
    }
  });
});

describe("credentials at rest", () => {
  it("are sealed under the master secret, never in the clear, and shown only as 'sealed'", async () => {
    const key = await boundKey();
    const row = await env.DB.prepare("SELECT * FROM kms_external_keys WHERE key_id = ?").bind(key.id).first<Record<string, unknown>>();
    expect(row).toMatchObject({ access_key_id: "AKIAEXTERNAL", master_version: 1, credentials_secret: null });
    const dump = JSON.stringify(row) + new TextDecoder().decode(new Uint8Array(row!["secret_sealed"] as ArrayBuffer));
    expect(dump).not.toContain(SECRET);
    const shown = await adminCall("GET", `/kms/keys/${key.id}/external`);
    expect(shown.json["external"]).toEqual({
      endpoint: "https://kms.eu-west-1.amazonaws.com",
      region: "eu-west-1",
      externalKeyId: "arn:aws:kms:eu-west-1:111122223333:key/abc",
      credentials: "sealed",
      customKeyStoreId: expect.stringMatching(/^cks-[0-9a-f]{17}$/),
    });
    expect(JSON.stringify(shown.json)).not.toContain(SECRET);
  });

  it("master rotation: the status counts them, the rewrap job re-seals them, and the old secret can go", async () => {
    const key = await boundKey();
    const before = (await masterStatus(new RewrapJob(v12))).versions.find((v) => v.version === 1)!;
    expect(before.externalKmsCredentials).toBeGreaterThanOrEqual(1);
    expect(before.removable).toBe(false);

    const job = new RewrapJob(v12);
    await job.start("test");
    for (let i = 0; i < 20; i++) if ((await job.step(`t:${i}`, { maxObjects: 1000, maxMoves: 1000, maxMs: 60_000 })).outcome === "completed") break;
    const row = await env.DB.prepare("SELECT master_version FROM kms_external_keys WHERE key_id = ?").bind(key.id).first<{ master_version: number }>();
    expect(row?.master_version).toBe(2);
    const after = (await masterStatus(new RewrapJob(v12))).versions.find((v) => v.version === 1)!;
    expect(after.externalKmsCredentials).toBe(0);
    // With v1 gone the credentials still unseal (under v2).
    expect(await makeServices(v2only).keys.external.info(key)).toMatchObject({ credentials: "sealed", externalKeyId: "arn:aws:kms:eu-west-1:111122223333:key/abc" });
  });

  it("go with the key when it is destroyed, and so do its bucket keys", async () => {
    const key = await boundKey(v2only);
    await env.DB.prepare("INSERT INTO external_bucket_keys (key_id, version, bucket, external_blob, created_at) VALUES (?, 1, 'doomed', x'00', 0)").bind(key.id).run();
    await env.DB.prepare("UPDATE kms_keys SET state = 'PendingDeletion', deletion_at = ? WHERE id = ?").bind(Date.now() - DAY_MS, key.id).run();
    const run = await runKeyLifecycle(env.DB, Date.now());
    expect(run.destroyed).toContain(key.id);
    expect(await env.DB.prepare("SELECT count(*) AS n FROM kms_external_keys WHERE key_id = ?").bind(key.id).first<{ n: number }>()).toEqual({ n: 0 });
    expect(await env.DB.prepare("SELECT count(*) AS n FROM external_bucket_keys WHERE key_id = ?").bind(key.id).first<{ n: number }>()).toEqual({ n: 0 });
  });
});

describe("bucket keys: envelopes that name one they cannot have", () => {
  it("a bucket without a bucket key for the CMK version: a read never makes one, and asks the external KMS nothing", async () => {
    const key = await boundKey();
    const keys = makeServices(v1).keys;
    const calls = JSON.stringify(externalCallCounts);
    await expect(keys.forRead(TENANT_A, key.arn, 1, 1, true, "no-bucket-key-here")).rejects.toThrow(IntegrityError);
    expect(JSON.stringify(externalCallCounts)).toBe(calls);
    expect(await env.DB.prepare("SELECT count(*) AS n FROM external_bucket_keys WHERE key_id = ?").bind(key.id).first<{ n: number }>()).toEqual({ n: 0 });
  });

  it("a CMK not rooted in an external KMS has no bucket keys", async () => {
    const keys = makeServices(v1).keys;
    const local = await keys.registry.create({ tenantId: TENANT_A, region: "us-east-1", kind: "customer" });
    await expect(keys.forRead(TENANT_A, local.arn, 1, 1, true, "any-bucket")).rejects.toThrow(IntegrityError);
    // The same key without the flag is fine (control).
    await expect(keys.forRead(TENANT_A, local.arn, 1, 1, true, null)).resolves.toBeDefined();
  });
});
