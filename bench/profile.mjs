// CPU profile of the gateway inside workerd under one workload, taken through the DevTools
// inspector (V8's sampling profiler), for issue-18 style work: "work from profiles".
//
//   node bench/profile.mjs put-large     4 × 64 MiB SSE-KMS PUTs   (default)
//   node bench/profile.mjs get-large     4 × 64 MiB GETs of one object
//   node bench/profile.mjs put-small     500 × 1 KiB PUTs
//   node bench/profile.mjs get-small     500 × 1 KiB GETs
//   node bench/profile.mjs get-range     500 × 1-byte ranges at random offsets of one 64 MiB object
//   node bench/profile.mjs passthrough   4 × 64 MiB PUTs + GETs on the bare R2 route (the floor)
//   --count N  --mib N  --interval µs (sampling interval, default 200)  --out DIR
//   --target RE  the inspector target to profile (default /bench/: the gateway's isolate)
//
// Writes DIR/<workload>.cpuprofile (open it in Chrome DevTools → Performance, or speedscope)
// and prints the top frames by self time and by total time, grouped by function and file.
// Profiles are relative: a loaded machine slows everything alike, but for absolute CPU per
// GiB use `npm run bench` on an idle machine.
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { mkdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { benchClient } from "./lib/client.mjs";
import { startTestWorker } from "../scripts/lib/worker.mjs";
import { getStream, MiB, putStream } from "./lib/measure.mjs";

const here = fileURLToPath(new URL(".", import.meta.url));
const args = process.argv.slice(2);
const flag = (name, fallback) => {
  const at = args.indexOf(`--${name}`);
  return at >= 0 && args[at + 1] !== undefined ? args[at + 1] : fallback;
};
const workload = args.find((a) => !a.startsWith("--") && !args[args.indexOf(a) - 1]?.startsWith("--")) ?? "put-large";
const small = workload.endsWith("-small");
const ranges = workload === "get-range";
const count = Number(flag("count", small || ranges ? 500 : 4));
const size = small ? 1024 : Number(flag("mib", 64)) * MiB;
const interval = Number(flag("interval", 200));
const outDir = resolve(flag("out", `${here}out`));

const port = await freePort();
const worker = await startTestWorker({ config: `${here}wrangler.toml`, inspectorPort: port });
try {
  const s3 = benchClient(worker.endpoint);
  await s3.send(new CreateBucketCommand({ Bucket: "profile" }));
  const put = async (key) => {
    if (workload === "passthrough") return putStream(`${worker.endpoint}/_passthrough/${key}`, size);
    const url = await getSignedUrl(s3, new PutObjectCommand({ Bucket: "profile", Key: key, ServerSideEncryption: "aws:kms" }), { expiresIn: 3600 });
    const r = await putStream(url, size, { "x-amz-server-side-encryption": "aws:kms" });
    if (r.status !== 200) throw new Error(`PUT ${key}: ${r.status} ${r.body}`);
  };
  const get = async (key, range = ranges) => {
    if (workload === "passthrough") return getStream(`${worker.endpoint}/_passthrough/${key}`);
    const url = await getSignedUrl(s3, new GetObjectCommand({ Bucket: "profile", Key: key }), { expiresIn: 3600 });
    const at = Math.floor(Math.random() * size);
    const r = await getStream(url, range ? { range: `bytes=${at}-${at}` } : {});
    if (r.status !== (range ? 206 : 200) || r.bytes !== (range ? 1 : size)) throw new Error(`GET ${key}: ${r.status}, ${r.bytes} bytes`);
  };
  // Warm up: compile the code paths and fill the key caches before sampling.
  for (let i = 0; i < (small || ranges ? 50 : 1); i++) {
    if (i === 0 || small) await put("warm");
    await get("warm");
  }

  const inspector = await connectInspector(port);
  await inspector.send("Profiler.enable");
  await inspector.send("Profiler.setSamplingInterval", { interval });
  await inspector.send("Profiler.start");
  const started = process.hrtime.bigint();
  for (let i = 0; i < count; i++) {
    if (workload.startsWith("put") || workload === "passthrough") await put(`k${i % 4}`);
    if (workload.startsWith("get")) await get("warm");
    if (workload === "passthrough") await get(`k${i % 4}`);
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const { profile } = await inspector.send("Profiler.stop");
  inspector.close();

  mkdirSync(outDir, { recursive: true });
  const file = `${outDir}/${workload}.cpuprofile`;
  writeFileSync(file, JSON.stringify(profile));
  console.log(`${workload}: ${count} × ${size >= MiB ? `${size / MiB} MiB` : `${size} B`} in ${seconds.toFixed(2)} s; profile: ${file}`);
  summarize(profile);
} finally {
  await worker.dispose();
}

/** The DevTools protocol over the inspector's WebSocket (Node 22's global WebSocket). */
async function connectInspector(inspectorPort) {
  const targets = await (await fetch(`http://127.0.0.1:${inspectorPort}/json`)).json();
  // The gateway's own isolate (the proxy and helper workers have other names).
  const wanted = new RegExp(flag("target", "bench"));
  console.log(`inspector targets: ${targets.map((t) => t.title ?? t.id).join(", ")}`);
  const target = targets.find((t) => wanted.test(t.title ?? t.id ?? "")) ?? targets[0];
  // The inspector proxy only accepts a local Origin (undici lets a client set the header).
  const ws = new WebSocket(target.webSocketDebuggerUrl, { headers: { origin: "http://localhost" } });
  await new Promise((ok, fail) => {
    ws.onopen = ok;
    ws.onerror = fail;
  });
  let next = 0;
  const waiting = new Map();
  ws.onmessage = (event) => {
    const message = JSON.parse(event.data);
    const pending = waiting.get(message.id);
    if (!pending) return;
    waiting.delete(message.id);
    if (message.error) pending.fail(new Error(message.error.message));
    else pending.ok(message.result);
  };
  return {
    send(method, params = {}) {
      const id = ++next;
      ws.send(JSON.stringify({ id, method, params }));
      return new Promise((ok, fail) => waiting.set(id, { ok, fail }));
    },
    close: () => ws.close(),
  };
}

/** Prints the top frames by self and total sample share, keyed by function and source line. */
function summarize(profile) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfCount = new Map();
  for (const id of profile.samples) selfCount.set(id, (selfCount.get(id) ?? 0) + 1);
  const total = profile.samples.length;
  const label = (n) => {
    const f = n.callFrame;
    const file = (f.url || "").split("/").slice(-2).join("/") || "(native)";
    return `${f.functionName || "(anonymous)"}  ${file}:${f.lineNumber + 1}`;
  };
  const self = new Map();
  const inclusive = new Map();
  for (const [id, samples] of selfCount) {
    const node = byId.get(id);
    self.set(label(node), (self.get(label(node)) ?? 0) + samples);
    const seen = new Set();
    for (let at = id; at !== undefined; at = parent.get(at)) {
      const l = label(byId.get(at));
      if (seen.has(l)) continue;
      seen.add(l);
      inclusive.set(l, (inclusive.get(l) ?? 0) + samples);
    }
  }
  const top = (map, n) =>
    [...map]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([l, c]) => `  ${((100 * c) / total).toFixed(1).padStart(5)}%  ${l}`)
      .join("\n");
  console.log(`\n${total} samples. Top by self time:\n${top(self, 25)}\n\nTop by total time:\n${top(inclusive, 25)}`);
}

function freePort() {
  return new Promise((ok, fail) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port: p } = server.address();
      server.close(() => ok(p));
    });
    server.on("error", fail);
  });
}
