/**
 * Shared machinery of the fuzz suites (test/fuzz): how many cases to run, the response
 * properties every case must satisfy, a sentinel object nothing may change, raw request
 * building for inputs the harness would refuse to produce, and a few generators.
 *
 * Requests go through the worker's real fetch handler in workerd (the same path
 * test/support/s3-harness.ts uses), so the parsers are exercised behind the router,
 * authentication and handlers exactly as a client would reach them.
 */
import { env } from "cloudflare:workers";
import fc from "fast-check";
import { XMLParser, XMLValidator } from "fast-xml-parser";
import { expect } from "vitest";
import { encodeKey } from "../support/sigv4-oracle";
import { concatBytes as concatAll, pseudoRandom } from "../support/sources";
import { HOST, fetchWorker, rawGet, readFully, sameBytes, send, signerFor, toHex, utf8, type RawObject, type Who } from "../support/s3-harness";

// ---- case counts ---------------------------------------------------------------------------

/** Cases per property unit inside `npm test`: a smoke sample that keeps the suite fast. */
const SMOKE_RUNS = 12;

/** FUZZ_RUNS (set by `npm run fuzz`, passed into workerd by vitest.config.ts), else the smoke sample. */
export function baseRuns(): number {
  const raw = (env as unknown as { FUZZ_RUNS?: string }).FUZZ_RUNS;
  const n = raw ? Number(raw) : NaN;
  return Number.isFinite(n) && n > 0 ? n : SMOKE_RUNS;
}

/**
 * Runs one property for `weight` × FUZZ_RUNS cases (at least 1) and prints one line
 * scripts/fuzz.mjs totals: "[fuzz] <name>: <cases> cases in <ms> ms[ FAILED]; responses: …"
 * (the statuses and codes seen, most frequent first). fast-check reports
 * the seed and the shrunk counterexample of a failure; FUZZ_SEED replays a seed.
 */
export async function fuzz<T>(name: string, arbitrary: fc.Arbitrary<T>, predicate: (value: T) => Promise<void>, weight = 1): Promise<void> {
  const numRuns = Math.max(1, Math.round(baseRuns() * weight));
  const seedRaw = (env as unknown as { FUZZ_SEED?: string }).FUZZ_SEED;
  let cases = 0;
  outcomes.clear();
  const started = Date.now();
  let failed = true;
  try {
    await fc.assert(
      fc.asyncProperty(arbitrary, async (value) => {
        cases++;
        await predicate(value);
      }),
      // A failure is shrunk (the request replayed with smaller inputs) to a readable counterexample.
      { numRuns, ...(seedRaw ? { seed: Number(seedRaw) } : {}) },
    );
    failed = false;
  } finally {
    const top = [...outcomes].sort((a, b) => b[1] - a[1]).slice(0, 8).map(([k, n]) => `${k} ×${n}`);
    console.log(`[fuzz] ${name}: ${cases} cases in ${Date.now() - started} ms${failed ? " FAILED" : ""}; responses: ${top.join(", ")}`);
  }
}

/** Statuses and codes seen by checkResponse during the current property (printed with its count). */
const outcomes = new Map<string, number>();

// ---- the response property -----------------------------------------------------------------

/**
 * HTTP status of every S3 error code this endpoint may answer, written from AWS's "Error
 * responses" list (docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html), not from
 * src/errors.ts, so a code answered with the wrong status is caught. A code missing
 * here fails the property until someone checks it against AWS and adds it.
 */
