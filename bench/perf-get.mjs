// Focused A/B measurements for issue 18's per-request and GET figures, without the full
// benchmark: per-request workerd CPU and latency of 1 KiB PUT/GET, GET throughput next to
// the floors in bench/worker.ts (/_bench/floor/...), and 1-byte range latency; PUT throughput
// next to its floors (/_bench/putfloor/...).
//
//   node bench/perf-get.mjs small  [--rounds 6] [--n 150]   1 KiB PUT/GET, encrypted vs passthrough
//   node bench/perf-get.mjs floors [--rounds 5] [--mib 64]  GET MB/s: passthrough, floors, encrypted
//   node bench/perf-get.mjs range  [--rounds 40] [--mib 1024] 1-byte ranges of one large object
//   node bench/perf-get.mjs put-floors [--rounds 5] [--mib 128]  PUT MB/s and CPU: passthrough,
//                the floors in bench/worker.ts (/_bench/putfloor/...), the gateway's SSE-KMS PUT;
//                --sink: the floors drained in the worker instead of stored (no R2, no enc)
//   --base DIR   also start the bench worker of another checkout (e.g. `git archive` of the
//                commit before a change, with node_modules linked) and interleave the two,
//                so both builds see the same machine load; figures are printed per build.
//
// workerd CPU comes from /proc (10 ms ticks), so per-request figures are averages over a
// batch of --n requests; medians are over rounds. Never run alongside `npm run bench`.
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { benchClient } from "./lib/client.mjs";
import { startTestWorker } from "../scripts/lib/worker.mjs";
import { cpuSeconds, getStream, GiB, median, MiB, opensslAesGcm, percentile, putStream, rssBytes, workerdPids } from "./lib/measure.mjs";

const here = fileURLToPath(new URL(".", import.meta.url));
const args = process.argv.slice(2);
const flag = (name, fallback) => {
  const at = args.indexOf(`--${name}`);
  return at >= 0 && args[at + 1] !== undefined ? args[at + 1] : fallback;
};
const workload = args.find((a, i) => !a.startsWith("--") && !args[i - 1]?.startsWith("--")) ?? "small";
const base = flag("base", null);
const log = (...a) => console.error(...a);

async function start(name, config) {
  const before = new Set(workerdPids());
  const worker = await startTestWorker({ config });
  const mine = workerdPids().filter((p) => !before.has(p));
  const pid = mine.sort((a, b) => rssBytes(b) - rssBytes(a))[0];
  const s3 = benchClient(worker.endpoint);
  await s3.send(new CreateBucketCommand({ Bucket: "perf" }));
  const endpoint = worker.endpoint;
  const signed = (command) => getSignedUrl(s3, command, { expiresIn: 3600 });
  return {
    name,
    pid,
    worker,
    s3,
    endpoint,
    async putEnc(key, size) {
      const r = await putStream(await signed(new PutObjectCommand({ Bucket: "perf", Key: key, ServerSideEncryption: "aws:kms" })), size, { "x-amz-server-side-encryption": "aws:kms" });
      if (r.status !== 200) throw new Error(`PUT ${key}: ${r.status} ${r.body}`);
      return r;
    },
    async putPass(key, size) {
      const r = await putStream(`${endpoint}/_passthrough/${key}`, size);
      if (r.status !== 200) throw new Error(`passthrough PUT ${key}: ${r.status}`);
      return r;
    },
    async getEnc(key, headers = {}) {
      const r = await getStream(await signed(new GetObjectCommand({ Bucket: "perf", Key: key })), headers);
      if (r.status !== (headers.range ? 206 : 200)) throw new Error(`GET ${key}: ${r.status}`);
      return r;
    },
    async getPass(key, headers = {}) {
      const r = await getStream(`${endpoint}/_passthrough/${key}`, headers);
      if (r.status !== (headers.range ? 206 : 200)) throw new Error(`passthrough GET ${key}: ${r.status}`);
      return r;
    },
    async putFloor(mode, key, size, sink = false) {
      const r = await putStream(`${endpoint}/_bench/putfloor/${mode}/${key}${sink ? "?sink=1" : ""}`, size);
      if (r.status !== 200) throw new Error(`putfloor ${mode}: ${r.status} ${r.body}`);
      return r;
    },
    async getFloor(mode, key) {
      const r = await getStream(`${endpoint}/_bench/floor/${mode}/${key}`);
      if (r.status !== 200) throw new Error(`floor ${mode}: ${r.status}`);
      return r;
    },
  };
}

