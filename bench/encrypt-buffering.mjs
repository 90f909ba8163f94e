// What encryptingStream's buffering costs in CPU (issue 18, POST Object memory): the
// encryption stage alone (bench worker's /_bench/encrypt, generated plaintext, no R2, no
// HTTP body), drained directly and through a FixedLengthStream, for PUT's 1 MiB steps
// with two queued and the POST path's 256 KiB steps with one, interleaved round by round
// so both see the same machine load. Prints workerd CPU seconds per GiB.
//
//   node bench/encrypt-buffering.mjs [--rounds 5] [--size 1024 (MiB)]
import { fileURLToPath } from "node:url";
import { cpuSeconds, median, MiB, rssBytes, workerdPids } from "./lib/measure.mjs";

const arg = (name, fallback) => {
  const at = process.argv.indexOf(name);
  return at > 0 ? Number(process.argv[at + 1]) : fallback;
};
const rounds = arg("--rounds", 5);
const bytes = arg("--size", 1024) * MiB;
const configs = [
  { name: "PUT: 16 chunks a step, 2 queued", query: "" },
  { name: "POST: 4 chunks a step, 1 queued", query: "&step=4&hwm=1" },
];

const { startTestWorker } = await import("../scripts/lib/worker.mjs");
const worker = await startTestWorker({ config: fileURLToPath(new URL("./wrangler.toml", import.meta.url)) });
try {
  const pid = workerdPids().sort((a, b) => rssBytes(b) - rssBytes(a))[0];
  const once = async (query, fixed) => {
    const before = cpuSeconds(pid);
    const res = await fetch(`${worker.endpoint}/_bench/encrypt?bytes=${bytes}${query}${fixed ? "&fixed=1" : ""}`);
    const body = await res.json();
    if (body.bytes !== bytes) throw new Error(`encrypt bench: ${JSON.stringify(body)}`);
    return (cpuSeconds(pid) - before) / (bytes / (1024 * MiB));
  };
  for (const c of configs) await once(c.query, true); // warm-up
  const out = {};
  for (let r = 0; r < rounds; r++) {
    for (const fixed of [false, true]) {
      for (const c of configs) (out[`${c.name}${fixed ? ", through a FixedLengthStream" : ""}`] ??= []).push(await once(c.query, fixed));
    }
  }
  const summary = Object.fromEntries(Object.entries(out).map(([k, v]) => [k, { medianCpuSecondsPerGiB: median(v), runs: v.map((x) => Number(x.toFixed(3))) }]));
  console.log(JSON.stringify({ bytes, rounds, summary }, null, 2));
} finally {
  await worker.dispose();
}
