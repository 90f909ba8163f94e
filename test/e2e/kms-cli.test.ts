import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { IDENTITIES, awsCli, uniqueBucket, type CommandResult, type IdentityName } from "./support/clients";

/**
 * The machine's aws-cli (v1) against the worker: `aws kms` for every KMS operation the
 * endpoint offers, unmodified (it signs with service "kms" and region us-east-1), and
 * `aws s3api` showing that key state, aliases and rotation take effect on objects.
 */
const bucket = uniqueBucket("kmscli");
const dir = mkdtempSync(join(tmpdir(), "kms-cli-"));
const payload = join(dir, "payload.txt");

async function kms(who: IdentityName, ...args: string[]): Promise<Record<string, unknown>> {
  const r = await awsCli(who, ["kms", ...args, "--output", "json"]);
  if (r.code !== 0) throw new Error(`aws kms ${args.join(" ")} failed: ${r.stderr}`);
  return r.stdout.trim() === "" ? {} : (JSON.parse(r.stdout) as Record<string, unknown>);
}

/** Runs a command expected to fail; returns AWS's error code from aws-cli's message. */
async function failing(promise: Promise<CommandResult>): Promise<{ code: string; message: string }> {
  const r = await promise;
  expect(r.code, r.stdout).not.toBe(0);
  const m = /An error occurred \(([^)]+)\) when calling the \w+ operation: (.*)/.exec(r.stderr);
  expect(m, r.stderr).not.toBeNull();
  return { code: m![1]!, message: m![2]! };
}

const put = (who: IdentityName, key: string, ...sse: string[]) => awsCli(who, ["s3api", "put-object", "--bucket", bucket, "--key", key, "--body", payload, ...sse]);
const get = (who: IdentityName, key: string) => awsCli(who, ["s3api", "get-object", "--bucket", bucket, "--key", key, join(dir, "out")]);
const withKey = (keyId: string) => ["--server-side-encryption", "aws:kms", "--ssekms-key-id", keyId];

async function createKey(description: string): Promise<{ KeyId: string; Arn: string }> {
  return (await kms("adminA", "create-key", "--description", description))["KeyMetadata"] as { KeyId: string; Arn: string };
}

