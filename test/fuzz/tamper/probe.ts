/**
 * What the campaign asks of the worker after each mutation, and the property every answer
 * must hold: no response ever delivers bytes that are not a correct slice of the original
 * plaintext. A response either fails (status ≥ 400, an S3 XML error without the plaintext),
 * or streams authentic bytes and aborts; one that ends cleanly must have delivered exactly
 * the requested slice — and for a whole read (GET, or a GET of a CopyObject's result) that
 * may only happen when the mutation left the object as it was.
 */
import fc from "fast-check";
import { readFully, send, type Send, type Who } from "../../support/s3-harness";
import type { Expected } from "./victims";

export type RangeSpec = { kind: "bounded"; a: number; len: number } | { kind: "open"; a: number } | { kind: "suffix"; n: number };

/** Ranges around the interesting places: starts, chunk boundaries, the end, and past it. */
export const rangeArb: fc.Arbitrary<RangeSpec> = fc.oneof(
  fc.record({ kind: fc.constant("bounded" as const), a: fc.nat(), len: fc.oneof(fc.integer({ min: 1, max: 100 }), fc.integer({ min: 1, max: 300_000 })) }),
  fc.record({ kind: fc.constant("open" as const), a: fc.nat() }),
  fc.record({ kind: fc.constant("suffix" as const), n: fc.oneof(fc.integer({ min: 1, max: 100 }), fc.integer({ min: 1, max: 300_000 })) }),
);

/** The header for a range over an object of `size` bytes, and the slice S3 semantics give (null: 416). */
export function rangeFor(spec: RangeSpec, size: number): { header: string; first: number; last: number } | { header: string; first: null; last: null } {
  // Offsets land on chunk boundaries (±1) a third of the time, anywhere (or just past the end) otherwise.
  const place = (a: number) => (a % 3 === 0 ? Math.max(0, (Math.floor(a / 3) % 6) * 65536 + ((a % 9) / 3 - 1)) : a % (size + 2));
  if (spec.kind === "suffix") {
    const header = `bytes=-${spec.n}`;
    return size === 0 ? { header, first: null, last: null } : { header, first: Math.max(0, size - spec.n), last: size - 1 };
  }
  const first = place(spec.a);
  const header = spec.kind === "bounded" ? `bytes=${first}-${first + spec.len - 1}` : `bytes=${first}-`;
  if (first >= size) return { header, first: null, last: null };
  const last = spec.kind === "bounded" ? Math.min(first + spec.len - 1, size - 1) : size - 1;
  return { header, first, last };
}

/** How a response ended, for the tallies. */
export type Outcome = "refused" | "aborted" | "served" | "unsatisfiable";

export class Violation extends Error {}

function fail(what: string): never {
  throw new Violation(what);
}

const decoder = new TextDecoder();

