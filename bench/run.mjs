// `npm run bench`: encrypted vs passthrough on the same local R2, measured side by side in
// one run, plus memory, CPU and range-read figures. The last line printed is one JSON object.
//
//   npm run bench                 full run (16 MiB and 1 GiB objects; several minutes)
//   npm run bench -- --quick      16 MiB only (a smoke run)
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { startTestWorker } from "../scripts/lib/worker.mjs";
import { cpuSeconds, getStream, GiB, median, MiB, opensslAesGcm, percentile, putStream, rssBytes, withRssSampling, workerdPids } from "./lib/measure.mjs";
import { policyEvaluationMicros } from "./lib/policy.mjs";

const quick = process.argv.includes("--quick");
const SIZES = quick ? [16 * MiB] : [16 * MiB, GiB];
const REPEATS_SMALL = 3;
const RANGE_SAMPLES = quick ? 10 : 40;
const here = fileURLToPath(new URL(".", import.meta.url));

const log = (...a) => console.error(...a);
const mbps = (bytes, seconds) => bytes / seconds / 1e6;

log("starting the benchmark worker (gateway + passthrough, one workerd, one local R2)...");
const worker = await startTestWorker({ config: `${here}wrangler.toml` });
const endpoint = worker.endpoint;
const pids = workerdPids();
if (pids.length === 0) throw new Error("could not find the workerd process");
// The process with the largest RSS is the one running the workers (Miniflare may start helpers).
const pid = pids.sort((a, b) => rssBytes(b) - rssBytes(a))[0];

// WHEN_REQUIRED: the SDK would otherwise presign a CRC32 of the empty body into PUT URLs.
const s3 = new S3Client({ endpoint, region: "us-east-1", forcePathStyle: true, requestChecksumCalculation: "WHEN_REQUIRED", credentials: { accessKeyId: "LOCALADMINA", secretAccessKey: "local-admin-a-secret" } });
const bucket = "bench";
await s3.send(new CreateBucketCommand({ Bucket: bucket }));

async function encryptedPut(key, size) {
  const url = await getSignedUrl(s3, new PutObjectCommand({ Bucket: bucket, Key: key, ServerSideEncryption: "aws:kms" }), { expiresIn: 3600 });
  const r = await putStream(url, size, { "x-amz-server-side-encryption": "aws:kms" });
  if (r.status !== 200) throw new Error(`encrypted PUT ${key}: ${r.status} ${r.body}`);
  return r.seconds;
}
async function encryptedGet(key, range) {
  const url = await getSignedUrl(s3, new GetObjectCommand({ Bucket: bucket, Key: key }), { expiresIn: 3600 });
  const r = await getStream(url, range ? { range } : {});
  if (r.status !== (range ? 206 : 200)) throw new Error(`encrypted GET ${key}: ${r.status}`);
  return r;
}
async function passthroughPut(key, size) {
  const r = await putStream(`${endpoint}/_passthrough/${key}`, size);
  if (r.status !== 200) throw new Error(`passthrough PUT ${key}: ${r.status}`);
  return r.seconds;
}
async function passthroughGet(key, range) {
  const r = await getStream(`${endpoint}/_passthrough/${key}`, range ? { range } : {});
  if (r.status !== (range ? 206 : 200)) throw new Error(`passthrough GET ${key}: ${r.status}`);
  return r;
}

const results = { sizes: {}, range: {}, cpu: {}, policy: {} };

