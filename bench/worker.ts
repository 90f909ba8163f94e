/**
 * Benchmark-only worker: the gateway unchanged, plus a bare R2 passthrough under
 * /_passthrough/<key> in the same workerd process and on the same local R2, so encrypted
 * and unencrypted transfers are measured side by side. Never deployed (bench/wrangler.toml).
 */
import gateway from "../src/index";
import type { Env } from "../src/env";
import { decryptingStream } from "../src/crypto/decrypt";
import { encryptingStream, type PlaintextSource } from "../src/crypto/encrypt";
import { CHUNKS_PER_STEP, chunkCount, encryptedSize } from "../src/crypto/format";
import { TRAILER_SIZE } from "../src/crypto/trailer";
import { hashingSource } from "../src/objects/write";
import { openBody } from "../src/auth/body";
import { toBase64, toHex } from "../src/util/bytes";
import { importHkdf, randomBytes } from "../src/crypto/keys";
import { ExactReader } from "../src/util/exact-reader";
import { CHECKSUM_ALGORITHMS, CHECKSUMS, createMd5, createSha256, type Hasher, type StoredChecksum } from "../src/checksum";
import { Crc64NvmeJs } from "./crc64nvme-js";
import { Crc32cJs } from "./crc32c-js";

const MiB = 1024 * 1024;

/** Plaintext of `total` bytes from one reused 4 MiB block: the source costs nothing. */
function generated(total: number): PlaintextSource {
  const block = new Uint8Array(4 * MiB);
  for (let i = 0; i < block.byteLength; i += 65536) block.set(randomBytes(65536), i);
  let sent = 0;
  return {
    async read(max) {
      const n = Math.min(max, total - sent, block.byteLength);
      sent += n;
      return block.subarray(0, n);
    },
    async cancel() {},
  };
}

async function drain(stream: ReadableStream<Uint8Array>): Promise<number> {
  let n = 0;
  const reader = stream.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return n;
    n += value.byteLength;
  }
}

/**
 * The production encrypt/decrypt stages alone (no R2, no HTTP body), so the benchmark can
 * read the workerd CPU they cost per GiB.
 */
async function cryptoBench(url: URL): Promise<Response> {
  const bytes = Number(url.searchParams.get("bytes") ?? String(256 * MiB));
  const dataKey = await importHkdf(randomBytes(32));
  const started = performance.now();
  if (url.pathname.endsWith("/encrypt")) {
    // ?step=N&hwm=M: encryptingStream's buffering (defaults: PUT's); ?fixed=1 drains it
    // through a FixedLengthStream, as writePart and writeObject hand it to R2, so the cost
    // of each piece crossing that pipe is counted too.
    const step = url.searchParams.get("step");
    const hwm = url.searchParams.get("hwm");
    const buffering = { ...(step ? { stepChunks: Number(step) } : {}), ...(hwm ? { highWaterMark: Number(hwm) } : {}) };
    const header = { partNumber: 0, length: bytes, salt: randomBytes(16) };
    const encrypted = encryptingStream(generated(bytes), dataKey, header, undefined, buffering);
    let n: number;
    if (url.searchParams.get("fixed") === "1") {
      const fixed = new FixedLengthStream(encryptedSize(bytes));
      const piping = encrypted.pipeTo(fixed.writable);
      n = await drain(fixed.readable);
      await piping;
    } else n = await drain(encrypted);
    return Response.json({ op: "encrypt", bytes, out: n, ms: performance.now() - started, buffering });
  }
  // Decrypt: encrypt a 64 MiB stream once into memory, then decrypt it repeatedly.
  const piece = 64 * MiB;
  const header = { partNumber: 0, length: piece, salt: randomBytes(16) };
  const stored: Uint8Array[] = [];
  const reader = encryptingStream(generated(piece), dataKey, header).getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    stored.push(value);
  }
  const t0 = performance.now();
  let total = 0;
  for (let done = 0; done < bytes; done += piece) {
    let i = 0;
    const source = new ReadableStream<Uint8Array>({ pull: (c) => (i < stored.length ? c.enqueue(stored[i++]!) : c.close()) });
    total += await drain(decryptingStream(source, dataKey, { header, includesHeader: true, firstChunk: 0, lastChunk: chunkCount(piece) - 1, skip: 0, take: piece }));
  }
  return Response.json({ op: "decrypt", bytes: total, ms: performance.now() - t0 });
}

