import { CreateBucketCommand, GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { IDENTITIES, awsCli, s3, uniqueBucket, type CommandResult, type IdentityName } from "./support/clients";
import { missing } from "./support/programs";

/**
 * The machine's aws-cli (v1) against the worker: `aws kms` for every KMS operation the
 * endpoint offers, unmodified (it signs with service "kms" and region us-east-1), and the
 * effect of key state, aliases and rotation on objects (through `aws s3api` once, then the
 * SDK, which is much faster than starting aws-cli for every check). Error paths in detail
 * are in test/integration/kms-api.test.ts.
 */
const bucket = uniqueBucket("kmscli");
const dir = mkdtempSync(join(tmpdir(), "kms-cli-"));
const payload = join(dir, "payload.txt");
const client = s3("adminA");

async function kms(who: IdentityName, ...args: string[]): Promise<Record<string, unknown>> {
  const r = await awsCli(who, ["kms", ...args, "--output", "json"]);
  if (r.code !== 0) throw new Error(`aws kms ${args.join(" ")} failed: ${r.stderr}`);
  return r.stdout.trim() === "" ? {} : (JSON.parse(r.stdout) as Record<string, unknown>);
}

/** aws-cli's report of an AWS error: "An error occurred (<Code>) when calling …". */
async function kmsError(who: IdentityName, ...args: string[]): Promise<string | undefined> {
  const r: CommandResult = await awsCli(who, ["kms", ...args]);
  expect(r.code, r.stdout).not.toBe(0);
  return /An error occurred \(([^)]+)\)/.exec(r.stderr)?.[1];
}

async function put(key: string, body: string, keyId?: string): Promise<string | undefined> {
  const r = await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ServerSideEncryption: "aws:kms", ...(keyId ? { SSEKMSKeyId: keyId } : {}) }));
  return r.SSEKMSKeyId;
}