export const AWS_ERROR_STATUS: Readonly<Record<string, number>> = {
  AccessDenied: 403,
  AccessControlListNotSupported: 400,
  AccountProblem: 403,
  AuthorizationHeaderMalformed: 400,
  AuthorizationQueryParametersError: 400,
  BadDigest: 400,
  BadRequest: 400,
  BucketAlreadyExists: 409,
  BucketAlreadyOwnedByYou: 409,
  BucketNotEmpty: 409,
  CORSResponse: 403,
  EntityTooLarge: 400,
  EntityTooSmall: 400,
  ExpiredToken: 400,
  IllegalLocationConstraintException: 400,
  IncompleteBody: 400,
  IncorrectNumberOfFilesInPostRequest: 400,
  InvalidAccessKeyId: 403,
  InvalidArgument: 400,
  InvalidBucketAclWithObjectOwnership: 400,
  InvalidBucketName: 400,
  InvalidBucketState: 409,
  InvalidChunkSizeError: 403,
  InvalidDigest: 400,
  InvalidEncryptionAlgorithmError: 400,
  InvalidLocationConstraint: 400,
  InvalidPart: 400,
  InvalidPartNumber: 416,
  InvalidPartOrder: 400,
  InvalidPolicyDocument: 400,
  InvalidRange: 416,
  InvalidRequest: 400,
  InvalidStorageClass: 400,
  InvalidTag: 400,
  InvalidURI: 400,
  KeyTooLongError: 400,
  MalformedACLError: 400,
  MalformedPolicy: 400,
  MalformedPOSTRequest: 400,
  MalformedTrailerError: 400,
  MalformedXML: 400,
  MaxMessageLengthExceeded: 400,
  MaxPostPreDataLengthExceededError: 400,
  MetadataTooLarge: 400,
  MethodNotAllowed: 405,
  MissingContentLength: 411,
  MissingRequestBodyError: 400,
  MissingSecurityHeader: 400,
  NoSuchBucket: 404,
  NoSuchBucketPolicy: 404,
  NoSuchCORSConfiguration: 404,
  NoSuchKey: 404,
  NoSuchLifecycleConfiguration: 404,
  NoSuchPublicAccessBlockConfiguration: 404,
  NoSuchTagSet: 404,
  NoSuchUpload: 404,
  NoSuchVersion: 404,
  NotImplemented: 501,
  OperationAborted: 409,
  PreconditionFailed: 412,
  RequestTimeout: 400,
  RequestTimeTooSkewed: 403,
  ServerSideEncryptionConfigurationNotFoundError: 404,
  SignatureDoesNotMatch: 403,
  XAmzContentSHA256Mismatch: 400,
  // KMS failures surfaced by S3 keep KMS's exception names and answer 400.
  "KMS.NotFoundException": 400,
  "KMS.DisabledException": 400,
  "KMS.KMSInvalidStateException": 400,
};

const xmlParser = new XMLParser({ ignoreAttributes: true, parseTagValue: false, processEntities: true, htmlEntities: false });

export interface Checked {
  status: number;
  /** Error code, null for success. */
  code: string | null;
  /** The body (read fully). */
  bytes: Uint8Array;
  headers: Headers;
}

/**
 * The property every fuzzed response must hold: no 5xx but 501 NotImplemented; every
 * error a complete S3 XML error document (well-formed, <Error> with Code, Message,
 * Resource, RequestId matching x-amz-request-id) whose code is an AWS code answered with
 * AWS's status (HEAD errors: no body, the status alone); success bodies stream to the end.
 */
export async function checkResponse(response: Response, method: string, label = ""): Promise<Checked> {
  const { bytes, errored } = await readFully(response);
  const outcome = String(response.status) + (response.status >= 300 && method !== "HEAD" ? " " + (/<Code>([^<]*)<\/Code>/.exec(new TextDecoder().decode(bytes))?.[1] ?? "") : "");
  outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
  const where = `${method} → ${response.status} ${label}`;
  const text = new TextDecoder().decode(bytes);
  expect(errored, `${where}: the body stream errored`).toBe(false);
  const requestId = response.headers.get("x-amz-request-id");
  expect(requestId, `${where}: x-amz-request-id`).toMatch(/^[0-9A-F]{16}$/);
  if (response.status < 300 || response.status === 303 || response.status === 304) {
    expect(response.status, where).toBeGreaterThanOrEqual(200);
    return { status: response.status, code: null, bytes, headers: response.headers };
  }
  if (method === "HEAD") {
    expect(bytes.byteLength, `${where}: HEAD error with a body`).toBe(0);
    expect([400, 401, 403, 404, 405, 409, 411, 412, 416, 501], `${where}: unexpected HEAD status`).toContain(response.status);
    return { status: response.status, code: null, bytes, headers: response.headers };
  }
  expect(response.headers.get("content-type"), `${where}: ${text}`).toBe("application/xml");
  expect(text.startsWith('<?xml version="1.0" encoding="UTF-8"?>'), `${where}: ${text}`).toBe(true);
  expect(XMLValidator.validate(text), `${where}: not well-formed: ${text}`).toBe(true);
  const doc = xmlParser.parse(text) as { Error?: Record<string, unknown> };
  const error = doc.Error;
  expect(error && typeof error === "object", `${where}: no <Error> root: ${text}`).toBe(true);
  const code = String(error!["Code"] ?? "");
  expect(code, `${where}: no Code: ${text}`).not.toBe("");
  expect(error!["Message"], `${where}: no Message: ${text}`).toBeTruthy();
  expect("Resource" in error!, `${where}: no Resource: ${text}`).toBe(true);
  expect(String(error!["RequestId"]), `${where}: RequestId`).toBe(requestId);
  expect(code, `${where}: InternalError: ${text}`).not.toBe("InternalError");
  expect(AWS_ERROR_STATUS[code], `${where}: code ${code} is not in the AWS table: ${text}`).toBeDefined();
  expect(response.status, `${where}: ${code} must answer ${AWS_ERROR_STATUS[code]}: ${text}`).toBe(AWS_ERROR_STATUS[code]);
  return { status: response.status, code, bytes, headers: response.headers };
}