/** The checksum bench's random input, kept between requests so only the first one pays for it. */
let checksumInput: Uint8Array | undefined;

/**
 * The body checksums alone (bench/checksum.mjs): MB/s of each algorithm over `bytes` random
 * bytes fed in pieces of `piece` bytes (default 64 KiB), as a request body is — MD5/SHA run
 * on workerd's DigestStream, so they are measured here rather than on Node. CRC64NVME and
 * CRC32C are WebAssembly; their former JS loops run beside them ("… JS") so one run shows
 * both on the same machine at the same moment. `only` (comma-separated names; empty for
 * none) lets the caller read workerd's CPU time around one algorithm at a time.
 */
async function checksumBench(url: URL): Promise<Response> {
  const bytes = Number(url.searchParams.get("bytes") ?? String(16 * MiB));
  const piece = Number(url.searchParams.get("piece") ?? "65536");
  if (checksumInput?.byteLength !== bytes) {
    checksumInput = new Uint8Array(bytes);
    for (let i = 0; i < bytes; i += 65536) checksumInput.set(randomBytes(Math.min(65536, bytes - i)), i);
  }
  const data = checksumInput;
  const hashers: Record<string, () => Hasher> = {
    ...Object.fromEntries(CHECKSUM_ALGORITHMS.map((alg) => [alg, () => CHECKSUMS[alg].create()])),
    MD5: createMd5,
    "CRC64NVME JS": () => new Crc64NvmeJs(),
    "CRC32C JS": () => new Crc32cJs(),
  };
  const only = url.searchParams.get("only");
  const names = only === null ? Object.keys(hashers) : only.split(",").filter((n) => n in hashers);
  const warmBytes = Math.min(bytes, 4 * MiB);
  const mbps: Record<string, number> = {};
  for (const name of names) {
    const create = hashers[name]!;
    // Warm up first (V8 compiles JS and wasm in tiers): a busy isolate runs the optimized code.
    const warm = create();
    for (let o = 0; o < warmBytes; o += piece) warm.update(data.subarray(o, o + piece));
    await warm.digest();
    const h = create();
    const t = performance.now();
    for (let o = 0; o < bytes; o += piece) h.update(data.subarray(o, o + piece));
    await h.digest();
    mbps[name] = bytes / 1e6 / ((performance.now() - t) / 1000);
  }
  return Response.json({ bytes, piece, warmBytes, mbps });
}

/**
 * Request-body verification alone (src/auth/body.ts openBody), as a PUT's body is read: MB/s
 * of `bytes` generated bytes through each way a body arrives: a plain body with its SHA-256
 * and CRC32 checked and MD5 computed; UNSIGNED-PAYLOAD with no digest; aws-chunked unsigned
 * with a CRC32 trailer (the SDK v3 default). Was an unasserted throughput case in
 * test/unit/body.test.ts; timings belong here.
 */
