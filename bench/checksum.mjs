// Checksum throughput: MB/s of each body checksum (CRC32, CRC32C, CRC64NVME, SHA1, SHA256,
// MD5) inside workerd, computed by the bench worker's /_bench/checksum route
// (bench/worker.ts) with the production hashers over random bytes in 64 KiB pieces, and
// the former JS CRC64NVME and CRC32C ("… JS") beside their WebAssembly replacements.
//
//   node bench/checksum.mjs             standalone: starts the bench worker itself (~10 s)
//   node bench/checksum.mjs --mib 64    bytes hashed per algorithm, in MiB (default 16)
//   node bench/checksum.mjs --piece 1048576   update() size in bytes (default 65536)
// Standalone, it also reads workerd's CPU seconds per GiB of each algorithm from /proc.
//   bench/run.mjs imports run() with its worker (npm run bench).
import { fileURLToPath } from "node:url";
import { cpuSeconds, GiB, MiB, rssBytes, workerdPids } from "./lib/measure.mjs";

/**
 * MB/s of every algorithm in one request (timed inside workerd); with `pid` (the workerd
 * process), also workerd CPU seconds per GiB, one algorithm per request: /proc counts CPU
 * in 10 ms ticks, so give it enough bytes (--mib 256 makes the fastest ~10 ticks).
 */
export async function run({ endpoint, mib = 16, piece = 65536, pid }) {
  const call = async (only) => {
    const res = await fetch(`${endpoint}/_bench/checksum?bytes=${mib * MiB}&piece=${piece}${only === undefined ? "" : `&only=${encodeURIComponent(only)}`}`);
    if (!res.ok) throw new Error(`checksum bench: ${res.status} ${await res.text()}`);
    return res.json();
  };
  const { bytes, mbps } = await call(undefined);
  if (pid === undefined) return { bytes, MBps: mbps };
  const cpuSecondsPerGiB = {};
  for (const name of Object.keys(mbps)) {
    const before = cpuSeconds(pid);
    const { warmBytes } = await call(name);
    cpuSecondsPerGiB[name] = (cpuSeconds(pid) - before) / ((bytes + warmBytes) / GiB);
  }
  return { bytes, MBps: mbps, cpuSecondsPerGiB };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const arg = (name, fallback) => {
    const at = process.argv.indexOf(name);
    return at > 0 ? Number(process.argv[at + 1]) : fallback;
  };
  const mib = arg("--mib", 16);
  const piece = arg("--piece", 65536);
  const { startTestWorker } = await import("../scripts/lib/worker.mjs");
  const worker = await startTestWorker({ config: fileURLToPath(new URL("./wrangler.toml", import.meta.url)) });
  try {
    const pid = workerdPids().sort((a, b) => rssBytes(b) - rssBytes(a))[0];
    const r = await run({ endpoint: worker.endpoint, mib, piece, pid });
    for (const [alg, v] of Object.entries(r.MBps)) console.log(`${alg.padEnd(14)} ${v.toFixed(0).padStart(6)} MB/s  ${r.cpuSecondsPerGiB[alg].toFixed(2).padStart(6)} CPU s/GiB`);
    console.log(JSON.stringify(r));
  } finally {
    await worker.dispose();
  }
}