// ---- the sentinel -------------------------------------------------------------------------

export interface Sentinel {
  bucket: string;
  key: string;
  body: Uint8Array;
  etag: string;
  raw: RawObject;
  /** Fails unless the object is byte-for-byte what was written: raw R2 bytes and metadata, and a signed GET. */
  check(): Promise<void>;
}

/** Writes an object the fuzzer must never change or remove (its R2 bytes are compared too). */
export async function writeSentinel(bucket: string, key = "sentinel/☃ object", size = 70_000): Promise<Sentinel> {
  const body = pseudoRandom(size, 0x5e7);
  const put = await send("adminA", { method: "PUT", bucket, key, body, headers: { "x-amz-meta-role": "sentinel" } });
  expect(put.status, await put.clone().text()).toBe(200);
  const etag = put.headers.get("etag")!;
  const raw = (await rawGet(bucket, key))!;
  const sentinel: Sentinel = {
    bucket,
    key,
    body,
    etag,
    raw,
    async check() {
      const now = await rawGet(bucket, key);
      expect(now, `sentinel ${bucket}/${key} was removed`).not.toBeNull();
      expect(sameBytes(now!.body, raw.body), `sentinel ${bucket}/${key}: stored bytes changed`).toBe(true);
      expect(now!.customMetadata, `sentinel ${bucket}/${key}: metadata changed`).toEqual(raw.customMetadata);
      const r = await send("adminA", { method: "GET", bucket, key });
      const { bytes, errored } = await readFully(r);
      expect(r.status).toBe(200);
      expect(errored).toBe(false);
      expect(r.headers.get("etag")).toBe(etag);
      expect(sameBytes(bytes, body), `sentinel ${bucket}/${key}: served bytes changed`).toBe(true);
    },
  };
  return sentinel;
}

/** Every key stored under the bucket (raw R2 listing, independent of the worker's listing code). */
export async function rawKeys(bucket: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await env.OBJECTS.list({ prefix: `${bucket}/`, ...(cursor ? { cursor } : {}) });
    for (const o of page.objects) keys.push(o.key.slice(bucket.length + 1));
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  return keys;
}

/** Fails if the bucket holds a key that is neither the sentinel nor one `allowed` expects. */
export async function expectOnlyKeys(bucket: string, allowed: (key: string) => boolean): Promise<void> {
  const unexpected = (await rawKeys(bucket)).filter((k) => !allowed(k));
  expect(unexpected, `unexpected keys in ${bucket}`).toEqual([]);
}

// ---- raw requests ---------------------------------------------------------------------------

export interface RawRequest {
  method: string;
  /** Raw path as it goes on the wire (already encoded). */
  path: string;
  /** Raw query string without "?" ("" for none). */
  query: string;
  headers: Record<string, string>;
  body?: Uint8Array | string;
  /** Host the request goes to (default the harness's HOST). */
  host?: string;
}

/** The signed pieces of a request (as `send` would sign it), for tests that mutate them before sending. */
export async function signedRequest(
  who: Who,
  c: { method: string; bucket?: string; key?: string; rawPath?: string; query?: Record<string, string>; headers?: Record<string, string>; body?: Uint8Array | string; payload?: string; date?: Date },
): Promise<RawRequest> {
  const path = c.rawPath ?? "/" + (c.bucket ?? "") + (c.key !== undefined ? "/" + encodeKey(c.key) : "");
  const query = c.query ?? {};
  const headers: Record<string, string> = { host: HOST };
  for (const [k, v] of Object.entries(c.headers ?? {})) headers[k] = headerValue(v);
  const body = c.body;
  headers["x-amz-content-sha256"] = c.payload ?? (await sha256Hex(body));
  if (body !== undefined && c.method !== "GET" && c.method !== "HEAD") headers["content-length"] ??= String(typeof body === "string" ? utf8(body).byteLength : body.byteLength);
  const signed = await signerFor(who).sign({ method: c.method, protocol: "http:", hostname: HOST, path, query, headers, body }, c.date ? { signingDate: c.date } : {});
  return { method: c.method, path, query: queryString(query), headers: { ...(signed.headers as Record<string, string>) }, ...(body !== undefined ? { body } : {}) };
}

