// External CMK (issue 15): external KMS calls per 1,000 PUTs to one bucket, and warm
// PUT/GET latency of 1 KiB objects under a CMK rooted in an external KMS vs a local CMK.
// The external KMS is the bench worker's own KMS API (tenant B's key, reached over
// 127.0.0.1 like any external endpoint), so the figure includes a real signed HTTP call
// whenever the bucket's bucket key is made (one GenerateDataKey, the fresh bucket's first
// PUT — the warm-up, counted) or refreshed (one Decrypt per EXTERNAL_KEY_CACHE_SECONDS,
// 300 by default). `byOperation` splits the count. The local and external sides are
// measured interleaved, request by request.
//
//   node bench/external-cmk.mjs            standalone: starts the bench worker itself
//   node bench/external-cmk.mjs --puts 200 fewer PUTs (default 1000)
//   bench/run.mjs imports run() with its worker (npm run bench).
import { Sha256 } from "@aws-crypto/sha256-js";
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { SignatureV4 } from "@smithy/signature-v4";
import { fileURLToPath } from "node:url";
import { TEST_ADMIN_TOKEN } from "../scripts/lib/worker.mjs";

const ADMIN_B = { accessKeyId: "LOCALADMINB", secretAccessKey: "local-admin-b-secret" };
const ADMIN_A = { accessKeyId: "LOCALADMINA", secretAccessKey: "local-admin-a-secret" };
const TENANT_A = "000000000000000000000000000000aa";

async function kms(endpoint, credentials, operation, input) {
  const url = new URL(endpoint);
  const body = JSON.stringify(input);
  const signer = new SignatureV4({ service: "kms", region: "us-east-1", credentials, sha256: Sha256 });
  const signed = await signer.sign({
    method: "POST",
    protocol: url.protocol,
    hostname: url.hostname,
    port: Number(url.port),
    path: "/",
    headers: { host: url.host, "content-type": "application/x-amz-json-1.1", "x-amz-target": `TrentService.${operation}` },
    body,
  });
  const headers = Object.fromEntries(Object.entries(signed.headers).filter(([k]) => k !== "host"));
  const r = await fetch(endpoint, { method: "POST", headers, body });
  const json = await r.json();
  if (r.status !== 200) throw new Error(`${operation}: ${JSON.stringify(json)}`);
  return json;
}

async function admin(endpoint, method, path, body) {
  const r = await fetch(`${endpoint}/_admin${path}`, {
    method,
    headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}`, ...(body ? { "content-type": "application/json" } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const json = await r.json();
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(json)}`);
  return json;
}

const total = (calls) => Object.values(calls).reduce((a, b) => a + b, 0);
const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

export async function run({ endpoint, puts = 1000 }) {
  const s3 = new S3Client({ endpoint, region: "us-east-1", forcePathStyle: true, credentials: ADMIN_A });
  const bucket = `bench-ext-${Date.now().toString(36)}`;
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  const external = (await kms(endpoint, ADMIN_B, "CreateKey", { Description: "bench external root" })).KeyMetadata;
  const bound = await admin(endpoint, "POST", `/tenants/${TENANT_A}/external-keys`, {
    description: "bench external CMK",
    endpoint,
    region: "us-east-1",
    externalKeyId: external.Arn,
    ...ADMIN_B,
  });
  const local = (await kms(endpoint, ADMIN_A, "CreateKey", { Description: "bench local CMK" })).KeyMetadata;
  const body = new Uint8Array(1024).fill(7);
  const time = async (f) => {
    const t = performance.now();
    await f();
    return performance.now() - t;
  };
  const sides = { local: { keyId: local.KeyId, put: [], get: [] }, external: { keyId: bound.keyId, put: [], get: [] } };
  const putOne = (side, key) => s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ServerSideEncryption: "aws:kms", SSEKMSKeyId: sides[side].keyId }));
  const before = (await admin(endpoint, "GET", "/kms/external/calls")).calls;
  const started = Date.now();
  // Warm-up: the first request of a key loads its row and (external) makes the bucket key.
  for (const side of ["local", "external"]) await putOne(side, `${side}-warm`);
  // The two sides interleaved request by request, alternating which goes first, so both
  // see the same machine (measured one after the other, the second side ran on a bigger
  // local R2 and a warmer process).
  const order = (i) => (i % 2 ? ["external", "local"] : ["local", "external"]);
  for (let i = 0; i < puts; i++) {
    for (const side of order(i)) sides[side].put.push(await time(() => putOne(side, `${side}-${i}`)));
  }
  for (let i = 0; i < Math.min(puts, 300); i++) {
    for (const side of order(i)) sides[side].get.push(await time(async () => (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: `${side}-${i}` }))).Body.transformToByteArray()));
  }
  const summary = ({ put, get }) => {
    put.sort((a, b) => a - b);
    get.sort((a, b) => a - b);
    return { putP50: pct(put, 50), putP99: pct(put, 99), getP50: pct(get, 50), getP99: pct(get, 99) };
  };
  const localMs = summary(sides.local);
  const externalMs = summary(sides.external);
  const seconds = (Date.now() - started) / 1000;
  const after = (await admin(endpoint, "GET", "/kms/external/calls")).calls;
  const calls = total(after) - total(before);
  const byOperation = Object.fromEntries(Object.keys(after).map((op) => [op, after[op] - (before[op] ?? 0)]).filter(([, n]) => n > 0));
  return {
    puts,
    externalCalls: calls,
    byOperation,
    callsPer1000Puts: (calls * 1000) / puts,
    seconds,
    latencyMs: { local: localMs, external: externalMs },
    putP50Ratio: externalMs.putP50 / localMs.putP50,
    getP50Ratio: externalMs.getP50 / localMs.getP50,
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const at = process.argv.indexOf("--puts");
  const puts = at > 0 ? Number(process.argv[at + 1]) : 1000;
  const { startTestWorker } = await import("../scripts/lib/worker.mjs");
  const worker = await startTestWorker({ config: fileURLToPath(new URL("./wrangler.toml", import.meta.url)) });
  try {
    console.log(JSON.stringify(await run({ endpoint: worker.endpoint, puts })));
  } finally {
    await worker.dispose();
  }
}
