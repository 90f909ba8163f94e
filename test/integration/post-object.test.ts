import { env, exports } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { expectIncompleteBody } from "../support/lost-body";
import type { Env } from "../../src/env";
import worker from "../../src/index";
import { obsDenyUnencryptedPolicy } from "../support/obs-policy";
import { amzDate, encodePolicy, multipartBody, signV2, signV4, v4Fields, type Part } from "../support/post-form";
import { call, createBucket, CREDENTIALS, HOST, seedIdentities, type Who } from "../support/worker-client";

const BUCKET = "post-forms";
const DENY = "post-deny";
const DEFAULT_KMS = "post-default-kms";

const inertContext = { waitUntil() {}, passThroughOnException() {}, props: {} } as unknown as ExecutionContext;
const fetchWorker = (request: Request) => (exports as unknown as { default: Fetcher }).default.fetch(request);

function post(bucket: string, parts: readonly Part[], headers: Record<string, string> = {}): Promise<Response> {
  const { body, contentType } = multipartBody(parts);
  return fetchWorker(new Request(`http://${HOST}/${bucket}`, { method: "POST", headers: { "content-type": contentType, ...headers }, body, redirect: "manual" }));
}

interface FormOptions {
  who?: Who;
  bucket?: string;
  key: string;
  /** Fields sent before the file, each also covered by an eq condition. */
  fields?: Record<string, string>;
  /** Fields sent but deliberately not covered by any condition. */
  uncovered?: Record<string, string>;
  /** Conditions besides bucket, key and the covered fields. */
  conditions?: unknown[];
  file?: Uint8Array | string;
  filename?: string;
  expiresInMs?: number;
  after?: Part[];
  /** Rewrites field names as sent (case-insensitivity tests). */
  rename?: (name: string) => string;
}

/** A SigV4 form the way @aws-sdk/s3-presigned-post builds it (bucket field included). */
async function v4Form(o: FormOptions): Promise<Part[]> {
  const who = o.who ?? "adminA";
  const { accessKeyId, secretAccessKey } = CREDENTIALS[who];
  const date = amzDate();
  const sig = v4Fields(accessKeyId, date);
  const covered = { bucket: o.bucket ?? BUCKET, ...sig, ...(o.fields ?? {}) };
  const conditions = [...Object.entries(covered).map(([k, v]) => ({ [k]: v })), ...(o.conditions ?? [["starts-with", "$key", ""]])];
  const policy = encodePolicy(conditions, o.expiresInMs);
  const signature = await signV4(policy, secretAccessKey, date);
  const rename = o.rename ?? ((n: string) => n);
  const fields: Part[] = [
    { name: rename("key"), value: o.key },
    ...Object.entries({ ...covered, ...(o.uncovered ?? {}) }).map(([name, value]) => ({ name: rename(name), value })),
    { name: rename("Policy"), value: policy },
    { name: rename("X-Amz-Signature"), value: signature },
  ];
  return [...fields, { name: "file", file: o.file ?? "hello, form", filename: o.filename ?? "hello.txt", contentType: "text/plain" }, ...(o.after ?? [])];
}

const unescapeXml = (s: string) => s.replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");

/** Checks status, code and (exact string or pattern) message; returns the body text. */
async function expectError(r: Response, status: number, code: string, message?: string | RegExp): Promise<string> {
  const text = await r.text();
  expect(r.status, text).toBe(status);
  expect(text).toContain(`<Code>${code}</Code>`);
  const actual = unescapeXml(/<Message>([^<]*)<\/Message>/.exec(text)?.[1] ?? "");
  if (typeof message === "string") expect(actual).toBe(message);
  else if (message) expect(actual).toMatch(message);
  return text;
}

async function getText(key: string, bucket = BUCKET): Promise<Response> {
  return call("adminA", { method: "GET", bucket, key });
}

const stored = async (bucket: string, key: string) => (await env.OBJECTS.head(`${bucket}/${key}`)) !== null;