/** RFC 3986 query string, sorted (as the SDK sends it). */
export function queryString(query: Record<string, string>): string {
  const enc = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (ch) => "%" + ch.charCodeAt(0).toString(16).toUpperCase());
  return Object.keys(query)
    .sort()
    .map((k) => (query[k] === "" ? enc(k) : `${enc(k)}=${enc(query[k]!)}`))
    .join("&");
}

/**
 * Sends a raw request to the worker. Header names keep only token characters; values go
 * through headerValue (sign what you send: signedRequest applies it before signing).
 */
export function sendRaw(r: RawRequest, env?: Parameters<typeof fetchWorker>[2]): Promise<Response> {
  const h = new Headers();
  for (const [k, v] of Object.entries(r.headers)) {
    if (k.toLowerCase() === "host") continue;
    const name = k.replace(/[^!#$%&'*+\-.^_`|~0-9A-Za-z]/g, "");
    if (name === "") continue;
    h.append(name, headerValue(v));
  }
  const body = r.method === "GET" || r.method === "HEAD" ? undefined : r.body;
  return fetchWorker(`http://${r.host ?? HOST}${r.path}${r.query ? "?" + r.query : ""}`, { method: r.method, headers: h, ...(body !== undefined ? { body } : {}) }, env);
}

/**
 * A header value the worker receives exactly as it was signed: no CR, LF or NUL (no HTTP
 * parser lets them through); no leading or trailing whitespace other than space and tab
 * (signers disagree there: smithy keeps U+000B, U+000C, U+00A0, botocore and the worker
 * strip them — see docs/testing.md); characters beyond U+00FF replaced by their UTF-8
 * bytes as Latin-1 characters (in-process, workerd would otherwise hand the worker a
 * different string than the one signed — a quirk of the test path). Idempotent.
 */
export function headerValue(v: string): string {
  const clean = v.replace(/[\r\n\0]/g, "");
  // Trim after the conversion too: a UTF-8 byte 0xA0 read as Latin-1 is U+00A0.
  return (/[^\x00-\xff]/.test(clean) ? byteString(clean) : clean).trim();
}

/** A JS string as the Latin-1 byte string of its UTF-8 encoding. */
export function byteString(s: string): string {
  let out = "";
  for (const b of utf8(s)) out += String.fromCharCode(b);
  return out;
}

export async function sha256Hex(body: Uint8Array | string | undefined): Promise<string> {
  const bytes = typeof body === "string" ? utf8(body) : (body ?? new Uint8Array(0));
  return toHex(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)));
}

export async function md5Base64Of(body: Uint8Array | string): Promise<string> {
  const bytes = typeof body === "string" ? utf8(body) : body;
  const digest = new Uint8Array(await crypto.subtle.digest("MD5", bytes));
  return btoa(String.fromCharCode(...digest));
}

// ---- generators -------------------------------------------------------------------------------

/**
 * A position in [0, 1], uniform (fc.double leans hard towards tiny values, which would put
 * every edit at the start of its input).
 */
export const fraction: fc.Arbitrary<number> = fc.integer({ min: 0, max: 1_000_000 }).map((n) => n / 1_000_000);

/** Strings that stress text handling: unicode (astral, combining, RTL, BOM), controls, escapes, huge. */
export const nastyString = (maxLength = 64): fc.Arbitrary<string> =>
  fc.oneof(
    { weight: 4, arbitrary: fc.string({ maxLength }) },
    { weight: 3, arbitrary: fc.string({ unit: "binary", maxLength }) },
    { weight: 2, arbitrary: fc.string({ unit: fc.constantFrom(...NASTY_UNITS), maxLength }) },
    { weight: 1, arbitrary: fc.constantFrom(...NASTY_STRINGS) },
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom("a", "%", "Z", "😀", "\u0301"), fc.integer({ min: 1, max: 20_000 })).map(([c, n]) => c.repeat(n)) },
  );

const NASTY_UNITS = [
  "a", "/", "%", "+", "?", "#", "&", "=", ";", ",", " ", "\t", "\u0000", "\u0001", "\u001f", "\u007f", "\u0085", "\u00a0", "\u00ff",
  "\u0301", "\u200b", "\u200f", "\u202e", "\u2028", "\ufeff", "\ufffd", "\uffff", "😀", "𝔘", "\u{10ffff}", "é", "e\u0301", "<", ">", "\"", "'", "\\",
  "..", "%00", "%2F", "%ZZ", "%", "\r", "\n",
];