async function bodyBench(url: URL): Promise<Response> {
  const bytes = Number(url.searchParams.get("bytes") ?? String(64 * MiB));
  const block = new Uint8Array(4 * MiB);
  for (let i = 0; i < block.byteLength; i += 65536) block.set(randomBytes(65536), i);
  const pieces = function* (): Generator<Uint8Array> {
    for (let sent = 0; sent < bytes; ) {
      const n = Math.min(65536, bytes - sent);
      yield block.subarray(sent % block.byteLength, (sent % block.byteLength) + n);
      sent += n;
    }
  };
  const sha = createSha256();
  const crc = CHECKSUMS.CRC32.create();
  for (const piece of pieces()) {
    sha.update(piece);
    crc.update(piece);
  }
  const sha256 = toHex(await sha.digest());
  const crc32 = toBase64(await crc.digest());
  const encoder = new TextEncoder();
  const streamOf = (frame: (piece: Uint8Array) => Uint8Array[], tail: Uint8Array[] = []) => {
    const it = pieces();
    const queue: Uint8Array[] = [];
    return new ReadableStream<Uint8Array>({
      pull(controller) {
        if (queue.length === 0) {
          const { value, done } = it.next();
          if (done) {
            for (const t of tail) controller.enqueue(t);
            controller.close();
            return;
          }
          queue.push(...frame(value));
        }
        controller.enqueue(queue.shift()!);
      },
    });
  };
  const cases: Record<string, () => Request> = {
    "plain, sha256 + md5 + crc32": () =>
      new Request("https://bench/b/k", {
        method: "PUT",
        headers: { "content-length": String(bytes), "x-amz-content-sha256": sha256, "x-amz-checksum-crc32": crc32 },
        body: streamOf((p) => [p]),
        duplex: "half",
      } as RequestInit),
    "plain, UNSIGNED-PAYLOAD": () =>
      new Request("https://bench/b/k", { method: "PUT", headers: { "content-length": String(bytes), "x-amz-content-sha256": "UNSIGNED-PAYLOAD" }, body: streamOf((p) => [p]), duplex: "half" } as RequestInit),
    "aws-chunked unsigned + CRC32 trailer": () =>
      new Request("https://bench/b/k", {
        method: "PUT",
        headers: {
          "content-encoding": "aws-chunked",
          "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
          "x-amz-decoded-content-length": String(bytes),
          "x-amz-trailer": "x-amz-checksum-crc32",
        },
        body: streamOf((p) => [encoder.encode(`${p.byteLength.toString(16)}\r\n`), p, encoder.encode("\r\n")], [encoder.encode(`0\r\nx-amz-checksum-crc32:${crc32}\r\n\r\n`)]),
        duplex: "half",
      } as RequestInit),
  };
  const mbps: Record<string, number> = {};
  for (const [label, make] of Object.entries(cases)) {
    const body = openBody(make(), null, { computeMd5: label.includes("md5") });
    const t = performance.now();
    let n = 0;
    for (;;) {
      const piece = await body.read(CHUNKS_PER_STEP * 65536);
      if (piece.byteLength === 0) break;
      n += piece.byteLength;
    }
    if (n !== bytes) throw new Error(`${label}: read ${n} of ${bytes} bytes`);
    mbps[label] = bytes / 1e6 / ((performance.now() - t) / 1000);
  }
  return Response.json({ bytes, mbps });
}

/**
 * GET floors (issue 18): the same R2 object served through progressively more of the
 * gateway's GET plumbing, without its crypto, so a run can tell what the stream machinery
 * alone costs next to the bare passthrough. `/_bench/floor/<mode>/<key>` reads the
 * passthrough object `_passthrough/<key>`:
 *   pass     R2 body as the response body (the passthrough route)
 *   js       a JS ReadableStream that re-enqueues R2's pieces as they come (no copy), piped
 *            into a FixedLengthStream as the GET handler does
 *   steps    1 MiB steps read with the gateway's ExactReader (BYOB readAtLeast, one copy),
 *            enqueued into a JS stream piped into a FixedLengthStream: the GET path minus AES
 *   cipher   steps + AES-256-GCM over every 64 KiB of each step (output discarded, the
 *            step enqueued as read): the GET path's work without its plaintext buffer
 *   writer   steps written straight into the FixedLengthStream's writer (no JS
 *            ReadableStream), one write in flight while the next step is read
 *   buffer   the whole object read into memory and answered as bytes (no stream at all)
 *   bytes    a ReadableStream of type "bytes" whose pull reads R2 into the BYOB request's
 *            own view (autoAllocateChunkSize 1 MiB), piped into a FixedLengthStream
 */
