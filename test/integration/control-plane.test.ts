/**
 * What each S3 operation asks of the control plane: D1 statements and R2 calls, warm (the
 * isolate's bucket, identity and key rows cached) and cold (every cached row expired:
 * KEY_CACHE_TTL_SECONDS=0, as after the TTL or in a fresh isolate; derived keys and SigV4
 * signing keys are immutable and stay in memory either way). Counted on the real local
 * bindings through counting proxies, for objects stored with SSE-S3 and with SSE-KMS.
 *
 * The table is the README's "Control plane per operation"; this test asserts it, so a
 * change in what an operation costs shows up here and in the README together. The goal of
 * 0 D1 statements for warm GET, HEAD and PUT is asserted on its own.
 */
import { beforeAll, describe, expect, it } from "vitest";
import type { Env } from "../../src/env";
import { countingBindings } from "../support/counting";
import { MiB, completeRequest, createUpload, uploadPart } from "../support/multipart";
import { amzDate, encodePolicy, multipartBody, signV4, v4Fields } from "../support/post-form";
import { CREDENTIALS, HOST, createBucket, fetchWorker, seedIdentities, send, uniqueBucket } from "../support/s3-harness";

const bucket = uniqueBucket("control-plane");
const counted = countingBindings();
const small = new Uint8Array(1024).fill(7);
const large = new Uint8Array(8 * MiB).fill(9);
const part = new Uint8Array(5 * MiB).fill(3);

type Mode = "AES256" | "aws:kms";
interface Operation {
  name: string;
  /** Uncounted set-up for one run (objects to read, an upload to complete, ...). */
  prepare?: (mode: Mode, run: number) => Promise<unknown>;
  act: (mode: Mode, run: number, prepared: unknown, env: Partial<Env>) => Promise<Response>;
  status: number;
}

const sse = (mode: Mode) => ({ "x-amz-server-side-encryption": mode });
let serial = 0;
const fresh = (label: string) => `${label}-${++serial}`;

async function postObject(key: string, mode: Mode, env: Partial<Env>): Promise<Response> {
  const { accessKeyId, secretAccessKey } = CREDENTIALS.adminA;
  const date = amzDate();
  const covered = { bucket, ...v4Fields(accessKeyId, date), "x-amz-server-side-encryption": mode };
  const policy = encodePolicy([...Object.entries(covered).map(([k, v]) => ({ [k]: v })), ["starts-with", "$key", ""]]);
  const signature = await signV4(policy, secretAccessKey, date);
  const { body, contentType } = multipartBody([
    { name: "key", value: key },
    ...Object.entries(covered).map(([name, value]) => ({ name, value })),
    { name: "Policy", value: policy },
    { name: "X-Amz-Signature", value: signature },
    { name: "file", file: small, filename: "f.bin", contentType: "application/octet-stream" },
  ]);
  return fetchWorker(`http://${HOST}/${bucket}`, { method: "POST", headers: { "content-type": contentType }, body }, env);
}

const CHECKSUM_MODE = { "x-amz-checksum-mode": "ENABLED" };

