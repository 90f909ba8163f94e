/**
 * Fuzzing the aws-chunked decoder through PutObject: every streaming mode, random chunk
 * sizes (zero-size chunks mid-body, huge and malformed hex), chunk signatures right,
 * wrong, missing or mangled, line endings other than CRLF, junk and duplicate trailers,
 * wrong decoded lengths, truncation, junk after the end, bodies delivered in random
 * pieces. Bodies are encoded here (chunk signatures chained from the header signature
 * with the AWS SDK's own signer), independent of src/auth/chunked.ts.
 *
 * Property: a 200 means the stored object is exactly the payload that was encoded — data
 * edits are caught by chunk signatures (signed modes) or by Content-MD5 and the CRC32
 * trailer (unsigned modes) — anything else is a proper S3 error and leaves the key as it
 * was; an untouched encoding is always accepted.
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { piecewiseStream } from "../support/chunked-encoder";
import { HOST, crc32Base64, createBucket, fetchWorker, sameBytes, seedIdentities, send, signerFor, uniqueBucket, utf8 } from "../support/s3-harness";
import { pseudoRandom } from "../support/sources";
import { applyByteEdit, byteEdit, checkResponse, fraction, concatBytes, expectOnlyKeys, fuzz, md5Base64Of, sha256Hex, writeSentinel, type ByteEdit, type Sentinel } from "./support";

const bucket = uniqueBucket("fz-chunk");
const KEY = "chunked/target";
let sentinel: Sentinel;
/** What KEY holds now (null: absent), tracked across cases. */
let stored: Uint8Array | null = null;

beforeAll(async () => {
  await seedIdentities();
  await createBucket("adminA", bucket);
  sentinel = await writeSentinel(bucket);
});

afterAll(async () => {
  await sentinel.check();
  await expectOnlyKeys(bucket, (k) => k === sentinel.key || k === KEY);
});

const MODES = ["STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER", "STREAMING-UNSIGNED-PAYLOAD-TRAILER", "STREAMING-UNSIGNED-PAYLOAD"] as const;
type Mode = (typeof MODES)[number];
const signedMode = (m: Mode) => m.startsWith("STREAMING-AWS4");
const trailerMode = (m: Mode) => m.endsWith("-TRAILER");
const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

type SizeStyle = "ok" | "upper" | "zeros" | "extension" | "huge" | "junk" | "plus-one" | "minus-one";
type SigStyle = "ok" | "wrong" | "missing" | "upper" | "short" | "previous";
type Eol = "\r\n" | "\n" | "\r" | "\r\r\n" | "";
type TrailerStyle = "ok" | "wrong-crc" | "missing" | "junk-line" | "duplicate" | "unannounced" | "no-colon" | "sig-wrong" | "sig-missing" | "sig-first" | "bad-base64";

interface ChunkSpec {
  size: number;
  sizeStyle: SizeStyle;
  sig: SigStyle;
  eol: Eol;
  after: "\r\n" | "" | "\n" | "XX";
}

interface Case {
  mode: Mode;
  payloadSize: number;
  seed: number;
  chunks: ChunkSpec[];
  final: { sig: SigStyle; eol: Eol };
  trailer: TrailerStyle;
  end: "\r\n" | "" | "\r\n\r\n" | "junk";
  decodedLength: "ok" | "+1" | "-1" | "huge" | "junk" | "missing";
  zeroChunkAt: number | null;
  truncate: number | null;
  declareTrailer: boolean;
  contentMd5: boolean;
  pieces: number[] | null;
}


/** Random deviations from a correct encoding, each rarely (so most cases keep most of the frame right). */
const rare = <T,>(ok: T, ...others: T[]): fc.Arbitrary<T> => fc.oneof({ weight: 12, arbitrary: fc.constant(ok) }, { weight: 1, arbitrary: fc.constantFrom(...others) });

/** `arb` in one case out of `n`, else null. */
const sometimes = <T,>(arb: fc.Arbitrary<T>, n: number): fc.Arbitrary<T | null> => fc.oneof({ weight: n - 1, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: arb });