beforeAll(async () => {
  await seedIdentities();
  for (const b of [BUCKET, DENY, DEFAULT_KMS]) await createBucket("adminA", b);
  const deny = obsDenyUnencryptedPolicy(DENY);
  expect((await call("adminA", { method: "PUT", bucket: DENY, query: { policy: "" }, body: deny })).status).toBe(204);
  const enc = `<ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>aws:kms</SSEAlgorithm></ApplyServerSideEncryptionByDefault></Rule></ServerSideEncryptionConfiguration>`;
  const put = await call("adminA", { method: "PUT", bucket: DEFAULT_KMS, query: { encryption: "" }, body: enc });
  expect(put.status, await put.clone().text()).toBe(200);
});

describe("POST Object with a SigV4 policy", () => {
  it("stores an SSE-KMS object and answers 201 with PostResponse", async () => {
    const r = await post(
      BUCKET,
      await v4Form({
        key: "uploads/${filename}",
        fields: { "x-amz-server-side-encryption": "aws:kms", success_action_status: "201", "Content-Type": "text/plain", "x-amz-meta-owner": "alice" },
        conditions: [["starts-with", "$key", "uploads/"], ["content-length-range", 1, 1000]],
        filename: "greeting.txt",
      }),
    );
    const text = await r.text();
    expect(r.status, text).toBe(201);
    expect(text).toContain("<PostResponse>");
    expect(text).toContain(`<Location>http://${HOST}/${BUCKET}/uploads/greeting.txt</Location>`);
    expect(text).toContain(`<Bucket>${BUCKET}</Bucket>`);
    expect(text).toContain("<Key>uploads/greeting.txt</Key>");
    // Small files are buffered whole, so the ETag is their MD5, as S3's.
    const md5 = Array.from(new Uint8Array(await crypto.subtle.digest("MD5", new TextEncoder().encode("hello, form"))), (b) => b.toString(16).padStart(2, "0")).join("");
    expect(text).toContain(`<ETag>&quot;${md5}&quot;</ETag>`);
    expect(r.headers.get("x-amz-server-side-encryption")).toBe("aws:kms");
    const arn = r.headers.get("x-amz-server-side-encryption-aws-kms-key-id");
    expect(arn).toMatch(/^arn:aws:kms:us-east-1:000000000000000000000000000000aa:key\/[0-9a-f-]{36}$/);

    const got = await getText("uploads/greeting.txt");
    expect(await got.text()).toBe("hello, form");
    expect(got.headers.get("content-type")).toBe("text/plain");
    expect(got.headers.get("x-amz-meta-owner")).toBe("alice");
    expect(got.headers.get("x-amz-server-side-encryption-aws-kms-key-id")).toBe(arn);
    expect(got.headers.get("etag")).toBe(r.headers.get("etag"));
  });

  it("answers 204 by default, 200 when asked, and 303 to success_action_redirect / redirect", async () => {
    const plain = await post(BUCKET, await v4Form({ key: "status/default" }));
    expect(plain.status).toBe(204);
    expect(plain.headers.get("etag")).toMatch(/^"[0-9a-f]{32}"$/);
    expect(plain.headers.get("location")).toBe(`http://${HOST}/${BUCKET}/status/default`);
    expect(plain.headers.get("x-amz-server-side-encryption")).toBe("AES256");

    expect((await post(BUCKET, await v4Form({ key: "status/200", fields: { success_action_status: "200" } }))).status).toBe(200);
    expect((await post(BUCKET, await v4Form({ key: "status/999", fields: { success_action_status: "999" } }))).status).toBe(204);

    for (const field of ["success_action_redirect", "redirect"]) {
      const r = await post(BUCKET, await v4Form({ key: `redirect/${field} x`, fields: { [field]: "https://app.example.com/done?from=form" } }));
      expect(r.status).toBe(303);
      const location = new URL(r.headers.get("location")!);
      expect(location.origin + location.pathname).toBe("https://app.example.com/done");
      expect(location.searchParams.get("from")).toBe("form");
      expect(location.searchParams.get("bucket")).toBe(BUCKET);
      expect(location.searchParams.get("key")).toBe(`redirect/${field} x`);
      expect(location.searchParams.get("etag")).toBe(r.headers.get("etag"));
    }
    // A redirect S3 cannot parse is ignored.
    expect((await post(BUCKET, await v4Form({ key: "redirect/bad", fields: { success_action_redirect: "not a url" } }))).status).toBe(204);
  });

  it("treats field names case-insensitively and every part but 'file' as a field, filename or not", async () => {
    const parts = await v4Form({ key: "case/${filename}", fields: { "content-type": "image/png" }, conditions: [["starts-with", "$KEY", "case/"]], rename: (n) => n.toUpperCase(), filename: "pic.png" });
    const withFilenames = parts.map((p) => (p.name === "file" ? p : { ...p, filename: "blob" }));
    const r = await post(BUCKET, withFilenames);
    expect(r.status, await r.clone().text()).toBe(204);
    const got = await getText("case/pic.png");
    expect(got.headers.get("content-type")).toBe("image/png");
    expect(await got.text()).toBe("hello, form");
  });

  it("ignores everything after the file part", async () => {
    const r = await post(
      BUCKET,
      await v4Form({
        key: "after/file",
        after: [
          { name: "x-amz-meta-sneaky", value: "not covered by the policy" },
          { name: "key", value: "after/other" },
        ],
      }),
    );
    expect(r.status).toBe(204);
    const got = await getText("after/file");
    expect(got.headers.get("x-amz-meta-sneaky")).toBeNull();
    expect(await got.text()).toBe("hello, form");
    expect(await stored(BUCKET, "after/other")).toBe(false);
  });

  it("uses a browser's full path only for its last segment in ${filename}", async () => {
    const r = await post(BUCKET, await v4Form({ key: "paths/${filename}", filename: "C:\\Users\\me\\report.pdf" }));
    expect(r.status).toBe(204);
    expect(await stored(BUCKET, "paths/report.pdf")).toBe(true);
  });
});

