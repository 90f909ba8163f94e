import {
  CreateBucketCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3ServiceException,
  type HeadObjectCommandOutput,
} from "@aws-sdk/client-s3";
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { endpoint, IDENTITIES, rcloneEnv, REGION, s3, uniqueBucket, type CommandResult, type IdentityName } from "./support/clients";
import { createKmsKey } from "./support/kms";
import { missing } from "./support/programs";

/**
 * The Debian packages' rclone and s3cmd (on PATH) against the worker on its real socket,
 * with SSE-KMS. Neither reads the user's configuration: rclone gets an env-based remote
 * (RCLONE_CONFIG_GW_*) and an empty config file, s3cmd a config file of its own (-c).
 * Objects are checked through the gateway with the SDK (HeadObject: SSE, key ARN, part
 * sizes) and by sha256 of what the clients download.
 */
const MiB = 1024 * 1024;
const dir = mkdtempSync(join(tmpdir(), "rclone-s3cmd-e2e-"));
const admin = s3("adminA");
const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const md5 = (b: Uint8Array) => createHash("md5").update(b).digest("hex");
const TENANT_ARN = new RegExp(`^arn:aws:kms:${REGION}:${IDENTITIES.adminA.tenantId}:key/[0-9a-f-]{36}$`);

let customerArn = "";
let defaultArn = "";

/**
 * Runs a client binary; never hangs the suite. The environment loses every AWS_* variable
 * (credentials, profiles, AWS_CA_BUNDLE — which rclone's SDK refuses to combine with its own
 * HTTP transport) and HOME points at the temp dir, so only the configuration given here counts.
 */
function run(command: string, args: string[], env: Record<string, string> = {}): Promise<CommandResult> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("AWS_")));
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      { maxBuffer: 16 * MiB, timeout: 60_000, killSignal: "SIGKILL", env: { ...base, HOME: dir, ...env } },
      (error, stdout, stderr) => resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr }),
    );
  });
}

function file(name: string, data: Uint8Array): string {
  const path = join(dir, name);
  writeFileSync(path, data);
  return path;
}

/** HeadObject through the gateway, or the status it was refused with. */
async function head(bucket: string, key: string, partNumber?: number): Promise<HeadObjectCommandOutput | number> {
  try {
    return await admin.send(new HeadObjectCommand({ Bucket: bucket, Key: key, ...(partNumber ? { PartNumber: partNumber } : {}) }));
  } catch (error) {
    if (error instanceof S3ServiceException) return error.$metadata.httpStatusCode ?? 0;
    throw error;
  }
}

async function headBucketStatus(bucket: string): Promise<number> {
  try {
    return (await admin.send(new HeadBucketCommand({ Bucket: bucket }))).$metadata.httpStatusCode ?? 0;
  } catch (error) {
    if (error instanceof S3ServiceException) return error.$metadata.httpStatusCode ?? 0;
    throw error;
  }
}

async function keysUnder(bucket: string, prefix: string): Promise<string[]> {
  const listed = await admin.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  return (listed.Contents ?? []).map((o) => o.Key!);
}

/**
 * The object is SSE-KMS under `arn`, `size` bytes, with ETag `etag`, stored in parts of
 * `parts` bytes, or (no `parts`) by a single PUT: then it has one part, the whole object.
 */
async function expectStored(bucket: string, key: string, { size, arn, etag, parts }: { size: number; arn: string; etag: string | RegExp; parts?: number[] }): Promise<HeadObjectCommandOutput> {
  const h = await head(bucket, key);
  expect(h, `${key}: HeadObject`).not.toBeTypeOf("number");
  const object = h as HeadObjectCommandOutput;
  expect(object).toMatchObject({ ContentLength: size, ServerSideEncryption: "aws:kms", SSEKMSKeyId: arn });
  if (typeof etag === "string") expect(object.ETag, key).toBe(etag);
  else expect(object.ETag, key).toMatch(etag);
  for (const [i, partSize] of (parts ?? [size]).entries()) {
    const part = (await head(bucket, key, i + 1)) as HeadObjectCommandOutput;
    expect(part, `${key} part ${i + 1}`).toMatchObject({ ContentLength: partSize, ServerSideEncryption: "aws:kms", SSEKMSKeyId: arn });
    expect(part.PartsCount, `${key} part ${i + 1}`).toBe(parts?.length);
  }
  return object;
}