/** An error answer: an S3 XML error document (HEAD: no body), never a 5xx beyond 500, never plaintext. */
async function judgeError(r: Response, method: string, what: string): Promise<void> {
  if (r.status >= 600 || (r.status > 500 && r.status !== 501)) fail(`${what}: status ${r.status}`);
  const { bytes } = await readFully(r);
  if (method === "HEAD") {
    if (bytes.byteLength !== 0) fail(`${what}: HEAD error with a body`);
    return;
  }
  const text = decoder.decode(bytes);
  if (r.headers.get("content-type") !== "application/xml" || !text.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>') && !text.startsWith('<?xml version="1.0" encoding="UTF-8"?><Error><Code>')) {
    fail(`${what}: ${r.status} is not an S3 XML error: ${text.slice(0, 200)}`);
  }
  // A stack frame ("at fn (file.ts:1:2)") or a source location; base64 ids cannot contain either.
  if (/\bat \S+ \(|\.(?:ts|js|mjs):\d+/.test(text)) fail(`${what}: error body looks like a stack: ${text.slice(0, 300)}`);
  if (bytes.byteLength > 4096) fail(`${what}: error body of ${bytes.byteLength} bytes`);
}

/** Headers of a successful answer must be the object's own (authenticated) metadata. */
function judgeHeaders(r: Response, expected: Expected, what: string): void {
  if (r.headers.get("etag") !== expected.etag) fail(`${what}: ETag ${r.headers.get("etag")} instead of ${expected.etag}`);
  if (r.headers.get("content-type") !== expected.contentType) fail(`${what}: Content-Type ${r.headers.get("content-type")}`);
  if (r.headers.get("x-amz-server-side-encryption") !== expected.sse) fail(`${what}: SSE header ${r.headers.get("x-amz-server-side-encryption")}`);
  const meta: Record<string, string> = {};
  for (const [name, value] of r.headers) if (name.startsWith("x-amz-meta-")) meta[name] = value;
  if (JSON.stringify(meta) !== JSON.stringify(expected.userMetadata)) fail(`${what}: user metadata ${JSON.stringify(meta)}`);
}

function isPrefix(bytes: Uint8Array, of: Uint8Array): boolean {
  if (bytes.byteLength > of.byteLength) return false;
  for (let i = 0; i < bytes.byteLength; i++) if (bytes[i] !== of[i]) return false;
  return true;
}

export interface ReadProbe {
  who: Who;
  bucket: string;
  key: string;
  /** The plaintext slice a successful answer must deliver; null when S3 would answer 416 for the original. */
  slice: Uint8Array | null;
  range?: { header: string; first: number | null; last: number | null };
  partNumber?: number;
  /** A whole read: may only end cleanly when the stored object is unchanged. */
  whole: boolean;
  unchanged: boolean;
  expected: Expected;
  size: number;
  what: string;
}

/** One GET; the outcome, or a Violation. */
export async function probeGet(p: ReadProbe): Promise<Outcome> {
  const c: Send = { method: "GET", bucket: p.bucket, key: p.key };
  if (p.range) c.headers = { range: p.range.header };
  if (p.partNumber !== undefined) c.query = { partNumber: String(p.partNumber) };
  const r = await send(p.who, c);
  if (r.status >= 400) {
    await judgeError(r, "GET", p.what);
    return p.slice === null && r.status === 416 ? "unsatisfiable" : "refused";
  }
  if (p.slice === null) fail(`${p.what}: ${r.status} for a range the original object cannot satisfy`);
  judgeHeaders(r, p.expected, p.what);
  const expectedStatus = p.range || p.partNumber !== undefined ? 206 : 200;
  if (r.status !== expectedStatus) fail(`${p.what}: status ${r.status}, expected ${expectedStatus}`);
  if (p.range && p.range.first !== null) {
    const want = `bytes ${p.range.first}-${p.range.last}/${p.size}`;
    if (r.headers.get("content-range") !== want) fail(`${p.what}: Content-Range ${r.headers.get("content-range")}, expected ${want}`);
  }
  const { bytes, errored } = await readFully(r);
  if (!isPrefix(bytes, p.slice)) fail(`${p.what}: served ${bytes.byteLength} bytes that are not the plaintext slice`);
  if (errored) return "aborted";
  if (bytes.byteLength !== p.slice.byteLength) fail(`${p.what}: clean end after ${bytes.byteLength} of ${p.slice.byteLength} bytes`);
  if (p.whole && !p.unchanged) fail(`${p.what}: a whole read of a changed object ended cleanly`);
  return "served";
}

/** HEAD: refused, or answered with the object's own metadata and size. */
export async function probeHead(who: Who, bucket: string, key: string, expected: Expected, size: number, what: string, mustRefuse = false): Promise<"refused" | "answered"> {
  const r = await send(who, { method: "HEAD", bucket, key });
  if (r.status >= 400) {
    await judgeError(r, "HEAD", what);
    return "refused";
  }
  if (mustRefuse) fail(`${what}: answered ${r.status}`);
  judgeHeaders(r, expected, what);
  if (r.headers.get("content-length") !== String(size)) fail(`${what}: Content-Length ${r.headers.get("content-length")} instead of ${size}`);
  await readFully(r);
  return "answered";
}

/** CopyObject of the object to `target`; refused (the target must then not exist) or copied. */
export async function probeCopy(bucket: string, key: string, target: string, what: string): Promise<"refused" | "copied"> {
  const r = await send("adminA", { method: "PUT", bucket, key: target, headers: { "x-amz-copy-source": `/${bucket}/${encodeURIComponent(key).replace(/%2F/g, "/")}` } });
  if (r.status >= 400) {
    await judgeError(r, "PUT", what);
    return "refused";
  }
  const text = decoder.decode((await readFully(r)).bytes);
  if (!text.includes("<CopyObjectResult")) fail(`${what}: 200 without a CopyObjectResult: ${text.slice(0, 200)}`);
  return "copied";
}
