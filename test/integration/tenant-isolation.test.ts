/**
 * The tenant and role rules of README "Who may do what", one regression per rule, through
 * the real request path: another tenant never reads, copies, overwrites or deletes an
 * SSE-KMS object whatever the bucket policy grants; a member never creates, reads, copies
 * or re-keys one, nor sets or removes a KMS bucket default, but may delete and overwrite.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { completeRequest, createUpload, uploadPart, uploadPartRequest } from "../support/multipart";
import { amzDate, encodePolicy, multipartBody, signV4, v4Fields } from "../support/post-form";
import { createBucket, CREDENTIALS, expectError, fetchWorker, HOST, seedIdentities, send, TENANT_B, uniqueBucket, xmlValue, xmlValues, type Who } from "../support/s3-harness";

const SSE = "x-amz-server-side-encryption";
const kms = { [SSE]: "aws:kms" };
const sseS3 = { [SSE]: "AES256" };
const ROLE_MESSAGE = "Only users with the tenant_admin role can use SSE-KMS.";

/** A bucket of tenant A whose policy grants everything to everyone (tenant B and anonymous included), Block Public Access lifted. */
async function openBucket(name: string): Promise<string> {
  const b = uniqueBucket(name);
  await createBucket("adminA", b);
  // New buckets block public policies (Block Public Access, on by default): lift it first, as a user would.
  expect((await send("adminA", { method: "DELETE", bucket: b, query: { publicAccessBlock: "" } })).status).toBe(204);
  const policy = JSON.stringify({
    Version: "2012-10-17",
    Statement: [{ Effect: "Allow", Principal: "*", Action: "s3:*", Resource: [`arn:aws:s3:::${b}`, `arn:aws:s3:::${b}/*`] }],
  });
  expect((await send("adminA", { method: "PUT", bucket: b, query: { policy: "" }, body: policy })).status).toBe(204);
  return b;
}

async function body(who: Who, bucket: string, key: string): Promise<string> {
  const r = await send(who, { method: "GET", bucket, key });
  expect(r.status).toBe(200);
  return r.text();
}

async function mode(bucket: string, key: string): Promise<string | null> {
  const r = await send("adminA", { method: "HEAD", bucket, key });
  return r.status === 200 ? r.headers.get(SSE) : null;
}

async function postForm(who: Who, bucket: string, key: string, file: string): Promise<Response> {
  const { accessKeyId, secretAccessKey } = CREDENTIALS[who];
  const date = amzDate();
  const fields = { bucket, ...v4Fields(accessKeyId, date), [SSE]: "AES256" };
  const policy = encodePolicy([...Object.entries(fields).map(([k, v]) => ({ [k]: v })), ["starts-with", "$key", ""]]);
  const parts = [
    { name: "key", value: key },
    ...Object.entries(fields).map(([name, value]) => ({ name, value })),
    { name: "Policy", value: policy },
    { name: "X-Amz-Signature", value: await signV4(policy, secretAccessKey, date) },
    { name: "file", file, filename: "f.txt", contentType: "text/plain" },
  ];
  const form = multipartBody(parts);
  return fetchWorker(`http://${HOST}/${bucket}`, { method: "POST", headers: { "content-type": form.contentType }, body: form.body, redirect: "manual" });
}

beforeAll(async () => {
  await seedIdentities();
});

