// SSE-C benchmark (issue 14): PUT and GET throughput with a customer-provided key next to
// SSE-KMS and the bare passthrough, same worker, same local R2, interleaved.
//
//   node bench/sse-c.mjs             standalone: starts the bench worker itself
//   node bench/sse-c.mjs --quick     smaller objects, fewer rounds
//   bench/run.mjs imports run() with its worker (npm run bench).
//
// Transfers are presigned streamed PUTs/GETs (UNSIGNED-PAYLOAD) as in run.mjs; SSE-C sends
// its key as the signed x-amz-server-side-encryption-customer-* headers. What SSE-C adds
// per request is two HKDF derivations and the verifier check (no D1 key row, no CMK cache),
// so the ratios should match SSE-KMS's.
import { CreateBucketCommand, GetObjectCommand, PutBucketEncryptionCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { createHash, randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { getStream, median, MiB, putStream } from "./lib/measure.mjs";

const KiB = 1024;
const log = (...a) => console.error(...a);
const mbps = (bytes, seconds) => bytes / seconds / 1e6;

export async function run({ endpoint, s3, bucket = "bench-ssec", quick = false }) {
  const client =
    s3 ?? new S3Client({ endpoint, region: "us-east-1", forcePathStyle: true, requestChecksumCalculation: "WHEN_REQUIRED", credentials: { accessKeyId: "LOCALADMINA", secretAccessKey: "local-admin-a-secret" } });
  const name = `${bucket}-ssec`;
  await client.send(new CreateBucketCommand({ Bucket: name }));
  // New buckets block SSE-C (README, "SSE-C"): the benchmark's owner unblocks it.
  await client.send(
    new PutBucketEncryptionCommand({
      Bucket: name,
      ServerSideEncryptionConfiguration: { Rules: [{ ApplyServerSideEncryptionByDefault: { SSEAlgorithm: "AES256" }, BlockedEncryptionTypes: { EncryptionType: ["NONE"] } }] },
    }),
  );
  const key = randomBytes(32);
  const ssecHeaders = {
    "x-amz-server-side-encryption-customer-algorithm": "AES256",
    "x-amz-server-side-encryption-customer-key": key.toString("base64"),
    "x-amz-server-side-encryption-customer-key-md5": createHash("md5").update(key).digest("base64"),
  };
  const ssecParams = { SSECustomerAlgorithm: "AES256", SSECustomerKey: key };

  const modes = {
    "sse-kms": {
      put: async (k, size) => putStream(await getSignedUrl(client, new PutObjectCommand({ Bucket: name, Key: k, ServerSideEncryption: "aws:kms" }), { expiresIn: 3600 }), size, { "x-amz-server-side-encryption": "aws:kms" }),
      get: async (k) => getStream(await getSignedUrl(client, new GetObjectCommand({ Bucket: name, Key: k }), { expiresIn: 3600 })),
    },
    "sse-c": {
      put: async (k, size) => putStream(await getSignedUrl(client, new PutObjectCommand({ Bucket: name, Key: k, ...ssecParams }), { expiresIn: 3600 }), size, ssecHeaders),
      get: async (k) => getStream(await getSignedUrl(client, new GetObjectCommand({ Bucket: name, Key: k, ...ssecParams }), { expiresIn: 3600 }), ssecHeaders),
    },
    passthrough: {
      put: (k, size) => putStream(`${endpoint}/_passthrough/ssec-${k}`, size),
      get: (k) => getStream(`${endpoint}/_passthrough/ssec-${k}`),
    },
  };

  const plan = quick ? [[KiB, 30], [MiB, 6], [16 * MiB, 2]] : [[KiB, 200], [MiB, 30], [16 * MiB, 9], [256 * MiB, 3]];
  const out = { sizes: {} };
  for (const [size, rounds] of plan) {
    const label = size >= MiB ? `${size / MiB}MiB` : `${size / KiB}KiB`;
    log(`SSE-C bench ${label}: ${rounds} rounds...`);
    const seconds = Object.fromEntries(Object.keys(modes).flatMap((m) => [[`${m}:put`, []], [`${m}:get`, []]]));
    const order = Object.keys(modes);
    for (let i = 0; i < rounds; i++) {
      // Rotate which mode goes first, so none always runs on a just-warmed cache.
      const turn = [...order.slice(i % order.length), ...order.slice(0, i % order.length)];
      for (const m of turn) {
        const p = await modes[m].put(`${m}-${label}`, size);
        if (p.status !== 200) throw new Error(`${m} PUT ${label}: ${p.status} ${p.body ?? ""}`);
        seconds[`${m}:put`].push(p.seconds);
      }
      for (const m of turn) {
        const g = await modes[m].get(`${m}-${label}`);
        if (g.status !== 200 || g.bytes !== size) throw new Error(`${m} GET ${label}: ${g.status}, ${g.bytes} bytes`);
        seconds[`${m}:get`].push(g.seconds);
      }
    }
    const rate = (k) => mbps(size, median(seconds[k]));
    out.sizes[label] = {
      bytes: size,
      rounds,
      putMBps: { sseKms: rate("sse-kms:put"), sseC: rate("sse-c:put"), passthrough: rate("passthrough:put") },
      getMBps: { sseKms: rate("sse-kms:get"), sseC: rate("sse-c:get"), passthrough: rate("passthrough:get") },
      putRatio: { sseKms: rate("sse-kms:put") / rate("passthrough:put"), sseC: rate("sse-c:put") / rate("passthrough:put") },
      getRatio: { sseKms: rate("sse-kms:get") / rate("passthrough:get"), sseC: rate("sse-c:get") / rate("passthrough:get") },
      p50Ms: Object.fromEntries(Object.entries(seconds).map(([k, v]) => [k, median(v) * 1000])),
    };
  }
  return out;
}

// ---- standalone ---------------------------------------------------------------------------
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { startTestWorker } = await import("../scripts/lib/worker.mjs");
  log("starting the bench worker (gateway + passthrough, one workerd, one local R2)...");
  const worker = await startTestWorker({ config: fileURLToPath(new URL("./wrangler.toml", import.meta.url)) });
  try {
    console.log(JSON.stringify(await run({ endpoint: worker.endpoint, quick: process.argv.includes("--quick") })));
  } finally {
    await worker.dispose();
  }
}
