import { CreateBucketCommand, GetObjectCommand, ListBucketsCommand, PutObjectCommand, S3Client, type PutObjectCommandInput } from "@aws-sdk/client-s3";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
// @ts-expect-error plain ESM helper shared with scripts/
import { startTestWorker } from "../../scripts/lib/worker.mjs";
import { runWith, s3, uniqueBucket, type CommandResult, type IdentityName } from "./support/clients";
import { missing } from "./support/programs";

/**
 * Key lifecycle on a real worker, restarted on the same local R2/D1 with different master
 * secrets, driven by the tools an operator uses: aws-cli for KMS and S3, the admin CLI
 * (`npm run admin`) for identities, the rewrap job, master-version status and the audit.
 *
 *   worker 1: MASTER_KEY_V1            objects written; a key rotated, one disabled, one destroyed
 *   worker 2: MASTER_KEY_V1 + _V2      new writes on v2; the rewrap job moves everything to v2
 *   worker 3: MASTER_KEY_V2 only       every object and access key still works
 */
interface TestWorker {
  endpoint: string;
  dispose(): Promise<void>;
}

const V2 = Buffer.from("e2e-master-key-version-two-32byt").toString("base64");
const stateRoot = mkdtempSync(join(tmpdir(), "sse-gw-lifecycle-"));
const persist = join(stateRoot, "state");
const bucket = uniqueBucket("lifecycle");
const ROOT = new URL("../..", import.meta.url).pathname;

let worker: TestWorker | null = null;
const objects = new Map<string, string>(); // key → sha256 of the plaintext
let rotatingKey = "";
let disabledKey = "";
let doomedKey = "";

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

async function start(vars: Record<string, string | undefined>): Promise<TestWorker> {
  if (worker) await worker.dispose();
  worker = (await startTestWorker({ vars, persist })) as TestWorker;
  return worker;
}

function aws(who: IdentityName, args: string[], creds?: { id: string; secret: string }): Promise<CommandResult> {
  return runWith(who, "aws", ["--endpoint-url", worker!.endpoint, ...args], creds ? { AWS_ACCESS_KEY_ID: creds.id, AWS_SECRET_ACCESS_KEY: creds.secret } : {});
}

async function kmsJson(...args: string[]): Promise<Record<string, unknown>> {
  const r = await aws("adminA", ["kms", ...args, "--output", "json"]);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.trim() ? (JSON.parse(r.stdout) as Record<string, unknown>) : {};
}

/** `npm run admin -- <args>` against the current worker. */
function admin(...args: string[]): Promise<CommandResult> {
  return runWith("adminA", process.execPath, [join(ROOT, "scripts/admin.mjs"), "--endpoint", worker!.endpoint, "--token", "e2e-admin-token", ...args]);
}

async function adminJson(...args: string[]): Promise<Record<string, unknown>> {
  const r = await admin(...args, "--json");
  expect(r.stderr).toBe("");
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

function client() {
  return s3("adminA", { endpoint: worker!.endpoint });
}

async function write(key: string, body: Uint8Array, extra: Partial<PutObjectCommandInput> = {}): Promise<void> {
  await client().send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ...extra }));
  objects.set(key, sha(body));
}

async function readBack(key: string): Promise<string> {
  const got = await client().send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return sha(await got.Body!.transformToByteArray());
}

async function expectAllReadable(): Promise<void> {
  const keys = [...objects.keys()];
  for (let i = 0; i < keys.length; i += 16) {
    await Promise.all(keys.slice(i, i + 16).map(async (k) => expect(await readBack(k), k).toBe(objects.get(k))));
  }
}

/** The S3 error (code and message) of a failing SDK call. */
async function s3Error(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await p;
  } catch (error) {
    return { code: (error as Error).name, message: (error as Error).message };
  }
  throw new Error("expected the call to fail");
}

function getObject(key: string) {
  return client().send(new GetObjectCommand({ Bucket: bucket, Key: key }));
}

/** An S3 client for credentials the admin CLI printed. */
function clientFor(creds: { id: string; secret: string }): S3Client {
  return new S3Client({ endpoint: worker!.endpoint, region: "us-east-1", forcePathStyle: true, credentials: { accessKeyId: creds.id, secretAccessKey: creds.secret } });
}

function awsError(r: CommandResult): string | undefined {
  return /An error occurred \(([^)]+)\)/.exec(r.stderr)?.[1];
}

/** Keys are managed and objects read through aws-cli v1 (skipped with the install command when it is absent). */
const noAws = missing("key-lifecycle.test.ts", "aws-cli-v1");