async function floorBench(url: URL, env: Env): Promise<Response> {
  const [, , , mode, ...rest] = url.pathname.split("/");
  // "raw": any stored object by its R2 key (an encrypted one, with its envelope metadata).
  const object = await env.OBJECTS.get((mode === "raw" ? "" : "_passthrough/") + decodeURIComponent(rest.join("/")));
  if (!object) return new Response("not found", { status: 404 });
  const size = object.size;
  const headers = { "Content-Length": String(size) };
  if (mode === "pass" || mode === "raw") return new Response(object.body, { headers });
  if (mode === "buffer") return new Response(await object.arrayBuffer());
  const STEP = CHUNKS_PER_STEP * 65536;
  const fixed = new FixedLengthStream(size);
  let body: ReadableStream<Uint8Array>;
  if (mode === "js") {
    const reader = object.body.getReader();
    body = new ReadableStream<Uint8Array>({
      async pull(c) {
        const { value, done } = await reader.read();
        if (done) c.close();
        else c.enqueue(value);
      },
    });
  } else if (mode === "steps" || mode === "cipher") {
    const reader = new ExactReader(object.body);
    const key = mode === "cipher" ? await crypto.subtle.importKey("raw", randomBytes(32), "AES-GCM", false, ["encrypt"]) : null;
    const iv = new Uint8Array(12);
    let left = size;
    body = new ReadableStream<Uint8Array>(
      {
        async pull(c) {
          if (left === 0) return c.close();
          const step = await reader.read(Math.min(STEP, left));
          left -= step.byteLength;
          if (key) for (let at = 0; at < step.byteLength; at += 65536) await crypto.subtle.encrypt({ name: "AES-GCM", iv }, key, step.subarray(at, at + 65536));
          c.enqueue(step);
        },
      },
      { highWaterMark: 2 },
    );
  } else if (mode === "writer") {
    const reader = new ExactReader(object.body);
    const writer = fixed.writable.getWriter();
    void (async () => {
      let inFlight: Promise<void> = Promise.resolve();
      for (let left = size; left > 0; ) {
        const step = await reader.read(Math.min(STEP, left));
        left -= step.byteLength;
        await inFlight;
        inFlight = writer.write(step);
      }
      await inFlight;
      await writer.close();
    })().catch((e) => writer.abort(e));
    return new Response(fixed.readable, { headers });
  } else if (mode === "bytes") {
    const reader = new ExactReader(object.body);
    let left = size;
    body = new ReadableStream({
      type: "bytes",
      autoAllocateChunkSize: STEP,
      async pull(c) {
        if (left === 0) return c.close();
        const step = await reader.read(Math.min(STEP, left));
        left -= step.byteLength;
        c.enqueue(step);
      },
    } as UnderlyingByteSource) as ReadableStream<Uint8Array>;
  } else {
    return new Response("unknown floor mode", { status: 400 });
  }
  void body.pipeTo(fixed.writable).catch(() => {});
  return new Response(fixed.readable, { headers });
}

/**
 * PUT floors (issue 18): the request body stored into R2 through progressively more of the
 * gateway's PUT path, so a run can tell what each stage costs next to the bare passthrough.
 * `/_bench/putfloor/<mode>/<key>` (PUT, body = the object) stores `_passthrough/<key>`:
 *   pass        request body straight into R2.put (the passthrough route)
 *   steps       the body read as the gateway reads it (auth/body.ts openBody, an
 *               UNSIGNED-PAYLOAD body as a presigned PUT's: WireReader BYOB reads into a
 *               fresh 1 MiB array per step), each step enqueued into a JS ReadableStream
 *               (highWaterMark 2, as encryptingStream) piped into a FixedLengthStream → R2.put
 *   crc         steps + CRC64NVME (the wasm one) over every byte, as for a checksum-less PUT
 *   cipher      steps through crypto/encrypt.ts encryptingStream (AES-256-GCM per 64 KiB,
 *               the stored format's length) under a random key; no CRC, no trailer
 *   cipher-crc  both, with the CRC sealed as the trailer record: the gateway's byte path
 *               without SigV4, KMS, the envelope and the handler around it
 * With `?sink=1` the last stream (the FixedLengthStream's readable; the request body for
 * pass) is drained in the worker by 1 MiB BYOB reads into one reused buffer instead of
 * going to R2: the local R2 simulator's writes cost ~30 CPU s/GiB in the same process and
 * their noise hides stage differences of a few tenths; the sink's own cost is one native
 * copy per MiB, the same in every mode.
 */