// ---- throughput and memory, interleaved so drift hits both sides alike ------------------
for (const size of SIZES) {
  const label = size >= GiB ? `${size / GiB}GiB` : `${size / MiB}MiB`;
  const repeats = size >= GiB ? 1 : REPEATS_SMALL;
  const row = { putEncrypted: [], putPassthrough: [], getEncrypted: [], getPassthrough: [], rss: {} };
  for (let i = 0; i < repeats; i++) {
    log(`${label}: round ${i + 1}/${repeats}`);
    const pPut = await withRssSampling(pid, () => passthroughPut(`p-${label}`, size));
    const ePut = await withRssSampling(pid, () => encryptedPut(`e-${label}`, size));
    const pGet = await withRssSampling(pid, () => passthroughGet(`p-${label}`));
    const eGet = await withRssSampling(pid, () => encryptedGet(`e-${label}`));
    if (eGet.result.bytes !== size || pGet.result.bytes !== size) throw new Error("short read");
    row.putPassthrough.push(mbps(size, pPut.result));
    row.putEncrypted.push(mbps(size, ePut.result));
    row.getPassthrough.push(mbps(size, pGet.result.seconds));
    row.getEncrypted.push(mbps(size, eGet.result.seconds));
    row.rss = {
      putEncryptedGrowthMiB: Math.max(row.rss.putEncryptedGrowthMiB ?? 0, ePut.growth / MiB),
      getEncryptedGrowthMiB: Math.max(row.rss.getEncryptedGrowthMiB ?? 0, eGet.growth / MiB),
      putPassthroughGrowthMiB: Math.max(row.rss.putPassthroughGrowthMiB ?? 0, pPut.growth / MiB),
      getPassthroughGrowthMiB: Math.max(row.rss.getPassthroughGrowthMiB ?? 0, pGet.growth / MiB),
    };
  }
  const m = (k) => median(row[k]);
  results.sizes[label] = {
    putEncryptedMBps: m("putEncrypted"),
    putPassthroughMBps: m("putPassthrough"),
    putRatio: m("putEncrypted") / m("putPassthrough"),
    getEncryptedMBps: m("getEncrypted"),
    getPassthroughMBps: m("getPassthrough"),
    getRatio: m("getEncrypted") / m("getPassthrough"),
    ...row.rss,
  };
}

// ---- CPU per GiB encrypted, next to openssl on the same machine ---------------------------
{
  const size = quick ? 64 * MiB : GiB;
  const before = cpuSeconds(pid);
  await passthroughPut("cpu-p", size);
  const mid = cpuSeconds(pid);
  await encryptedPut("cpu-e", size);
  const after = cpuSeconds(pid);
  const gib = size / GiB;
  const openssl = opensslAesGcm();
  results.cpu = {
    objectBytes: size,
    passthroughCpuSecondsPerGiB: (mid - before) / gib,
    encryptedCpuSecondsPerGiB: (after - mid) / gib,
    encryptionOverheadCpuSecondsPerGiB: (after - mid - (mid - before)) / gib,
    opensslAesGcmSecondsPerGiB: GiB / openssl,
  };
  results.cpu.overheadVsOpenssl = results.cpu.encryptionOverheadCpuSecondsPerGiB / results.cpu.opensslAesGcmSecondsPerGiB;
}

// ---- the encryption stages alone: workerd CPU per GiB next to openssl ---------------------
{
  const bytes = quick ? 256 * MiB : GiB;
  for (const op of ["encrypt", "decrypt"]) {
    const before = cpuSeconds(pid);
    const res = await fetch(`${endpoint}/_bench/${op}?bytes=${bytes}`);
    const body = await res.json();
    const cpu = cpuSeconds(pid) - before;
    results.cpu[`${op}StageCpuSecondsPerGiB`] = cpu / (body.bytes / GiB);
    results.cpu[`${op}StageMBps`] = body.bytes / 1e6 / (body.ms / 1000);
  }
  results.cpu.encryptStageVsOpenssl = results.cpu.encryptStageCpuSecondsPerGiB / results.cpu.opensslAesGcmSecondsPerGiB;
}

