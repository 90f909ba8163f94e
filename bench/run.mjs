// `npm run bench`: encrypted vs passthrough on the same local R2, measured side by side in
// one run, plus memory, CPU, latency and range-read figures. Writes bench/out/report.md,
// bench/out/bench.png (and .svg) and bench/out/results.json; the last line printed is one
// JSON object of all figures.
//
//   npm run bench                 full run (1 KiB to 1 GiB objects; ~15 minutes on 2 cores)
//   npm run bench -- --quick      1 KiB to 16 MiB, fewer repetitions (a smoke run)
//   npm run bench -- --out DIR    write the report there instead (docs/bench holds the
//                                 run the README quotes)
//
// Run it on an otherwise idle machine: other processes' CPU use shows up in every figure
// (the report records the load average before and after).
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { startTestWorker } from "../scripts/lib/worker.mjs";
import { cpuSeconds, getStream, GiB, median, MiB, opensslAesGcm, percentile, putStream, rssBytes, withRssSampling, workerdPids } from "./lib/measure.mjs";
import { policyEvaluationMicros } from "./lib/policy.mjs";
import { environment, evaluateTargets, writeReport } from "./lib/report.mjs";

const quick = process.argv.includes("--quick");
const KiB = 1024;
/** [object size, repetitions]: small objects are dominated by per-request costs, so they get many. */
const PLAN = quick
  ? [[KiB, 60], [64 * KiB, 30], [MiB, 10], [16 * MiB, 3]]
  : [[KiB, 300], [64 * KiB, 150], [MiB, 40], [16 * MiB, 9], [256 * MiB, 3], [GiB, 3]];