/** S3's ETag of a multipart object whose parts were sent with Content-MD5: MD5 of the part MD5s, "-N". */
function multipartEtag(data: Uint8Array, partSize: number): string {
  const digests: Buffer[] = [];
  for (let at = 0; at < data.length; at += partSize) digests.push(createHash("md5").update(data.subarray(at, at + partSize)).digest());
  return `"${md5(Buffer.concat(digests))}-${digests.length}"`;
}

// ---- rclone ------------------------------------------------------------------------------

const rcloneConfig = join(dir, "rclone.conf");


/** rclone with one attempt per command (a refusal must not be retried for minutes). */
function rclone(who: IdentityName, args: string[], sse = true): Promise<CommandResult> {
  return run("rclone", ["--config", rcloneConfig, "--retries", "1", "--low-level-retries", "1", ...args], rcloneEnv(who, { cacheDir: join(dir, "rclone-cache"), sse }));
}

async function rcloneOk(args: string[]): Promise<string> {
  const r = await rclone("adminA", args);
  expect(r.code, `rclone ${args.join(" ")}: ${r.stderr}`).toBe(0);
  return r.stdout;
}

// ---- s3cmd -------------------------------------------------------------------------------

function s3cmdConfig(who: IdentityName): string {
  const { accessKeyId, secretAccessKey } = IDENTITIES[who];
  const host = new URL(endpoint()).host;
  // host_bucket without %(bucket)s: path-style requests to host_base.
  return file(
    `s3cmd-${who}.cfg`,
    Buffer.from(
      [
        "[default]",
        `access_key = ${accessKeyId}`,
        `secret_key = ${secretAccessKey}`,
        `host_base = ${host}`,
        `host_bucket = ${host}`,
        "use_https = False",
        "signature_v2 = False",
        `bucket_location = ${REGION}`,
        "progress_meter = False",
        "",
      ].join("\n"),
    ),
  );
}

function s3cmd(who: IdentityName, args: string[]): Promise<CommandResult> {
  return run("s3cmd", ["-c", s3cmdConfig(who), ...args]);
}

async function s3cmdOk(args: string[]): Promise<string> {
  const r = await s3cmd("adminA", args);
  expect(r.code, `s3cmd ${args.join(" ")}: ${r.stderr}`).toBe(0);
  return r.stdout;
}

/** rclone and s3cmd are Debian packages (skipped with the install command when absent). */
const noRclone = missing("rclone-s3cmd.test.ts › rclone", "rclone");
const noS3cmd = missing("rclone-s3cmd.test.ts › s3cmd", "s3cmd");

