/**
 * Cloudflare's request body limit (MAX_REQUEST_BODY_BYTES) with real clients: a worker of
 * its own with the limit lowered to 10,000,000 bytes, and 25 MiB files uploaded by every
 * client with the setting README "Request body limit" gives for it — each must split the
 * file into requests under the limit. A single PUT over it is refused with EntityTooLarge,
 * and the clients report that code.
 */
import { CreateBucketCommand, GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client, S3ServiceException } from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
// @ts-expect-error plain ESM helper shared with scripts/
import { startTestWorker } from "../../scripts/lib/worker.mjs";
import { IDENTITIES, rcloneEnv, REGION, runWith, type CommandResult } from "./support/clients";
import { missing } from "./support/programs";

const LIMIT = 10_000_000;
const MiB = 1024 * 1024;
const SIZE = 25 * MiB;
const dir = mkdtempSync(join(tmpdir(), "body-limit-e2e-"));
const here = fileURLToPath(new URL(".", import.meta.url));
const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const data = randomBytes(SIZE);
const tooLarge = randomBytes(12 * MiB);
const bigFile = join(dir, "big.bin");
const tooLargeFile = join(dir, "too-large.bin");
const bucket = `limit-${Date.now().toString(36)}`;

let worker: { endpoint: string; dispose(): Promise<void> } | undefined;
let client: S3Client;
const endpoint = () => worker!.endpoint;

beforeAll(async () => {
  writeFileSync(bigFile, data);
  writeFileSync(tooLargeFile, tooLarge);
  worker = await startTestWorker({ vars: { MAX_REQUEST_BODY_BYTES: String(LIMIT) } });
  const { accessKeyId, secretAccessKey } = IDENTITIES.adminA;
  client = new S3Client({ endpoint: endpoint(), region: REGION, forcePathStyle: true, credentials: { accessKeyId, secretAccessKey }, maxAttempts: 1 });
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
});

afterAll(async () => {
  await worker?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

/** Stored whole (sha256 of a GET), SSE-KMS, from more than one part, none over the limit. */
async function expectUploadedInParts(key: string): Promise<void> {
  const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  expect(got.ServerSideEncryption, key).toBe("aws:kms");
  expect(sha256(await got.Body!.transformToByteArray()), key).toBe(sha256(data));
  const part1 = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key, PartNumber: 1 }));
  expect(part1.PartsCount, key).toBeGreaterThan(2);
  expect(part1.ContentLength, key).toBeLessThanOrEqual(LIMIT);
}

async function absent(key: string): Promise<boolean> {
  try {
    await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return false;
  } catch (error) {
    if (error instanceof S3ServiceException && error.$metadata.httpStatusCode === 404) return true;
    throw error;
  }
}

function ok(r: CommandResult, what: string): void {
  expect(r.code, `${what}: ${r.stdout}\n${r.stderr}`).toBe(0);
}

describe("AWS SDK v3", () => {
  it("lib-storage Upload (partSize 8 MiB) stores a 25 MiB file in parts", async () => {
    await new Upload({ client, params: { Bucket: bucket, Key: "sdk/upload.bin", Body: data, ServerSideEncryption: "aws:kms" }, partSize: 8 * MiB, queueSize: 2 }).done();
    await expectUploadedInParts("sdk/upload.bin");
  });

  it("a single PutObject over the limit: 400 EntityTooLarge with MaxSizeAllowed; nothing stored", async () => {
    const error = await client.send(new PutObjectCommand({ Bucket: bucket, Key: "sdk/single.bin", Body: tooLarge, ServerSideEncryption: "aws:kms" })).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(S3ServiceException);
    const e = error as S3ServiceException & { MaxSizeAllowed?: string; ProposedSize?: string };
    expect({ name: e.name, status: e.$metadata.httpStatusCode, max: e.MaxSizeAllowed }).toEqual({ name: "EntityTooLarge", status: 400, max: String(LIMIT) });
    expect(Number(e.ProposedSize)).toBe(tooLarge.length);
    expect(e.message).toMatch(/multipart upload/);
    expect(await absent("sdk/single.bin")).toBe(true);
  });
});

describe.skipIf(missing("body-limit.test.ts › aws-cli", "aws-cli-v1"))("aws-cli v1", () => {
  const aws = (args: string[]) => runWith("adminA", "aws", ["--endpoint-url", endpoint(), ...args]);

  it("s3 cp with its defaults (multipart from 8 MiB, 8 MiB parts) stores a 25 MiB file in parts", async () => {
    ok(await aws(["s3", "cp", bigFile, `s3://${bucket}/cli/default.bin`, "--sse", "aws:kms"]), "aws s3 cp");
    await expectUploadedInParts("cli/default.bin");
  });

  it("s3api put-object over the limit fails with EntityTooLarge; nothing stored", async () => {
    const r = await aws(["s3api", "put-object", "--bucket", bucket, "--key", "cli/single.bin", "--body", tooLargeFile]);
    expect(r.code, r.stdout).not.toBe(0);
    expect(r.stderr).toMatch(/\(EntityTooLarge\)/);
    expect(await absent("cli/single.bin")).toBe(true);
  });
});