const OPERATIONS: Operation[] = [
  { name: "PUT 1 KiB", act: (m, _r, _p, env) => send("adminA", { method: "PUT", bucket, key: fresh("put-small"), body: small, headers: sse(m), env }), status: 200 },
  { name: "PUT 8 MiB", act: (m, _r, _p, env) => send("adminA", { method: "PUT", bucket, key: fresh("put-large"), body: large, headers: sse(m), env }), status: 200 },
  { name: "POST Object 1 KiB", act: (m, _r, _p, env) => postObject(fresh("post"), m, env), status: 204 },
  { name: "GET 1 KiB", act: (m, _r, _p, env) => send("adminA", { method: "GET", bucket, key: `read-${m}`, env }), status: 200 },
  // Checksum mode (the AWS SDK presigns every GetObject with it): the trailer record of a
  // small object comes from its one read; a larger one needs a second, suffix get.
  { name: "GET 1 KiB, checksum mode", act: (m, _r, _p, env) => send("adminA", { method: "GET", bucket, key: `read-${m}`, headers: CHECKSUM_MODE, env }), status: 200 },
  { name: "GET 8 MiB, checksum mode", act: (m, _r, _p, env) => send("adminA", { method: "GET", bucket, key: `large-${m}`, headers: CHECKSUM_MODE, env }), status: 200 },
  { name: "HEAD", act: (m, _r, _p, env) => send("adminA", { method: "HEAD", bucket, key: `read-${m}`, env }), status: 200 },
  { name: "GET range (1 byte of 8 MiB)", act: (m, _r, _p, env) => send("adminA", { method: "GET", bucket, key: `large-${m}`, headers: { range: "bytes=4194304-4194304" }, env }), status: 206 },
  { name: "CreateMultipartUpload", act: (m, _r, _p, env) => send("adminA", { method: "POST", bucket, key: fresh("mpu"), query: { uploads: "" }, headers: sse(m), env }), status: 200 },
  {
    name: "UploadPart 5 MiB",
    prepare: async (m) => {
      const key = fresh("mpu-part");
      return { key, id: await createUpload("adminA", bucket, key, sse(m)) };
    },
    act: (_m, _r, p, env) => {
      const { key, id } = p as { key: string; id: string };
      return send("adminA", { method: "PUT", bucket, key, query: { partNumber: "1", uploadId: id }, body: part, env });
    },
    status: 200,
  },
  {
    name: "CompleteMultipartUpload (2 parts)",
    prepare: async (m) => {
      const key = fresh("mpu-complete");
      const id = await createUpload("adminA", bucket, key, sse(m));
      const etags = [await uploadPart("adminA", bucket, key, id, 1, part), await uploadPart("adminA", bucket, key, id, 2, small)];
      return { key, id, etags };
    },
    act: (_m, _r, p, env) => {
      const { key, id, etags } = p as { key: string; id: string; etags: string[] };
      return completeRequest("adminA", bucket, key, id, etags.map((etag, i) => ({ partNumber: i + 1, etag })), { env });
    },
    status: 200,
  },
  { name: "GET multipart object (2 parts)", act: (m, _r, _p, env) => send("adminA", { method: "GET", bucket, key: `multipart-${m}`, env }), status: 200 },
  { name: "ListObjectsV2 (page of 20)", act: (_m, _r, _p, env) => send("adminA", { method: "GET", bucket, query: { "list-type": "2", "max-keys": "20", prefix: "read-" }, env }), status: 200 },
  {
    name: "DeleteObject",
    prepare: async (m) => {
      const key = fresh("delete");
      expect((await send("adminA", { method: "PUT", bucket, key, body: small, headers: sse(m) })).status).toBe(200);
      return key;
    },
    act: (_m, _r, key, env) => send("adminA", { method: "DELETE", bucket, key: key as string, env }),
    status: 204,
  },
];

interface Cost {
  d1: number;
  r2: string;
}

async function cost(op: Operation, mode: Mode, run: number, ttl: "warm" | "cold"): Promise<Cost> {
  const prepared = await op.prepare?.(mode, run);
  const env: Partial<Env> = { DB: counted.db, OBJECTS: counted.r2, ...(ttl === "cold" ? { KEY_CACHE_TTL_SECONDS: "0" } : {}) };
  counted.reset();
  const r = await op.act(mode, run, prepared, env);
  const body = new Uint8Array(await r.arrayBuffer());
  expect(r.status, `${op.name} (${mode}, ${ttl}): ${new TextDecoder().decode(body.subarray(0, 300))}`).toBe(op.status);
  const { d1, r2 } = counted.counts();
  return {
    d1,
    r2: Object.entries(r2)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, n]) => `${n} ${name}`)
      .join(", "),
  };
}

const table = new Map<string, Record<string, Cost>>();
let rendered = "";