describe("another tenant and anonymous callers, with a policy that allows everything", () => {
  it("cannot overwrite an SSE-KMS object by PUT, POST, CopyObject or CompleteMultipartUpload; SSE-S3 objects they can", async () => {
    const b = await openBucket("iso-overwrite");
    expect((await send("adminA", { method: "PUT", bucket: b, key: "k", body: "A's secret", headers: kms })).status).toBe(200);
    expect((await send("adminA", { method: "PUT", bucket: b, key: "plain", body: "A's plain", headers: sseS3 })).status).toBe(200);

    await expectError(send("adminB", { method: "PUT", bucket: b, key: "k", body: "B's bytes" }), 403, "AccessDenied");
    await expectError(send("adminB", { method: "PUT", bucket: b, key: "k", body: "B's bytes", anonymous: true }), 403, "AccessDenied");
    await expectError(postForm("adminB", b, "k", "B's form"), 403, "AccessDenied");
    await expectError(send("adminB", { method: "PUT", bucket: b, key: "k", headers: { "x-amz-copy-source": `/${b}/plain` } }), 403, "AccessDenied");
    // A multipart upload B may create (SSE-S3, the policy allows it) cannot complete over the SSE-KMS object.
    const uploadId = await createUpload("adminB", b, "k", sseS3);
    const etag = await uploadPart("adminB", b, "k", uploadId, 1, new TextEncoder().encode("B's part"));
    await expectError(completeRequest("adminB", b, "k", uploadId, [{ partNumber: 1, etag }]), 403, "AccessDenied");
    expect(await body("adminA", b, "k")).toBe("A's secret");
    expect(await mode(b, "k")).toBe("aws:kms");

    // The policy does let them replace SSE-S3 objects: the rule is about SSE-KMS only.
    expect((await send("adminB", { method: "PUT", bucket: b, key: "plain", body: "B's plain" })).status).toBe(200);
    expect(await body("adminA", b, "plain")).toBe("B's plain");
    expect((await postForm("adminB", b, "plain", "B's form")).status).toBe(204);
    expect(await body("adminA", b, "plain")).toBe("B's form");
    // …and write new keys.
    expect((await send("adminB", { method: "PUT", bucket: b, key: "new", body: "n", anonymous: true })).status).toBe(200);
  });

  it("cannot delete an SSE-KMS object, by DeleteObject or in a DeleteObjects batch (per-key AccessDenied)", async () => {
    const b = await openBucket("iso-delete");
    for (const key of ["kms1", "kms2"]) expect((await send("adminA", { method: "PUT", bucket: b, key, body: key, headers: kms })).status).toBe(200);
    expect((await send("adminA", { method: "PUT", bucket: b, key: "plain", body: "p", headers: sseS3 })).status).toBe(200);

    await expectError(send("adminB", { method: "DELETE", bucket: b, key: "kms1" }), 403, "AccessDenied");
    await expectError(send("adminB", { method: "DELETE", bucket: b, key: "kms1", anonymous: true }), 403, "AccessDenied");
    expect(await body("adminA", b, "kms1")).toBe("kms1");

    const doc = `<Delete>${["kms1", "plain", "kms2", "missing"].map((k) => `<Object><Key>${k}</Key></Object>`).join("")}</Delete>`;
    const md5 = btoa(String.fromCharCode(...new Uint8Array(await crypto.subtle.digest("MD5", new TextEncoder().encode(doc)))));
    const r = await send("adminB", { method: "POST", bucket: b, query: { delete: "" }, body: doc, headers: { "content-md5": md5 } });
    const text = await r.text();
    expect(r.status, text).toBe(200);
    expect(xmlValues(text, "Key").sort()).toEqual(["kms1", "kms2", "missing", "plain"]);
    const deleted = [...text.matchAll(/<Deleted><Key>([^<]*)<\/Key><\/Deleted>/g)].map((m) => m[1]).sort();
    expect(deleted).toEqual(["missing", "plain"]);
    const refused = [...text.matchAll(/<Error><Key>([^<]*)<\/Key><Code>([^<]*)<\/Code>/g)].map((m) => `${m[1]}:${m[2]}`).sort();
    expect(refused).toEqual(["kms1:AccessDenied", "kms2:AccessDenied"]);
    expect(await mode(b, "kms1")).toBe("aws:kms");
    expect(await mode(b, "kms2")).toBe("aws:kms");
    expect(await mode(b, "plain")).toBeNull();
  });

  it("cannot use an SSE-KMS object as a CopyObject or UploadPartCopy source, nor touch an SSE-KMS upload", async () => {
    const b = await openBucket("iso-source");
    expect((await send("adminA", { method: "PUT", bucket: b, key: "k", body: "A's secret", headers: kms })).status).toBe(200);
    const own = uniqueBucket("iso-b-own");
    await createBucket("adminB", own);
    await expectError(send("adminB", { method: "PUT", bucket: own, key: "stolen", headers: { "x-amz-copy-source": `/${b}/k`, ...sseS3 } }), 403, "AccessDenied");
    const bUpload = await createUpload("adminB", own, "stolen");
    await expectError(send("adminB", { method: "PUT", bucket: own, key: "stolen", query: { partNumber: "1", uploadId: bUpload }, headers: { "x-amz-copy-source": `/${b}/k` } }), 403, "AccessDenied");

    // An SSE-KMS upload of tenant A: B may not list, add to, complete or abort it.
    const aUpload = await createUpload("adminA", b, "mp", kms);
    const aEtag = await uploadPart("adminA", b, "mp", aUpload, 1, new TextEncoder().encode("A's part"));
    await expectError(send("adminB", { method: "GET", bucket: b, key: "mp", query: { uploadId: aUpload } }), 403, "AccessDenied");
    await expectError(uploadPartRequest("adminB", b, "mp", aUpload, 2, new TextEncoder().encode("B")), 403, "AccessDenied");
    await expectError(completeRequest("adminB", b, "mp", aUpload, [{ partNumber: 1, etag: aEtag }]), 403, "AccessDenied");
    await expectError(send("adminB", { method: "DELETE", bucket: b, key: "mp", query: { uploadId: aUpload } }), 403, "AccessDenied");
    const done = await completeRequest("adminA", b, "mp", aUpload, [{ partNumber: 1, etag: aEtag }]);
    expect(done.status, await done.clone().text()).toBe(200);
    expect(await body("adminA", b, "mp")).toBe("A's part");
  });

  it("listings show SSE-KMS objects' keys and sizes to them but never an ETag the owner sees (a plaintext MD5 would confirm guesses)", async () => {
    const b = await openBucket("iso-list");
    const secret = "guessable";
    const md5 = new Uint8Array(await crypto.subtle.digest("MD5", new TextEncoder().encode(secret)));
    const md5Hex = [...md5].map((x) => x.toString(16).padStart(2, "0")).join("");
    const contentMd5 = btoa(String.fromCharCode(...md5));
    expect((await send("adminA", { method: "PUT", bucket: b, key: "kms", body: secret, headers: { ...kms, "content-md5": contentMd5 } })).status).toBe(200);
    expect((await send("adminA", { method: "PUT", bucket: b, key: "plain", body: secret, headers: { ...sseS3, "content-md5": contentMd5 } })).status).toBe(200);

    const etags = async (who: Who, query: Record<string, string>, anonymous = false) => {
      const r = await send(who, { method: "GET", bucket: b, query, anonymous });
      const text = await r.text();
      expect(r.status, text).toBe(200);
      expect(xmlValues(text, "Size")).toEqual([String(secret.length), String(secret.length)]);
      return Object.fromEntries(xmlValues(text, "Key").map((k, i) => [k, xmlValues(text, "ETag")[i]!.replaceAll("&quot;", '"')]));
    };
    for (const query of [{ "list-type": "2" }, {}, { versions: "" }] as Array<Record<string, string>>) {
      const owner = await etags("adminA", query);
      expect(owner).toEqual({ kms: `"${md5Hex}"`, plain: `"${md5Hex}"` });
      for (const [who, anonymous] of [["adminB", false], ["adminB", true]] as const) {
        const foreign = await etags(who, query, anonymous);
        expect(foreign.plain).toBe(`"${md5Hex}"`);
        expect(foreign.kms).not.toContain(md5Hex);
        expect(foreign.kms).toMatch(/^"[0-9a-f]{32}-1"$/);
      }
    }
  });

  it("a policy naming tenant B explicitly changes nothing for SSE-KMS objects", async () => {
    const b = uniqueBucket("iso-named");
    await createBucket("adminA", b);
    const policy = JSON.stringify({
      Version: "2012-10-17",
      Statement: [{ Effect: "Allow", Principal: { AWS: `arn:aws:iam::${TENANT_B}:root` }, Action: "s3:*", Resource: [`arn:aws:s3:::${b}`, `arn:aws:s3:::${b}/*`] }],
    });
    expect((await send("adminA", { method: "PUT", bucket: b, query: { policy: "" }, body: policy })).status).toBe(204);
    expect((await send("adminA", { method: "PUT", bucket: b, key: "k", body: "s", headers: kms })).status).toBe(200);
    await expectError(send("adminB", { method: "GET", bucket: b, key: "k" }), 403, "AccessDenied");
    await expectError(send("adminB", { method: "PUT", bucket: b, key: "k", body: "x" }), 403, "AccessDenied");
    await expectError(send("adminB", { method: "DELETE", bucket: b, key: "k" }), 403, "AccessDenied");
    expect(await body("adminA", b, "k")).toBe("s");
  });
});

