import { Sha256 } from "@aws-crypto/sha256-js";
import { SignatureV4 } from "@smithy/signature-v4";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { DAY_MS } from "../../src/kms/lifecycle";
import { runKeyLifecycle } from "../../src/kms/scheduled";
import worker from "../../src/index";
import { errorType, kms, s3, s3Code, uniqueName } from "../support/kms-harness";
import { HOST, TENANT_A, TENANT_B, seedIdentities } from "../support/worker-client";

const bucket = uniqueName("kmsapi");

beforeAll(async () => {
  await seedIdentities();
  const r = await s3("adminA", { method: "PUT", bucket });
  expect(r.status).toBe(200);
});

async function createKey(description = "k"): Promise<{ id: string; arn: string }> {
  const r = await kms("adminA", "CreateKey", { Description: description });
  expect(r.status).toBe(200);
  const m = r.body["KeyMetadata"] as { KeyId: string; Arn: string };
  return { id: m.KeyId, arn: m.Arn };
}

async function describe_(keyId: string, who: "adminA" | "adminB" = "adminA") {
  return kms(who, "DescribeKey", { KeyId: keyId });
}

function putWithKey(key: string, keyId: string, body = "secret body") {
  return s3("adminA", { method: "PUT", bucket, key, body, headers: { "x-amz-server-side-encryption": "aws:kms", "x-amz-server-side-encryption-aws-kms-key-id": keyId } });
}

async function envelopeOf(key: string): Promise<{ k: string; kv: number; mv: number }> {
  const head = await env.OBJECTS.head(`${bucket}/${key}`);
  return JSON.parse(head!.customMetadata!["sse-envelope"]!) as { k: string; kv: number; mv: number };
}

describe("KMS JSON protocol", () => {
  it("answers with the JSON content type and a request id", async () => {
    const r = await kms("adminA", "ListKeys");
    expect(r.status).toBe(200);
    expect(Array.isArray(r.body["Keys"])).toBe(true);
    expect(r.body["Truncated"]).toBe(false);
  });

  it("refuses unsigned, wrongly signed and unknown-key requests with AWS's error types", async () => {
    const body = "{}";
    const anon = await worker.fetch(
      new Request(`https://${HOST}/`, { method: "POST", headers: { "x-amz-target": "TrentService.ListKeys", "content-type": "application/x-amz-json-1.1" }, body }),
      env,
      {} as ExecutionContext,
    );
    expect(anon.status).toBe(400);
    expect(anon.headers.get("content-type")).toBe("application/x-amz-json-1.1");
    expect(anon.headers.get("x-amzn-requestid")).toMatch(/^[0-9a-f-]{36}$/);
    expect(((await anon.json()) as { __type: string }).__type).toBe("MissingAuthenticationTokenException");

    const wrong = await kms("adminA", "ListKeys", {}, { credentials: { accessKeyId: "LOCALADMINA", secretAccessKey: "not-the-secret" } });
    expect([wrong.status, errorType(wrong)]).toEqual([400, "InvalidSignatureException"]);
    const unknown = await kms("adminA", "ListKeys", {}, { credentials: { accessKeyId: "NOSUCHKEY1", secretAccessKey: "whatever-secret" } });
    expect([unknown.status, errorType(unknown)]).toEqual([400, "UnrecognizedClientException"]);
  });

  it("verifies the signature over the body actually received", async () => {
    const signer = new SignatureV4({ service: "kms", region: "us-east-1", credentials: { accessKeyId: "LOCALADMINA", secretAccessKey: "local-admin-a-secret" }, sha256: Sha256, uriEscapePath: true });
    const headers = { host: HOST, "content-type": "application/x-amz-json-1.1", "x-amz-target": "TrentService.CreateKey" };
    const signed = await signer.sign({ method: "POST", protocol: "https:", hostname: HOST, path: "/", query: {}, headers, body: '{"Description":"a"}' });
    const h = new Headers(signed.headers as Record<string, string>);
    h.delete("host");
    const r = await worker.fetch(new Request(`https://${HOST}/`, { method: "POST", headers: h, body: '{"Description":"b"}' }), env, {} as ExecutionContext);
    expect(((await r.json()) as { __type: string }).__type).toBe("InvalidSignatureException");
  });

  it("distinguishes unknown operations from AWS operations this endpoint does not offer", async () => {
    expect(errorType(await kms("adminA", "MakeCoffee"))).toBe("UnknownOperationException");
    // Encrypt and the other data-plane operations are implemented now (issue 15); Sign is not.
    const sign = await kms("adminA", "Sign", { KeyId: "alias/aws/s3", Message: "aGk=", SigningAlgorithm: "ECDSA_SHA_256" });
    expect([sign.status, errorType(sign)]).toEqual([400, "UnsupportedOperationException"]);
  });

  it("rejects malformed JSON and wrongly typed or out-of-range members", async () => {
    expect(errorType(await kms("adminA", "ListKeys", "not an object"))).toBe("SerializationException");
    expect(errorType(await kms("adminA", "DescribeKey", { KeyId: 5 }))).toBe("SerializationException");
    const missing = await kms("adminA", "DescribeKey", {});
    expect(errorType(missing)).toBe("ValidationException");
    expect(missing.body["message"]).toContain("Value null at 'keyId' failed to satisfy constraint: Member must not be null");
    expect(errorType(await kms("adminA", "ListKeys", { Limit: 0 }))).toBe("ValidationException");
    expect(errorType(await kms("adminA", "ListKeys", { Marker: "not-a-marker" }))).toBe("InvalidMarkerException");
  });

  it("lets only tenant administrators use the API", async () => {
    const r = await kms("memberA", "ListKeys");
    expect([r.status, errorType(r)]).toEqual([400, "AccessDeniedException"]);
    expect(r.body["message"]).toBe(
      `User: arn:aws:iam::${TENANT_A}:user/member-a is not authorized to perform: kms:ListKeys because no identity-based policy allows the kms:ListKeys action`,
    );
    expect(errorType(await kms("memberA", "CreateKey", {}))).toBe("AccessDeniedException");
  });
});