describe.skipIf(missing("body-limit.test.ts › boto3", "boto3"))("boto3", () => {
  it("upload_file with the default TransferConfig stores a 25 MiB file in parts; put_object over the limit is EntityTooLarge", async () => {
    const r = await runWith("adminA", "python3", [join(here, "support", "boto3_body_limit.py"), endpoint(), bucket, bigFile, tooLargeFile]);
    ok(r, "boto3_body_limit.py");
    const out = JSON.parse(r.stdout.trim().split("\n").at(-1)!) as { sha256: string; partsCount: number; part1: number; refused: { code: string; status: number; max?: string } | null };
    expect(out.sha256).toBe(sha256(data));
    expect(out.partsCount).toBeGreaterThan(2);
    expect(out.part1).toBeLessThanOrEqual(LIMIT);
    expect(out.refused).toMatchObject({ code: "EntityTooLarge", status: 400, max: String(LIMIT) });
    expect(await absent("boto3/single.bin")).toBe(true);
  });
});

/** rclone and s3cmd without the user's configuration (as rclone-s3cmd.test.ts runs them). */
function isolated(command: string, args: string[], env: Record<string, string> = {}): Promise<CommandResult> {
  const clean = Object.fromEntries(Object.keys(process.env).filter((k) => k.startsWith("AWS_")).map((k) => [k, ""]));
  return runWith("adminA", command, args, { ...clean, HOME: dir, ...env });
}

describe.skipIf(missing("body-limit.test.ts › rclone", "rclone"))("rclone", () => {
  const rclone = (args: string[]) =>
    isolated("rclone", ["--config", join(dir, "rclone.conf"), "--retries", "1", "--low-level-retries", "1", ...args], rcloneEnv("adminA", { cacheDir: join(dir, "rclone-cache"), at: endpoint() }));

  beforeAll(() => writeFileSync(join(dir, "rclone.conf"), ""));

  it("--s3-upload-cutoff 9M --s3-chunk-size 9M stores a 25 MiB file in parts", async () => {
    ok(await rclone(["copyto", bigFile, `gw:${bucket}/rclone/cut.bin`, "--s3-upload-cutoff", "9M", "--s3-chunk-size", "9M", "--s3-no-check-bucket"]), "rclone copyto");
    await expectUploadedInParts("rclone/cut.bin");
  });

  it("with its default cutoff (200 MiB) the single PUT is refused: rclone reports EntityTooLarge; nothing stored", async () => {
    const r = await rclone(["copyto", tooLargeFile, `gw:${bucket}/rclone/single.bin`, "--s3-no-check-bucket"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/EntityTooLarge/);
    expect(await absent("rclone/single.bin")).toBe(true);
  });
});

describe.skipIf(missing("body-limit.test.ts › s3cmd", "s3cmd"))("s3cmd", () => {
  const s3cmd = (args: string[]) => {
    const { accessKeyId, secretAccessKey } = IDENTITIES.adminA;
    const host = new URL(endpoint()).host;
    const config = join(dir, "s3cmd.cfg");
    writeFileSync(config, ["[default]", `access_key = ${accessKeyId}`, `secret_key = ${secretAccessKey}`, `host_base = ${host}`, `host_bucket = ${host}`, "use_https = False", "signature_v2 = False", `bucket_location = ${REGION}`, "progress_meter = False", ""].join("\n"));
    return isolated("s3cmd", ["-c", config, ...args]);
  };

  it("--multipart-chunk-size-mb=9 stores a 25 MiB file in parts", async () => {
    ok(await s3cmd(["put", bigFile, `s3://${bucket}/s3cmd/chunked.bin`, "--multipart-chunk-size-mb=9", "--server-side-encryption-kms-id=alias/aws/s3"]), "s3cmd put");
    await expectUploadedInParts("s3cmd/chunked.bin");
  });

  it("--disable-multipart: the single PUT is refused with EntityTooLarge; nothing stored", async () => {
    const r = await s3cmd(["put", tooLargeFile, `s3://${bucket}/s3cmd/single.bin`, "--disable-multipart", "--server-side-encryption-kms-id=alias/aws/s3"]);
    expect(r.code).not.toBe(0);
    expect(r.stdout + r.stderr).toMatch(/EntityTooLarge/);
    expect(await absent("s3cmd/single.bin")).toBe(true);
  });
});