describe("a member of the owning tenant", () => {
  let b: string;
  beforeAll(async () => {
    b = uniqueBucket("iso-member");
    await createBucket("adminA", b);
    expect((await send("adminA", { method: "PUT", bucket: b, key: "kms", body: "A's secret", headers: kms })).status).toBe(200);
  });

  it("cannot read an SSE-KMS object (GET, range, HEAD) nor copy it out as SSE-S3 (CopyObject, UploadPartCopy)", async () => {
    for (const r of [
      send("memberA", { method: "GET", bucket: b, key: "kms" }),
      send("memberA", { method: "GET", bucket: b, key: "kms", headers: { range: "bytes=0-2" } }),
      send("memberA", { method: "PUT", bucket: b, key: "copy", headers: { "x-amz-copy-source": `/${b}/kms`, ...sseS3 } }),
    ]) {
      const e = await expectError(r, 403, "AccessDenied");
      expect(e.message).toBe(ROLE_MESSAGE);
    }
    expect((await send("memberA", { method: "HEAD", bucket: b, key: "kms" })).status).toBe(403);
    const uploadId = await createUpload("memberA", b, "copy", sseS3);
    const e = await expectError(send("memberA", { method: "PUT", bucket: b, key: "copy", query: { partNumber: "1", uploadId }, headers: { "x-amz-copy-source": `/${b}/kms` } }), 403, "AccessDenied");
    expect(e.message).toBe(ROLE_MESSAGE);
    expect((await send("adminA", { method: "HEAD", bucket: b, key: "copy" })).status).toBe(404);
  });

  it("cannot re-key or create SSE-KMS objects: Copy to aws:kms, an admin's SSE-KMS upload (parts, list, complete)", async () => {
    expect((await send("adminA", { method: "PUT", bucket: b, key: "plain", body: "p", headers: sseS3 })).status).toBe(200);
    await expectError(send("memberA", { method: "PUT", bucket: b, key: "rekeyed", headers: { "x-amz-copy-source": `/${b}/plain`, ...kms } }), 403, "AccessDenied");
    const uploadId = await createUpload("adminA", b, "mp", kms);
    const etag = await uploadPart("adminA", b, "mp", uploadId, 1, new TextEncoder().encode("part"));
    await expectError(uploadPartRequest("memberA", b, "mp", uploadId, 2, new TextEncoder().encode("m")), 403, "AccessDenied");
    await expectError(send("memberA", { method: "GET", bucket: b, key: "mp", query: { uploadId } }), 403, "AccessDenied");
    await expectError(completeRequest("memberA", b, "mp", uploadId, [{ partNumber: 1, etag }]), 403, "AccessDenied");
    // Abort is a delete: allowed within the tenant.
    expect((await send("memberA", { method: "DELETE", bucket: b, key: "mp", query: { uploadId } })).status).toBe(204);
  });

  it("may overwrite and delete SSE-KMS objects of its tenant (with non-KMS writes)", async () => {
    expect((await send("adminA", { method: "PUT", bucket: b, key: "ow", body: "old", headers: kms })).status).toBe(200);
    expect((await send("memberA", { method: "PUT", bucket: b, key: "ow", body: "new" })).status).toBe(200);
    expect(await mode(b, "ow")).toBe("AES256");
    expect(await body("memberA", b, "ow")).toBe("new");
    expect((await send("adminA", { method: "PUT", bucket: b, key: "del", body: "d", headers: kms })).status).toBe(200);
    expect((await send("memberA", { method: "DELETE", bucket: b, key: "del" })).status).toBe(204);
    expect(await mode(b, "del")).toBeNull();
  });

  it("cannot set, replace or remove an SSE-KMS bucket default; may set SSE-S3 over SSE-S3", async () => {
    const doc = (alg: string) => `<ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>${alg}</SSEAlgorithm></ApplyServerSideEncryptionByDefault></Rule></ServerSideEncryptionConfiguration>`;
    const c = uniqueBucket("iso-member-enc");
    await createBucket("adminA", c);
    expect((await send("memberA", { method: "PUT", bucket: c, query: { encryption: "" }, body: doc("AES256") })).status).toBe(200);
    await expectError(send("memberA", { method: "PUT", bucket: c, query: { encryption: "" }, body: doc("aws:kms") }), 403, "AccessDenied");
    expect((await send("adminA", { method: "PUT", bucket: c, query: { encryption: "" }, body: doc("aws:kms") })).status).toBe(200);
    await expectError(send("memberA", { method: "PUT", bucket: c, query: { encryption: "" }, body: doc("AES256") }), 403, "AccessDenied");
    await expectError(send("memberA", { method: "DELETE", bucket: c, query: { encryption: "" } }), 403, "AccessDenied");
    // A plain upload into the KMS-default bucket would create an SSE-KMS object: refused, nothing stored.
    await expectError(send("memberA", { method: "PUT", bucket: c, key: "x", body: "x" }), 403, "AccessDenied");
    await expectError(send("memberA", { method: "POST", bucket: c, key: "x", query: { uploads: "" } }), 403, "AccessDenied");
    expect(xmlValue(await (await send("adminA", { method: "GET", bucket: c, query: { encryption: "" } })).text(), "SSEAlgorithm")).toBe("aws:kms");
    expect((await send("adminA", { method: "HEAD", bucket: c, key: "x" })).status).toBe(404);
  });
});

describe("the overwrite check is atomic with the write", () => {
  it("an SSE-KMS object that lands between another tenant's check and its write is not overwritten (409 OperationAborted)", async () => {
    const b = await openBucket("iso-race");
    // Tenant B's PUT is checked against an empty key; an SSE-KMS object lands before its
    // bytes do (the body stream is held open until then).
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const payload = new TextEncoder().encode("B's bytes");
    const stream = new ReadableStream<Uint8Array>({
      async pull(controller) {
        await gate;
        controller.enqueue(payload);
        controller.close();
      },
    });
    const racing = send("adminB", { method: "PUT", bucket: b, key: "k", body: payload, wireBody: stream as unknown as Uint8Array, unsigned: true, headers: { "content-length": String(payload.byteLength) } });
    await new Promise((r) => setTimeout(r, 50));
    expect((await send("adminA", { method: "PUT", bucket: b, key: "k", body: "A's secret", headers: kms })).status).toBe(200);
    release();
    await expectError(racing, 409, "OperationAborted");
    expect(await body("adminA", b, "k")).toBe("A's secret");
  });
});