const builds = [await start("current", `${here}wrangler.toml`)];
if (base) builds.push(await start("base", `${resolve(base)}/bench/wrangler.toml`));
const order = (round) => (round % 2 === 0 ? builds : [...builds].reverse());
const fmt = (x, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : "—");

try {
  if (workload === "small") await small();
  else if (workload === "floors") await floors();
  else if (workload === "range") await range();
  else if (workload === "put-floors") await putFloors();
  else if (workload === "small-floors") await smallFloors();
  else if (workload === "loop") await loop();
  else throw new Error(`unknown workload ${workload}`);
} finally {
  for (const b of builds) await b.worker.dispose();
}

async function small() {
  const rounds = Number(flag("rounds", 6));
  const n = Number(flag("n", 150));
  const kinds = ["putEnc", "putPass", "getEnc", "getPass"];
  const stats = new Map(builds.map((b) => [b.name, Object.fromEntries(kinds.map((k) => [k, { cpu: [], ms: [] }]))]));
  for (const b of builds) {
    for (let i = 0; i < 50; i++) {
      await b.putEnc("s", 1024);
      await b.putPass("s", 1024);
      await b.getEnc("s");
      await b.getPass("s");
    }
  }
  for (let round = 0; round < rounds; round++) {
    for (const b of order(round)) {
      const steps = round % 2 === 0 ? kinds : ["putPass", "putEnc", "getPass", "getEnc"];
      for (const kind of steps) {
        const before = cpuSeconds(b.pid);
        for (let i = 0; i < n; i++) {
          const r = await b[kind]("s", ...(kind.startsWith("put") ? [1024] : []));
          stats.get(b.name)[kind].ms.push(r.seconds * 1000);
        }
        stats.get(b.name)[kind].cpu.push(((cpuSeconds(b.pid) - before) / n) * 1000);
      }
    }
    log(`round ${round + 1}/${rounds}`);
  }
  console.log(`1 KiB, ${rounds} rounds × ${n} requests; workerd CPU ms/request (median of rounds [min–max]) and client latency p50`);
  console.log("| build | kind | CPU ms/req | range | p50 ms |\n|---|---|---:|---|---:|");
  for (const [name, s] of stats) {
    for (const k of kinds) console.log(`| ${name} | ${k} | ${fmt(median(s[k].cpu))} | ${fmt(Math.min(...s[k].cpu))}–${fmt(Math.max(...s[k].cpu))} | ${fmt(percentile(s[k].ms, 50))} |`);
    console.log(`| ${name} | enc − pass | PUT +${fmt(median(s.putEnc.cpu) - median(s.putPass.cpu))}, GET +${fmt(median(s.getEnc.cpu) - median(s.getPass.cpu))} | | GET p50 ratio ${fmt(percentile(s.getEnc.ms, 50) / percentile(s.getPass.ms, 50))} |`);
  }
}

/**
 * Rounds of every mode on every build, interleaved (builds in alternating order, modes
 * forwards then backwards): per build and mode, MB/s and workerd CPU s/GiB of `run`.
 */