describe("policy conditions", () => {
  it("eq, starts-with and exact-match objects: the failing condition is named", async () => {
    await expectError(await post(BUCKET, await v4Form({ key: "c/1", conditions: [["eq", "$key", "c/2"]] })), 403, "AccessDenied", 'Invalid according to Policy: Policy Condition failed: ["eq", "$key", "c/2"]');
    await expectError(await post(BUCKET, await v4Form({ key: "c/1", conditions: [["starts-with", "$key", "user/eric/"]] })), 403, "AccessDenied", 'Invalid according to Policy: Policy Condition failed: ["starts-with", "$key", "user/eric/"]');
    await expectError(await post(BUCKET, await v4Form({ key: "c/1", conditions: [{ key: "c/other" }] })), 403, "AccessDenied", 'Invalid according to Policy: Policy Condition failed: ["eq", "$key", "c/other"]');
    await expectError(await post(BUCKET, await v4Form({ key: "c/1", conditions: [{ bucket: "another-bucket" }, ["starts-with", "$key", ""]] })), 403, "AccessDenied", /\["eq", "\$bucket", "another-bucket"\]/);
    // A condition on a field the form lacks sees an empty value.
    await expectError(await post(BUCKET, await v4Form({ key: "c/1", conditions: [["starts-with", "$key", ""], ["eq", "$x-amz-meta-tag", "t"]] })), 403, "AccessDenied", /x-amz-meta-tag/);
    expect(await stored(BUCKET, "c/1")).toBe(false);

    const ok = await post(BUCKET, await v4Form({ key: "c/ok", conditions: [["eq", "$key", "c/ok"], ["starts-with", "$Content-Type", "image/"]], uncovered: {}, fields: { "Content-Type": "image/jpeg" } }));
    expect(ok.status).toBe(204);
    // starts-with on Content-Type holds for every comma-separated value or fails.
    const multi = await post(BUCKET, await v4Form({ key: "c/multi", conditions: [["starts-with", "$key", "c/"], ["starts-with", "$Content-Type", "image/"]], uncovered: { "Content-Type": "image/png, text/html" } }));
    await expectError(multi, 403, "AccessDenied", /starts-with", "\$Content-Type", "image\//);
    const multiOk = await post(BUCKET, await v4Form({ key: "c/multi", conditions: [["starts-with", "$key", "c/"], ["starts-with", "$Content-Type", "image/"]], uncovered: { "Content-Type": "image/png,image/gif" } }));
    expect(multiOk.status).toBe(204);
    // starts-with "" allows any value.
    const any = await post(BUCKET, await v4Form({ key: "c/any", conditions: [["starts-with", "$key", ""], ["starts-with", "$x-amz-meta-note", ""]], uncovered: { "x-amz-meta-note": "anything" } }));
    expect(any.status).toBe(204);
  });

  it("content-length-range: EntityTooLarge / EntityTooSmall, nothing stored", async () => {
    const big = new Uint8Array(5000).fill(7);
    const tooLarge = await expectError(await post(BUCKET, await v4Form({ key: "len/large", file: big, conditions: [["starts-with", "$key", ""], ["content-length-range", 0, 4096]] })), 400, "EntityTooLarge");
    expect(tooLarge).toContain("<MaxSizeAllowed>4096</MaxSizeAllowed>");
    expect(await stored(BUCKET, "len/large")).toBe(false);
    const tooSmall = await expectError(await post(BUCKET, await v4Form({ key: "len/small", file: "tiny", conditions: [["starts-with", "$key", ""], ["content-length-range", "10", "20"]] })), 400, "EntityTooSmall");
    expect(tooSmall).toContain("<MinSizeAllowed>10</MinSizeAllowed>");
    expect(tooSmall).toContain("<ProposedSize>4</ProposedSize>");
    expect(await stored(BUCKET, "len/small")).toBe(false);
    const exact = await post(BUCKET, await v4Form({ key: "len/exact", file: big, conditions: [["starts-with", "$key", ""], ["content-length-range", 5000, 5000]] }));
    expect(exact.status).toBe(204);
  });

  it("stops reading the body once the file passes content-length-range", async () => {
    const parts = await v4Form({ key: "len/stream", file: new Uint8Array(8 * 1024 * 1024), conditions: [["starts-with", "$key", ""], ["content-length-range", 0, 1000]] });
    const { body, contentType } = multipartBody(parts);
    let pulled = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (pulled >= body.byteLength) return controller.close();
        const piece = body.subarray(pulled, pulled + 16384);
        pulled += piece.byteLength;
        controller.enqueue(piece);
      },
    });
    const r = await fetchWorker(new Request(`http://${HOST}/${BUCKET}`, { method: "POST", headers: { "content-type": contentType }, body: stream }));
    await expectError(r, 400, "EntityTooLarge");
    // The file chunk that crossed the limit, plus at most the bounded drain.
    expect(pulled).toBeLessThan(3 * 1024 * 1024);
    expect(await stored(BUCKET, "len/stream")).toBe(false);
  });

  it("refuses fields no condition covers, except those S3 exempts", async () => {
    await expectError(await post(BUCKET, await v4Form({ key: "extra/1", uncovered: { "x-amz-meta-color": "red" } })), 403, "AccessDenied", "Invalid according to Policy: Extra input fields: x-amz-meta-color");
    await expectError(await post(BUCKET, await v4Form({ key: "extra/2", uncovered: { acl: "private", "Content-Type": "text/plain" } })), 403, "AccessDenied", /Extra input fields: acl, content-type/);
    const exempt = await post(BUCKET, await v4Form({ key: "extra/3", uncovered: { "x-ignore-tracking": "1", "X-Ignore-Other": "2" } }));
    expect(exempt.status).toBe(204);
    expect(await stored(BUCKET, "extra/1")).toBe(false);
  });

  it("refuses an expired policy, a bad signature, an unknown key and a malformed policy", async () => {
    await expectError(await post(BUCKET, await v4Form({ key: "exp/1", expiresInMs: -1000 })), 403, "AccessDenied", "Invalid according to Policy: Policy expired.");
    const parts = await v4Form({ key: "sig/1" });
    const tampered = parts.map((p) => (p.name === "X-Amz-Signature" ? { ...p, value: "0".repeat(64) } : p));
    const bad = await expectError(await post(BUCKET, tampered), 403, "SignatureDoesNotMatch");
    expect(bad).toContain("<StringToSign>");
    const unknown = parts.map((p) => (p.name === "x-amz-credential" ? { ...p, value: (p as { value: string }).value.replace("LOCALADMINA", "NOSUCHKEY0") } : p));
    await expectError(await post(BUCKET, unknown), 403, "InvalidAccessKeyId");
    const wrongRegion = parts.map((p) => (p.name === "x-amz-credential" ? { ...p, value: (p as { value: string }).value.replace("us-east-1", "eu-west-1") } : p));
    await expectError(await post(BUCKET, wrongRegion), 400, "InvalidArgument", /region 'eu-west-1' is wrong/);

    const { secretAccessKey } = CREDENTIALS.adminA;
    const date = amzDate();
    for (const [policy, message] of [
      [btoa("not json"), "Invalid Policy: Invalid JSON."],
      [btoa(JSON.stringify({ conditions: [] })), "Invalid Policy: Policy missing expiration."],
      [btoa(JSON.stringify({ expiration: "tomorrow", conditions: [] })), "Invalid Policy: Invalid 'expiration' value: 'tomorrow'"],
      [btoa(JSON.stringify({ expiration: "2099-01-01T00:00:00Z", conditions: [["between", "$key", "a"]] })), /unknown operation/],
      [btoa(JSON.stringify({ expiration: "2099-01-01T00:00:00Z", conditions: [{ key: 5 }] })), "Invalid Policy: Invalid Simple-Condition: value must be a string."],
    ] as const) {
      const form: Part[] = [
        { name: "key", value: "bad/policy" },
        ...Object.entries(v4Fields("LOCALADMINA", date)).map(([name, value]) => ({ name, value })),
        { name: "policy", value: policy },
        { name: "x-amz-signature", value: await signV4(policy, secretAccessKey, date) },
        { name: "file", file: "x", filename: "x" },
      ];
      await expectError(await post(BUCKET, form), 400, "InvalidPolicyDocument", message);
    }
  });

  it("verifies an x-amz-checksum-* field before storing", async () => {
    const content = "checksummed content";
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(content)));
    const good = btoa(String.fromCharCode(...digest));
    const ok = await post(BUCKET, await v4Form({ key: "sum/ok", file: content, fields: { "x-amz-checksum-sha256": good } }));
    expect(ok.status).toBe(204);
    expect(ok.headers.get("x-amz-checksum-sha256")).toBe(good);
    const wrong = btoa(String.fromCharCode(...new Uint8Array(32)));
    await expectError(await post(BUCKET, await v4Form({ key: "sum/bad", file: content, fields: { "x-amz-checksum-sha256": wrong } })), 400, "BadDigest");
    expect(await stored(BUCKET, "sum/bad")).toBe(false);
  });
});