describe("CreateKey, DescribeKey, ListKeys", () => {
  it("creates a symmetric customer key with AWS's KeyMetadata", async () => {
    const before = Date.now() / 1000;
    const r = await kms("adminA", "CreateKey", { Description: "payroll" });
    const m = r.body["KeyMetadata"] as Record<string, unknown>;
    expect(m).toMatchObject({
      AWSAccountId: TENANT_A,
      Description: "payroll",
      Enabled: true,
      KeyState: "Enabled",
      KeyManager: "CUSTOMER",
      KeySpec: "SYMMETRIC_DEFAULT",
      CustomerMasterKeySpec: "SYMMETRIC_DEFAULT",
      KeyUsage: "ENCRYPT_DECRYPT",
      Origin: "AWS_KMS",
      MultiRegion: false,
      EncryptionAlgorithms: ["SYMMETRIC_DEFAULT"],
    });
    expect(m["Arn"]).toBe(`arn:aws:kms:us-east-1:${TENANT_A}:key/${m["KeyId"] as string}`);
    expect(m["CreationDate"]).toBeGreaterThanOrEqual(Math.floor(before));
    expect(m["CurrentKeyMaterialId"]).toMatch(/^[0-9a-f]{64}$/);
    expect(m).not.toHaveProperty("DeletionDate");
  });

  it("refuses what it cannot honour instead of ignoring it", async () => {
    for (const input of [{ KeySpec: "RSA_2048", KeyUsage: "SIGN_VERIFY" }, { KeyUsage: "GENERATE_VERIFY_MAC" }, { Origin: "EXTERNAL" }, { MultiRegion: true }, { Policy: "{}" }, { Tags: [{ TagKey: "a", TagValue: "b" }] }]) {
      const r = await kms("adminA", "CreateKey", input);
      expect([r.status, errorType(r)], JSON.stringify(input)).toEqual([400, "UnsupportedOperationException"]);
    }
    expect(errorType(await kms("adminA", "CreateKey", { KeySpec: "AES_256" }))).toBe("ValidationException");
    expect(errorType(await kms("adminA", "CreateKey", { KeySpec: "SYMMETRIC_DEFAULT", CustomerMasterKeySpec: "SYMMETRIC_DEFAULT" }))).toBe("ValidationException");
    expect(errorType(await kms("adminA", "CreateKey", { Description: "x".repeat(8193) }))).toBe("ValidationException");
  });

  it("describes a key by id, ARN and alias; unknown ids are NotFound, malformed ARNs InvalidArn", async () => {
    const key = await createKey();
    for (const id of [key.id, key.arn, key.id.toUpperCase()]) expect((await describe_(id)).body["KeyMetadata"]).toMatchObject({ KeyId: key.id });
    const alias = `alias/${uniqueName("d")}`;
    expect((await kms("adminA", "CreateAlias", { AliasName: alias, TargetKeyId: key.id })).status).toBe(200);
    expect((await describe_(alias)).body["KeyMetadata"]).toMatchObject({ KeyId: key.id });
    expect((await describe_(`arn:aws:kms:us-east-1:${TENANT_A}:${alias}`)).body["KeyMetadata"]).toMatchObject({ KeyId: key.id });

    const missing = await describe_("11111111-2222-3333-4444-555555555555");
    expect([missing.status, errorType(missing)]).toEqual([400, "NotFoundException"]);
    expect(missing.body["message"]).toBe(`Key 'arn:aws:kms:us-east-1:${TENANT_A}:key/11111111-2222-3333-4444-555555555555' does not exist`);
    expect(errorType(await describe_("alias/never-created"))).toBe("NotFoundException");
    expect(errorType(await describe_("not-a-key"))).toBe("NotFoundException");
    expect(errorType(await describe_(`arn:aws:kms:us-east-1:${TENANT_A}:key/not-a-uuid`))).toBe("InvalidArnException");
  });

  it("shows the default key as the AWS-managed key behind alias/aws/s3", async () => {
    const r = await describe_("alias/aws/s3");
    expect(r.body["KeyMetadata"]).toMatchObject({ KeyManager: "AWS", KeyState: "Enabled", AWSAccountId: TENANT_A });
    // Writing without a key id uses that very key.
    const put = await s3("adminA", { method: "PUT", bucket, key: "default-key", body: "x", headers: { "x-amz-server-side-encryption": "aws:kms" } });
    expect(put.headers.get("x-amz-server-side-encryption-aws-kms-key-id")).toBe((r.body["KeyMetadata"] as { Arn: string }).Arn);
  });

  it("never shows the SSE-S3 service key", async () => {
    const put = await s3("adminA", { method: "PUT", bucket, key: "sse-s3", body: "x", headers: { "x-amz-server-side-encryption": "AES256" } });
    expect(put.status).toBe(200);
    const serviceArn = (await envelopeOf("sse-s3")).k;
    expect(errorType(await describe_(serviceArn))).toBe("NotFoundException");
    const all = await kms("adminA", "ListKeys", { Limit: 1000 });
    expect((all.body["Keys"] as Array<{ KeyArn: string }>).map((k) => k.KeyArn)).not.toContain(serviceArn);
    expect(errorType(await kms("adminA", "DisableKey", { KeyId: serviceArn }))).toBe("NotFoundException");
  });

  it("pages ListKeys with Limit and Marker", async () => {
    await createKey();
    await createKey();
    const all = (await kms("adminA", "ListKeys", { Limit: 1000 })).body["Keys"] as Array<{ KeyId: string }>;
    const seen: string[] = [];
    let marker: string | undefined;
    for (;;) {
      const page = await kms("adminA", "ListKeys", { Limit: 2, ...(marker ? { Marker: marker } : {}) });
      const keys = page.body["Keys"] as Array<{ KeyId: string; KeyArn: string }>;
      expect(keys.length).toBeLessThanOrEqual(2);
      seen.push(...keys.map((k) => k.KeyId));
      if (!page.body["Truncated"]) {
        expect(page.body).not.toHaveProperty("NextMarker");
        break;
      }
      marker = page.body["NextMarker"] as string;
    }
    expect(seen).toEqual(all.map((k) => k.KeyId));
  });
});

