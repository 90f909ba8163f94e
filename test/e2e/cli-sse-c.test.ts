import { CreateBucketCommand, PutBucketEncryptionCommand } from "@aws-sdk/client-s3";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { Agent } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { endpoint, rcloneEnv, runWith, s3, uniqueBucket, type CommandResult } from "./support/clients";
import { missing, programPath } from "./support/programs";
// @ts-expect-error plain ESM helper shared with scripts/
import { startTestWorker } from "../../scripts/lib/worker.mjs";

/**
 * Issue 14 (SSE-C) end to end with command-line clients: aws-cli v1 (Python) and Debian's
 * aws-cli v2 (`--sse-c AES256 --sse-c-key fileb://key`, s3api `--sse-customer-*`), and
 * rclone (`--s3-sse-customer-algorithm AES256 --s3-sse-customer-key …`).
 */
const dir = mkdtempSync(join(tmpdir(), "cli-ssec-"));
const bucket = uniqueBucket("cli-ssec");
const MiB = 1024 * 1024;
const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
// A printable 32-byte key: rclone takes the key itself on the command line.
const KEY = randomBytes(16).toString("hex");
const OTHER = randomBytes(16).toString("hex");
const keyFile = join(dir, "key");
const otherFile = join(dir, "other");
const config = join(dir, "config");

function file(name: string, data: Uint8Array): string {
  const path = join(dir, name);
  writeFileSync(path, data);
  return path;
}