async function putFloorBench(request: Request, url: URL, env: Env): Promise<Response> {
  const [, , , mode, ...rest] = url.pathname.split("/");
  const key = "_passthrough/" + decodeURIComponent(rest.join("/"));
  if (request.method !== "PUT") return new Response("method not allowed", { status: 405 });
  const sink = url.searchParams.get("sink") === "1";
  if (mode === "pass") {
    if (sink) return sinkResponse(await drainByob(request.body!));
    const object = await env.OBJECTS.put(key, request.body);
    return new Response(null, { headers: { ETag: `"${object?.etag}"` } });
  }
  // No auth: the claim is UNSIGNED-PAYLOAD, what a presigned PUT's body is read with.
  const body = openBody(request, null, { computeMd5: false });
  const length = body.length;
  if (length === null) return new Response("content-length required", { status: 411 });
  const crc = mode === "crc" || mode === "cipher-crc" ? CHECKSUMS.CRC64NVME.create() : null;
  const source: PlaintextSource = crc ? hashingSource(body, crc) : body;
  let stream: ReadableStream<Uint8Array>;
  let stored: number;
  if (mode === "steps" || mode === "crc") {
    const STEP = CHUNKS_PER_STEP * 65536;
    stored = length;
    stream = new ReadableStream<Uint8Array>(
      {
        async pull(c) {
          const step = await source.read(STEP);
          if (step.byteLength === 0) return c.close();
          c.enqueue(step);
        },
        cancel: (reason) => source.cancel(reason),
      },
      { highWaterMark: 2 },
    );
  } else if (mode === "cipher" || mode === "cipher-crc") {
    const dataKey = await importHkdf(randomBytes(32));
    const header = { partNumber: 0, length, salt: randomBytes(16) };
    const trailer = crc ? async (): Promise<StoredChecksum> => ({ algorithm: "CRC64NVME", value: toBase64(await crc.digest()), type: "FULL_OBJECT" }) : undefined;
    stored = encryptedSize(length) + (trailer ? TRAILER_SIZE : 0);
    stream = encryptingStream(source, dataKey, header, trailer);
  } else {
    await body.cancel();
    return new Response("unknown putfloor mode", { status: 400 });
  }
  const fixed = new FixedLengthStream(stored);
  const piping = stream.pipeTo(fixed.writable);
  piping.catch(() => {});
  if (sink) {
    const drained = await drainByob(fixed.readable);
    await piping;
    return sinkResponse(drained);
  }
  const object = await env.OBJECTS.put(key, fixed.readable);
  await piping;
  return new Response(null, { headers: { ETag: `"${object?.etag}"`, "x-bench-stored": String(stored) } });
}

/** Reads a byte stream to its end in 1 MiB BYOB reads into one reused buffer; returns its length. */
async function drainByob(stream: ReadableStream<Uint8Array>): Promise<number> {
  const reader = stream.getReader({ mode: "byob" }) as ReadableStreamBYOBReader & {
    readAtLeast(min: number, view: Uint8Array): Promise<ReadableStreamReadResult<Uint8Array>>;
  };
  let buffer = new Uint8Array(MiB);
  let n = 0;
  for (;;) {
    const { value, done } = await reader.readAtLeast(MiB, buffer);
    if (value) {
      n += value.byteLength;
      buffer = new Uint8Array(value.buffer, 0, MiB);
    }
    if (done) return n;
  }
}

const sinkResponse = (bytes: number) => new Response(null, { headers: { "x-bench-stored": String(bytes) } });

/** Bytes of stored data an R2 get hands back: its range when it has one, else the whole object. */
function servedBytes(object: R2ObjectBody): number {
  const range = (object as R2ObjectBody & { range?: R2Range }).range;
  if (!range) return object.size;
  if ("suffix" in range && range.suffix !== undefined) return Math.min(range.suffix, object.size);
  const offset = "offset" in range && range.offset !== undefined ? range.offset : 0;
  return "length" in range && range.length !== undefined ? Math.min(range.length, object.size - offset) : object.size - offset;
}

/**
 * A gateway request sent with `x-bench-count-r2: 1` runs on an R2 binding that counts
 * its gets and the stored bytes they return; the counts come back as response headers
 * (complete for single-stream reads, whose R2 calls all happen before the response).
 * Other requests run on the plain binding, so throughput runs pay nothing for this.
 */
