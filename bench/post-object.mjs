// POST Object memory benchmark (issue 18): 16 concurrent browser-style POSTs of 50 MiB
// files (SSE-KMS), workerd RSS growth while they run.
//
//   node bench/post-object.mjs                     standalone: starts the bench worker itself
//   node bench/post-object.mjs --count 8 --size 20 8 POSTs of 20 MiB
//
// Each form is what @aws-sdk/s3-presigned-post and a browser send: the signed fields, then
// the file, then `--boundary--\r\n`. Two ways, each in its own worker after a warm-up:
//   streamed  with Content-Length: the gateway streams each 8 MiB part into R2 (no buffer);
//   buffered  the same forms chunked (no Content-Length), so the gateway cannot predict the
//             file's length and takes the buffered path — each POST holds up to two 8 MiB
//             part buffers, which is what every large POST did before issue 18;
//   passthrough  the same bytes as 16 bare R2 puts of the request body (the floor: what
//             the runtime and the local R2 simulator hold for 16 concurrent uploads).
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { createPresignedPost } from "@aws-sdk/s3-presigned-post";
import http from "node:http";
import { fileURLToPath } from "node:url";
import { cpuSeconds, MiB, pumpBlocks, putStream, rssBytes, withRssSampling, workerdPids } from "./lib/measure.mjs";

const log = (...a) => console.error(...a);

function formParts(fields, boundary) {
  let head = "";
  for (const [name, value] of Object.entries(fields)) head += `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`;
  head += `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`;
  return { head: Buffer.from(head), tail: Buffer.from(`\r\n--${boundary}--\r\n`) };
}

/** POSTs one form with a generated file of `size` bytes; chunked (no Content-Length) when asked. */
function postForm(url, fields, size, { chunked }) {
  const boundary = `----BenchBoundary${Math.random().toString(36).slice(2)}`;
  const { head, tail } = formParts(fields, boundary);
  const total = head.length + size + tail.length;
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const headers = { "content-type": `multipart/form-data; boundary=${boundary}`, ...(chunked ? { "transfer-encoding": "chunked" } : { "content-length": String(total) }) };
    const req = http.request(url, { method: "POST", headers }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d) => (body += d));
      res.on("end", () => resolve({ seconds: Number(process.hrtime.bigint() - started) / 1e9, status: res.statusCode, body, etag: res.headers.etag }));
    });
    req.on("error", reject);
    req.write(head);
    pumpBlocks(req, size, tail);
  });
}

/** The floor: the same bytes as bare R2 puts of the request body (bench/worker.ts's passthrough). */
async function passthroughRound(endpoint, label, count, size) {
  const started = process.hrtime.bigint();
  const results = await Promise.all(Array.from({ length: count }, (_, i) => putStream(`${endpoint}/_passthrough/post-${label}-${i}`, size)));
  for (const r of results) if (r.status !== 200) throw new Error(`passthrough PUT: ${r.status}`);
  return { seconds: Number(process.hrtime.bigint() - started) / 1e9, etags: [] };
}

async function round(s3, endpoint, bucket, label, count, size, chunked) {
  if (chunked === "passthrough") return passthroughRound(endpoint, label, count, size);
  const forms = await Promise.all(
    Array.from({ length: count }, (_, i) =>
      createPresignedPost(s3, { Bucket: bucket, Key: `${label}/${i}`, Fields: { "x-amz-server-side-encryption": "aws:kms" }, Conditions: [["content-length-range", 0, 5 * 1024 * MiB]], Expires: 3600 }),
    ),
  );
  const started = process.hrtime.bigint();
  const results = await Promise.all(forms.map((f) => postForm(`${endpoint}/${bucket}`, f.fields, size, { chunked })));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  for (const r of results) if (r.status !== 204) throw new Error(`POST ${label}: ${r.status} ${r.body}`);
  const etags = new Set(results.map((r) => r.etag));
  return { seconds, etags: [...etags] };
}

/**
 * Measures one way of sending with the bench worker already running ({ endpoint, pid }):
 * a warm-up of 4 POSTs, then `rounds` rounds of `count` concurrent POSTs, each sampled.
 */