beforeAll(async () => {
  writeFileSync(keyFile, KEY);
  writeFileSync(otherFile, OTHER);
  // Multipart from 8 MiB, so a 20 MiB copy exercises SSE-C on every part and on Complete.
  writeFileSync(config, "[default]\nregion = us-east-1\ns3 =\n  signature_version = s3v4\n  multipart_threshold = 8MB\n  multipart_chunksize = 8MB\n");
  const client = s3("adminA");
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  await client.send(
    new PutBucketEncryptionCommand({
      Bucket: bucket,
      ServerSideEncryptionConfiguration: { Rules: [{ ApplyServerSideEncryptionByDefault: { SSEAlgorithm: "AES256" }, BlockedEncryptionTypes: { EncryptionType: ["NONE"] } }] },
    }),
  );
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

for (const version of ["aws-cli-v1", "aws-cli-v2"] as const) {
  describe.skipIf(missing(`cli-sse-c.test.ts › ${version}`, version))(`${version} with --sse-c`, () => {
    const aws = (args: string[]): Promise<CommandResult> => runWith("adminA", programPath(version), ["--endpoint-url", endpoint(), ...args], { AWS_CONFIG_FILE: config });
    const ok = async (args: string[]) => {
      const r = await aws(args);
      expect(r.code, `aws ${args.join(" ")}: ${r.stderr}`).toBe(0);
      return r.stdout;
    };
    const prefix = `${version}/`;

    it("aws s3 cp up and down (1 MiB single, 20 MiB multipart) with --sse-c AES256 --sse-c-key fileb://key", async () => {
      for (const size of [MiB, 20 * MiB]) {
        const data = randomBytes(size);
        const name = `${size}.bin`;
        await ok(["s3", "cp", file(`${version}-${name}`, data), `s3://${bucket}/${prefix}${name}`, "--sse-c", "AES256", "--sse-c-key", `fileb://${keyFile}`]);
        const down = join(dir, `${version}-down-${name}`);
        await ok(["s3", "cp", `s3://${bucket}/${prefix}${name}`, down, "--sse-c", "AES256", "--sse-c-key", `fileb://${keyFile}`]);
        expect(sha256(readFileSync(down)), `${size} bytes`).toBe(sha256(data));
      }
    }, 180_000);

    it("s3api head-object / get-object: the key echoed as its MD5; no key 400, another key 403", async () => {
      const head = JSON.parse(
        await ok(["s3api", "head-object", "--bucket", bucket, "--key", `${prefix}${MiB}.bin`, "--sse-customer-algorithm", "AES256", "--sse-customer-key", `fileb://${keyFile}`, "--output", "json"]),
      ) as Record<string, unknown>;
      expect(head).toMatchObject({ ContentLength: MiB, SSECustomerAlgorithm: "AES256", SSECustomerKeyMD5: createHash("md5").update(KEY).digest("base64") });
      expect(head.ServerSideEncryption).toBeUndefined();
      const none = await aws(["s3api", "get-object", "--bucket", bucket, "--key", `${prefix}${MiB}.bin`, join(dir, "none.out")]);
      expect(none.code).not.toBe(0);
      expect(none.stderr).toMatch(/\(InvalidRequest\)/);
      const wrong = await aws(["s3api", "get-object", "--bucket", bucket, "--key", `${prefix}${MiB}.bin`, "--sse-customer-algorithm", "AES256", "--sse-customer-key", `fileb://${otherFile}`, join(dir, "wrong.out")]);
      expect(wrong.code).not.toBe(0);
      expect(wrong.stderr).toMatch(/\(AccessDenied\)/);
    });

    it("s3 cp between keys: --sse-c-copy-source-key for the source, --sse-c-key for the target", async () => {
      await ok([
        "s3", "cp", `s3://${bucket}/${prefix}${MiB}.bin`, `s3://${bucket}/${prefix}rekeyed.bin`,
        "--sse-c-copy-source", "AES256", "--sse-c-copy-source-key", `fileb://${keyFile}`, "--sse-c", "AES256", "--sse-c-key", `fileb://${otherFile}`,
      ]);
      const down = join(dir, `${version}-rekeyed`);
      await ok(["s3", "cp", `s3://${bucket}/${prefix}rekeyed.bin`, down, "--sse-c", "AES256", "--sse-c-key", `fileb://${otherFile}`]);
      expect(readFileSync(down).byteLength).toBe(MiB);
    });
  });
}

describe.skipIf(missing("cli-sse-c.test.ts › rclone", "rclone"))("rclone with --s3-sse-customer-key (over HTTPS, with REQUIRE_TLS_FOR_SSE on)", () => {
  // rclone (the AWS Go SDK) refuses to send SSE-C keys over plain HTTP, so this group runs
  // against its own worker serving HTTPS (wrangler's self-signed local certificate).
  let tls: { endpoint: string; dispose(): Promise<void> } | undefined;

  beforeAll(async () => {
    tls = (await startTestWorker({ secure: true, vars: { REQUIRE_TLS_FOR_SSE: "true" } })) as { endpoint: string; dispose(): Promise<void> };
    const client = s3("adminA", {
      endpoint: tls.endpoint,
      requestHandler: new NodeHttpHandler({ httpsAgent: new Agent({ rejectUnauthorized: false }) }),
    });
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
    await client.send(
      new PutBucketEncryptionCommand({
        Bucket: bucket,
        ServerSideEncryptionConfiguration: { Rules: [{ ApplyServerSideEncryptionByDefault: { SSEAlgorithm: "AES256" }, BlockedEncryptionTypes: { EncryptionType: ["NONE"] } }] },
      }),
    );
  }, 120_000);

  afterAll(async () => {
    await tls?.dispose();
  });

  // No AWS_* variables: rclone's env-based remote is all it reads (as rclone-s3cmd.test.ts).
  const rclone = (args: string[]) =>
    new Promise<CommandResult>((resolve) => {
      const base = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("AWS_")));
      execFile(
        "rclone",
        ["--config", join(dir, "rclone.conf"), "--retries", "1", "--low-level-retries", "1", "--no-check-certificate", ...args],
        { maxBuffer: 64 * MiB, timeout: 120_000, killSignal: "SIGKILL", env: { ...base, HOME: dir, ...rcloneEnv("adminA", { cacheDir: join(dir, "rclone-cache"), sse: false, at: tls!.endpoint }) } },
        (error, stdout, stderr) => resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr }),
      );
    });
  const flags = (key: string) => ["--s3-sse-customer-algorithm", "AES256", "--s3-sse-customer-key", key];

  it("copyto up (small and 20 MiB multipart) and down with the key; with another key or none it fails", async () => {
    for (const size of [1000, 20 * MiB]) {
      const data = randomBytes(size);
      const src = file(`rclone-${size}`, data);
      const up = await rclone(["copyto", src, `gw:${bucket}/rclone/${size}`, "--s3-chunk-size", "8M", "--s3-upload-cutoff", "8M", ...flags(KEY)]);
      expect(up.code, up.stderr).toBe(0);
      const down = join(dir, `rclone-down-${size}`);
      const r = await rclone(["copyto", `gw:${bucket}/rclone/${size}`, down, ...flags(KEY)]);
      expect(r.code, r.stderr).toBe(0);
      expect(sha256(readFileSync(down)), `${size} bytes`).toBe(sha256(data));
    }
    // rclone takes a refused HEAD (403 with another key, 400 with none: statuses checked in
    // the SDK and aws-cli groups) for "not a file" and copies an empty directory: nothing may arrive.
    for (const [label, extra] of [["another key", flags(OTHER)], ["no key", []]] as const) {
      const out = join(dir, `rclone-${label.replace(" ", "-")}`);
      const r = await rclone(["copyto", `gw:${bucket}/rclone/1000`, out, ...extra]);
      expect(existsSync(out), `${label}: ${r.stderr.slice(-1500)}`).toBe(false);
    }
  }, 180_000);
});
