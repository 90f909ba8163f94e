// Checksum throughput: MB/s of each body checksum (CRC32, CRC32C, CRC64NVME, SHA1, SHA256,
// MD5) inside workerd, computed by the bench worker's /_bench/checksum route
// (bench/worker.ts) with the production hashers over random bytes in 64 KiB pieces, and
// the former JS CRC64NVME and CRC32C ("… JS") beside their WebAssembly replacements.
//
//   node bench/checksum.mjs             standalone: starts the bench worker itself (~10 s)
//   node bench/checksum.mjs --mib 64    bytes hashed per algorithm, in MiB (default 16)
//   node bench/checksum.mjs --piece 1048576   update() size in bytes (default 65536)
//   bench/run.mjs imports run() with its worker (npm run bench).
import { fileURLToPath } from "node:url";

const MiB = 1024 * 1024;

export async function run({ endpoint, mib = 16, piece = 65536 }) {
  const res = await fetch(`${endpoint}/_bench/checksum?bytes=${mib * MiB}&piece=${piece}`);
  if (!res.ok) throw new Error(`checksum bench: ${res.status} ${await res.text()}`);
  const { bytes, mbps } = await res.json();
  return { bytes, MBps: mbps };
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
    const r = await run({ endpoint: worker.endpoint, mib, piece });
    // A hasher is pure CPU on the isolate's thread, so its CPU per GiB is the time per GiB.
    for (const [alg, v] of Object.entries(r.MBps)) console.log(`${alg.padEnd(14)} ${v.toFixed(0).padStart(6)} MB/s  ${(1073.741824 / v).toFixed(2).padStart(6)} CPU s/GiB`);
    console.log(JSON.stringify(r));
  } finally {
    await worker.dispose();
  }
}