// ---- 1-byte ranges at random offsets of the largest object ---------------------------------
{
  const size = SIZES.at(-1);
  const label = size >= GiB ? `${size / GiB}GiB` : `${size / MiB}MiB`;
  const enc = [];
  const pass = [];
  for (let i = 0; i < RANGE_SAMPLES; i++) {
    const at = Math.floor(Math.random() * size);
    const range = `bytes=${at}-${at}`;
    const p = await passthroughGet(`p-${label}`, range);
    const e = await encryptedGet(`e-${label}`, range);
    if (p.bytes !== 1 || e.bytes !== 1) throw new Error("range length");
    pass.push(p.seconds * 1000);
    enc.push(e.seconds * 1000);
  }
  results.range = {
    objectSize: label,
    samples: RANGE_SAMPLES,
    // A 1-byte range inside one chunk reads exactly that chunk (FORMAT.md section 3).
    r2BytesReadPerRange: 65536 + 16,
    r2ChunksReadPerRange: 1,
    encryptedP50Ms: percentile(enc, 50),
    passthroughP50Ms: percentile(pass, 50),
    latencyRatioP50: percentile(enc, 50) / percentile(pass, 50),
    encryptedP99Ms: percentile(enc, 99),
    passthroughP99Ms: percentile(pass, 99),
  };
}

// ---- bucket policy evaluation cost (issue 5) ---------------------------------------------
results.policy = await policyEvaluationMicros();

// ---- optional suites contributed by other modules ----------------------------------------
for (const name of ["multipart"]) {
  const path = `${here}${name}.mjs`;
  if (!existsSync(path) || quick) continue;
  log(`running bench/${name}.mjs ...`);
  const mod = await import(path);
  results[name] = await mod.run({ endpoint, s3, bucket, pid, passthrough: `${endpoint}/_passthrough` });
}

await worker.dispose();

// ---- report -------------------------------------------------------------------------------
const f = (n, d = 2) => (Number.isFinite(n) ? n.toFixed(d) : "n/a");
console.log("\nThroughput (MB/s, median) and workerd RSS growth (MiB), encrypted SSE-KMS vs passthrough, same local R2:");
console.log("size     PUT enc  PUT pass  ratio   GET enc  GET pass  ratio   RSS+ PUT  RSS+ GET");
for (const [label, r] of Object.entries(results.sizes)) {
  console.log(
    `${label.padEnd(8)} ${f(r.putEncryptedMBps, 1).padStart(7)} ${f(r.putPassthroughMBps, 1).padStart(9)} ${f(r.putRatio).padStart(6)}  ${f(r.getEncryptedMBps, 1).padStart(8)} ${f(r.getPassthroughMBps, 1).padStart(9)} ${f(r.getRatio).padStart(6)}  ${f(r.putEncryptedGrowthMiB, 1).padStart(8)} ${f(r.getEncryptedGrowthMiB, 1).padStart(9)}`,
  );
}
const c = results.cpu;
console.log(`\nCPU (workerd, per GiB): encryption stage ${f(c.encryptStageCpuSecondsPerGiB)} s (${f(c.encryptStageMBps, 0)} MB/s), decryption stage ${f(c.decryptStageCpuSecondsPerGiB)} s (${f(c.decryptStageMBps, 0)} MB/s); openssl aes-256-gcm ${f(c.opensslAesGcmSecondsPerGiB)} s → encryption ${f(c.encryptStageVsOpenssl)}x openssl`);
console.log(`CPU (workerd, per GiB, including local R2 writes): passthrough PUT ${f(c.passthroughCpuSecondsPerGiB)} s, encrypted PUT ${f(c.encryptedCpuSecondsPerGiB)} s`);
const r = results.range;
console.log(`1-byte range of a ${r.objectSize} object: reads ${r.r2ChunksReadPerRange} chunk (${r.r2BytesReadPerRange} B) from R2; p50 ${f(r.encryptedP50Ms)} ms vs ${f(r.passthroughP50Ms)} ms passthrough (ratio ${f(r.latencyRatioP50)}); p99 ${f(r.encryptedP99Ms)} vs ${f(r.passthroughP99Ms)} ms`);
console.log(`Bucket policy evaluation (20 statements): ${f(results.policy.microsPerEvaluation)} µs per request`);
if (results.multipart) console.log(`Multipart: ${JSON.stringify(results.multipart)}`);
console.log(JSON.stringify({ date: new Date().toISOString(), quick, ...results }));