describe("tenant isolation", () => {
  it("another tenant can neither see nor use a key", async () => {
    const key = await createKey("tenant A only");
    const byArn = await describe_(key.arn, "adminB");
    expect([byArn.status, errorType(byArn)]).toEqual([400, "AccessDeniedException"]);
    expect(byArn.body["message"]).toContain(`User: arn:aws:iam::${TENANT_B}:user/admin-b is not authorized to perform: kms:DescribeKey on resource: ${key.arn}`);
    // A bare id names a key in the caller's own tenant: there is none.
    expect(errorType(await describe_(key.id, "adminB"))).toBe("NotFoundException");
    for (const op of ["DisableKey", "EnableKey", "ScheduleKeyDeletion", "RotateKeyOnDemand", "GetKeyRotationStatus"]) {
      expect(errorType(await kms("adminB", op, { KeyId: key.id })), op).toBe("NotFoundException");
      expect(errorType(await kms("adminB", op, { KeyId: key.arn })), op).toBe("AccessDeniedException");
    }
    expect(errorType(await kms("adminB", "CreateAlias", { AliasName: `alias/${uniqueName("steal")}`, TargetKeyId: key.arn }))).toBe("AccessDeniedException");
    const listed = (await kms("adminB", "ListKeys", { Limit: 1000 })).body["Keys"] as Array<{ KeyId: string }>;
    expect(listed.map((k) => k.KeyId)).not.toContain(key.id);
    expect((await describe_(key.id)).body["KeyMetadata"]).toMatchObject({ KeyState: "Enabled" });
  });

  it("S3 refuses another tenant's key in SSE headers", async () => {
    const key = await createKey();
    const bucketB = uniqueName("kmsapi-b");
    expect((await s3("adminB", { method: "PUT", bucket: bucketB })).status).toBe(200);
    const r = await s3("adminB", { method: "PUT", bucket: bucketB, key: "x", body: "x", headers: { "x-amz-server-side-encryption": "aws:kms", "x-amz-server-side-encryption-aws-kms-key-id": key.arn } });
    expect(r.status).toBe(403);
    expect(await s3Code(r)).toBe("AccessDenied");
    const byId = await s3("adminB", { method: "PUT", bucket: bucketB, key: "x", body: "x", headers: { "x-amz-server-side-encryption": "aws:kms", "x-amz-server-side-encryption-aws-kms-key-id": key.id } });
    expect(byId.status).toBe(400);
    expect(await s3Code(byId)).toBe("KMS.NotFoundException");
  });
});

describe("key states through KMS and S3", () => {
  it("DisableKey stops PUT and GET at once with KMS.DisabledException; EnableKey restores; nothing is lost", async () => {
    const key = await createKey();
    expect((await putWithKey("disable/a", key.id, "precious")).status).toBe(200);
    expect((await kms("adminA", "DisableKey", { KeyId: key.id })).status).toBe(200);
    expect((await describe_(key.id)).body["KeyMetadata"]).toMatchObject({ KeyState: "Disabled", Enabled: false });

    const put = await putWithKey("disable/b", key.id);
    expect(put.status).toBe(400);
    expect(await s3Code(put)).toBe("KMS.DisabledException");
    const get = await s3("adminA", { method: "GET", bucket, key: "disable/a" });
    expect(get.status).toBe(400);
    expect(await s3Code(get)).toBe("KMS.DisabledException");
    // HEAD answers from authenticated metadata without using the key, as AWS does.
    expect((await s3("adminA", { method: "HEAD", bucket, key: "disable/a" })).status).toBe(200);
    // Idempotent, as in AWS.
    expect((await kms("adminA", "DisableKey", { KeyId: key.id })).status).toBe(200);

    expect((await kms("adminA", "EnableKey", { KeyId: key.arn })).status).toBe(200);
    const back = await s3("adminA", { method: "GET", bucket, key: "disable/a" });
    expect([back.status, await back.text()]).toEqual([200, "precious"]);
    expect((await putWithKey("disable/b", key.id)).status).toBe(200);
  });

  it("the AWS-managed default key cannot be disabled, deleted or re-aliased", async () => {
    const id = ((await describe_("alias/aws/s3")).body["KeyMetadata"] as { KeyId: string }).KeyId;
    for (const [op, extra] of [["DisableKey", {}], ["EnableKey", {}], ["ScheduleKeyDeletion", { PendingWindowInDays: 7 }], ["EnableKeyRotation", {}], ["RotateKeyOnDemand", {}]] as const) {
      const r = await kms("adminA", op, { KeyId: id, ...extra });
      expect([r.status, errorType(r)], op).toEqual([400, "AccessDeniedException"]);
    }
    expect(errorType(await kms("adminA", "CreateAlias", { AliasName: `alias/${uniqueName("dflt")}`, TargetKeyId: id }))).toBe("AccessDeniedException");
    expect((await describe_(id)).body["KeyMetadata"]).toMatchObject({ KeyState: "Enabled" });
  });

  it("ScheduleKeyDeletion: 7-30 day window, PendingDeletion everywhere, cancel leaves the key Disabled", async () => {
    const key = await createKey();
    expect((await putWithKey("pending/a", key.id, "keep me")).status).toBe(200);
    for (const days of [6, 31]) expect(errorType(await kms("adminA", "ScheduleKeyDeletion", { KeyId: key.id, PendingWindowInDays: days }))).toBe("ValidationException");

    const before = Date.now();
    const r = await kms("adminA", "ScheduleKeyDeletion", { KeyId: key.id, PendingWindowInDays: 7 });
    expect(r.body).toMatchObject({ KeyId: key.arn, KeyState: "PendingDeletion", PendingWindowInDays: 7 });
    const deletion = (r.body["DeletionDate"] as number) * 1000;
    expect(deletion).toBeGreaterThanOrEqual(before + 7 * DAY_MS);
    expect(deletion).toBeLessThan(Date.now() + 7 * DAY_MS + 1000);
    expect((await describe_(key.id)).body["KeyMetadata"]).toMatchObject({ KeyState: "PendingDeletion", Enabled: false, DeletionDate: r.body["DeletionDate"] });

    expect(errorType(await kms("adminA", "ScheduleKeyDeletion", { KeyId: key.id }))).toBe("KMSInvalidStateException");
    expect(errorType(await kms("adminA", "EnableKey", { KeyId: key.id }))).toBe("KMSInvalidStateException");
    expect(errorType(await kms("adminA", "DisableKey", { KeyId: key.id }))).toBe("KMSInvalidStateException");
    expect(errorType(await kms("adminA", "RotateKeyOnDemand", { KeyId: key.id }))).toBe("KMSInvalidStateException");
    const get = await s3("adminA", { method: "GET", bucket, key: "pending/a" });
    expect([get.status, await s3Code(get)]).toEqual([400, "KMS.KMSInvalidStateException"]);
    const put = await putWithKey("pending/b", key.id);
    expect([put.status, await s3Code(put)]).toEqual([400, "KMS.KMSInvalidStateException"]);

    expect((await kms("adminA", "CancelKeyDeletion", { KeyId: key.id })).body).toEqual({ KeyId: key.arn });
    expect((await describe_(key.id)).body["KeyMetadata"]).toMatchObject({ KeyState: "Disabled" });
    expect(errorType(await kms("adminA", "CancelKeyDeletion", { KeyId: key.id }))).toBe("KMSInvalidStateException");
    await kms("adminA", "EnableKey", { KeyId: key.id });
    expect(await (await s3("adminA", { method: "GET", bucket, key: "pending/a" })).text()).toBe("keep me");
  });

  it("when the window ends the key is destroyed: material gone, aliases gone, objects permanently unreadable", async () => {
    const key = await createKey();
    const alias = `alias/${uniqueName("doomed")}`;
    await kms("adminA", "CreateAlias", { AliasName: alias, TargetKeyId: key.id });
    expect((await putWithKey("doomed/a", key.id, "gone soon")).status).toBe(200);
    await kms("adminA", "ScheduleKeyDeletion", { KeyId: key.id, PendingWindowInDays: 7 });

    // Not yet: a tick before the window ends changes nothing.
    expect((await runKeyLifecycle(env.DB, Date.now() + 6 * DAY_MS)).destroyed).not.toContain(key.id);
    const run = await runKeyLifecycle(env.DB, Date.now() + 7 * DAY_MS + 60_000);
    expect(run.destroyed).toContain(key.id);

    const rows = await env.DB.prepare("SELECT count(*) AS n FROM kms_key_versions WHERE key_id = ?").bind(key.id).first<{ n: number }>();
    expect(rows?.n).toBe(0);
    expect((await env.DB.prepare("SELECT state FROM kms_keys WHERE id = ?").bind(key.id).first<{ state: string }>())?.state).toBe("Destroyed");
    expect(errorType(await describe_(key.id))).toBe("NotFoundException");
    expect(errorType(await describe_(alias))).toBe("NotFoundException");
    expect(errorType(await kms("adminA", "CancelKeyDeletion", { KeyId: key.id }))).toBe("NotFoundException");

    const get = await s3("adminA", { method: "GET", bucket, key: "doomed/a" });
    expect(get.status).toBe(400);
    const text = await get.text();
    expect(text).toContain("<Code>KMS.NotFoundException</Code>");
    expect(text).toContain("key material destroyed");
    const put = await putWithKey("doomed/b", key.id);
    expect([put.status, await s3Code(put)]).toEqual([400, "KMS.NotFoundException"]);
  });
});