const NASTY_STRINGS = [
  "", " ", "null", "undefined", "NaN", "-1", "0", "1e309", "99999999999999999999999", "0x10", "true", "[]", "{}", "__proto__", "constructor",
  "%", "%%", "%2", "%g0", "%C0%AF", "%ED%A0%80", "%FF%FE", "../../..", "//", "/./", "\\\\", "&amp;", "&#0;", "&#x110000;", "<![CDATA[x]]>", "${filename}",
];

/** Random bytes, sometimes with a plausible prefix so parsers get past their first check. */
export const junkBytes = (prefixes: string[] = [], maxLength = 512): fc.Arbitrary<Uint8Array> =>
  fc.tuple(fc.constantFrom("", ...prefixes), fc.uint8Array({ maxLength })).map(([p, b]) => {
    const head = utf8(p);
    const out = new Uint8Array(head.byteLength + b.byteLength);
    out.set(head);
    out.set(b, head.byteLength);
    return out;
  });

/** One edit of a byte array, positioned relative to its length (applies to bytes built when the case runs). */
export interface ByteEdit {
  kind: "flip" | "delete" | "insert" | "truncate" | "duplicate";
  /** Position as a fraction of the length. */
  at: number;
  len: number;
  /** XOR mask for flips; the inserted bytes for insertions. */
  mask: number;
  bytes: Uint8Array;
}

export const byteEdit: fc.Arbitrary<ByteEdit> = fc.record({
  kind: fc.constantFrom<ByteEdit["kind"]>("flip", "delete", "insert", "truncate", "duplicate"),
  at: fraction,
  len: fc.integer({ min: 1, max: 64 }),
  mask: fc.integer({ min: 1, max: 255 }),
  bytes: fc.oneof(fc.uint8Array({ minLength: 1, maxLength: 16 }), fc.constantFrom(...["\r\n", "\r", "\n", ";", "0\r\n", "ffffffffffffffff", ":", "0;chunk-signature="].map((t) => new TextEncoder().encode(t)))),
});

export function applyByteEdit(b: Uint8Array, e: ByteEdit): Uint8Array {
  const n = b.byteLength;
  const i = Math.min(n, Math.floor(e.at * (n + 1)));
  switch (e.kind) {
    case "flip": {
      if (n === 0) return b;
      const out = b.slice();
      const j = Math.min(i, n - 1);
      out[j] = out[j]! ^ e.mask;
      return out;
    }
    case "delete":
      return concatBytes(b.subarray(0, i), b.subarray(Math.min(n, i + e.len)));
    case "insert":
      return concatBytes(b.subarray(0, i), e.bytes, b.subarray(i));
    case "truncate":
      return b.slice(0, i);
    case "duplicate":
      return concatBytes(b.subarray(0, Math.min(n, i + e.len)), b.subarray(i));
  }
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  return concatAll(parts);
}

/**
 * One edit of a protocol string, positioned relative to its length, so it applies to a
 * string known only when the case runs (a freshly signed header or URL).
 */
export interface Edit {
  kind: "truncate" | "delete" | "insert" | "duplicate" | "separator" | "upper" | "lower" | "replace";
  /** Position as a fraction of the length. */
  at: number;
  len: number;
  text: string;
}

export const stringEdit: fc.Arbitrary<Edit> = fc.record({
  kind: fc.constantFrom<Edit["kind"]>("truncate", "delete", "insert", "duplicate", "separator", "upper", "lower", "replace"),
  at: fraction,
  len: fc.integer({ min: 1, max: 40 }),
  text: fc.oneof(nastyString(24), fc.constantFrom(" ", ",", ", ", "=", "/", ";", "\t", "  ", "&", "?", "%", "%2F", "+", "Signature=", "Credential=", "SignedHeaders=", "AWS4-HMAC-SHA256 ")),
});

export function applyEdit(s: string, e: Edit): string {
  const i = Math.min(s.length, Math.floor(e.at * (s.length + 1)));
  switch (e.kind) {
    case "truncate":
      return s.slice(0, i);
    case "delete":
      return s.slice(0, i) + s.slice(i + e.len);
    case "insert":
      return s.slice(0, i) + e.text + s.slice(i);
    case "duplicate":
      return s.slice(0, i + e.len) + s.slice(i);
    case "separator":
      return s.slice(0, i) + (e.text.length <= 2 ? e.text : ",") + s.slice(i);
    case "upper":
      return s.slice(0, i) + s.slice(i, i + e.len).toUpperCase() + s.slice(i + e.len);
    case "lower":
      return s.slice(0, i) + s.slice(i, i + e.len).toLowerCase() + s.slice(i + e.len);
    case "replace":
      return s.slice(0, i) + e.text + s.slice(i + e.len);
  }
}

export const applyEdits = (s: string, edits: readonly Edit[]): string => edits.reduce(applyEdit, s);