async function get(key: string): Promise<string> {
  return (await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body!.transformToString();
}

/** The S3 error code of a failing SDK call. */
async function s3Error(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (error) {
    return (error as { name: string }).name;
  }
  throw new Error("expected the call to fail");
}

async function createKey(description: string): Promise<{ KeyId: string; Arn: string }> {
  return (await kms("adminA", "create-key", "--description", description))["KeyMetadata"] as { KeyId: string; Arn: string };
}

const noAws = missing("kms-cli.test.ts", "aws-cli-v1");

beforeAll(async () => {
  writeFileSync(payload, "kms cli payload\n");
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(noAws)("aws kms against the worker", () => {
  it("create-key, describe-key, list-keys", async () => {
    const meta = (await kms("adminA", "create-key", "--description", "cli key"))["KeyMetadata"] as Record<string, unknown>;
    expect(meta).toMatchObject({ Description: "cli key", KeyState: "Enabled", KeyManager: "CUSTOMER", KeySpec: "SYMMETRIC_DEFAULT", KeyUsage: "ENCRYPT_DECRYPT", Enabled: true, Origin: "AWS_KMS" });
    expect(meta["Arn"]).toBe(`arn:aws:kms:us-east-1:${IDENTITIES.adminA.tenantId}:key/${meta["KeyId"] as string}`);
    const [described, managed, missing] = await Promise.all([
      kms("adminA", "describe-key", "--key-id", meta["Arn"] as string),
      // Naming the predefined alias creates the default key on first use, as in AWS.
      kms("adminA", "describe-key", "--key-id", "alias/aws/s3"),
      kmsError("adminA", "describe-key", "--key-id", "00000000-0000-0000-0000-000000000000"),
    ]);
    // aws-cli follows NextMarker itself: a page size of 1 still lists everything.
    const listed = await kms("adminA", "list-keys", "--page-size", "1");
    expect((described["KeyMetadata"] as Record<string, unknown>)["KeyId"]).toBe(meta["KeyId"]);
    expect(managed["KeyMetadata"]).toMatchObject({ KeyManager: "AWS" });
    const ids = (listed["Keys"] as Array<{ KeyId: string }>).map((k) => k.KeyId);
    expect(ids).toContain(meta["KeyId"]);
    expect(ids).toContain((managed["KeyMetadata"] as { KeyId: string }).KeyId);
    expect(missing).toBe("NotFoundException");
  });

  it("create-alias, list-aliases, update-alias, delete-alias; aliases work as SSE key ids", async () => {
    const [one, two] = await Promise.all([createKey("alias one"), createKey("alias two")]);
    const alias = `alias/${bucket}`;
    await kms("adminA", "create-alias", "--alias-name", alias, "--target-key-id", one.KeyId);
    // aws s3api with the alias as --ssekms-key-id: the answer names the key it resolved to.
    const written = await awsCli("adminA", ["s3api", "put-object", "--bucket", bucket, "--key", "via-alias", "--body", payload, "--server-side-encryption", "aws:kms", "--ssekms-key-id", alias]);
    expect(written.code, written.stderr).toBe(0);
    expect(JSON.parse(written.stdout)).toMatchObject({ ServerSideEncryption: "aws:kms", SSEKMSKeyId: one.Arn });

    const [all, forKey] = await Promise.all([kms("adminA", "list-aliases"), kms("adminA", "list-aliases", "--key-id", one.KeyId)]);
    const aliases = all["Aliases"] as Array<Record<string, unknown>>;
    expect(aliases.find((a) => a["AliasName"] === alias)).toMatchObject({ TargetKeyId: one.KeyId });
    expect(aliases.some((a) => a["AliasName"] === "alias/aws/s3")).toBe(true);
    expect((forKey["Aliases"] as Array<Record<string, unknown>>).map((a) => a["AliasName"])).toEqual([alias]);

    await kms("adminA", "update-alias", "--alias-name", alias, "--target-key-id", two.Arn);
    expect(await put("via-alias-2", "two", alias)).toBe(two.Arn);
    await kms("adminA", "delete-alias", "--alias-name", alias);
    expect(await s3Error(put("via-alias-3", "x", alias))).toBe("KMS.NotFoundException");
    expect(await get("via-alias")).toBe("kms cli payload\n");
  });

  it("disable-key / enable-key: S3 answers KMS.DisabledException at once, and nothing is lost", async () => {
    const key = await createKey("toggle");
    await put("toggle", "precious", key.KeyId);
    await kms("adminA", "disable-key", "--key-id", key.KeyId);
    const [described, onGet, onPut] = await Promise.all([kms("adminA", "describe-key", "--key-id", key.KeyId), s3Error(get("toggle")), s3Error(put("toggle-2", "x", key.KeyId))]);
    expect(described["KeyMetadata"]).toMatchObject({ KeyState: "Disabled", Enabled: false });
    expect([onGet, onPut]).toEqual(["KMS.DisabledException", "KMS.DisabledException"]);
    await kms("adminA", "enable-key", "--key-id", key.Arn);
    expect(await get("toggle")).toBe("precious");
  });

  it("schedule-key-deletion / cancel-key-deletion", async () => {
    const key = await createKey("maybe delete");
    await put("pending", "keep me", key.KeyId);
    const scheduled = await kms("adminA", "schedule-key-deletion", "--key-id", key.KeyId, "--pending-window-in-days", "7");
    expect(scheduled).toMatchObject({ KeyId: key.Arn, KeyState: "PendingDeletion", PendingWindowInDays: 7 });
    // aws-cli prints AWS's epoch-seconds timestamps as numbers or ISO strings, by version.
    const when = scheduled["DeletionDate"] as number | string;
    const days = ((typeof when === "number" ? when * 1000 : Date.parse(when)) - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(6.9);
    expect(days).toBeLessThan(7.1);
    const [onGet, onEnable] = await Promise.all([s3Error(get("pending")), kmsError("adminA", "enable-key", "--key-id", key.KeyId)]);
    expect([onGet, onEnable]).toEqual(["KMS.KMSInvalidStateException", "KMSInvalidStateException"]);

    expect(await kms("adminA", "cancel-key-deletion", "--key-id", key.KeyId)).toEqual({ KeyId: key.Arn });
    expect((await kms("adminA", "describe-key", "--key-id", key.KeyId))["KeyMetadata"]).toMatchObject({ KeyState: "Disabled" });
    await kms("adminA", "enable-key", "--key-id", key.KeyId);
    expect(await get("pending")).toBe("keep me");
  });

  it("get/enable/disable-key-rotation, rotate-key-on-demand, list-key-rotations; objects before and after read back", async () => {
    const key = await createKey("rotating");
    expect(await kms("adminA", "get-key-rotation-status", "--key-id", key.KeyId)).toMatchObject({ KeyRotationEnabled: false });
    await kms("adminA", "enable-key-rotation", "--key-id", key.KeyId, "--rotation-period-in-days", "180");
    expect(await kms("adminA", "get-key-rotation-status", "--key-id", key.KeyId)).toMatchObject({ KeyRotationEnabled: true, RotationPeriodInDays: 180 });
    await kms("adminA", "disable-key-rotation", "--key-id", key.KeyId);

    await put("rot-before", "before rotation", key.KeyId);
    expect(await kms("adminA", "rotate-key-on-demand", "--key-id", key.KeyId)).toEqual({ KeyId: key.Arn });
    await put("rot-after", "after rotation", key.KeyId);
    const [status, rotations] = await Promise.all([kms("adminA", "get-key-rotation-status", "--key-id", key.KeyId), kms("adminA", "list-key-rotations", "--key-id", key.KeyId)]);
    expect(status).toMatchObject({ KeyRotationEnabled: false });
    expect(rotations["Rotations"]).toMatchObject([{ KeyId: key.Arn, RotationType: "ON_DEMAND", KeyMaterialState: "CURRENT" }]);
    expect([await get("rot-before"), await get("rot-after")]).toEqual(["before rotation", "after rotation"]);
  });

  it("encrypt / decrypt / re-encrypt / generate-data-key(-without-plaintext) / generate-random (issue 15)", async () => {
    const [key, other] = await Promise.all([createKey("data plane"), createKey("data plane 2")]);
    // fileb:// sends raw bytes under aws-cli v1 and v2 alike.
    const secret = join(dir, "secret.bin");
    writeFileSync(secret, Buffer.from([0, 1, 2, 250, 255, ...Buffer.from("envelope")]));
    const enc = await kms("adminA", "encrypt", "--key-id", key.KeyId, "--plaintext", `fileb://${secret}`, "--encryption-context", "app=cli,purpose=e2e");
    expect(enc).toMatchObject({ KeyId: key.Arn, EncryptionAlgorithm: "SYMMETRIC_DEFAULT" });
    const blobFile = join(dir, "blob.bin");
    writeFileSync(blobFile, Buffer.from(enc["CiphertextBlob"] as string, "base64"));

    // No --key-id: the blob names its key. The context must be the same (order free).
    const dec = await kms("adminA", "decrypt", "--ciphertext-blob", `fileb://${blobFile}`, "--encryption-context", "purpose=e2e,app=cli");
    expect(dec["KeyId"]).toBe(key.Arn);
    expect(Buffer.from(dec["Plaintext"] as string, "base64")).toEqual(Buffer.from([0, 1, 2, 250, 255, ...Buffer.from("envelope")]));
    const [noContext, wrongKey, otherTenant] = await Promise.all([
      kmsError("adminA", "decrypt", "--ciphertext-blob", `fileb://${blobFile}`),
      kmsError("adminA", "decrypt", "--ciphertext-blob", `fileb://${blobFile}`, "--encryption-context", "app=cli,purpose=e2e", "--key-id", other.KeyId),
      kmsError("adminB", "decrypt", "--ciphertext-blob", `fileb://${blobFile}`, "--encryption-context", "app=cli,purpose=e2e"),
    ]);
    expect([noContext, wrongKey, otherTenant]).toEqual(["InvalidCiphertextException", "IncorrectKeyException", "AccessDeniedException"]);

    const re = await kms("adminA", "re-encrypt", "--ciphertext-blob", `fileb://${blobFile}`, "--source-encryption-context", "app=cli,purpose=e2e", "--destination-key-id", other.Arn);
    expect(re).toMatchObject({ SourceKeyId: key.Arn, KeyId: other.Arn });
    writeFileSync(blobFile, Buffer.from(re["CiphertextBlob"] as string, "base64"));
    expect((await kms("adminA", "decrypt", "--ciphertext-blob", `fileb://${blobFile}`))["KeyId"]).toBe(other.Arn);

    const dataKey = await kms("adminA", "generate-data-key", "--key-id", key.Arn, "--key-spec", "AES_256", "--encryption-context", "bucket=b");
    expect(Buffer.from(dataKey["Plaintext"] as string, "base64").length).toBe(32);
    writeFileSync(blobFile, Buffer.from(dataKey["CiphertextBlob"] as string, "base64"));
    expect((await kms("adminA", "decrypt", "--ciphertext-blob", `fileb://${blobFile}`, "--encryption-context", "bucket=b"))["Plaintext"]).toBe(dataKey["Plaintext"]);
    const withoutPlaintext = await kms("adminA", "generate-data-key-without-plaintext", "--key-id", key.KeyId, "--number-of-bytes", "64");
    expect(Object.keys(withoutPlaintext).sort()).toEqual(["CiphertextBlob", "KeyId"]);
    const random = await kms("adminA", "generate-random", "--number-of-bytes", "24");
    expect(Buffer.from(random["Plaintext"] as string, "base64").length).toBe(24);

    await kms("adminA", "disable-key", "--key-id", key.KeyId);
    expect(await kmsError("adminA", "encrypt", "--key-id", key.KeyId, "--plaintext", `fileb://${secret}`)).toBe("DisabledException");
    await kms("adminA", "enable-key", "--key-id", key.KeyId);
  });

  it("only tenant admins manage keys, and no tenant sees or uses another's", async () => {
    const key = await createKey("private to A");
    const bucketB = uniqueBucket("kmscli-b");
    const clientB = s3("adminB");
    await clientB.send(new CreateBucketCommand({ Bucket: bucketB }));
    const [member, byArn, byId, listedByB, cross] = await Promise.all([
      kmsError("memberA", "list-keys"),
      kmsError("adminB", "describe-key", "--key-id", key.Arn),
      kmsError("adminB", "disable-key", "--key-id", key.KeyId),
      kms("adminB", "list-keys"),
      s3Error(clientB.send(new PutObjectCommand({ Bucket: bucketB, Key: "x", Body: "x", ServerSideEncryption: "aws:kms", SSEKMSKeyId: key.Arn }))),
    ]);
    expect([member, byArn, byId]).toEqual(["AccessDeniedException", "AccessDeniedException", "NotFoundException"]);
    expect((listedByB["Keys"] as Array<{ KeyId: string }>).map((k) => k.KeyId)).not.toContain(key.KeyId);
    expect(cross).toBe("AccessDenied");
  });
});