async function modeRounds(rounds, modes, size, run) {
  const stats = new Map(builds.map((b) => [b.name, Object.fromEntries(modes.map((m) => [m, { mbps: [], cpu: [] }]))]));
  for (let round = 0; round < rounds; round++) {
    for (const b of order(round)) {
      for (const m of round % 2 === 0 ? modes : [...modes].reverse()) {
        const before = cpuSeconds(b.pid);
        const r = await run(b, m);
        const s = stats.get(b.name)[m];
        s.mbps.push(size / 1e6 / r.seconds);
        s.cpu.push((cpuSeconds(b.pid) - before) / (size / GiB));
      }
    }
    log(`round ${round + 1}/${rounds}`);
  }
  return stats;
}

async function floors() {
  const rounds = Number(flag("rounds", 5));
  const size = Number(flag("mib", 64)) * MiB;
  const modes = (flag("modes", "pass,js,steps,cipher,writer,bytes,enc")).split(",");
  for (const b of builds) {
    await b.putPass("big", size);
    await b.putEnc("big", size);
    for (const m of modes) await (m === "enc" ? b.getEnc("big") : b.getFloor(m, "big"));
  }
  const stats = await modeRounds(rounds, modes, size, async (b, m) => {
    const r = m === "enc" ? await b.getEnc("big") : await b.getFloor(m, "big");
    if (r.bytes !== size) throw new Error(`${m}: ${r.bytes} of ${size} bytes`);
    return r;
  });
  console.log(`GET of ${size / MiB} MiB, ${rounds} rounds: median MB/s, ratio to pass (per round, median), workerd CPU s/GiB (median)`);
  console.log("| build | mode | MB/s | ratio | ratio range | CPU s/GiB |\n|---|---|---:|---:|---|---:|");
  for (const [name, s] of stats) {
    for (const m of modes) {
      const ratios = s[m].mbps.map((v, i) => v / s.pass.mbps[i]);
      console.log(`| ${name} | ${m} | ${fmt(median(s[m].mbps), 0)} | ${fmt(median(ratios))} | ${fmt(Math.min(...ratios))}–${fmt(Math.max(...ratios))} | ${fmt(median(s[m].cpu))} |`);
    }
  }
}

/**
 * PUT floors: the same generated body PUT through each stage of the gateway's PUT path
 * (bench/worker.ts putFloorBench) and through the gateway itself (enc: presigned SSE-KMS
 * PUT, UNSIGNED-PAYLOAD, no client checksum so the gateway computes CRC64NVME), modes
 * interleaved in alternating order each round. CPU is the workerd process's (the local R2
 * simulator's writes included, which every mode pays alike); "− pass" is the mode's CPU
 * over the passthrough's, the figure issue 18 compares with openssl's AES-256-GCM.
 */
async function putFloors() {
  const rounds = Number(flag("rounds", 5));
  const size = Number(flag("mib", 128)) * MiB;
  const sink = args.includes("--sink");
  const modes = flag("modes", sink ? "pass,steps,crc,cipher,cipher-crc" : "pass,steps,crc,cipher,cipher-crc,enc").split(",");
  const put = (b, m) => (m === "enc" ? b.putEnc("big", size) : b.putFloor(m, "big", size, sink));
  for (const b of builds) for (const m of modes) await put(b, m);
  const stats = await modeRounds(rounds, modes, size, put);
  const openssl = GiB / opensslAesGcm();
  console.log(`PUT of ${size / MiB} MiB${sink ? " drained in the worker (no R2)" : ""}, ${rounds} rounds: median MB/s, ratio to pass (per round: median, min–max), workerd CPU s/GiB (median), its excess over pass, and that excess as × openssl aes-256-gcm (${fmt(openssl, 3)} s/GiB on this machine)`);
  console.log("| build | mode | MB/s | ratio | ratio range | CPU s/GiB | − pass | × openssl |\n|---|---|---:|---:|---|---:|---:|---:|");
  for (const [name, s] of stats) {
    for (const m of modes) {
      const ratios = s[m].mbps.map((v, i) => v / s.pass.mbps[i]);
      const extra = median(s[m].cpu.map((c, i) => c - s.pass.cpu[i]));
      console.log(`| ${name} | ${m} | ${fmt(median(s[m].mbps), 0)} | ${fmt(median(ratios))} | ${fmt(Math.min(...ratios))}–${fmt(Math.max(...ratios))} | ${fmt(median(s[m].cpu))} | ${m === "pass" ? "" : fmt(extra)} | ${m === "pass" ? "" : fmt(extra / openssl, 1)} |`);
    }
  }
  if (builds.length > 1) {
    // Paired by round (both builds ran back to back under the same load): current − base.
    const [a, b] = [stats.get("current"), stats.get("base")];
    console.log("\ncurrent − base, CPU s/GiB, per round (median; rounds where current was lower)");
    for (const m of modes) {
      const d = a[m].cpu.map((c, i) => c - b[m].cpu[i]);
      console.log(`  ${m}: ${fmt(median(d))} (${d.filter((x) => x < 0).length}/${d.length}) [${d.map((x) => fmt(x)).join(", ")}]`);
    }
  }
}

