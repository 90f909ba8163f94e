import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { endpoint, IDENTITIES, runWith, uniqueBucket, type CommandResult, type IdentityName } from "./support/clients";
import { missing } from "./support/programs";

/**
 * Issue 2/3 end to end with the machine's aws-cli (v1): `aws s3` (mb/cp/ls/rm) and
 * `aws s3api`, SSE-KMS with --sse aws:kms --sse-kms-key-id <arn>. Single-request uploads
 * only (multipart_threshold raised in a config file): multipart is another suite's concern.
 */
const dir = mkdtempSync(join(tmpdir(), "aws-cli-e2e-"));
const config = join(dir, "config");
const bucket = uniqueBucket("cli");
const MiB = 1024 * 1024;
const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
let customerArn = "";

function aws(who: IdentityName, args: string[], env: Record<string, string> = {}): Promise<CommandResult> {
  return runWith(who, "aws", ["--endpoint-url", endpoint(), ...args], { AWS_CONFIG_FILE: config, ...env });
}

async function ok(who: IdentityName, args: string[]): Promise<string> {
  const r = await aws(who, args);
  expect(r.code, `aws ${args.join(" ")}: ${r.stderr}`).toBe(0);
  return r.stdout;
}

/** Runs a command that must fail; AWS's error code from the message, the HTTP status from botocore's debug log. */
async function failing(who: IdentityName, args: string[], env: Record<string, string> = {}): Promise<{ code: string; status: number }> {
  const r = await aws(who, ["--debug", ...args], env);
  expect(r.code, r.stdout).not.toBe(0);
  const code = /An error occurred \(([^)]+)\) when calling the \w+ operation/.exec(r.stderr)?.[1];
  const statuses = [...r.stderr.matchAll(/"(?:GET|PUT|POST|HEAD|DELETE) [^"]*" (\d{3}) /g)].map((m) => Number(m[1]));
  expect(code, r.stderr.slice(-2000)).toBeTruthy();
  return { code: code!, status: statuses.at(-1) ?? 0 };
}

function file(name: string, data: Uint8Array): string {
  const path = join(dir, name);
  writeFileSync(path, data);
  return path;
}

/** Every test here drives aws-cli v1 (skipped with the install command when it is absent). */
const noAws = missing("aws-cli.test.ts", "aws-cli-v1");