describe("SigV2 forms", () => {
  async function v2Form(key: string, extra: Record<string, string> = {}): Promise<Part[]> {
    const conditions = [{ bucket: BUCKET }, ["starts-with", "$key", ""], ...Object.entries(extra).map(([k, v]) => ({ [k]: v }))];
    const policy = encodePolicy(conditions);
    return [
      { name: "key", value: key },
      { name: "AWSAccessKeyId", value: "LOCALADMINA" },
      { name: "policy", value: policy },
      { name: "signature", value: await signV2(policy, CREDENTIALS.adminA.secretAccessKey) },
      ...Object.entries(extra).map(([name, value]) => ({ name, value })),
      { name: "file", file: "legacy form", filename: "old.txt" },
    ];
  }

  it("accepts the legacy signature (SSE-S3)", async () => {
    const r = await post(BUCKET, await v2Form("v2/ok"));
    expect(r.status).toBe(204);
    expect(r.headers.get("x-amz-server-side-encryption")).toBe("AES256");
    expect(await (await getText("v2/ok")).text()).toBe("legacy form");
  });

  it("refuses SSE-KMS without SigV4, as AWS does", async () => {
    await expectError(await post(BUCKET, await v2Form("v2/kms", { "x-amz-server-side-encryption": "aws:kms" })), 400, "InvalidArgument", /require AWS Signature Version 4/);
    expect(await stored(BUCKET, "v2/kms")).toBe(false);
  });

  it("refuses a bad legacy signature", async () => {
    const parts = (await v2Form("v2/bad")).map((p) => (p.name === "signature" ? { ...p, value: "AAAAAAAAAAAAAAAAAAAAAAAAAAA=" } : p));
    await expectError(await post(BUCKET, parts), 403, "SignatureDoesNotMatch");
  });
});