beforeAll(async () => {
  await start({});
});

afterAll(async () => {
  await worker?.dispose();
  rmSync(stateRoot, { recursive: true, force: true });
});

describe.skipIf(noAws)("operator CLI: tenants, users, access keys", () => {
  it("creates a tenant and an admin, then creates, rotates and revokes access keys", async () => {
    const tenantId = "0000000000000000000000000000c0de";
    expect((await admin("tenants", "create", "tenant-cli", "--id", tenantId)).stdout).toContain(`created: tenant ${tenantId} (tenant-cli)`);
    expect((await admin("tenants", "list")).stdout).toMatch(/0000000000000000000000000000c0de\s+tenant-cli/);
    expect((await admin("users", "create", "tenant-cli", "ops", "--role", "tenant_admin")).stdout).toContain("created: ops (tenant_admin)");
    expect((await admin("users", "list", tenantId)).stdout).toMatch(/ops\s+tenant_admin/);

    const first = await adminJson("keys", "create", "tenant-cli", "ops");
    const creds1 = { id: first["accessKeyId"] as string, secret: first["secret"] as string };
    // aws-cli with the printed credentials, once; the SDK for the rest.
    expect((await aws("adminA", ["s3api", "list-buckets"], creds1)).code).toBe(0);

    const rotated = await adminJson("keys", "rotate", "tenant-cli", "ops");
    expect(rotated["deactivated"]).toEqual([creds1.id]);
    const creds2 = { id: rotated["accessKeyId"] as string, secret: rotated["secret"] as string };
    await clientFor(creds2).send(new ListBucketsCommand({}));
    // The identity cache trusts a lookup for KEY_CACHE_TTL_SECONDS (5 s): wait it out.
    await new Promise((r) => setTimeout(r, 5200));
    expect((await s3Error(clientFor(creds1).send(new ListBucketsCommand({})))).code).toBe("InvalidAccessKeyId");
    const listed = (await admin("keys", "list", "tenant-cli", "ops")).stdout;
    expect(listed).toMatch(new RegExp(`${creds1.id}\\s+Inactive`));
    expect(listed).toMatch(new RegExp(`${creds2.id}\\s+Active`));

    expect((await admin("keys", "revoke", creds2.id, "--delete")).stdout).toContain(`deleted: ${creds2.id}`);
    expect((await admin("keys", "revoke", "NOSUCHKEY123")).code).toBe(1);
  });
});