beforeAll(async () => {
  writeFileSync(rcloneConfig, "");
  customerArn = (await createKmsKey("adminA", "rclone/s3cmd e2e")).Arn;
  // The tenant's default key (created on first use), for comparing with what the clients got.
  const bucket = uniqueBucket("rcs-ref");
  await admin.send(new CreateBucketCommand({ Bucket: bucket }));
  defaultArn = (await admin.send(new PutObjectCommand({ Bucket: bucket, Key: "ref", Body: "ref", ServerSideEncryption: "aws:kms" }))).SSEKMSKeyId ?? "";
  expect(defaultArn).toMatch(TENANT_ARN);
  expect(customerArn).toMatch(TENANT_ARN);
  expect(customerArn).not.toBe(defaultArn);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(noRclone)("rclone", () => {
  it("mkdir; copyto 1 MiB (single PUT, default key) and 17 MiB (multipart 5+5+5+2 MiB, customer key) with aws:kms; lsjson, md5sum, check; copyto back (sha256 equal); delete, rmdir", async () => {
    const bucket = uniqueBucket("rclone");
    const chunks = ["--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M"];
    await rcloneOk(["mkdir", `gw:${bucket}`]);
    expect(await headBucketStatus(bucket)).toBe(200);

    const small = randomBytes(MiB);
    const big = randomBytes(17 * MiB);
    await rcloneOk(["copyto", file("rclone-small.bin", small), `gw:${bucket}/d/small.bin`, ...chunks]);
    await rcloneOk(["copyto", file("rclone-big.bin", big), `gw:${bucket}/d/big.bin`, ...chunks, "--s3-sse-kms-key-id", customerArn]);
    // rclone lists with encoding-type=url: a space comes back as "+", a literal plus as "%2B".
    await rcloneOk(["copyto", file("rclone-odd.txt", new TextEncoder().encode("odd")), `gw:${bucket}/odd/a b+c.txt`]);
    expect((JSON.parse(await rcloneOk(["lsjson", `gw:${bucket}/odd`])) as { Name: string; Size: number }[]).map(({ Name, Size }) => [Name, Size])).toEqual([["a b+c.txt", 3]]);
    await rcloneOk(["deletefile", `gw:${bucket}/odd/a b+c.txt`]);

    // rclone sends Content-MD5 with the single PUT and with every part, so the ETags are
    // S3's: the MD5, and the MD5 of the part MD5s. With aws:kms it does not trust ETags as
    // MD5s and also stores the file's MD5 as metadata (md5chksum), which md5sum/check read.
    const smallHead = await expectStored(bucket, "d/small.bin", { size: MiB, arn: defaultArn, etag: `"${md5(small)}"` });
    const bigHead = await expectStored(bucket, "d/big.bin", { size: 17 * MiB, arn: customerArn, etag: multipartEtag(big, 5 * MiB), parts: [5 * MiB, 5 * MiB, 5 * MiB, 2 * MiB] });
    expect(smallHead.Metadata?.["md5chksum"]).toBe(createHash("md5").update(small).digest("base64"));
    expect(bigHead.Metadata?.["md5chksum"]).toBe(createHash("md5").update(big).digest("base64"));

    const listing = JSON.parse(await rcloneOk(["lsjson", `gw:${bucket}/d`])) as { Name: string; Size: number; IsDir: boolean }[];
    expect(listing.map(({ Name, Size, IsDir }) => ({ Name, Size, IsDir })).sort((a, b) => a.Name.localeCompare(b.Name))).toEqual([
      { Name: "big.bin", Size: 17 * MiB, IsDir: false },
      { Name: "small.bin", Size: MiB, IsDir: false },
    ]);
    const sums = (await rcloneOk(["md5sum", `gw:${bucket}/d`])).trim().split("\n").sort();
    expect(sums).toEqual([`${md5(big)}  big.bin`, `${md5(small)}  small.bin`].sort());

    const down = join(dir, "rclone-down");
    await rcloneOk(["copyto", `gw:${bucket}/d/small.bin`, join(down, "small.bin")]);
    await rcloneOk(["copyto", `gw:${bucket}/d/big.bin`, join(down, "big.bin")]);
    expect(sha256(readFileSync(join(down, "small.bin")))).toBe(sha256(small));
    expect(sha256(readFileSync(join(down, "big.bin")))).toBe(sha256(big));
    const check = await rclone("adminA", ["check", down, `gw:${bucket}/d`]);
    expect(check.code, check.stderr).toBe(0);
    expect(check.stderr).toMatch(/0 differences found/);
    expect(check.stderr).toMatch(/2 matching files/);
    expect(check.stderr).not.toMatch(/hashes could not be checked/);

    await rcloneOk(["deletefile", `gw:${bucket}/d/small.bin`]);
    await rcloneOk(["deletefile", `gw:${bucket}/d/big.bin`]);
    expect(await head(bucket, "d/small.bin")).toBe(404);
    expect(await head(bucket, "d/big.bin")).toBe(404);
    expect(await keysUnder(bucket, "")).toEqual([]);
    expect(JSON.parse(await rcloneOk(["lsjson", `gw:${bucket}`]))).toEqual([]);
    await rcloneOk(["rmdir", `gw:${bucket}`]);
    expect(await headBucketStatus(bucket)).toBe(404);
  });
});

describe.skipIf(noS3cmd)("s3cmd", () => {
  it("mb; put 1 MiB + 3 B (alias/aws/s3) and 12 MiB (multipart 5+5+2 MiB, customer key ARN) with SSE-KMS; ls, info, get (sha256 equal); del, rb", async () => {
    const bucket = uniqueBucket("s3cmd");
    await s3cmdOk(["mb", `s3://${bucket}`]);
    expect(await headBucketStatus(bucket)).toBe(200);

    const small = randomBytes(MiB + 3);
    const big = randomBytes(12 * MiB);
    // --server-side-encryption alone asks for AES256; with a KMS key id s3cmd sends aws:kms
    // and the key id (alias/aws/s3 names the tenant's default key).
    await s3cmdOk(["put", file("s3cmd-small.bin", small), `s3://${bucket}/d/small.bin`, "--server-side-encryption-kms-id=alias/aws/s3"]);
    await s3cmdOk(["put", file("s3cmd-big.bin", big), `s3://${bucket}/d/big.bin`, "--multipart-chunk-size-mb=5", `--server-side-encryption-kms-id=${customerArn}`]);

    // s3cmd sends no Content-MD5 with a file or a part (it signs the body's SHA-256): the
    // gateway's opaque "<hex>-1" ETag (README, Design), and a "-3" one for the three parts.
    await expectStored(bucket, "d/small.bin", { size: MiB + 3, arn: defaultArn, etag: /^"[0-9a-f]{32}-1"$/ });
    await expectStored(bucket, "d/big.bin", { size: 12 * MiB, arn: customerArn, etag: /^"[0-9a-f]{32}-3"$/, parts: [5 * MiB, 5 * MiB, 2 * MiB] });

    const listing = await s3cmdOk(["ls", `s3://${bucket}/d/`]);
    expect(listing).toMatch(new RegExp(`\\s${12 * MiB}\\s+s3://${bucket}/d/big\\.bin\\n`));
    expect(listing).toMatch(new RegExp(`\\s${MiB + 3}\\s+s3://${bucket}/d/small\\.bin\\n`));
    // info: the MD5 is the one s3cmd stored as metadata (x-amz-meta-s3cmd-attrs); get checks the download against it.
    for (const [key, data] of [["small.bin", small], ["big.bin", big]] as const) {
      const info = await s3cmdOk(["info", `s3://${bucket}/d/${key}`]);
      expect(info, key).toMatch(new RegExp(`^\\s*File size:\\s+${data.length}\\s*$`, "m"));
      expect(info, key).toMatch(new RegExp(`^\\s*MD5 sum:\\s+${md5(data)}\\s*$`, "m"));
      expect(info, key).toMatch(/^\s*SSE:\s+aws:kms\s*$/m);
    }

    for (const [key, data] of [["small.bin", small], ["big.bin", big]] as const) {
      const out = join(dir, `s3cmd-down-${key}`);
      const got = await s3cmd("adminA", ["get", `s3://${bucket}/d/${key}`, out]);
      expect(got.code, got.stderr).toBe(0);
      expect(got.stderr, key).not.toMatch(/MD5 signatures do not match|WARNING/);
      expect(sha256(readFileSync(out)), key).toBe(sha256(data));
    }

    await s3cmdOk(["del", `s3://${bucket}/d/small.bin`, `s3://${bucket}/d/big.bin`]);
    expect(await head(bucket, "d/small.bin")).toBe(404);
    expect(await head(bucket, "d/big.bin")).toBe(404);
    expect(await keysUnder(bucket, "")).toEqual([]);
    await s3cmdOk(["rb", `s3://${bucket}`]);
    expect(await headBucketStatus(bucket)).toBe(404);
  });
});

describe("SSE-KMS refused to a member (not tenant_admin)", () => {
  const bucket = uniqueBucket("rcs-member");
  beforeAll(async () => {
    await admin.send(new CreateBucketCommand({ Bucket: bucket }));
  });

  it.skipIf(noRclone)("rclone copyto with aws:kms exits non-zero (AccessDenied) and stores nothing; the same upload without SSE-KMS is stored", async () => {
    const data = randomBytes(64 * 1024);
    const src = file("member.bin", data);
    const refused = await rclone("memberA", ["copyto", src, `gw:${bucket}/m/kms.bin`, "--s3-no-check-bucket"]);
    expect(refused.code, refused.stderr).not.toBe(0);
    expect(refused.stderr).toMatch(/AccessDenied/);
    expect(await head(bucket, "m/kms.bin")).toBe(404);
    expect(await keysUnder(bucket, "m/")).toEqual([]);

    // Control: the member may write this bucket, only not with SSE-KMS.
    const plain = await rclone("memberA", ["copyto", src, `gw:${bucket}/m/plain.bin`, "--s3-no-check-bucket"], false);
    expect(plain.code, plain.stderr).toBe(0);
    expect(await head(bucket, "m/plain.bin")).toMatchObject({ ContentLength: data.length, ServerSideEncryption: "AES256" });
  });

  it.skipIf(noS3cmd)("s3cmd multipart put with a KMS key id exits non-zero and leaves no object and no upload", async () => {
    const src = file("member-big.bin", randomBytes(6 * MiB));
    const refused = await s3cmd("memberA", ["put", src, `s3://${bucket}/s/kms.bin`, "--multipart-chunk-size-mb=5", `--server-side-encryption-kms-id=${customerArn}`]);
    expect(refused.code, refused.stdout + refused.stderr).not.toBe(0);
    expect(refused.stderr).toMatch(/AccessDenied/);
    expect(await head(bucket, "s/kms.bin")).toBe(404);
    expect(await keysUnder(bucket, "s/")).toEqual([]);
    expect((await admin.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? []).toEqual([]);
  });
});