describe("bucket policy, tenant rules and default encryption apply as to PUT", () => {
  it("applies the OBS deny-unencrypted policy with the form's SSE field", async () => {
    await expectError(await post(DENY, await v4Form({ bucket: DENY, key: "plain" })), 403, "AccessDenied");
    // An unsigned HTTP header cannot stand in for the form field.
    await expectError(await post(DENY, await v4Form({ bucket: DENY, key: "plain" }), { "x-amz-server-side-encryption": "aws:kms" }), 403, "AccessDenied");
    expect(await stored(DENY, "plain")).toBe(false);
    const r = await post(DENY, await v4Form({ bucket: DENY, key: "kms", fields: { "x-amz-server-side-encryption": "aws:kms" } }));
    expect(r.status).toBe(204);
    expect(r.headers.get("x-amz-server-side-encryption")).toBe("aws:kms");
  });

  it("sees authType POST in bucket policy conditions", async () => {
    const bucket = "post-authtype";
    await createBucket("adminA", bucket);
    const denyPost = JSON.stringify({
      Version: "2012-10-17",
      Statement: [{ Effect: "Deny", Principal: "*", Action: "s3:PutObject", Resource: `arn:aws:s3:::${bucket}/*`, Condition: { StringEquals: { "s3:authType": "POST" } } }],
    });
    expect((await call("adminA", { method: "PUT", bucket, query: { policy: "" }, body: denyPost })).status).toBe(204);
    await expectError(await post(bucket, await v4Form({ bucket, key: "k" })), 403, "AccessDenied");
    expect((await call("adminA", { method: "PUT", bucket, key: "k", body: "via put" })).status).toBe(200);
  });

  it("refuses an unknown KMS key id before storing anything", async () => {
    const r = await post(BUCKET, await v4Form({ key: "kms/unknown", fields: { "x-amz-server-side-encryption": "aws:kms", "x-amz-server-side-encryption-aws-kms-key-id": "0b1c2d3e-0000-4000-8000-000000000000" } }));
    await expectError(r, 400, "KMS.NotFoundException");
    expect(await stored(BUCKET, "kms/unknown")).toBe(false);
    // A key id without aws:kms is InvalidArgument, as for PUT.
    await expectError(await post(BUCKET, await v4Form({ key: "kms/noalg", fields: { "x-amz-server-side-encryption-aws-kms-key-id": "0b1c2d3e-0000-4000-8000-000000000000" } })), 400, "InvalidArgument");
  });

  it("applies bucket default encryption", async () => {
    const r = await post(DEFAULT_KMS, await v4Form({ bucket: DEFAULT_KMS, key: "defaulted" }));
    expect(r.status).toBe(204);
    expect(r.headers.get("x-amz-server-side-encryption")).toBe("aws:kms");
  });

  it("lets only tenant_admin ask for SSE-KMS; other tenants need a policy grant", async () => {
    await expectError(await post(BUCKET, await v4Form({ who: "memberA", key: "member/kms", fields: { "x-amz-server-side-encryption": "aws:kms" } })), 403, "AccessDenied", /tenant_admin/);
    expect((await post(BUCKET, await v4Form({ who: "memberA", key: "member/plain" }))).status).toBe(204);
    await expectError(await post(BUCKET, await v4Form({ who: "adminB", key: "other-tenant" })), 403, "AccessDenied");
    expect(await stored(BUCKET, "other-tenant")).toBe(false);
  });

  it("treats a form without signature as anonymous (allowed only by a policy grant)", async () => {
    const parts: Part[] = [{ name: "key", value: "anon" }, { name: "file", file: "x", filename: "x" }];
    await expectError(await post(BUCKET, parts), 403, "AccessDenied");
    await expectError(await post(BUCKET, [{ name: "key", value: "anon" }, { name: "policy", value: encodePolicy([]) }, { name: "file", file: "x" }]), 400, "InvalidArgument", /field named 'AWSAccessKeyId'/);
  });
});