async function countingR2Reads(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
  const stats = { gets: 0, heads: 0, bytes: 0 };
  const real = env.OBJECTS;
  const OBJECTS = new Proxy(real, {
    get(target, prop) {
      if (prop === "get") {
        return async (key: string, options?: R2GetOptions) => {
          const object = await real.get(key, options);
          stats.gets++;
          if (object && "body" in object) stats.bytes += servedBytes(object);
          return object;
        };
      }
      if (prop === "head") return (key: string) => (stats.heads++, real.head(key));
      const value = Reflect.get(target, prop) as unknown;
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  const response = await gateway.fetch(request, { ...env, OBJECTS }, ctx);
  const counted = new Response(response.body, response);
  counted.headers.set("x-bench-r2-gets", String(stats.gets));
  counted.headers.set("x-bench-r2-heads", String(stats.heads));
  counted.headers.set("x-bench-r2-bytes", String(stats.bytes));
  return counted;
}

/**
 * `/_bench/loop?n=N&path=P[&range=SIZE]`: the request `GET P` (a presigned URL's path and
 * query, or a passthrough path; with a 1-byte range at a random offset below SIZE) run N
 * times inside this one request, each body read to the end: the
 * workerd CPU the worker spends per request, without the HTTP server, the client or
 * Miniflare's entry worker around it.
 */
async function loopBench(url: URL, env: Env, ctx: ExecutionContext): Promise<Response> {
  const n = Number(url.searchParams.get("n") ?? "100");
  const target = new URL(url.searchParams.get("path") ?? "/", url.origin).toString();
  // &range=1: each request asks for one byte at a random offset below &size.
  const rangeOf = Number(url.searchParams.get("range") ?? "0");
  const started = performance.now();
  let bytes = 0;
  for (let i = 0; i < n; i++) {
    const at = Math.floor(Math.random() * rangeOf);
    const response = await handler.fetch(new Request(target, rangeOf > 0 ? { headers: { range: `bytes=${at}-${at}` } } : {}), env, ctx);
    bytes += (await response.arrayBuffer()).byteLength;
    if (response.status >= 300) return new Response(`status ${response.status}`, { status: 500 });
  }
  return Response.json({ n, bytes, ms: performance.now() - started });
}

const handler = {
  async fetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === "/_bench/loop") return loopBench(url, env, ctx);
    if (url.pathname === "/_bench/checksum") return checksumBench(url);
    if (url.pathname === "/_bench/body") return bodyBench(url);
    if (url.pathname.startsWith("/_bench/floor/")) return floorBench(url, env);
    if (url.pathname.startsWith("/_bench/putfloor/")) return putFloorBench(request, url, env);
    if (url.pathname.startsWith("/_bench/")) return cryptoBench(url);
    if (request.headers.get("x-bench-count-r2") === "1") return countingR2Reads(request, env, ctx);
    if (!url.pathname.startsWith("/_passthrough/")) return gateway.fetch(request, env, ctx);
    const key = "_passthrough/" + decodeURIComponent(url.pathname.slice("/_passthrough/".length));
    if (request.method === "PUT") {
      const object = await env.OBJECTS.put(key, request.body);
      return new Response(null, { headers: { ETag: `"${object?.etag}"` } });
    }
    if (request.method === "GET") {
      const range = request.headers.get("range");
      const m = range ? /^bytes=(\d+)-(\d+)$/.exec(range) : null;
      const object = await env.OBJECTS.get(key, m ? { range: { offset: Number(m[1]), length: Number(m[2]) - Number(m[1]) + 1 } } : {});
      if (!object) return new Response("not found", { status: 404 });
      return new Response(object.body, { status: m ? 206 : 200, headers: { "Content-Length": String(m ? Number(m[2]) - Number(m[1]) + 1 : object.size) } });
    }
    if (request.method === "DELETE") {
      await env.OBJECTS.delete(key);
      return new Response(null, { status: 204 });
    }
    return new Response("method not allowed", { status: 405 });
  },
  scheduled: gateway.scheduled,
} satisfies ExportedHandler<Env>;

export default handler;
