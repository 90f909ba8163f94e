import { CreateBucketCommand, GetObjectCommand, PutBucketPolicyCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { obsDenyUnencryptedPolicy } from "../support/obs-policy";
import { awsCli, endpoint, IDENTITIES, s3, uniqueBucket } from "./support/clients";
import { missing } from "./support/programs";

/** Bucket policies end to end with aws-cli `s3api` and the SDK (issue 5). */
const dir = mkdtempSync(join(tmpdir(), "policy-e2e-"));
const file = (name: string, content: string) => {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
};

/** aws-cli v1 drives the policy documents in (skipped with the install command when it is absent). */
const noAws = missing("policy.test.ts", "aws-cli-v1");

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(noAws)("the OBS deny-unencrypted policy, verbatim, through aws-cli", () => {
  const bucket = uniqueBucket("obs");
  const policy = obsDenyUnencryptedPolicy(bucket);
  const data = file("obs.txt", "sensitive");

  beforeAll(async () => {
    expect((await awsCli("adminA", ["s3api", "create-bucket", "--bucket", bucket])).code).toBe(0);
    const put = await awsCli("adminA", ["s3api", "put-bucket-policy", "--bucket", bucket, "--policy", `file://${file("policy.json", policy)}`]);
    expect(put.stderr).toBe("");
    expect(put.code).toBe(0);
  });

  it("get-bucket-policy returns it as stored", async () => {
    const got = await awsCli("adminA", ["s3api", "get-bucket-policy", "--bucket", bucket, "--output", "json"]);
    expect(got.code).toBe(0);
    expect(JSON.parse(JSON.parse(got.stdout).Policy)).toEqual(JSON.parse(policy));
  });

  it("refuses uploads without aws:kms (none and AES256) with 403 AccessDenied and stores nothing", async () => {
    const plain = await awsCli("adminA", ["s3api", "put-object", "--bucket", bucket, "--key", "plain.txt", "--body", data]);
    expect(plain.code).not.toBe(0);
    expect(plain.stderr).toMatch(/AccessDenied/);
    const aes = await awsCli("adminA", ["s3api", "put-object", "--bucket", bucket, "--key", "aes.txt", "--body", data, "--server-side-encryption", "AES256"]);
    expect(aes.stderr).toMatch(/AccessDenied/);
    const head = await awsCli("adminA", ["s3api", "head-object", "--bucket", bucket, "--key", "plain.txt"]);
    expect(head.code).not.toBe(0);
    expect(head.stderr).toMatch(/404|Not Found/);
  });

  it("refuses CopyObject and CreateMultipartUpload without aws:kms", async () => {
    await awsCli("adminA", ["s3api", "put-object", "--bucket", bucket, "--key", "kms.txt", "--body", data, "--server-side-encryption", "aws:kms"]);
    const copy = await awsCli("adminA", ["s3api", "copy-object", "--bucket", bucket, "--key", "copy.txt", "--copy-source", `${bucket}/kms.txt`]);
    expect(copy.stderr).toMatch(/AccessDenied/);
    const mpu = await awsCli("adminA", ["s3api", "create-multipart-upload", "--bucket", bucket, "--key", "big.bin"]);
    expect(mpu.stderr).toMatch(/AccessDenied/);
  });

  it("accepts uploads with aws:kms and serves them back", async () => {
    const put = await awsCli("adminA", ["s3api", "put-object", "--bucket", bucket, "--key", "ok.txt", "--body", data, "--server-side-encryption", "aws:kms", "--output", "json"]);
    expect(put.code).toBe(0);
    expect(JSON.parse(put.stdout).ServerSideEncryption).toBe("aws:kms");
    const out = join(dir, "ok.out");
    const get = await awsCli("adminA", ["s3api", "get-object", "--bucket", bucket, "--key", "ok.txt", out]);
    expect(get.code).toBe(0);
    const copy = await awsCli("adminA", ["s3api", "copy-object", "--bucket", bucket, "--key", "copy.txt", "--copy-source", `${bucket}/ok.txt`, "--server-side-encryption", "aws:kms"]);
    expect(copy.code).toBe(0);
  });
});

describe.skipIf(noAws)("grants to other tenants and to anonymous callers", () => {
  const bucket = uniqueBucket("grants");
  const a = s3("adminA");
  const b = s3("adminB");

  beforeAll(async () => {
    await a.send(new CreateBucketCommand({ Bucket: bucket }));
    await a.send(new PutObjectCommand({ Bucket: bucket, Key: "shared/plain.txt", Body: "for tenant B", ServerSideEncryption: "AES256" }));
    await a.send(new PutObjectCommand({ Bucket: bucket, Key: "shared/secret.txt", Body: "tenant A only", ServerSideEncryption: "aws:kms" }));
    await a.send(new PutObjectCommand({ Bucket: bucket, Key: "public/index.html", Body: "<h1>hello</h1>", ContentType: "text/html" }));
    await a.send(new PutObjectCommand({ Bucket: bucket, Key: "private/x.txt", Body: "no" }));
    await a.send(
      new PutBucketPolicyCommand({
        Bucket: bucket,
        Policy: JSON.stringify({
          Version: "2012-10-17",
          Statement: [
            { Sid: "TenantBReads", Effect: "Allow", Principal: { AWS: `arn:aws:iam::${IDENTITIES.adminB.tenantId}:root` }, Action: "s3:GetObject", Resource: `arn:aws:s3:::${bucket}/shared/*` },
            { Sid: "PublicPrefix", Effect: "Allow", Principal: "*", Action: "s3:GetObject", Resource: `arn:aws:s3:::${bucket}/public/*` },
          ],
        }),
      }),
    );
  });

  it("another tenant reads a plain (SSE-S3) object it was granted", async () => {
    const got = await b.send(new GetObjectCommand({ Bucket: bucket, Key: "shared/plain.txt" }));
    expect(await got.Body!.transformToString()).toBe("for tenant B");
  });

  it("but never an SSE-KMS object, whatever the grant says", async () => {
    await expect(b.send(new GetObjectCommand({ Bucket: bucket, Key: "shared/secret.txt" }))).rejects.toMatchObject({ name: "AccessDenied", $metadata: { httpStatusCode: 403 } });
  });

  it("and nothing outside the grant", async () => {
    await expect(b.send(new GetObjectCommand({ Bucket: bucket, Key: "private/x.txt" }))).rejects.toMatchObject({ name: "AccessDenied" });
    await expect(b.send(new PutObjectCommand({ Bucket: bucket, Key: "shared/new.txt", Body: "x" }))).rejects.toMatchObject({ name: "AccessDenied" });
  });

  it("anonymous (unsigned) requests read the public prefix and nothing else", async () => {
    const pub = await fetch(`${endpoint()}/${bucket}/public/index.html`);
    expect(pub.status).toBe(200);
    expect(await pub.text()).toBe("<h1>hello</h1>");
    const priv = await fetch(`${endpoint()}/${bucket}/private/x.txt`);
    expect(priv.status).toBe(403);
    expect(await priv.text()).toMatch(/<Code>AccessDenied<\/Code>/);
    const list = await fetch(`${endpoint()}/${bucket}?list-type=2`);
    expect(list.status).toBe(403);
  });

  it("get-bucket-policy-status reports the bucket public", async () => {
    const status = await awsCli("adminA", ["s3api", "get-bucket-policy-status", "--bucket", bucket, "--output", "json"]);
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout).PolicyStatus.IsPublic).toBe(true);
  });
});