describe("malformed requests", () => {
  it("answers S3's errors", async () => {
    const notForm = await fetchWorker(new Request(`http://${HOST}/${BUCKET}`, { method: "POST", headers: { "content-type": "text/plain" }, body: "x" }));
    await expectError(notForm, 412, "PreconditionFailed", /.*/);
    const garbage = await fetchWorker(new Request(`http://${HOST}/${BUCKET}`, { method: "POST", headers: { "content-type": "multipart/form-data; boundary=abc" }, body: "this is not multipart" }));
    await expectError(garbage, 400, "MalformedPOSTRequest");
    const noKey = (await v4Form({ key: "x" })).filter((p) => p.name !== "key");
    await expectError(await post(BUCKET, noKey), 400, "InvalidArgument", "Bucket POST must contain a field named 'key'.  If it is specified, please check the order of the fields.");
    const noFile = (await v4Form({ key: "nofile" })).filter((p) => p.name !== "file");
    await expectError(await post(BUCKET, noFile), 400, "IncorrectNumberOfFilesInPostRequest");
    const keyAfterFile = await v4Form({ key: "x" });
    keyAfterFile.push(keyAfterFile.shift()!);
    await expectError(await post(BUCKET, keyAfterFile), 400, "InvalidArgument", /field named 'key'/);
    const duplicate = await v4Form({ key: "dup" });
    duplicate.unshift({ name: "KEY", value: "dup2" });
    await expectError(await post(BUCKET, duplicate), 400, "InvalidArgument", /more than once/);
    const huge = await v4Form({ key: "huge", uncovered: { "x-ignore-pad": "p".repeat(30_000) } });
    await expectError(await post(BUCKET, huge), 400, "MaxPostPreDataLengthExceededError");
    const publicAcl = await v4Form({ key: "acl", fields: { acl: "public-read" } });
    await expectError(await post(BUCKET, publicAcl), 400, "AccessControlListNotSupported");
    await expectError(await post("no-such-post-bucket", await v4Form({ bucket: "no-such-post-bucket", key: "k" })), 404, "NoSuchBucket");
  });

  it("never stores a file whose part is cut off before its closing boundary", async () => {
    const { body, contentType } = multipartBody(await v4Form({ key: "cut", file: new Uint8Array(100_000).fill(1) }));
    const cut = body.subarray(0, body.byteLength - 5000);
    const r = await fetchWorker(new Request(`http://${HOST}/${BUCKET}`, { method: "POST", headers: { "content-type": contentType }, body: cut }));
    await expectError(r, 400, "MalformedPOSTRequest");
    expect(await stored(BUCKET, "cut")).toBe(false);
  });

  // As PutObject (object-writes.test.ts, "a client that goes away mid-body"): a body stream
  // that errors is the client going away — 400 IncompleteBody, logged as request-body-lost,
  // never an internal error, and nothing stored or overwritten.
  const cuts = [["in the fields", 200], ["inside the file", 150_000], ["inside an 8 MiB+ file (multipart layout)", 9_000_000]] as const;
  for (const [[where, cutAt], via] of cuts.flatMap((c) => (["in-process", "service binding"] as const).map((v) => [c, v] as const))) {
    it(`a body that breaks off ${where}: 400 IncompleteBody, nothing stored, the previous version intact (${via})`, async () => {
      const key = `lost-form-${cutAt}-${via === "in-process" ? "p" : "b"}`;
      expect((await call("adminA", { method: "PUT", bucket: BUCKET, key, body: "previous" })).status).toBe(200);
      const file = new Uint8Array(cutAt > 1_000_000 ? 10_000_000 : 400_000).fill(0x61);
      const { body, contentType } = multipartBody(await v4Form({ key, file }));
      let sent = 0;
      const stream = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (sent >= cutAt) return controller.error(new Error("connection reset by peer"));
          const n = Math.min(cutAt - sent, 64 * 1024);
          controller.enqueue(body.slice(sent, sent + n));
          sent += n;
        },
      });
      const init = { method: "POST", body: stream, headers: { "content-type": contentType, "content-length": String(body.byteLength) }, duplex: "half" } as RequestInit;
      const request = new Request(`http://${HOST}/${BUCKET}`, init);
      // In process the worker sees the stream's error; through the binding, a short body.
      await expectIncompleteBody(() => (via === "in-process" ? worker.fetch(request, env as Env, inertContext) : fetchWorker(request)), via === "in-process");
      expect(await (await getText(key)).text()).toBe("previous");
    });
  }
});