describe("rotation", () => {
  it("automatic rotation: status, period bounds, and the scheduled rotation", async () => {
    const key = await createKey();
    expect((await kms("adminA", "GetKeyRotationStatus", { KeyId: key.id })).body).toEqual({ KeyRotationEnabled: false, KeyId: key.arn });
    expect(errorType(await kms("adminA", "EnableKeyRotation", { KeyId: key.id, RotationPeriodInDays: 89 }))).toBe("ValidationException");
    expect(errorType(await kms("adminA", "EnableKeyRotation", { KeyId: key.id, RotationPeriodInDays: 2561 }))).toBe("ValidationException");
    const enabledAt = Date.now();
    expect((await kms("adminA", "EnableKeyRotation", { KeyId: key.id, RotationPeriodInDays: 90 })).status).toBe(200);
    const status = (await kms("adminA", "GetKeyRotationStatus", { KeyId: key.id })).body;
    expect(status).toMatchObject({ KeyRotationEnabled: true, RotationPeriodInDays: 90 });
    expect((status["NextRotationDate"] as number) * 1000).toBeGreaterThanOrEqual(enabledAt + 90 * DAY_MS);

    expect((await putWithKey("auto/before", key.id, "before")).status).toBe(200);
    const run = await runKeyLifecycle(env.DB, Date.now() + 91 * DAY_MS);
    expect(run.rotated).toContain(key.id);
    expect((await putWithKey("auto/after", key.id, "after")).status).toBe(200);
    expect([(await envelopeOf("auto/before")).kv, (await envelopeOf("auto/after")).kv]).toEqual([1, 2]);
    expect(await (await s3("adminA", { method: "GET", bucket, key: "auto/before" })).text()).toBe("before");
    const rotations = (await kms("adminA", "ListKeyRotations", { KeyId: key.id })).body["Rotations"] as Array<Record<string, unknown>>;
    expect(rotations).toMatchObject([{ KeyId: key.arn, RotationType: "AUTOMATIC", KeyMaterialState: "CURRENT" }]);
    const next = (await kms("adminA", "GetKeyRotationStatus", { KeyId: key.id })).body["NextRotationDate"] as number;
    expect(next * 1000).toBeGreaterThan(Date.now() + 180 * DAY_MS);

    expect((await kms("adminA", "DisableKeyRotation", { KeyId: key.id })).status).toBe(200);
    expect((await kms("adminA", "GetKeyRotationStatus", { KeyId: key.id })).body).toEqual({ KeyRotationEnabled: false, KeyId: key.arn });
  });

  it("RotateKeyOnDemand: new writes use the new version, old objects still decrypt", async () => {
    const key = await createKey();
    expect((await putWithKey("ondemand/v1", key.id, "one")).status).toBe(200);
    expect((await kms("adminA", "RotateKeyOnDemand", { KeyId: key.id })).body).toEqual({ KeyId: key.arn });
    expect((await putWithKey("ondemand/v2", key.id, "two")).status).toBe(200);
    await kms("adminA", "RotateKeyOnDemand", { KeyId: key.arn });
    expect((await putWithKey("ondemand/v3", key.id, "three")).status).toBe(200);
    expect([(await envelopeOf("ondemand/v1")).kv, (await envelopeOf("ondemand/v2")).kv, (await envelopeOf("ondemand/v3")).kv]).toEqual([1, 2, 3]);
    for (const [k, v] of [["ondemand/v1", "one"], ["ondemand/v2", "two"], ["ondemand/v3", "three"]]) {
      expect(await (await s3("adminA", { method: "GET", bucket, key: k })).text()).toBe(v);
    }
    const only = (await kms("adminA", "ListKeyRotations", { KeyId: key.id })).body["Rotations"] as Array<Record<string, unknown>>;
    expect(only.map((r) => [r["RotationType"], r["KeyMaterialState"]])).toEqual([["ON_DEMAND", "NON_CURRENT"], ["ON_DEMAND", "CURRENT"]]);
    const all = (await kms("adminA", "ListKeyRotations", { KeyId: key.id, IncludeKeyMaterial: "ALL_KEY_MATERIAL" })).body["Rotations"] as Array<Record<string, unknown>>;
    expect(all).toHaveLength(3);
    expect(all[0]).not.toHaveProperty("RotationType");
    expect(new Set(all.map((r) => r["KeyMaterialId"])).size).toBe(3);
    expect(all[2]!["KeyMaterialId"]).toBe(((await describe_(key.id)).body["KeyMetadata"] as { CurrentKeyMaterialId: string }).CurrentKeyMaterialId);
    // Paging.
    const first = await kms("adminA", "ListKeyRotations", { KeyId: key.id, Limit: 1 });
    expect(first.body).toMatchObject({ Truncated: true, NextMarker: "2" });
    const second = await kms("adminA", "ListKeyRotations", { KeyId: key.id, Limit: 1, Marker: "2" });
    expect(second.body).toMatchObject({ Truncated: false });
    expect((second.body["Rotations"] as unknown[]).length).toBe(1);
  });

  it("rotation needs an Enabled customer key and is limited to 25 on-demand rotations", async () => {
    const key = await createKey();
    await kms("adminA", "DisableKey", { KeyId: key.id });
    for (const op of ["RotateKeyOnDemand", "EnableKeyRotation", "DisableKeyRotation"]) expect(errorType(await kms("adminA", op, { KeyId: key.id })), op).toBe("DisabledException");
    await kms("adminA", "EnableKey", { KeyId: key.id });
    for (let i = 0; i < 25; i++) expect((await kms("adminA", "RotateKeyOnDemand", { KeyId: key.id })).status).toBe(200);
    expect(errorType(await kms("adminA", "RotateKeyOnDemand", { KeyId: key.id }))).toBe("LimitExceededException");
    expect((await describe_(key.id)).body["KeyMetadata"]).toMatchObject({ KeyState: "Enabled" });
  });

  it("the default key reports yearly automatic rotation", async () => {
    const r = await kms("adminA", "GetKeyRotationStatus", { KeyId: ((await describe_("alias/aws/s3")).body["KeyMetadata"] as { KeyId: string }).KeyId });
    expect(r.body).toMatchObject({ KeyRotationEnabled: true, RotationPeriodInDays: 365 });
  });
});