describe.skipIf(noAws)("malformed policies", () => {
  const bucket = uniqueBucket("malformed");

  beforeAll(async () => {
    expect((await awsCli("adminA", ["s3api", "create-bucket", "--bucket", bucket])).code).toBe(0);
  });

  it.each([
    ["unknown action", { Version: "2012-10-17", Statement: [{ Effect: "Allow", Principal: "*", Action: "s3:FlyToTheMoon", Resource: "arn:aws:s3:::BUCKET/*" }] }, /action/i],
    ["resource outside the bucket", { Version: "2012-10-17", Statement: [{ Effect: "Allow", Principal: "*", Action: "s3:GetObject", Resource: "arn:aws:s3:::someone-else/*" }] }, /resource/i],
    ["missing Effect", { Version: "2012-10-17", Statement: [{ Principal: "*", Action: "s3:GetObject", Resource: "arn:aws:s3:::BUCKET/*" }] }, /Effect/],
    ["unknown condition operator", { Version: "2012-10-17", Statement: [{ Effect: "Deny", Principal: "*", Action: "s3:PutObject", Resource: "arn:aws:s3:::BUCKET/*", Condition: { StringEquls: { "s3:x-amz-server-side-encryption": "aws:kms" } } }] }, /StringEquls/],
  ])("%s → 400 MalformedPolicy naming the problem", async (_name, doc, message) => {
    const text = JSON.stringify(doc).replaceAll("BUCKET", bucket);
    const put = await awsCli("adminA", ["s3api", "put-bucket-policy", "--bucket", bucket, "--policy", `file://${file(`bad-${Math.random()}.json`, text)}`]);
    expect(put.code).not.toBe(0);
    expect(put.stderr).toMatch(/MalformedPolicy/);
    expect(put.stderr).toMatch(message);
  });

  it("bad JSON → MalformedPolicy", async () => {
    const put = await awsCli("adminA", ["s3api", "put-bucket-policy", "--bucket", bucket, "--policy", `file://${file("broken.json", '{"Version": "2012-10-17", "Statement": [')}`]);
    expect(put.stderr).toMatch(/MalformedPolicy/);
    const get = await awsCli("adminA", ["s3api", "get-bucket-policy", "--bucket", bucket]);
    expect(get.stderr).toMatch(/NoSuchBucketPolicy/);
  });
});