export async function run({ endpoint, pid, count = 16, size = 50 * MiB, rounds = 2, chunked = false, bucket = "bench-post" }) {
  const s3 = new S3Client({ endpoint, region: "us-east-1", forcePathStyle: true, credentials: { accessKeyId: "LOCALADMINA", secretAccessKey: "local-admin-a-secret" } });
  await s3.send(new CreateBucketCommand({ Bucket: bucket })).catch(() => {});
  const mode = chunked === "passthrough" ? "passthrough" : chunked ? "buffered" : "streamed";
  // Warm-up, one whole round: workerd's RSS climbs over its first transfers (allocator,
  // local R2/D1 simulators) and then plateaus; growth is measured from there.
  const rssColdMiB = rssBytes(pid) / MiB;
  log(`post-object ${mode}: warm-up...`);
  await round(s3, endpoint, bucket, `warm-${mode}`, count, size, chunked);
  const out = { mode, count, sizeMiB: size / MiB, rssColdMiB, rounds: [] };
  for (let i = 1; i <= rounds; i++) {
    log(`post-object ${mode}: ${count} concurrent ${size / MiB} MiB POSTs, round ${i}/${rounds}...`);
    const cpuBefore = cpuSeconds(pid);
    const m = await withRssSampling(pid, () => round(s3, endpoint, bucket, `${mode}-${i}`, count, size, chunked));
    // workerd's CPU per GiB moved: wall time on a shared machine says little.
    const cpuPerGiB = (cpuSeconds(pid) - cpuBefore) / ((count * size) / (1024 * MiB));
    out.rounds.push({ rssGrowthMiB: m.growth / MiB, rssBaselineMiB: m.baseline / MiB, rssPeakMiB: m.peak / MiB, seconds: m.result.seconds, MBps: (count * size) / m.result.seconds / 1e6, cpuSecondsPerGiB: cpuPerGiB, etags: m.result.etags });
  }
  out.rssGrowthMiB = Math.max(...out.rounds.map((r) => r.rssGrowthMiB));
  out.etags = [...new Set(out.rounds.flatMap((r) => r.etags))];
  return out;
}

// ---- standalone ---------------------------------------------------------------------------
// Each way gets a fresh worker (RSS a process has grown to is not given back, so a mode
// measured after another would start from the other's plateau).
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { startTestWorker } = await import("../scripts/lib/worker.mjs");
  const arg = (name, fallback) => {
    const at = process.argv.indexOf(name);
    return at > 0 ? Number(process.argv[at + 1]) : fallback;
  };
  const results = [];
  // --only streamed|buffered|passthrough measures one way.
  const only = process.argv.includes("--only") ? process.argv[process.argv.indexOf("--only") + 1] : null;
  const ways = { streamed: false, buffered: true, passthrough: "passthrough" };
  for (const chunked of only ? [ways[only]] : Object.values(ways)) {
    log("starting the bench worker (one workerd, one local R2)...");
    const worker = await startTestWorker({ config: fileURLToPath(new URL("./wrangler.toml", import.meta.url)) });
    try {
      const pids = workerdPids();
      if (pids.length === 0) throw new Error("could not find the workerd process");
      const pid = pids.sort((a, b) => rssBytes(b) - rssBytes(a))[0];
      results.push(await run({ endpoint: worker.endpoint, pid, chunked, count: arg("--count", 16), size: arg("--size", 50) * MiB, rounds: arg("--rounds", 2) }));
    } finally {
      await worker.dispose();
    }
  }
  if (only) {
    console.log(JSON.stringify(results[0], null, 2));
    process.exit(0);
  }
  const [streamed, buffered, passthrough] = results;
  // Same bytes, same ETag, whichever way they were stored.
  const summary = { streamed, buffered, passthrough, sameEtag: new Set([...streamed.etags, ...buffered.etags]).size === 1, meetsTarget: streamed.rssGrowthMiB < 64 };
  console.log(JSON.stringify(summary, null, 2));
}