describe("aliases", () => {
  it("create, use in SSE headers, list, retarget and delete", async () => {
    const one = await createKey();
    const two = await createKey();
    const alias = `alias/${uniqueName("app")}`;
    expect((await kms("adminA", "CreateAlias", { AliasName: alias, TargetKeyId: one.arn })).status).toBe(200);
    const put = await putWithKey("alias/a", alias, "via alias");
    expect(put.status).toBe(200);
    expect(put.headers.get("x-amz-server-side-encryption-aws-kms-key-id")).toBe(one.arn);

    const listed = (await kms("adminA", "ListAliases", { Limit: 1000 })).body["Aliases"] as Array<Record<string, unknown>>;
    expect(listed.find((a) => a["AliasName"] === alias)).toMatchObject({ AliasArn: `arn:aws:kms:us-east-1:${TENANT_A}:${alias}`, TargetKeyId: one.id });
    expect(listed.find((a) => a["AliasName"] === "alias/aws/s3")).toBeTruthy();
    const names = listed.map((a) => a["AliasName"] as string);
    expect(names).toEqual([...names].sort());
    const forOne = (await kms("adminA", "ListAliases", { KeyId: one.id })).body["Aliases"] as Array<Record<string, unknown>>;
    expect(forOne.map((a) => a["AliasName"])).toEqual([alias]);

    expect((await kms("adminA", "UpdateAlias", { AliasName: alias, TargetKeyId: two.id })).status).toBe(200);
    const moved = await putWithKey("alias/b", alias);
    expect(moved.headers.get("x-amz-server-side-encryption-aws-kms-key-id")).toBe(two.arn);
    expect(await (await s3("adminA", { method: "GET", bucket, key: "alias/a" })).text()).toBe("via alias");

    expect((await kms("adminA", "DeleteAlias", { AliasName: alias })).status).toBe(200);
    const gone = await putWithKey("alias/c", alias);
    expect([gone.status, await s3Code(gone)]).toEqual([400, "KMS.NotFoundException"]);
    expect(errorType(await kms("adminA", "DeleteAlias", { AliasName: alias }))).toBe("NotFoundException");
    expect(errorType(await kms("adminA", "UpdateAlias", { AliasName: alias, TargetKeyId: one.id }))).toBe("NotFoundException");
  });

  it("validates names and targets as AWS does", async () => {
    const key = await createKey();
    const alias = `alias/${uniqueName("dup")}`;
    await kms("adminA", "CreateAlias", { AliasName: alias, TargetKeyId: key.id });
    expect(errorType(await kms("adminA", "CreateAlias", { AliasName: alias, TargetKeyId: key.id }))).toBe("AlreadyExistsException");
    expect(errorType(await kms("adminA", "CreateAlias", { AliasName: "alias/aws/mine", TargetKeyId: key.id }))).toBe("NotAuthorizedException");
    expect(errorType(await kms("adminA", "DeleteAlias", { AliasName: "alias/aws/s3" }))).toBe("NotAuthorizedException");
    expect(errorType(await kms("adminA", "CreateAlias", { AliasName: "no-prefix", TargetKeyId: key.id }))).toBe("ValidationException");
    expect(errorType(await kms("adminA", "CreateAlias", { AliasName: "alias/has space", TargetKeyId: key.id }))).toBe("ValidationException");
    expect(errorType(await kms("adminA", "CreateAlias", { AliasName: "alias/a:b", TargetKeyId: key.id }))).toBe("InvalidAliasNameException");
    expect(errorType(await kms("adminA", "CreateAlias", { AliasName: `alias/${uniqueName("x")}`, TargetKeyId: alias }))).toBe("ValidationException");
    expect(errorType(await kms("adminA", "CreateAlias", { AliasName: `alias/${uniqueName("x")}`, TargetKeyId: "11111111-2222-3333-4444-555555555555" }))).toBe("NotFoundException");
    await kms("adminA", "ScheduleKeyDeletion", { KeyId: key.id, PendingWindowInDays: 30 });
    expect(errorType(await kms("adminA", "CreateAlias", { AliasName: `alias/${uniqueName("x")}`, TargetKeyId: key.id }))).toBe("KMSInvalidStateException");
  });

  it("pages ListAliases", async () => {
    const key = await createKey();
    for (let i = 0; i < 3; i++) await kms("adminA", "CreateAlias", { AliasName: `alias/${uniqueName("page")}`, TargetKeyId: key.id });
    const all = ((await kms("adminA", "ListAliases", { Limit: 1000 })).body["Aliases"] as Array<{ AliasName: string }>).map((a) => a.AliasName);
    const seen: string[] = [];
    let marker: string | undefined;
    for (;;) {
      const page = await kms("adminA", "ListAliases", { Limit: 2, ...(marker ? { Marker: marker } : {}) });
      seen.push(...(page.body["Aliases"] as Array<{ AliasName: string }>).map((a) => a.AliasName));
      if (!page.body["Truncated"]) break;
      marker = page.body["NextMarker"] as string;
    }
    expect(seen).toEqual(all);
  });
});