async function range() {
  const samples = Number(flag("rounds", 40));
  const size = Number(flag("mib", 1024)) * MiB;
  for (const b of builds) {
    log(`${b.name}: writing ${size / MiB} MiB twice...`);
    await b.putPass("huge", size);
    await b.putEnc("huge", size);
    for (let i = 0; i < 10; i++) {
      await b.getPass("huge", { range: "bytes=5-5" });
      await b.getEnc("huge", { range: "bytes=5-5" });
    }
  }
  const stats = new Map(builds.map((b) => [b.name, { enc: [], pass: [], cpuEnc: [], cpuPass: [] }]));
  for (let i = 0; i < samples; i++) {
    const at = Math.floor(Math.random() * size);
    const headers = { range: `bytes=${at}-${at}` };
    for (const b of order(i)) {
      const s = stats.get(b.name);
      const sides = i % 2 === 0 ? ["pass", "enc"] : ["enc", "pass"];
      for (const side of sides) {
        const r = side === "pass" ? await b.getPass("huge", headers) : await b.getEnc("huge", headers);
        if (r.bytes !== 1) throw new Error("range length");
        s[side].push(r.seconds * 1000);
      }
    }
  }
  console.log(`1-byte ranges of ${size / MiB} MiB, ${samples} samples per side`);
  console.log("| build | enc p50 ms | pass p50 ms | p50 ratio | enc p90 | pass p90 |\n|---|---:|---:|---:|---:|---:|");
  for (const [name, s] of stats) {
    console.log(`| ${name} | ${fmt(percentile(s.enc, 50))} | ${fmt(percentile(s.pass, 50))} | ${fmt(percentile(s.enc, 50) / percentile(s.pass, 50))} | ${fmt(percentile(s.enc, 90))} | ${fmt(percentile(s.pass, 90))} |`);
  }
}