/** README.md, "Control plane per operation" (kept equal to what this test measures). */
const EXPECTED = `
| operation | SSE | D1 warm | D1 cold | R2 calls |
|---|---|---:|---:|---|
| PUT 1 KiB | SSE-S3 | 0 | 3 | 1 put |
| PUT 1 KiB | SSE-KMS | 0 | 3 | 1 put |
| PUT 8 MiB | SSE-S3 | 0 | 3 | 1 put |
| PUT 8 MiB | SSE-KMS | 0 | 3 | 1 put |
| POST Object 1 KiB | SSE-S3 | 0 | 4 | 1 put |
| POST Object 1 KiB | SSE-KMS | 0 | 4 | 1 put |
| GET 1 KiB | SSE-S3 | 0 | 3 | 1 get |
| GET 1 KiB | SSE-KMS | 0 | 3 | 1 get |
| GET 1 KiB, checksum mode | SSE-S3 | 0 | 3 | 1 get |
| GET 1 KiB, checksum mode | SSE-KMS | 0 | 3 | 1 get |
| GET 8 MiB, checksum mode | SSE-S3 | 0 | 3 | 2 get |
| GET 8 MiB, checksum mode | SSE-KMS | 0 | 3 | 2 get |
| HEAD | SSE-S3 | 0 | 3 | 1 head |
| HEAD | SSE-KMS | 0 | 3 | 1 head |
| GET range (1 byte of 8 MiB) | SSE-S3 | 0 | 3 | 1 get |
| GET range (1 byte of 8 MiB) | SSE-KMS | 0 | 3 | 1 get |
| CreateMultipartUpload | SSE-S3 | 1 | 4 | none |
| CreateMultipartUpload | SSE-KMS | 1 | 4 | none |
| UploadPart 5 MiB | SSE-S3 | 4 | 7 | 1 put |
| UploadPart 5 MiB | SSE-KMS | 4 | 7 | 1 put |
| CompleteMultipartUpload (2 parts) | SSE-S3 | 9 | 12 | 1 head, 1 list, 1 put |
| CompleteMultipartUpload (2 parts) | SSE-KMS | 9 | 12 | 1 head, 1 list, 1 put |
| GET multipart object (2 parts) | SSE-S3 | 0 | 3 | 3 get, 1 head |
| GET multipart object (2 parts) | SSE-KMS | 0 | 3 | 3 get, 1 head |
| ListObjectsV2 (page of 20) | SSE-S3 | 0 | 2 | 1 list |
| ListObjectsV2 (page of 20) | SSE-KMS | 0 | 2 | 1 list |
| DeleteObject | SSE-S3 | 1 | 3 | 1 delete |
| DeleteObject | SSE-KMS | 1 | 3 | 1 delete |
`.trim();

beforeAll(async () => {
  await seedIdentities();
  await createBucket("adminA", bucket);
  for (const mode of ["AES256", "aws:kms"] as const) {
    expect((await send("adminA", { method: "PUT", bucket, key: `read-${mode}`, body: small, headers: sse(mode) })).status).toBe(200);
    expect((await send("adminA", { method: "PUT", bucket, key: `large-${mode}`, body: large, headers: sse(mode) })).status).toBe(200);
    const id = await createUpload("adminA", bucket, `multipart-${mode}`, sse(mode));
    const etags = [await uploadPart("adminA", bucket, `multipart-${mode}`, id, 1, part), await uploadPart("adminA", bucket, `multipart-${mode}`, id, 2, small)];
    expect((await completeRequest("adminA", bucket, `multipart-${mode}`, id, etags.map((etag, i) => ({ partNumber: i + 1, etag })))).status).toBe(200);
  }
  for (const op of OPERATIONS) {
    for (const mode of ["AES256", "aws:kms"] as const) {
      await cost(op, mode, 0, "warm"); // the first run fills this isolate's caches
      const warm = await cost(op, mode, 1, "warm");
      const cold = await cost(op, mode, 2, "cold");
      table.set(`${op.name}|${mode}`, { warm, cold });
    }
  }
  const lines = ["| operation | SSE | D1 warm | D1 cold | R2 calls |", "|---|---|---:|---:|---|"];
  for (const [id, { warm, cold }] of table) {
    const [name, mode] = id.split("|");
    lines.push(`| ${name} | ${mode === "AES256" ? "SSE-S3" : "SSE-KMS"} | ${warm!.d1} | ${cold!.d1} | ${warm!.r2 || "none"}${cold!.r2 !== warm!.r2 ? ` (cold: ${cold!.r2})` : ""} |`);
  }
  rendered = lines.join("\n");
  console.log(`control plane per operation:\n${rendered}`);
}, 120_000);

describe("control plane per operation", () => {
  it("is the README's table", () => {
    expect(rendered).toBe(EXPECTED);
  });

  it("warm GET, HEAD and PUT make no D1 statement", () => {
    for (const name of ["PUT 1 KiB", "PUT 8 MiB", "GET 1 KiB", "GET 1 KiB, checksum mode", "GET 8 MiB, checksum mode", "HEAD", "GET range (1 byte of 8 MiB)"]) {
      for (const mode of ["AES256", "aws:kms"]) expect(table.get(`${name}|${mode}`)!.warm!.d1, `${name} ${mode}`).toBe(0);
    }
  });
});
