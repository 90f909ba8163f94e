// What S3's default checksum costs a large PUT (issue 13: "PUT/GET ratios must not drop
// more than 2 points"). Since stored checksums, a PUT that carries no checksum makes the
// gateway compute CRC64NVME over every byte, as S3 does; before, it computed nothing extra.
//
//   node bench/checksum-cost.mjs [--mib 256] [--rounds 5]   (starts the bench worker)
//   bench/run.mjs imports run() with its worker (npm run bench).
//
// Interleaved, same gateway, SSE-KMS, presigned PUTs of the same bytes:
//   - "default": no checksum — the gateway computes CRC64NVME (the wasm loop);
//   - "crc32": the client's CRC32 in a signed header — the gateway verifies it (node:zlib's
//     native CRC32, ~8 GB/s) and seals it; no CRC64NVME: the closest this tree has to a
//     PUT before stored checksums;
//   - "passthrough": the bare R2 route.
// The drop the default checksum causes is ratio(crc32) − ratio(default), measured side by
// side; workerd CPU per GiB is read from /proc around each PUT.
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { crc32 } from "node:zlib";
import { cpuSeconds, GiB, median, MiB, putStream } from "./lib/measure.mjs";

/** The bytes putStream sends (measure.mjs's repeated 1 MiB block), as their CRC32 in base64. */
function crc32Of(size) {
  const block = Buffer.alloc(MiB);
  for (let i = 0; i < MiB; i++) block[i] = (i * 2654435761) >>> 24;
  let crc = 0;
  for (let left = size; left > 0; left -= MiB) crc = crc32(left >= MiB ? block : block.subarray(0, left), crc);
  const out = Buffer.alloc(4);
  out.writeUInt32BE(crc >>> 0);
  return out.toString("base64");
}

export async function run({ endpoint, s3, bucket, pid, mib = 256, rounds = 5 }) {
  const size = mib * MiB;
  const sum = crc32Of(size);
  const ways = {
    default: async () => {
      const url = await getSignedUrl(s3, new PutObjectCommand({ Bucket: bucket, Key: "cost-default", ServerSideEncryption: "aws:kms" }), { expiresIn: 3600 });
      return putStream(url, size, { "x-amz-server-side-encryption": "aws:kms" });
    },
    crc32: async () => {
      const headers = { "x-amz-server-side-encryption": "aws:kms", "x-amz-checksum-crc32": sum };
      const url = await getSignedUrl(s3, new PutObjectCommand({ Bucket: bucket, Key: "cost-crc32", ServerSideEncryption: "aws:kms", ChecksumCRC32: sum }), {
        expiresIn: 3600,
        signableHeaders: new Set(["x-amz-checksum-crc32"]),
        unhoistableHeaders: new Set(["x-amz-checksum-crc32"]),
      });
      return putStream(url, size, headers);
    },
    passthrough: () => putStream(`${endpoint}/_passthrough/cost-pass`, size),
  };
  const seconds = { default: [], crc32: [], passthrough: [] };
  const cpu = { default: 0, crc32: 0, passthrough: 0 };
  const order = Object.keys(ways);
  for (let round = 0; round <= rounds; round++) {
    // Round 0 warms up; then each round rotates which way goes first.
    for (let i = 0; i < order.length; i++) {
      const way = order[(i + round) % order.length];
      const before = cpuSeconds(pid);
      const r = await ways[way]();
      if (r.status !== 200) throw new Error(`${way} PUT: ${r.status} ${r.body}`);
      if (round === 0) continue;
      cpu[way] += cpuSeconds(pid) - before;
      seconds[way].push(r.seconds);
    }
  }
  const MBps = Object.fromEntries(order.map((w) => [w, size / median(seconds[w]) / 1e6]));
  const ratio = { default: MBps.default / MBps.passthrough, crc32: MBps.crc32 / MBps.passthrough };
  const cpuPerGiB = Object.fromEntries(order.map((w) => [w, cpu[w] / ((rounds * size) / GiB)]));
  return { objectSize: `${mib}MiB`, rounds, MBps, ratio, ratioDropPoints: (ratio.crc32 - ratio.default) * 100, cpuSecondsPerGiB: cpuPerGiB, defaultChecksumCpuSecondsPerGiB: cpuPerGiB.default - cpuPerGiB.crc32 };
}

// ---- standalone ---------------------------------------------------------------------------
const { fileURLToPath } = await import("node:url");
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { startTestWorker } = await import("../scripts/lib/worker.mjs");
  const { CreateBucketCommand } = await import("@aws-sdk/client-s3");
  const { rssBytes, workerdPids } = await import("./lib/measure.mjs");
  const arg = (name, fallback) => (process.argv.includes(name) ? Number(process.argv[process.argv.indexOf(name) + 1]) : fallback);
  const worker = await startTestWorker({ config: fileURLToPath(new URL("./wrangler.toml", import.meta.url)) });
  try {
    const pid = workerdPids().sort((a, b) => rssBytes(b) - rssBytes(a))[0];
    const { benchClient } = await import("./lib/client.mjs");
    const s3 = benchClient(worker.endpoint);
    await s3.send(new CreateBucketCommand({ Bucket: "bench-cost" })).catch(() => {});
    console.log(JSON.stringify(await run({ endpoint: worker.endpoint, s3, bucket: "bench-cost", pid, mib: arg("--mib", 256), rounds: arg("--rounds", 5) }), null, 2));
  } finally {
    await worker.dispose();
  }
}