beforeAll(async () => {
  writeFileSync(payload, "kms cli payload\n");
  const r = await awsCli("adminA", ["s3api", "create-bucket", "--bucket", bucket]);
  expect(r.code, r.stderr).toBe(0);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("aws kms against the worker", () => {
  it("create-key, describe-key, list-keys", async () => {
    const created = await kms("adminA", "create-key", "--description", "cli key");
    const meta = created["KeyMetadata"] as Record<string, unknown>;
    expect(meta).toMatchObject({ Description: "cli key", KeyState: "Enabled", KeyManager: "CUSTOMER", KeySpec: "SYMMETRIC_DEFAULT", KeyUsage: "ENCRYPT_DECRYPT", Enabled: true, Origin: "AWS_KMS" });
    expect(meta["Arn"]).toBe(`arn:aws:kms:us-east-1:${IDENTITIES.adminA.tenantId}:key/${meta["KeyId"] as string}`);
    const described = await kms("adminA", "describe-key", "--key-id", meta["Arn"] as string);
    expect((described["KeyMetadata"] as Record<string, unknown>)["KeyId"]).toBe(meta["KeyId"]);
    const aws = await kms("adminA", "describe-key", "--key-id", "alias/aws/s3");
    expect(aws["KeyMetadata"]).toMatchObject({ KeyManager: "AWS" });
    // aws-cli follows NextMarker itself: a page size of 1 still lists everything.
    const listed = await kms("adminA", "list-keys", "--page-size", "1");
    const ids = (listed["Keys"] as Array<{ KeyId: string }>).map((k) => k.KeyId);
    expect(ids).toContain(meta["KeyId"]);
    expect(ids).toContain((aws["KeyMetadata"] as { KeyId: string }).KeyId);
    expect((await failing(awsCli("adminA", ["kms", "describe-key", "--key-id", "00000000-0000-0000-0000-000000000000"]))).code).toBe("NotFoundException");
  });

  it("aliases: create-alias, list-aliases, update-alias, delete-alias, and aliases as SSE key ids", async () => {
    const one = await createKey("alias one");
    const two = await createKey("alias two");
    const alias = `alias/${bucket}`;
    await kms("adminA", "create-alias", "--alias-name", alias, "--target-key-id", one.KeyId);
    const written = await put("adminA", "via-alias", ...withKey(alias));
    expect(written.code, written.stderr).toBe(0);
    expect(JSON.parse(written.stdout)).toMatchObject({ ServerSideEncryption: "aws:kms", SSEKMSKeyId: one.Arn });

    const aliases = (await kms("adminA", "list-aliases"))["Aliases"] as Array<Record<string, unknown>>;
    expect(aliases.find((a) => a["AliasName"] === alias)).toMatchObject({ TargetKeyId: one.KeyId });
    expect(aliases.some((a) => a["AliasName"] === "alias/aws/s3")).toBe(true);
    const forKey = (await kms("adminA", "list-aliases", "--key-id", one.KeyId))["Aliases"] as Array<Record<string, unknown>>;
    expect(forKey.map((a) => a["AliasName"])).toEqual([alias]);

    await kms("adminA", "update-alias", "--alias-name", alias, "--target-key-id", two.Arn);
    const moved = await put("adminA", "via-alias-2", ...withKey(alias));
    expect(JSON.parse(moved.stdout)).toMatchObject({ SSEKMSKeyId: two.Arn });
    expect((await failing(awsCli("adminA", ["kms", "create-alias", "--alias-name", alias, "--target-key-id", one.KeyId]))).code).toBe("AlreadyExistsException");
    expect((await failing(awsCli("adminA", ["kms", "create-alias", "--alias-name", "alias/aws/mine", "--target-key-id", one.KeyId]))).code).toBe("NotAuthorizedException");

    await kms("adminA", "delete-alias", "--alias-name", alias);
    expect((await failing(put("adminA", "via-alias-3", ...withKey(alias)))).code).toBe("KMS.NotFoundException");
    expect((await failing(awsCli("adminA", ["kms", "delete-alias", "--alias-name", alias]))).code).toBe("NotFoundException");
  });

  it("disable-key / enable-key: S3 answers KMS.DisabledException at once, and nothing is lost", async () => {
    const key = await createKey("toggle");
    expect((await put("adminA", "toggle", ...withKey(key.KeyId))).code).toBe(0);
    await kms("adminA", "disable-key", "--key-id", key.KeyId);
    expect((await kms("adminA", "describe-key", "--key-id", key.KeyId))["KeyMetadata"]).toMatchObject({ KeyState: "Disabled", Enabled: false });
    const denied = await failing(get("adminA", "toggle"));
    expect(denied.code).toBe("KMS.DisabledException");
    expect(denied.message).toContain(key.Arn);
    expect((await failing(put("adminA", "toggle-2", ...withKey(key.KeyId)))).code).toBe("KMS.DisabledException");

    await kms("adminA", "enable-key", "--key-id", key.Arn);
    const back = await get("adminA", "toggle");
    expect(back.code, back.stderr).toBe(0);
    expect(readFileSync(join(dir, "out"), "utf8")).toBe("kms cli payload\n");
  });

  it("schedule-key-deletion / cancel-key-deletion", async () => {
    const key = await createKey("maybe delete");
    expect((await put("adminA", "pending", ...withKey(key.KeyId))).code).toBe(0);
    expect((await failing(awsCli("adminA", ["kms", "schedule-key-deletion", "--key-id", key.KeyId, "--pending-window-in-days", "5"]))).code).toBe("ValidationException");
    const scheduled = await kms("adminA", "schedule-key-deletion", "--key-id", key.KeyId, "--pending-window-in-days", "7");
    expect(scheduled).toMatchObject({ KeyId: key.Arn, KeyState: "PendingDeletion", PendingWindowInDays: 7 });
    // aws-cli prints AWS's epoch-seconds timestamps as numbers or ISO strings, by version.
    const when = scheduled["DeletionDate"] as number | string;
    const days = ((typeof when === "number" ? when * 1000 : Date.parse(when)) - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(6.9);
    expect(days).toBeLessThan(7.1);
    expect((await failing(get("adminA", "pending"))).code).toBe("KMS.KMSInvalidStateException");
    expect((await failing(awsCli("adminA", ["kms", "enable-key", "--key-id", key.KeyId]))).code).toBe("KMSInvalidStateException");

    expect(await kms("adminA", "cancel-key-deletion", "--key-id", key.KeyId)).toEqual({ KeyId: key.Arn });
    expect((await kms("adminA", "describe-key", "--key-id", key.KeyId))["KeyMetadata"]).toMatchObject({ KeyState: "Disabled" });
    await kms("adminA", "enable-key", "--key-id", key.KeyId);
    expect((await get("adminA", "pending")).code).toBe(0);
  });

  it("rotation: get/enable/disable-key-rotation, rotate-key-on-demand, list-key-rotations; objects before and after read back", async () => {
    const key = await createKey("rotating");
    expect(await kms("adminA", "get-key-rotation-status", "--key-id", key.KeyId)).toMatchObject({ KeyRotationEnabled: false });
    await kms("adminA", "enable-key-rotation", "--key-id", key.KeyId, "--rotation-period-in-days", "180");
    expect(await kms("adminA", "get-key-rotation-status", "--key-id", key.KeyId)).toMatchObject({ KeyRotationEnabled: true, RotationPeriodInDays: 180 });
    await kms("adminA", "disable-key-rotation", "--key-id", key.KeyId);
    expect(await kms("adminA", "get-key-rotation-status", "--key-id", key.KeyId)).toMatchObject({ KeyRotationEnabled: false });

    writeFileSync(payload, "before rotation\n");
    expect((await put("adminA", "rot-before", ...withKey(key.KeyId))).code).toBe(0);
    expect(await kms("adminA", "rotate-key-on-demand", "--key-id", key.KeyId)).toEqual({ KeyId: key.Arn });
    writeFileSync(payload, "after rotation\n");
    expect((await put("adminA", "rot-after", ...withKey(key.KeyId))).code).toBe(0);
    writeFileSync(payload, "kms cli payload\n");

    const rotations = (await kms("adminA", "list-key-rotations", "--key-id", key.KeyId))["Rotations"] as Array<Record<string, unknown>>;
    expect(rotations).toHaveLength(1);
    expect(rotations[0]).toMatchObject({ KeyId: key.Arn, RotationType: "ON_DEMAND", KeyMaterialState: "CURRENT" });
    for (const [k, text] of [["rot-before", "before rotation\n"], ["rot-after", "after rotation\n"]]) {
      const r = await get("adminA", k!);
      expect(r.code, r.stderr).toBe(0);
      expect(readFileSync(join(dir, "out"), "utf8")).toBe(text);
    }
  });

  it("only tenant admins manage keys, and no tenant sees or uses another's", async () => {
    const key = await createKey("private to A");
    const member = await failing(awsCli("memberA", ["kms", "list-keys"]));
    expect(member.code).toBe("AccessDeniedException");
    expect((await failing(awsCli("adminB", ["kms", "describe-key", "--key-id", key.Arn]))).code).toBe("AccessDeniedException");
    expect((await failing(awsCli("adminB", ["kms", "disable-key", "--key-id", key.KeyId]))).code).toBe("NotFoundException");
    const listedByB = (await kms("adminB", "list-keys"))["Keys"] as Array<{ KeyId: string }>;
    expect(listedByB.map((k) => k.KeyId)).not.toContain(key.KeyId);

    const bucketB = uniqueBucket("kmscli-b");
    expect((await awsCli("adminB", ["s3api", "create-bucket", "--bucket", bucketB])).code).toBe(0);
    const cross = await failing(awsCli("adminB", ["s3api", "put-object", "--bucket", bucketB, "--key", "x", "--body", payload, ...withKey(key.Arn)]));
    expect(cross.code).toBe("AccessDenied");
  });
});