const chunkSpec = fc.record({
  sizeStyle: rare<SizeStyle>("ok", "upper", "zeros", "extension", "huge", "junk", "plus-one", "minus-one"),
  sig: rare<SigStyle>("ok", "wrong", "missing", "upper", "short", "previous"),
  eol: rare<Eol>("\r\n", "\n", "\r", "\r\r\n", ""),
  after: rare<ChunkSpec["after"]>("\r\n", "", "\n", "XX"),
});

const caseArb: fc.Arbitrary<Case> = fc
  .record({
    mode: fc.constantFrom(...MODES),
    payloadSize: fc.oneof({ weight: 5, arbitrary: fc.integer({ min: 0, max: 400 }) }, { weight: 2, arbitrary: fc.integer({ min: 8192, max: 40_000 }) }, { weight: 1, arbitrary: fc.integer({ min: 65_000, max: 140_000 }) }),
    seed: fc.integer({ min: 1, max: 1 << 30 }),
    cuts: fc.array(fraction, { maxLength: 6 }),
    chunkSpecs: fc.array(chunkSpec, { minLength: 8, maxLength: 8 }),
    final: fc.record({ sig: rare<SigStyle>("ok", "wrong", "missing", "upper", "short"), eol: rare<Eol>("\r\n", "\n", "\r", "") }),
    trailer: rare<TrailerStyle>("ok", "wrong-crc", "missing", "junk-line", "duplicate", "unannounced", "no-colon", "sig-wrong", "sig-missing", "sig-first", "bad-base64"),
    end: rare<Case["end"]>("\r\n", "", "\r\n\r\n", "junk"),
    decodedLength: rare<Case["decodedLength"]>("ok", "+1", "-1", "huge", "junk", "missing"),
    zeroChunkAt: sometimes(fc.integer({ min: 0, max: 5 }), 12),
    truncate: sometimes(fraction, 10),
    declareTrailer: rare(true, false),
    contentMd5: fc.constant(true),
    pieces: sometimes(fc.array(fc.integer({ min: 1, max: 70_000 }), { minLength: 1, maxLength: 4 }), 2),
    // Half the cases are intact encodings (only sizes, pieces and mode vary), so the
    // success path is exercised as hard as the refusals.
    intact: fc.boolean(),
    smallSignedChunks: rare(false, true),
  })
  .map((r) => {
    // Chunk boundaries from the cut points; signed modes keep S3's 8 KiB minimum unless told not to.
    const bounds = [...new Set(r.cuts.map((c) => Math.floor(c * r.payloadSize)))].filter((b) => b > 0 && b < r.payloadSize).sort((a, b) => a - b);
    const sizes: number[] = [];
    let at = 0;
    for (const b of [...bounds, r.payloadSize]) {
      if (b - at <= 0) continue;
      if (signedMode(r.mode) && !r.smallSignedChunks && b - at < 8192 && b !== r.payloadSize) continue;
      sizes.push(b - at);
      at = b;
    }
    const ok = { sizeStyle: "ok", sig: "ok", eol: "\r\n", after: "\r\n" } as const;
    const chunks = sizes.map((size, i) => ({ size, ...(r.intact ? ok : r.chunkSpecs[i % r.chunkSpecs.length]!) }));
    const base = { mode: r.mode, payloadSize: r.payloadSize, seed: r.seed, chunks, pieces: r.pieces, contentMd5: true };
    if (r.intact) return { ...base, final: { sig: "ok", eol: "\r\n" }, trailer: "ok", end: "\r\n", decodedLength: "ok", zeroChunkAt: null, truncate: null, declareTrailer: true } satisfies Case;
    return { ...base, final: r.final, trailer: r.trailer, end: r.end, decodedLength: r.decodedLength, zeroChunkAt: r.zeroChunkAt, truncate: r.truncate, declareTrailer: r.declareTrailer } satisfies Case;
  });

const isCanonical = (c: Case) =>
  c.chunks.every((x) => x.sizeStyle === "ok" && x.sig === "ok" && x.eol === "\r\n" && x.after === "\r\n") &&
  c.final.sig === "ok" &&
  c.final.eol === "\r\n" &&
  c.trailer === "ok" &&
  c.end === "\r\n" &&
  c.decodedLength === "ok" &&
  c.zeroChunkAt === null &&
  c.truncate === null &&
  c.declareTrailer;