// ---- data plane (issue 15) ------------------------------------------------------------

const b64 = (text: string) => btoa(text);
const unb64 = (value: unknown) => atob(value as string);

/** Flips one bit of a base64 blob at byte `index`. */
function flipped(blob: string, index: number): string {
  const bytes = Uint8Array.from(atob(blob), (c) => c.charCodeAt(0));
  bytes[index]! ^= 0x01;
  return btoa(String.fromCharCode(...bytes));
}

describe("Encrypt and Decrypt", () => {
  it("round-trips under an encryption context; the blob names its key, so Decrypt needs no KeyId", async () => {
    const key = await createKey("dp");
    const context = { purpose: "test", "app:id": "ünï" };
    const enc = await kms("adminA", "Encrypt", { KeyId: key.id, Plaintext: b64("hello kms"), EncryptionContext: context });
    expect(enc.status).toBe(200);
    expect(enc.body).toEqual({ CiphertextBlob: expect.any(String), KeyId: key.arn, EncryptionAlgorithm: "SYMMETRIC_DEFAULT" });
    const blob = enc.body["CiphertextBlob"] as string;
    // FORMAT.md: "SGK" 0x01, the key's 16 uuid bytes, versions, nonce, ciphertext, tag.
    const raw = Uint8Array.from(atob(blob), (c) => c.charCodeAt(0));
    expect(raw.byteLength).toBe(28 + 12 + 9 + 16);
    expect([...raw.subarray(0, 4)]).toEqual([0x53, 0x47, 0x4b, 0x01]);
    expect([...raw.subarray(4, 20)].map((b) => b.toString(16).padStart(2, "0")).join("")).toBe(key.id.replace(/-/g, ""));

    // Context members in another order are the same context.
    const reordered = { "app:id": "ünï", purpose: "test" };
    const dec = await kms("adminA", "Decrypt", { CiphertextBlob: blob, EncryptionContext: reordered });
    expect(dec.status).toBe(200);
    expect(dec.body).toEqual({ KeyId: key.arn, Plaintext: expect.any(String), EncryptionAlgorithm: "SYMMETRIC_DEFAULT" });
    expect(unb64(dec.body["Plaintext"])).toBe("hello kms");
    // With a KeyId that names the same key (id, ARN, alias) it works too.
    const alias = `alias/${uniqueName("dp")}`;
    expect((await kms("adminA", "CreateAlias", { AliasName: alias, TargetKeyId: key.id })).status).toBe(200);
    for (const id of [key.id, key.arn, alias]) {
      expect((await kms("adminA", "Decrypt", { CiphertextBlob: blob, EncryptionContext: context, KeyId: id })).status, id).toBe(200);
    }
    // Encrypt by alias as well; two encryptions of one plaintext differ (fresh nonce).
    const again = await kms("adminA", "Encrypt", { KeyId: alias, Plaintext: b64("hello kms"), EncryptionContext: context });
    expect(again.body["KeyId"]).toBe(key.arn);
    expect(again.body["CiphertextBlob"]).not.toBe(blob);
  });

  it("binds the encryption context: any other context (or none) is InvalidCiphertextException", async () => {
    const key = await createKey("ctx");
    const blob = (await kms("adminA", "Encrypt", { KeyId: key.id, Plaintext: b64("x"), EncryptionContext: { a: "1" } })).body["CiphertextBlob"] as string;
    for (const context of [undefined, {}, { a: "2" }, { A: "1" }, { a: "1", b: "2" }]) {
      const r = await kms("adminA", "Decrypt", { CiphertextBlob: blob, ...(context ? { EncryptionContext: context } : {}) });
      expect([r.status, errorType(r)], JSON.stringify(context)).toEqual([400, "InvalidCiphertextException"]);
    }
    // And a blob made without a context opens only without one.
    const bare = (await kms("adminA", "Encrypt", { KeyId: key.id, Plaintext: b64("y") })).body["CiphertextBlob"] as string;
    expect(unb64((await kms("adminA", "Decrypt", { CiphertextBlob: bare })).body["Plaintext"])).toBe("y");
    expect(errorType(await kms("adminA", "Decrypt", { CiphertextBlob: bare, EncryptionContext: { a: "1" } }))).toBe("InvalidCiphertextException");
  });

  it("refuses edited and foreign blobs, and a KeyId that is not the blob's key", async () => {
    const key = await createKey("tamper");
    const other = await createKey("other");
    const blob = (await kms("adminA", "Encrypt", { KeyId: key.id, Plaintext: b64("payload") })).body["CiphertextBlob"] as string;
    // Header (magic, key version, master version), nonce, ciphertext and tag: every byte counts.
    for (const index of [0, 3, 23, 27, 28, 40, 50]) {
      const r = await kms("adminA", "Decrypt", { CiphertextBlob: flipped(blob, index) });
      expect([r.status, errorType(r)], `byte ${index}`).toEqual([400, "InvalidCiphertextException"]);
    }
    expect(errorType(await kms("adminA", "Decrypt", { CiphertextBlob: b64("not a blob at all, not even close to one") }))).toBe("InvalidCiphertextException");
    expect(errorType(await kms("adminA", "Decrypt", { CiphertextBlob: "!!!" }))).toBe("SerializationException");
    const wrong = await kms("adminA", "Decrypt", { CiphertextBlob: blob, KeyId: other.id });
    expect([wrong.status, errorType(wrong)]).toEqual([400, "IncorrectKeyException"]);
    expect(errorType(await kms("adminA", "Decrypt", { CiphertextBlob: blob, KeyId: "00000000-0000-0000-0000-000000000000" }))).toBe("NotFoundException");
  });

  it("checks members as AWS does", async () => {
    const key = await createKey("members");
    expect(errorType(await kms("adminA", "Encrypt", { KeyId: key.id }))).toBe("ValidationException");
    expect(errorType(await kms("adminA", "Encrypt", { KeyId: key.id, Plaintext: btoa("x".repeat(4097)) }))).toBe("ValidationException");
    expect((await kms("adminA", "Encrypt", { KeyId: key.id, Plaintext: btoa("x".repeat(4096)) })).status).toBe(200);
    expect(errorType(await kms("adminA", "Encrypt", { KeyId: key.id, Plaintext: b64("x"), EncryptionContext: { a: 1 } }))).toBe("SerializationException");
    expect(errorType(await kms("adminA", "Encrypt", { KeyId: key.id, Plaintext: b64("x"), EncryptionContext: ["a"] }))).toBe("SerializationException");
    expect(errorType(await kms("adminA", "Encrypt", { KeyId: key.id, Plaintext: b64("x"), EncryptionAlgorithm: "RSAES_OAEP_SHA_256" }))).toBe("InvalidKeyUsageException");
    expect(errorType(await kms("adminA", "Encrypt", { KeyId: key.id, Plaintext: b64("x"), EncryptionAlgorithm: "ROT13" }))).toBe("ValidationException");
    const dry = await kms("adminA", "Encrypt", { KeyId: key.id, Plaintext: b64("x"), DryRun: true });
    expect([dry.status, errorType(dry)]).toEqual([400, "DryRunOperationException"]);
    expect(errorType(await kms("adminA", "Decrypt", {}))).toBe("ValidationException");
  });

  it("key states: Disabled → DisabledException, PendingDeletion → KMSInvalidStateException, re-enabled works again", async () => {
    const key = await createKey("states");
    const blob = (await kms("adminA", "Encrypt", { KeyId: key.id, Plaintext: b64("s") })).body["CiphertextBlob"] as string;
    expect((await kms("adminA", "DisableKey", { KeyId: key.id })).status).toBe(200);
    for (const [op, input] of [["Encrypt", { KeyId: key.id, Plaintext: b64("s") }], ["Decrypt", { CiphertextBlob: blob }], ["GenerateDataKey", { KeyId: key.id, KeySpec: "AES_256" }]] as const) {
      const r = await kms("adminA", op, input);
      expect([r.status, errorType(r), r.body["message"]], op).toEqual([400, "DisabledException", `${key.arn} is disabled.`]);
    }
    expect((await kms("adminA", "EnableKey", { KeyId: key.id })).status).toBe(200);
    expect(unb64((await kms("adminA", "Decrypt", { CiphertextBlob: blob })).body["Plaintext"])).toBe("s");
    expect((await kms("adminA", "ScheduleKeyDeletion", { KeyId: key.id, PendingWindowInDays: 7 })).status).toBe(200);
    for (const [op, input] of [["Encrypt", { KeyId: key.id, Plaintext: b64("s") }], ["Decrypt", { CiphertextBlob: blob }]] as const) {
      const r = await kms("adminA", op, input);
      expect([r.status, errorType(r)], op).toEqual([400, "KMSInvalidStateException"]);
    }
    expect((await kms("adminA", "CancelKeyDeletion", { KeyId: key.id })).status).toBe(200);
    expect((await kms("adminA", "EnableKey", { KeyId: key.id })).status).toBe(200);
    expect(unb64((await kms("adminA", "Decrypt", { CiphertextBlob: blob })).body["Plaintext"])).toBe("s");
  });

  it("tenant rules: another tenant's blob and key are AccessDenied; members and the AWS-managed key too", async () => {
    const key = await createKey("tenant");
    const blob = (await kms("adminA", "Encrypt", { KeyId: key.id, Plaintext: b64("mine") })).body["CiphertextBlob"] as string;
    const theirs = await kms("adminB", "Decrypt", { CiphertextBlob: blob });
    expect([theirs.status, errorType(theirs)]).toEqual([400, "AccessDeniedException"]);
    expect(theirs.body["message"]).not.toContain("mine");
    expect(errorType(await kms("adminB", "Encrypt", { KeyId: key.arn, Plaintext: b64("x") }))).toBe("AccessDeniedException");
    // A bare id names a key in the caller's own account: another tenant's is simply not there.
    expect(errorType(await kms("adminB", "Encrypt", { KeyId: key.id, Plaintext: b64("x") }))).toBe("NotFoundException");
    expect(errorType(await kms("memberA", "Decrypt", { CiphertextBlob: blob }))).toBe("AccessDeniedException");
    const managed = await kms("adminA", "Encrypt", { KeyId: "alias/aws/s3", Plaintext: b64("x") });
    expect([managed.status, errorType(managed)]).toEqual([400, "AccessDeniedException"]);
    expect(managed.body["message"]).toContain("kms:Encrypt");
  });

  it("old blobs still decrypt after RotateKeyOnDemand; new ones use the new version", async () => {
    const key = await createKey("rotate-dp");
    const before = (await kms("adminA", "Encrypt", { KeyId: key.id, Plaintext: b64("v1") })).body["CiphertextBlob"] as string;
    expect((await kms("adminA", "RotateKeyOnDemand", { KeyId: key.id })).status).toBe(200);
    const after = (await kms("adminA", "Encrypt", { KeyId: key.id, Plaintext: b64("v2") })).body["CiphertextBlob"] as string;
    const version = (blob: string) => new DataView(Uint8Array.from(atob(blob), (c) => c.charCodeAt(0)).buffer).getUint32(20);
    expect([version(before), version(after)]).toEqual([1, 2]);
    expect(unb64((await kms("adminA", "Decrypt", { CiphertextBlob: before })).body["Plaintext"])).toBe("v1");
    expect(unb64((await kms("adminA", "Decrypt", { CiphertextBlob: after })).body["Plaintext"])).toBe("v2");
  });
});

