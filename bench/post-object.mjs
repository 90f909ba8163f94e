// POST Object memory benchmark (issue 18): 16 concurrent browser-style POSTs of 50 MiB
// files (SSE-KMS), workerd RSS growth while they run.
//
//   node bench/post-object.mjs                     standalone: starts the bench worker itself
//   node bench/post-object.mjs --count 8 --size 20 8 POSTs of 20 MiB
//
// Each form is what @aws-sdk/s3-presigned-post and a browser send: the signed fields, then
// the file, then `--boundary--\r\n`. Two rounds, both measured against the same plateau:
//   streamed  with Content-Length: the gateway streams each 8 MiB part into R2 (no buffer);
//   buffered  the same forms chunked (no Content-Length), so the gateway cannot predict the
//             file's length and takes the buffered path — each POST holds up to two 8 MiB
//             part buffers, which is what every large POST did before issue 18.
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { createPresignedPost } from "@aws-sdk/s3-presigned-post";
import http from "node:http";
import { fileURLToPath } from "node:url";
import { MiB, rssBytes, withRssSampling, workerdPids } from "./lib/measure.mjs";

const log = (...a) => console.error(...a);

/** 1 MiB of bytes repeated; content does not change the cost. */
const BLOCK = Buffer.alloc(MiB);
for (let i = 0; i < MiB; i++) BLOCK[i] = (i * 2654435761) >>> 24;

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
    let sent = 0;
    const pump = () => {
      while (sent < size) {
        const n = Math.min(BLOCK.length, size - sent);
        sent += n;
        if (!req.write(n === BLOCK.length ? BLOCK : BLOCK.subarray(0, n))) return req.once("drain", pump);
      }
      req.end(tail);
    };
    pump();
  });
}

async function round(s3, endpoint, bucket, label, count, size, chunked) {
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

/** Measures with the bench worker already running ({ endpoint, pid }). */
export async function run({ endpoint, pid, count = 16, size = 50 * MiB, bucket = "bench-post" }) {
  const s3 = new S3Client({ endpoint, region: "us-east-1", forcePathStyle: true, credentials: { accessKeyId: "LOCALADMINA", secretAccessKey: "local-admin-a-secret" } });
  await s3.send(new CreateBucketCommand({ Bucket: bucket })).catch(() => {});
  // Warm-up, both ways: workerd's RSS climbs over its first transfers (allocator, local
  // R2/D1 simulators) and then plateaus; growth is measured from there.
  log("post-object: warm-up...");
  await round(s3, endpoint, bucket, "warm-s", 4, size, false);
  await round(s3, endpoint, bucket, "warm-b", 4, size, true);
  const out = { count, sizeMiB: size / MiB, rounds: {} };
  for (const [name, chunked] of [["streamed", false], ["buffered", true], ["streamed2", false], ["buffered2", true]]) {
    log(`post-object: ${count} concurrent ${size / MiB} MiB POSTs, ${name}...`);
    const m = await withRssSampling(pid, () => round(s3, endpoint, bucket, name, count, size, chunked));
    out.rounds[name] = { rssGrowthMiB: m.growth / MiB, rssBaselineMiB: m.baseline / MiB, seconds: m.result.seconds, MBps: (count * size) / m.result.seconds / 1e6, etags: m.result.etags };
  }
  // Same bytes, same ETag, whichever way they were stored.
  const all = new Set(Object.values(out.rounds).flatMap((r) => r.etags));
  out.sameEtag = all.size === 1;
  out.meetsTarget = Math.max(out.rounds.streamed.rssGrowthMiB, out.rounds.streamed2.rssGrowthMiB) < 64;
  return out;
}

// ---- standalone ---------------------------------------------------------------------------
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { startTestWorker } = await import("../scripts/lib/worker.mjs");
  const arg = (name, fallback) => {
    const at = process.argv.indexOf(name);
    return at > 0 ? Number(process.argv[at + 1]) : fallback;
  };
  log("starting the bench worker (one workerd, one local R2)...");
  const worker = await startTestWorker({ config: fileURLToPath(new URL("./wrangler.toml", import.meta.url)) });
  try {
    const pids = workerdPids();
    if (pids.length === 0) throw new Error("could not find the workerd process");
    const pid = pids.sort((a, b) => rssBytes(b) - rssBytes(a))[0];
    console.log(JSON.stringify(await run({ endpoint: worker.endpoint, pid, count: arg("--count", 16), size: arg("--size", 50) * MiB }), null, 2));
  } finally {
    await worker.dispose();
  }
}