/** Builds and sends the PutObject for a case; returns the response and the payload. */
async function put(c: Case, edits: readonly ByteEdit[] = []): Promise<{ response: Response; payload: Uint8Array }> {
  const payload = pseudoRandom(c.payloadSize, c.seed);
  const signer = signerFor("adminA");
  const date = new Date();
  const enc = (s: string) => utf8(s);
  const signedM = signedMode(c.mode);
  const trailerName = "x-amz-checksum-crc32";
  const headers: Record<string, string> = {
    host: HOST,
    "content-encoding": "aws-chunked",
    "x-amz-content-sha256": c.mode,
    "content-md5": await md5Base64Of(payload),
  };
  const decoded = { ok: String(payload.byteLength), "+1": String(payload.byteLength + 1), "-1": String(Math.max(0, payload.byteLength - 1)), huge: "99999999999999999999", junk: "12a", missing: "" }[c.decodedLength];
  if (c.decodedLength !== "missing") headers["x-amz-decoded-content-length"] = decoded;
  if (trailerMode(c.mode) && c.declareTrailer) headers["x-amz-trailer"] = trailerName;

  const build = async (seed: string, amzDate: string): Promise<Uint8Array> => {
    const scope = `${amzDate.slice(0, 8)}/us-east-1/s3/aws4_request`;
    let previous = seed;
    const sign = async (hash: string) => {
      previous = await signer.sign(`AWS4-HMAC-SHA256-PAYLOAD\n${amzDate}\n${scope}\n${previous}\n${EMPTY_SHA256}\n${hash}`, { signingDate: date });
      return previous;
    };
    const parts: Uint8Array[] = [];
    let offset = 0;
    const header = async (size: number, spec: Pick<ChunkSpec, "sizeStyle" | "sig" | "eol">, data: Uint8Array) => {
      let hex = size.toString(16);
      if (spec.sizeStyle === "upper") hex = hex.toUpperCase();
      else if (spec.sizeStyle === "zeros") hex = "000" + hex;
      else if (spec.sizeStyle === "huge") hex = "fffffffffffffff0";
      else if (spec.sizeStyle === "junk") hex = "-" + hex;
      else if (spec.sizeStyle === "plus-one") hex = (size + 1).toString(16);
      else if (spec.sizeStyle === "minus-one") hex = Math.max(0, size - 1).toString(16);
      const before = previous;
      const good = await sign(await sha256Hex(data));
      let sig = good;
      if (spec.sig === "wrong") sig = (good[0] === "0" ? "1" : "0") + good.slice(1);
      else if (spec.sig === "upper") sig = good.toUpperCase();
      else if (spec.sig === "short") sig = good.slice(0, 63);
      else if (spec.sig === "previous") sig = before;
      let line = hex;
      if (signedM && spec.sig !== "missing") line += `;chunk-signature=${sig}`;
      if (!signedM && spec.sizeStyle === "extension") line += ";ext=1";
      parts.push(enc(line + spec.eol));
    };
    for (const [i, chunk] of c.chunks.entries()) {
      if (c.zeroChunkAt === i) await header(0, { sizeStyle: "ok", sig: "ok", eol: "\r\n" }, new Uint8Array(0));
      const data = payload.subarray(offset, offset + chunk.size);
      offset += chunk.size;
      await header(chunk.size, chunk, data);
      parts.push(data, enc(chunk.after));
    }
    await header(0, { sizeStyle: "ok", sig: c.final.sig, eol: c.final.eol }, new Uint8Array(0));
    if (trailerMode(c.mode)) {
      const crc = crc32Base64(payload);
      let lines: string[] = [`${trailerName}:${crc}`];
      if (c.trailer === "wrong-crc") lines = [`${trailerName}:${crc32Base64(utf8("other"))}`];
      else if (c.trailer === "missing") lines = [];
      else if (c.trailer === "junk-line") lines.push("x-junk:1");
      else if (c.trailer === "duplicate") lines.push(`${trailerName}:${crc}`);
      else if (c.trailer === "unannounced") lines = [`x-amz-checksum-sha256:${crc}`];
      else if (c.trailer === "no-colon") lines = [`${trailerName} ${crc}`];
      else if (c.trailer === "bad-base64") lines = [`${trailerName}:!!!!`];
      const trailerSig = signedM ? await signer.sign(`AWS4-HMAC-SHA256-TRAILER\n${amzDate}\n${scope}\n${previous}\n${await sha256Hex(lines.map((l) => l + "\n").join(""))}`, { signingDate: date }) : "";
      const sigLine = `x-amz-trailer-signature:${c.trailer === "sig-wrong" ? "0".repeat(64) : trailerSig}`;
      if (signedM && c.trailer === "sig-first") lines.unshift(sigLine);
      for (const l of lines) parts.push(enc(l + "\r\n"));
      if (signedM && c.trailer !== "sig-missing" && c.trailer !== "sig-first") parts.push(enc(sigLine + "\r\n"));
    }
    parts.push(enc(c.end === "junk" ? "\r\njunk" : c.end));
    const body = concatBytes(...parts);
    return c.truncate === null ? body : body.slice(0, Math.floor(c.truncate * body.byteLength));
  };

  // Content-Length stays unsigned (SigV4 does not require it), so edited bodies reach the decoder.
  const signed = await signer.sign({ method: "PUT", protocol: "http:", hostname: HOST, path: `/${bucket}/${KEY}`, query: {}, headers }, { signingDate: date });
  const authorization = (signed.headers as Record<string, string>)["authorization"]!;
  const amzDate = (signed.headers as Record<string, string>)["x-amz-date"]!;
  let body = await build(/Signature=([0-9a-f]{64})/.exec(authorization)![1]!, amzDate);
  for (const e of edits) body = applyByteEdit(body, e);

  const h = new Headers();
  for (const [k, v] of Object.entries(signed.headers as Record<string, string>)) if (k !== "host") h.set(k, v);
  h.set("content-length", String(body.byteLength));
  const response = await fetchWorker(`http://${HOST}/${bucket}/${KEY}`, { method: "PUT", headers: h, body: c.pieces ? piecewiseStream(body, c.pieces, "bytes") : body });
  return { response, payload };
}