describe.skipIf(noAws)("key and master-secret lifecycle", () => {
  it("worker 1 (v1): writes objects under rotated, disabled and soon-destroyed keys", async () => {
    await client().send(new CreateBucketCommand({ Bucket: bucket }));
    const create = async (d: string) => ((await kmsJson("create-key", "--description", d))["KeyMetadata"] as { KeyId: string }).KeyId;
    [rotatingKey, disabledKey, doomedKey] = await Promise.all([create("rotating"), create("disabled"), create("doomed")]);
    const kms = (id: string): Partial<PutObjectCommandInput> => ({ ServerSideEncryption: "aws:kms", SSEKMSKeyId: id });

    await write("sse-s3/small", randomBytes(1000));
    await write("sse-s3/big", randomBytes(3 * 1024 * 1024 + 17));
    await write("kms/default", randomBytes(70_000), { ServerSideEncryption: "aws:kms" });
    await write("kms/rotating-kv1", randomBytes(5000), kms(rotatingKey));
    await kmsJson("rotate-key-on-demand", "--key-id", rotatingKey);
    await write("kms/rotating-kv2", randomBytes(5000), kms(rotatingKey));
    await write("kms/disabled", randomBytes(10), kms(disabledKey));
    await write("kms/doomed", randomBytes(10), kms(doomedKey));
    // Enough small objects for the rewrap job to show its throughput.
    const many = Array.from({ length: 100 }, (_, i) => `many/${String(i).padStart(4, "0")}`);
    for (let i = 0; i < many.length; i += 16) await Promise.all(many.slice(i, i + 16).map((k) => write(k, randomBytes(4096))));

    await Promise.all([kmsJson("disable-key", "--key-id", disabledKey), kmsJson("schedule-key-deletion", "--key-id", doomedKey, "--pending-window-in-days", "7")]);
    expect((await s3Error(getObject("kms/disabled"))).code).toBe("KMS.DisabledException");
    expect((await s3Error(getObject("kms/doomed"))).code).toBe("KMS.KMSInvalidStateException");

    // The cron tick as the platform would fire it eight days from now: the window is over.
    const tick = await fetch(`${worker!.endpoint}/cdn-cgi/local/scheduled?time=${Date.now() + 8 * 86_400_000}`);
    expect(tick.status).toBe(200);
    const gone = await aws("adminA", ["s3api", "get-object", "--bucket", bucket, "--key", "kms/doomed", "/dev/null"]);
    expect(awsError(gone)).toBe("KMS.NotFoundException");
    expect(gone.stderr).toContain("key material destroyed");
    expect(awsError(await aws("adminA", ["kms", "describe-key", "--key-id", doomedKey]))).toBe("NotFoundException");
    objects.delete("kms/doomed");
    objects.delete("kms/disabled"); // checked separately: it needs its key enabled
  });

  it("worker 2 (v1 + v2): new writes use v2, old objects read, the rewrap job moves everything", async () => {
    await start({ MASTER_KEY_V2: V2 });
    await write("after-master-rotation", randomBytes(2048), { ServerSideEncryption: "aws:kms", SSEKMSKeyId: rotatingKey });
    await expectAllReadable();

    const before = await adminJson("master", "status");
    expect(before["writeVersion"]).toBe(2);
    const v1 = (before["versions"] as Array<Record<string, unknown>>).find((v) => v["version"] === 1)!;
    expect(v1["removable"]).toBe(false);

    const t0 = performance.now();
    const run = await admin("rewrap", "run", "--watch", "--batch", "100");
    const seconds = (performance.now() - t0) / 1000;
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain("completed; access-key secrets re-sealed:");
    const pass = (await adminJson("rewrap", "status"))["latest"] as Record<string, number>;
    expect(pass).toMatchObject({ status: "completed", targetVersion: 2, failed: 1, conflicts: 0 });
    // Every object on v1 but the shredded one: the map (less the one written on v2) plus the disabled one.
    expect(pass["rewrapped"]).toBe(objects.size);
    console.log(`rewrap: ${pass["scanned"]} objects (${pass["rewrapped"]} moved) in ${seconds.toFixed(2)} s including CLI start-up → ${(pass["scanned"]! / seconds).toFixed(0)} objects/s`);

    const after = await adminJson("master", "status");
    const v1After = (after["versions"] as Array<Record<string, unknown>>).find((v) => v["version"] === 1)!;
    expect(v1After).toMatchObject({ removable: true, objects: 1, unreadableObjects: 1, accessKeys: 0 });
    expect((await admin("master", "status")).stdout).toMatch(/v1\s+yes\s+1\s+1\s+0\s+0\s+YES\s+nothing uses this version/);

    const failures = (await admin("rewrap", "status")).stdout;
    expect(failures).toContain(`${bucket}/kms/doomed`);
    expect(failures).toContain("key-destroyed");
  });

  it("the audit reports modes, keys, master versions and every unreadable object (exit status 1)", async () => {
    const r = await admin("audit", bucket, "--json");
    expect(r.code).toBe(1);
    const report = JSON.parse(r.stdout) as { scanned: number; readable: number; byMasterVersion: Record<string, number>; byMode: Record<string, number>; problems: Array<{ key: string; reason: string }> };
    expect(report.scanned).toBe(objects.size + 2);
    expect(report.byMasterVersion).toEqual({ "1": 1, "2": objects.size + 1 });
    expect(report.byMode).toEqual({ AES256: 102, "aws:kms": objects.size + 2 - 102 });
    expect(report.problems.map((p) => [p.key, p.reason])).toEqual([
      ["kms/disabled", "key-disabled"],
      ["kms/doomed", "key-destroyed"],
    ]);
    const text = (await admin("audit", bucket)).stdout;
    expect(text).toContain("NOT READABLE (2):");
    expect(text).toContain("by master version:  v1 1, v2");
  });

  it("worker 3 (v2 only): with the old secret deleted everything still works", async () => {
    await start({ MASTER_KEY_V1: undefined, MASTER_KEY_V2: V2 });
    await expectAllReadable();
    await kmsJson("enable-key", "--key-id", disabledKey);
    expect((await getObject("kms/disabled")).$metadata.httpStatusCode).toBe(200);
    const status = await adminJson("master", "status");
    expect(status["configuredVersions"]).toEqual([2]);
    // The crypto-shredded object stays unreadable whatever the secrets.
    expect((await s3Error(getObject("kms/doomed"))).code).toBe("KMS.NotFoundException");
  });
});