beforeAll(async () => {
  writeFileSync(config, "[default]\nregion = us-east-1\ns3 =\n  signature_version = s3v4\n  multipart_threshold = 256MB\n  multipart_chunksize = 256MB\n");
  await ok("adminA", ["s3", "mb", `s3://${bucket}`]);
  const created = JSON.parse(await ok("adminA", ["kms", "create-key", "--description", "cli e2e", "--output", "json"])) as { KeyMetadata: { Arn: string } };
  customerArn = created.KeyMetadata.Arn;
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(noAws)("aws s3 (high-level commands)", () => {
  it("cp --recursive up with --sse aws:kms --sse-kms-key-id (0, 1, 64 KiB, 64 KiB+1 bytes), ls, cp down, rm", async () => {
    const sizes = [0, 1, 65536, 65537];
    const up = join(dir, "up");
    mkdirSync(up);
    const data = new Map(sizes.map((size) => [size, randomBytes(size)]));
    for (const [size, bytes] of data) writeFileSync(join(up, `${size}.bin`), bytes);
    await ok("adminA", ["s3", "cp", up, `s3://${bucket}/hl/`, "--recursive", "--sse", "aws:kms", "--sse-kms-key-id", customerArn]);
    const listing = await ok("adminA", ["s3", "ls", `s3://${bucket}/hl/`]);
    for (const size of sizes) expect(listing).toMatch(new RegExp(`\\s${size} ${size}\\.bin`));
    for (const size of [0, 65537]) {
      const head = JSON.parse(await ok("adminA", ["s3api", "head-object", "--bucket", bucket, "--key", `hl/${size}.bin`, "--output", "json"])) as Record<string, unknown>;
      expect(head).toMatchObject({ ContentLength: size, ServerSideEncryption: "aws:kms", SSEKMSKeyId: customerArn });
    }
    const down = join(dir, "down");
    await ok("adminA", ["s3", "cp", `s3://${bucket}/hl/`, down, "--recursive"]);
    for (const [size, bytes] of data) expect(sha256(readFileSync(join(down, `${size}.bin`))), `${size} bytes`).toBe(sha256(bytes));
    await ok("adminA", ["s3", "rm", `s3://${bucket}/hl/`, "--recursive"]);
    expect(await ok("adminA", ["s3api", "list-objects-v2", "--bucket", bucket, "--prefix", "hl/", "--query", "KeyCount", "--output", "text"])).toMatch(/^(0|None)\s*$/);
  });

  it("50 MiB with --sse aws:kms (default key): cp up and down, sha256 equal; s3api ranges across chunk boundaries", async () => {
    const data = randomBytes(50 * MiB);
    const src = file("big.bin", data);
    await ok("adminA", ["s3", "cp", src, `s3://${bucket}/big.bin`, "--sse", "aws:kms"]);
    rmSync(src);
    const dst = join(dir, "big.out");
    await ok("adminA", ["s3", "cp", `s3://${bucket}/big.bin`, dst]);
    expect(sha256(readFileSync(dst))).toBe(sha256(data));
    rmSync(dst);
    const C = 65536;
    for (const [range, first, last] of [
      [`bytes=${300 * C - 5}-${301 * C + 4}`, 300 * C - 5, 301 * C + 4],
      ["bytes=-100000", data.length - 100000, data.length - 1],
    ] as const) {
      const out = join(dir, "range.out");
      const meta = JSON.parse(await ok("adminA", ["s3api", "get-object", "--bucket", bucket, "--key", "big.bin", "--range", range, out, "--output", "json"])) as Record<string, unknown>;
      expect(meta["ContentRange"]).toBe(`bytes ${first}-${last}/${data.length}`);
      expect(readFileSync(out).equals(data.subarray(first, last + 1)), range).toBe(true);
    }
  });

  it("s3 presign: a SigV4 URL works with plain fetch; a SigV2 URL for an SSE-KMS object is refused (400 InvalidArgument)", async () => {
    const data = randomBytes(1000);
    await ok("adminA", ["s3api", "put-object", "--bucket", bucket, "--key", "presign.bin", "--body", file("presign.bin", data), "--server-side-encryption", "aws:kms"]);
    const url = (await ok("adminA", ["s3", "presign", `s3://${bucket}/presign.bin`, "--expires-in", "300"])).trim();
    expect(url).toContain("X-Amz-Signature=");
    const r = await fetch(url);
    expect(r.status).toBe(200);
    expect(Buffer.from(await r.arrayBuffer()).equals(data)).toBe(true);
    // aws-cli v1 presigns with SigV2 unless configured otherwise; AWS requires SigV4 for SSE-KMS.
    const v2 = await aws("adminA", ["s3", "presign", `s3://${bucket}/presign.bin`], { AWS_CONFIG_FILE: "/dev/null" });
    expect(v2.stdout).toContain("Signature=");
    const refused = await fetch(v2.stdout.trim());
    expect(refused.status).toBe(400);
    expect(await refused.text()).toContain("<Code>InvalidArgument</Code>");
  });
});

describe.skipIf(noAws).concurrent("aws s3api", () => {
  const data = randomBytes(3 * 65536 + 100);

  beforeAll(async () => {
    await ok("adminA", ["s3api", "put-object", "--bucket", bucket, "--key", "api/obj.bin", "--body", file("api.bin", data), "--server-side-encryption", "aws:kms", "--ssekms-key-id", customerArn, "--metadata", "color=blue", "--content-type", "application/x-cli"]);
  });

  it("put-object answers the SSE headers; head-object shows them and the metadata", async () => {
    const put = JSON.parse(await ok("adminA", ["s3api", "put-object", "--bucket", bucket, "--key", "api/put.txt", "--body", file("put.txt", Buffer.from("hi")), "--server-side-encryption", "aws:kms", "--ssekms-key-id", customerArn, "--output", "json"])) as Record<string, unknown>;
    expect(put).toMatchObject({ ServerSideEncryption: "aws:kms", SSEKMSKeyId: customerArn });
    const head = JSON.parse(await ok("adminA", ["s3api", "head-object", "--bucket", bucket, "--key", "api/obj.bin", "--output", "json"])) as Record<string, unknown>;
    expect(head).toMatchObject({ ContentLength: data.length, ContentType: "application/x-cli", Metadata: { color: "blue" }, ServerSideEncryption: "aws:kms", SSEKMSKeyId: customerArn });
  });

  it.each([
    ["bytes=65530-65545", 65530, 65545],
    ["bytes=131072-196607", 131072, 196607],
    ["bytes=-150", 3 * 65536 - 50, 3 * 65536 + 99],
  ])("get-object --range %s", async (range, first, last) => {
    const out = join(dir, `range-${first}-${last}.bin`);
    const meta = JSON.parse(await ok("adminA", ["s3api", "get-object", "--bucket", bucket, "--key", "api/obj.bin", "--range", range, out, "--output", "json"])) as Record<string, unknown>;
    expect(meta["ContentRange"]).toBe(`bytes ${first}-${last}/${data.length}`);
    expect(meta["SSEKMSKeyId"]).toBe(customerArn);
    expect(readFileSync(out).equals(data.subarray(first, last + 1))).toBe(true);
  });

  it("delete-objects deletes several keys at once", async () => {
    const src = join(dir, "del");
    mkdirSync(src);
    for (const name of ["1", "2", "3"]) writeFileSync(join(src, name), name);
    await ok("adminA", ["s3", "cp", src, `s3://${bucket}/del/`, "--recursive"]);
    const result = JSON.parse(await ok("adminA", ["s3api", "delete-objects", "--bucket", bucket, "--delete", JSON.stringify({ Objects: [{ Key: "del/1" }, { Key: "del/2" }, { Key: "del/3" }] }), "--output", "json"])) as {
      Deleted: Array<{ Key: string }>;
    };
    expect(result.Deleted.map((d) => d.Key).sort()).toEqual(["del/1", "del/2", "del/3"]);
    expect(await ok("adminA", ["s3api", "list-objects-v2", "--bucket", bucket, "--prefix", "del/", "--query", "KeyCount", "--output", "text"])).toMatch(/^(0|None)\s*$/);
  });
});

describe.skipIf(noAws).concurrent("errors through aws-cli, by code and status", () => {
  let n = 0;
  const body = () => file(`err-${n++}.txt`, Buffer.from("x"));

  it("a key id without aws:kms → 400 InvalidArgument", async () => {
    expect(await failing("adminA", ["s3api", "put-object", "--bucket", bucket, "--key", "e", "--body", body(), "--ssekms-key-id", customerArn])).toEqual({ code: "InvalidArgument", status: 400 });
  });

  it("an unknown key → 400 KMS.NotFoundException", async () => {
    const arn = `arn:aws:kms:us-east-1:${IDENTITIES.adminA.tenantId}:key/00000000-0000-4000-8000-000000000000`;
    expect(await failing("adminA", ["s3", "cp", body(), `s3://${bucket}/e`, "--sse", "aws:kms", "--sse-kms-key-id", arn])).toEqual({ code: "KMS.NotFoundException", status: 400 });
  });

  it("a disabled key → 400 KMS.DisabledException on put and get", async () => {
    const key = (JSON.parse(await ok("adminA", ["kms", "create-key", "--output", "json"])) as { KeyMetadata: { KeyId: string; Arn: string } }).KeyMetadata;
    await ok("adminA", ["s3api", "put-object", "--bucket", bucket, "--key", "disabled", "--body", body(), "--server-side-encryption", "aws:kms", "--ssekms-key-id", key.Arn]);
    await ok("adminA", ["kms", "disable-key", "--key-id", key.KeyId]);
    expect(await failing("adminA", ["s3api", "put-object", "--bucket", bucket, "--key", "e", "--body", body(), "--server-side-encryption", "aws:kms", "--ssekms-key-id", key.Arn])).toEqual({
      code: "KMS.DisabledException",
      status: 400,
    });
    expect(await failing("adminA", ["s3api", "get-object", "--bucket", bucket, "--key", "disabled", join(dir, "never")])).toEqual({ code: "KMS.DisabledException", status: 400 });
  });

  it("a member asking for SSE-KMS → 403 AccessDenied (also for an empty body, answered before the body is read)", async () => {
    expect(await failing("memberA", ["s3", "cp", body(), `s3://${bucket}/m`, "--sse", "aws:kms"])).toEqual({ code: "AccessDenied", status: 403 });
    expect(await failing("memberA", ["s3api", "put-object", "--bucket", bucket, "--key", "m", "--body", file("empty", new Uint8Array(0)), "--server-side-encryption", "aws:kms"])).toEqual({
      code: "AccessDenied",
      status: 403,
    });
  });

  it("a wrong secret → 403 SignatureDoesNotMatch; an unknown access key → 403 InvalidAccessKeyId", async () => {
    expect(await failing("adminA", ["s3api", "list-objects-v2", "--bucket", bucket], { AWS_SECRET_ACCESS_KEY: "wrong" })).toEqual({ code: "SignatureDoesNotMatch", status: 403 });
    expect(await failing("adminA", ["s3api", "list-objects-v2", "--bucket", bucket], { AWS_ACCESS_KEY_ID: "AKIANOBODY" })).toEqual({ code: "InvalidAccessKeyId", status: 403 });
  });

  it("a missing key → 404 NoSuchKey; a missing bucket → 404 NoSuchBucket", async () => {
    expect(await failing("adminA", ["s3api", "get-object", "--bucket", bucket, "--key", "nope", join(dir, "never")])).toEqual({ code: "NoSuchKey", status: 404 });
    expect(await failing("adminA", ["s3api", "list-objects-v2", "--bucket", uniqueBucket("gone")])).toEqual({ code: "NoSuchBucket", status: 404 });
  });
});