let accepted = 0;
let refused = 0;

/** Sends a case and checks the property; `intactExpected`: the encoding is untouched. */
async function checkCase(c: Case, edits: readonly ByteEdit[]): Promise<void> {
  const { response, payload } = await put(c, edits);
  const r = await checkResponse(response, "PUT", `aws-chunked case ${JSON.stringify({ ...c, chunks: c.chunks.length, edits })}`);
  const smallSigned = signedMode(c.mode) && c.chunks.slice(0, -1).some((x) => x.size < 8192);
  if (isCanonical(c) && edits.length === 0) {
    if (smallSigned) expect(r.code).toBe("InvalidChunkSizeError");
    else expect(r.status, `an intact ${c.mode} encoding was refused: ${r.code}`).toBe(200);
  }
  if (r.status === 200) {
    accepted++;
    stored = payload;
  } else refused++;
  const get = await send("adminA", { method: "GET", bucket, key: KEY });
  const bytes = new Uint8Array(await get.arrayBuffer());
  if (stored === null) expect(get.status).toBe(404);
  else {
    expect(get.status).toBe(200);
    expect(sameBytes(bytes, stored), r.status === 200 ? "a 200 stored other bytes than the payload" : "a refused upload changed the object").toBe(true);
  }
}

describe("aws-chunked bodies", () => {
  it("every mode, chunk sizes, signatures, line endings, trailers, lengths and truncation: stored exactly or refused", async () => {
    await fuzz("aws-chunked/encodings", caseArb, (c) => checkCase(c, []), 1.5);
    console.log(`[fuzz] aws-chunked: ${accepted} accepted, ${refused} refused`);
    expect(accepted, "no case was accepted: the generator never produces intact encodings").toBeGreaterThan(0);
    await sentinel.check();
  }, 1_800_000);

  it("byte edits anywhere in an encoding (flips, deletions, insertions, duplications, truncation): stored exactly or refused", async () => {
    const intact = caseArb.filter((c) => isCanonical(c));
    await fuzz("aws-chunked/byte-edits", fc.tuple(intact, fc.array(byteEdit, { minLength: 1, maxLength: 3 })), ([c, edits]) => checkCase(c, edits), 1.5);
    await sentinel.check();
  }, 1_800_000);
});