const SIZES = PLAN.map(([size]) => size);
const RANGE_SAMPLES = quick ? 10 : 40;
const here = fileURLToPath(new URL(".", import.meta.url));
const outFlag = process.argv.indexOf("--out");
const outDir = outFlag > 0 && process.argv[outFlag + 1] ? resolve(process.argv[outFlag + 1]) : `${here}out`;
const startedAt = Date.now();
const env = environment();
const sizeLabel = (size) => (size >= GiB ? `${size / GiB}GiB` : size >= MiB ? `${size / MiB}MiB` : `${size / KiB}KiB`);

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
async function encryptedGet(key, range, headers = {}) {
  const url = await getSignedUrl(s3, new GetObjectCommand({ Bucket: bucket, Key: key }), { expiresIn: 3600 });
  const r = await getStream(url, range ? { range, ...headers } : headers);
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

const results = { sizes: {}, latency: {}, range: {}, cpu: {}, policy: {} };

// ---- warm-up: workerd's RSS climbs to a plateau over the first few hundred MiB moved (the
// allocator, the local R2/D1 simulators; the passthrough shows it too), and the first
// requests compile code and fill the key caches. Measure from there, on both sides.
{
  const warm = quick ? 32 * MiB : 256 * MiB;
  log(`warm-up: ${warm / MiB} MiB and 50 small objects each side...`);
  for (let i = 0; i < 50; i++) {
    await passthroughPut("warm-small", KiB);
    await encryptedPut("warm-small", KiB);
    await passthroughGet("warm-small");
    await encryptedGet("warm-small");
  }
  await passthroughPut("warm", warm);
  await encryptedPut("warm", warm);
  await passthroughGet("warm");
  await encryptedGet("warm");
}

// ---- throughput, memory, CPU and latency per size, interleaved so drift hits both sides alike
/** Seconds of a GET that returned the whole object. */
function whole(r, size) {
  if (r.bytes !== size) throw new Error(`short read: ${r.bytes} of ${size} bytes`);
  return r.seconds;
}

/** One transfer with its time, workerd RSS growth and workerd CPU seconds. */
async function measured(work) {
  const cpuBefore = cpuSeconds(pid);
  const sampled = await withRssSampling(pid, work);
  return { ...sampled, cpu: cpuSeconds(pid) - cpuBefore };
}

for (const [size, repeats] of PLAN) {
  const label = sizeLabel(size);
  const kinds = ["putEncrypted", "putPassthrough", "getEncrypted", "getPassthrough"];
  const row = Object.fromEntries(kinds.map((k) => [k, { seconds: [], growth: 0, cpu: 0 }]));
  const rssStart = rssBytes(pid);
  log(`${label}: ${repeats} round${repeats > 1 ? "s" : ""}...`);
  for (let i = 0; i < repeats; i++) {
    if (size >= 16 * MiB) log(`${label}: round ${i + 1}/${repeats}`);
    // Alternate which side goes first, so neither always runs on a just-warmed cache.
    const steps = [
      ["putPassthrough", () => passthroughPut(`p-${label}`, size)],
      ["putEncrypted", () => encryptedPut(`e-${label}`, size)],
      ["getPassthrough", async () => whole(await passthroughGet(`p-${label}`), size)],
      ["getEncrypted", async () => whole(await encryptedGet(`e-${label}`), size)],
    ];
    const order = i % 2 === 0 ? steps : [steps[1], steps[0], steps[3], steps[2]];
    for (const [kind, work] of order) {
      const m = await measured(work);
      row[kind].seconds.push(m.result);
      row[kind].growth = Math.max(row[kind].growth, m.growth);
      row[kind].cpu += m.cpu;
    }
  }
  const mb = (k) => mbps(size, median(row[k].seconds));
  const gib = (size * repeats) / GiB;
  const ms = (k, p) => percentile(row[k].seconds, p) * 1000;
  results.sizes[label] = {
    bytes: size,
    repetitions: repeats,
    putEncryptedMBps: mb("putEncrypted"),
    putPassthroughMBps: mb("putPassthrough"),
    putRatio: mb("putEncrypted") / mb("putPassthrough"),
    getEncryptedMBps: mb("getEncrypted"),
    getPassthroughMBps: mb("getPassthrough"),
    getRatio: mb("getEncrypted") / mb("getPassthrough"),
    putEncryptedGrowthMiB: row.putEncrypted.growth / MiB,
    getEncryptedGrowthMiB: row.getEncrypted.growth / MiB,
    putPassthroughGrowthMiB: row.putPassthrough.growth / MiB,
    getPassthroughGrowthMiB: row.getPassthrough.growth / MiB,
    rssStartMiB: rssStart / MiB,
    rssEndMiB: rssBytes(pid) / MiB,
    cpuSecondsPerGiB: Object.fromEntries(kinds.map((k) => [k, row[k].cpu / gib])),
    // /proc counts CPU in 10 ms ticks: per-request figures of small objects are averages over many.
    cpuMsPerRequest: Object.fromEntries(kinds.map((k) => [k, (row[k].cpu / repeats) * 1000])),
    latencyMs: Object.fromEntries(kinds.map((k) => [k, { p50: ms(k, 50), p99: ms(k, 99) }])),
  };
}

// ---- small-object latency (the 1 KiB rows above) ---------------------------------------------
{
  const r = results.sizes[sizeLabel(KiB)];
  const l = r.latencyMs;
  results.latency = {
    objectSize: sizeLabel(KiB),
    samples: r.repetitions,
    putEncryptedP50Ms: l.putEncrypted.p50,
    putEncryptedP99Ms: l.putEncrypted.p99,
    putPassthroughP50Ms: l.putPassthrough.p50,
    putPassthroughP99Ms: l.putPassthrough.p99,
    getEncryptedP50Ms: l.getEncrypted.p50,
    getEncryptedP99Ms: l.getEncrypted.p99,
    getPassthroughP50Ms: l.getPassthrough.p50,
    getPassthroughP99Ms: l.getPassthrough.p99,
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
  const label = sizeLabel(size);
  const enc = [];
  const pass = [];
  const gets = [];
  const bytes = [];
  for (let i = 0; i < RANGE_SAMPLES; i++) {
    const at = Math.floor(Math.random() * size);
    const range = `bytes=${at}-${at}`;
    const p = await passthroughGet(`p-${label}`, range);
    // The bench worker counts the R2 gets and stored bytes this request reads (bench/worker.ts).
    const e = await encryptedGet(`e-${label}`, range, { "x-bench-count-r2": "1" });
    if (p.bytes !== 1 || e.bytes !== 1) throw new Error("range length");
    pass.push(p.seconds * 1000);
    enc.push(e.seconds * 1000);
    gets.push(Number(e.headers["x-bench-r2-gets"]));
    bytes.push(Number(e.headers["x-bench-r2-bytes"]));
  }
  const ENCRYPTED_CHUNK = 65536 + 16;
  results.range = {
    objectSize: label,
    samples: RANGE_SAMPLES,
    // Measured: the largest number of R2 gets and stored bytes any of the ranges read.
    r2GetsPerRange: Math.max(...gets),
    r2BytesReadPerRange: Math.max(...bytes),
    r2ChunksReadPerRange: Math.ceil(Math.max(...bytes) / ENCRYPTED_CHUNK),
    encryptedP50Ms: percentile(enc, 50),
    passthroughP50Ms: percentile(pass, 50),
    latencyRatioP50: percentile(enc, 50) / percentile(pass, 50),
    encryptedP99Ms: percentile(enc, 99),
    passthroughP99Ms: percentile(pass, 99),
  };
}

// ---- bucket policy evaluation cost (issue 5; alone: node bench/lib/policy.mjs) ------------
results.policy = await policyEvaluationMicros();

// ---- body checksum throughput inside workerd (alone: node bench/checksum.mjs) -------------
results.checksum = await (await import(`${here}checksum.mjs`)).run({ endpoint });

// ---- request-body verification inside workerd (src/auth/body.ts), per way a body arrives ----
{
  const res = await fetch(`${endpoint}/_bench/body?bytes=${(quick ? 16 : 64) * MiB}`);
  if (!res.ok) throw new Error(`body bench: ${res.status} ${await res.text()}`);
  const { bytes, mbps } = await res.json();
  results.body = { bytes, MBps: mbps };
}

// ---- optional suites contributed by other modules ----------------------------------------
for (const name of ["multipart", "external-cmk", "checksum-put", "checksum-cost", "sse-c"]) {
  const path = `${here}${name}.mjs`;
  if (!existsSync(path) || quick) continue;
  log(`running bench/${name}.mjs ...`);
  const mod = await import(path);
  results[name] = await mod.run({ endpoint, s3, bucket, pid, passthrough: `${endpoint}/_passthrough` });
}

await worker.dispose();

// ---- concurrent browser POSTs (issue 18): a fresh worker, since RSS growth is the figure ----
if (!quick && existsSync(`${here}post-object.mjs`)) {
  log("running bench/post-object.mjs (16 concurrent 50 MiB POSTs) in a fresh worker ...");
  const postWorker = await startTestWorker({ config: resolve(here, "wrangler.toml") });
  try {
    const postPid = workerdPids().sort((a, b) => rssBytes(b) - rssBytes(a))[0];
    results["post-object"] = await (await import(`${here}post-object.mjs`)).run({ endpoint: postWorker.endpoint, pid: postPid });
  } finally {
    await postWorker.dispose();
  }
}
results.environment = { ...env, loadAfter: loadavg().map((l) => l.toFixed(2)).join(" ") };
results.durationSeconds = (Date.now() - startedAt) / 1000;
results.date = new Date().toISOString();
results.quick = quick;
results.targets = evaluateTargets(results);

// ---- report: <out>/{report.md,bench.png,bench.svg,results.json}, then the console -------
mkdirSync(outDir, { recursive: true });
writeFileSync(`${outDir}/results.json`, JSON.stringify(results, null, 2));
try {
  await writeReport(results, outDir);
  log(`wrote ${outDir}/report.md and ${outDir}/bench.png`);
} catch (error) {
  // The figures still print below; only the chart needs Chromium.
  log(`could not write the report/chart: ${error.message}`);
}

const f = (n, d = 2) => (Number.isFinite(n) ? n.toFixed(d) : "n/a");
console.log("\nThroughput (MB/s, median) and workerd RSS growth (MiB), encrypted SSE-KMS vs passthrough, same local R2:");
console.log("size     PUT enc  PUT pass  ratio   GET enc  GET pass  ratio   RSS+ PUT  RSS+ GET  CPU s/GiB PUT enc/pass  GET enc/pass");
for (const [label, r] of Object.entries(results.sizes)) {
  console.log(
    `${label.padEnd(8)} ${f(r.putEncryptedMBps, 1).padStart(7)} ${f(r.putPassthroughMBps, 1).padStart(9)} ${f(r.putRatio).padStart(6)}  ${f(r.getEncryptedMBps, 1).padStart(8)} ${f(r.getPassthroughMBps, 1).padStart(9)} ${f(r.getRatio).padStart(6)}  ${f(r.putEncryptedGrowthMiB, 1).padStart(8)} ${f(r.getEncryptedGrowthMiB, 1).padStart(9)}  ${f(r.cpuSecondsPerGiB.putEncrypted).padStart(12)} / ${f(r.cpuSecondsPerGiB.putPassthrough)}  ${f(r.cpuSecondsPerGiB.getEncrypted)} / ${f(r.cpuSecondsPerGiB.getPassthrough)}`,
  );
}
const c = results.cpu;
console.log(`\nCPU (workerd, per GiB): encryption stage ${f(c.encryptStageCpuSecondsPerGiB)} s (${f(c.encryptStageMBps, 0)} MB/s), decryption stage ${f(c.decryptStageCpuSecondsPerGiB)} s (${f(c.decryptStageMBps, 0)} MB/s); openssl aes-256-gcm ${f(c.opensslAesGcmSecondsPerGiB)} s → encryption ${f(c.encryptStageVsOpenssl)}x openssl`);
console.log(`CPU (workerd, per GiB, including local R2 writes): passthrough PUT ${f(c.passthroughCpuSecondsPerGiB)} s, encrypted PUT ${f(c.encryptedCpuSecondsPerGiB)} s`);
const l = results.latency;
console.log(`${l.objectSize} latency p50/p99 (ms): PUT ${f(l.putEncryptedP50Ms)}/${f(l.putEncryptedP99Ms)} encrypted vs ${f(l.putPassthroughP50Ms)}/${f(l.putPassthroughP99Ms)} passthrough; GET ${f(l.getEncryptedP50Ms)}/${f(l.getEncryptedP99Ms)} vs ${f(l.getPassthroughP50Ms)}/${f(l.getPassthroughP99Ms)}`);
const r = results.range;
console.log(`1-byte range of a ${r.objectSize} object: reads ${r.r2ChunksReadPerRange} chunk(s) (${r.r2BytesReadPerRange} B, ${r.r2GetsPerRange} get) from R2; p50 ${f(r.encryptedP50Ms)} ms vs ${f(r.passthroughP50Ms)} ms passthrough (ratio ${f(r.latencyRatioP50)}); p99 ${f(r.encryptedP99Ms)} vs ${f(r.passthroughP99Ms)} ms`);
console.log(`Bucket policy evaluation (20 statements): ${f(results.policy.microsPerEvaluation)} µs per request`);
console.log(`Checksums (MB/s in workerd, 64 KiB pieces): ${Object.entries(results.checksum.MBps).map(([a, v]) => `${a} ${f(v, 0)}`).join(", ")}`);
console.log(`Request-body verification (MB/s in workerd): ${Object.entries(results.body.MBps).map(([a, v]) => `${a} ${f(v, 0)}`).join(", ")}`);
if (results.multipart) console.log(`Multipart: ${JSON.stringify(results.multipart)}`);
const x = results["external-cmk"];
if (x) console.log(`External CMK: ${f(x.callsPer1000Puts)} external calls per 1,000 PUTs; 1 KiB p50 PUT ${f(x.latencyMs.external.putP50)} vs ${f(x.latencyMs.local.putP50)} ms local (${f(x.putP50Ratio)}x), GET ${f(x.latencyMs.external.getP50)} vs ${f(x.latencyMs.local.getP50)} ms (${f(x.getP50Ratio)}x)`);
const cp = results["checksum-put"];
if (cp) console.log(`Stored checksums, ${cp.objectSize} PUT (MB/s, ratio to passthrough): SDK v3 CRC32 trailer ${f(cp.putTrailerMBps, 1)} (${f(cp.putTrailerRatio)}), no checksum → gateway CRC64NVME ${f(cp.putPlainDefaultCrc64MBps, 1)} (${f(cp.putPlainRatio)}); GET ${f(cp.getMBps, 1)}, with checksum mode ${f(cp.getWithChecksumModeMBps, 1)}`);
const cc = results["checksum-cost"];
if (cc) console.log(`Default CRC64NVME, ${cc.objectSize} PUT side by side: ratio ${f(cc.ratio.default)} without a checksum vs ${f(cc.ratio.crc32)} with the client's CRC32 (${f(cc.ratioDropPoints, 1)} points), ${f(cc.defaultChecksumCpuSecondsPerGiB)} CPU s/GiB`);
const po = results["post-object"];
if (po) console.log(`POST Object: ${po.count} concurrent ${po.sizeMiB} MiB POSTs, workerd RSS growth ${f(po.rssGrowthMiB, 1)} MiB (rounds: ${po.rounds.map((r) => `${f(r.rssGrowthMiB, 1)} MiB, ${f(r.seconds, 1)} s, ${f(r.cpuSecondsPerGiB)} CPU s/GiB`).join("; ")})`);
if (results["sse-c"]) {
  console.log("SSE-C vs SSE-KMS (MB/s, median; ratio to passthrough):");
  for (const [label, r] of Object.entries(results["sse-c"].sizes)) {
    console.log(`  ${label.padEnd(7)} PUT SSE-C ${f(r.putMBps.sseC, 1)} (${f(r.putRatio.sseC)}) SSE-KMS ${f(r.putMBps.sseKms, 1)} (${f(r.putRatio.sseKms)})   GET SSE-C ${f(r.getMBps.sseC, 1)} (${f(r.getRatio.sseC)}) SSE-KMS ${f(r.getMBps.sseKms, 1)} (${f(r.getRatio.sseKms)})`);
  }
}
console.log("Targets:");
for (const t of results.targets) console.log(`  ${t.met ? "met   " : "MISSED"} ${t.name}: ${t.value} (target ${t.target})`);
console.log(JSON.stringify(results));