/** Per-request workerd CPU of 1 KiB GETs through each floor mode (what the plumbing costs a small object). */
async function smallFloors() {
  const rounds = Number(flag("rounds", 6));
  const n = Number(flag("n", 150));
  const modes = flag("modes", "pass,buffer,steps,writer,enc").split(",");
  const b = builds[0];
  await b.putPass("s", 1024);
  await b.putEnc("s", 1024);
  // passq: the passthrough floor with an encrypted GET's presigned query appended (ignored by
  // the route): what a long URL costs outside the gateway's own code.
  const query = new URL(await getSignedUrl(b.s3, new GetObjectCommand({ Bucket: "perf", Key: "s" }), { expiresIn: 3600 })).search;
  const get = async (m) => {
    if (m === "enc") return b.getEnc("s");
    if (m !== "passq") return b.getFloor(m, "s");
    const r = await getStream(`${b.endpoint}/_bench/floor/pass/s${query}`);
    if (r.status !== 200) throw new Error(`passq: ${r.status}`);
    return r;
  };
  for (let i = 0; i < 30; i++) for (const m of modes) await get(m);
  const stats = Object.fromEntries(modes.map((m) => [m, { cpu: [], ms: [] }]));
  for (let round = 0; round < rounds; round++) {
    for (const m of round % 2 === 0 ? modes : [...modes].reverse()) {
      const before = cpuSeconds(b.pid);
      for (let i = 0; i < n; i++) stats[m].ms.push((await get(m)).seconds * 1000);
      stats[m].cpu.push(((cpuSeconds(b.pid) - before) / n) * 1000);
    }
    log(`round ${round + 1}/${rounds}`);
  }
  console.log(`1 KiB GETs, ${rounds} rounds × ${n}: workerd CPU ms/request (median of rounds) and p50 latency`);
  console.log("| mode | CPU ms/req | range | p50 ms |\n|---|---:|---|---:|");
  for (const m of modes) console.log(`| ${m} | ${fmt(median(stats[m].cpu))} | ${fmt(Math.min(...stats[m].cpu))}–${fmt(Math.max(...stats[m].cpu))} | ${fmt(percentile(stats[m].ms, 50))} |`);
}

/** Per-request workerd CPU of 1 KiB GETs run in a loop inside the worker (/_bench/loop): no HTTP around them. */
async function loop() {
  const rounds = Number(flag("rounds", 6));
  const n = Number(flag("n", 200));
  // --range MiB: 1-byte ranges of an object of that size instead of whole 1 KiB GETs.
  const rangeMiB = Number(flag("range", 0));
  const size = rangeMiB > 0 ? rangeMiB * MiB : 1024;
  const stats = new Map(builds.map((b) => [b.name, { enc: [], pass: [], raw: [] }]));
  const paths = new Map();
  for (const b of builds) {
    await b.putPass("s", size);
    await b.putEnc("s", size);
    const url = new URL(await getSignedUrl(b.s3, new GetObjectCommand({ Bucket: "perf", Key: "s" }), { expiresIn: 3600 }));
    paths.set(b.name, { enc: url.pathname + url.search, pass: "/_passthrough/s", raw: "/_bench/floor/raw/perf/s" });
  }
  const run = async (b, side, count) => {
    const before = cpuSeconds(b.pid);
    const r = await fetch(`${b.endpoint}/_bench/loop?n=${count}&path=${encodeURIComponent(paths.get(b.name)[side])}${rangeMiB > 0 ? `&range=${size}` : ""}`);
    if (!r.ok) throw new Error(`loop ${side}: ${r.status} ${await r.text()}`);
    return ((cpuSeconds(b.pid) - before) / count) * 1000;
  };
  for (const b of builds) for (const side of ["enc", "pass"]) await run(b, side, 50);
  for (let round = 0; round < rounds; round++) {
    for (const b of order(round)) for (const side of round % 2 === 0 ? ["enc", "pass", "raw"] : ["raw", "pass", "enc"]) stats.get(b.name)[side].push(await run(b, side, n));
    log(`round ${round + 1}/${rounds}`);
  }
  console.log(`${rangeMiB > 0 ? `1-byte ranges of ${rangeMiB} MiB` : "1 KiB GETs"} in a loop inside the worker, ${rounds} rounds × ${n}: workerd CPU ms/request (median [min–max])`);
  console.log("| build | encrypted | passthrough | raw R2 get of the encrypted object | difference enc − pass |\n|---|---:|---:|---:|---:|");
  for (const [name, s] of stats) console.log(`| ${name} | ${fmt(median(s.enc))} [${fmt(Math.min(...s.enc))}–${fmt(Math.max(...s.enc))}] | ${fmt(median(s.pass))} | ${fmt(median(s.raw))} | ${fmt(median(s.enc) - median(s.pass))} |`);
}