describe("GenerateDataKey, GenerateDataKeyWithoutPlaintext, ReEncrypt, GenerateRandom", () => {
  it("GenerateDataKey: KeySpec or NumberOfBytes; the blob decrypts to the plaintext key", async () => {
    const key = await createKey("gdk");
    const context = { bucket: "b" };
    for (const [input, length] of [[{ KeySpec: "AES_256" }, 32], [{ KeySpec: "AES_128" }, 16], [{ NumberOfBytes: 1 }, 1], [{ NumberOfBytes: 1024 }, 1024]] as const) {
      const r = await kms("adminA", "GenerateDataKey", { KeyId: key.id, EncryptionContext: context, ...input });
      expect(r.status, JSON.stringify(input)).toBe(200);
      expect(Object.keys(r.body).sort()).toEqual(["CiphertextBlob", "KeyId", "Plaintext"]);
      expect(r.body["KeyId"]).toBe(key.arn);
      expect(unb64(r.body["Plaintext"]).length).toBe(length);
      const dec = await kms("adminA", "Decrypt", { CiphertextBlob: r.body["CiphertextBlob"], EncryptionContext: context });
      expect(dec.body["Plaintext"]).toBe(r.body["Plaintext"]);
    }
    for (const input of [{}, { KeySpec: "AES_256", NumberOfBytes: 32 }, { NumberOfBytes: 0 }, { NumberOfBytes: 1025 }, { KeySpec: "AES_512" }]) {
      const r = await kms("adminA", "GenerateDataKey", { KeyId: key.id, ...input });
      expect([r.status, errorType(r)], JSON.stringify(input)).toEqual([400, "ValidationException"]);
    }
  });

  it("GenerateDataKeyWithoutPlaintext answers no plaintext; the blob still decrypts", async () => {
    const key = await createKey("gdkwp");
    const r = await kms("adminA", "GenerateDataKeyWithoutPlaintext", { KeyId: key.id, KeySpec: "AES_256" });
    expect(Object.keys(r.body).sort()).toEqual(["CiphertextBlob", "KeyId"]);
    expect(unb64((await kms("adminA", "Decrypt", { CiphertextBlob: r.body["CiphertextBlob"] })).body["Plaintext"]).length).toBe(32);
  });

  it("ReEncrypt moves a blob to another key and context without showing the plaintext", async () => {
    const source = await createKey("re-src");
    const target = await createKey("re-dst");
    const blob = (await kms("adminA", "Encrypt", { KeyId: source.id, Plaintext: b64("moving"), EncryptionContext: { from: "a" } })).body["CiphertextBlob"] as string;
    const r = await kms("adminA", "ReEncrypt", { CiphertextBlob: blob, SourceEncryptionContext: { from: "a" }, DestinationKeyId: target.arn, DestinationEncryptionContext: { to: "b" } });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({
      CiphertextBlob: expect.any(String),
      SourceKeyId: source.arn,
      KeyId: target.arn,
      SourceEncryptionAlgorithm: "SYMMETRIC_DEFAULT",
      DestinationEncryptionAlgorithm: "SYMMETRIC_DEFAULT",
    });
    const dec = await kms("adminA", "Decrypt", { CiphertextBlob: r.body["CiphertextBlob"], EncryptionContext: { to: "b" } });
    expect([dec.body["KeyId"], unb64(dec.body["Plaintext"])]).toEqual([target.arn, "moving"]);
    expect(errorType(await kms("adminA", "ReEncrypt", { CiphertextBlob: blob, DestinationKeyId: target.id }))).toBe("InvalidCiphertextException");
    expect(errorType(await kms("adminA", "ReEncrypt", { CiphertextBlob: blob, SourceEncryptionContext: { from: "a" }, SourceKeyId: target.id, DestinationKeyId: target.id }))).toBe("IncorrectKeyException");
    expect(errorType(await kms("adminA", "ReEncrypt", { CiphertextBlob: blob, SourceEncryptionContext: { from: "a" } }))).toBe("ValidationException");
    expect((await kms("adminA", "DisableKey", { KeyId: target.id })).status).toBe(200);
    expect(errorType(await kms("adminA", "ReEncrypt", { CiphertextBlob: blob, SourceEncryptionContext: { from: "a" }, DestinationKeyId: target.id }))).toBe("DisabledException");
  });

  it("GenerateRandom: 1-1024 bytes", async () => {
    const r = await kms("adminA", "GenerateRandom", { NumberOfBytes: 48 });
    expect(Object.keys(r.body)).toEqual(["Plaintext"]);
    expect(unb64(r.body["Plaintext"]).length).toBe(48);
    expect(r.body["Plaintext"]).not.toBe((await kms("adminA", "GenerateRandom", { NumberOfBytes: 48 })).body["Plaintext"]);
    for (const input of [{}, { NumberOfBytes: 0 }, { NumberOfBytes: 1025 }]) expect(errorType(await kms("adminA", "GenerateRandom", input)), JSON.stringify(input)).toBe("ValidationException");
    expect(errorType(await kms("adminA", "GenerateRandom", { NumberOfBytes: 8, CustomKeyStoreId: "cks-1234567890abcdef0" }))).toBe("UnsupportedOperationException");
    expect(errorType(await kms("memberA", "GenerateRandom", { NumberOfBytes: 8 }))).toBe("AccessDeniedException");
  });
});
