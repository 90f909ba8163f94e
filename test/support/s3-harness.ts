/**
 * Test harness for the S3 surface inside workerd: requests signed with the AWS SDK's own
 * SigV4 signer (@smithy/signature-v4) and sent to the worker's fetch handler in-process,
 * with per-request knobs the plain `call()` helper does not have (scheme, env overrides,
 * signing date/region/credentials, presigned URLs), plus helpers to read responses fully,
 * parse S3 XML and poke at the raw R2 objects.
 */
import { Sha256 } from "@aws-crypto/sha256-js";
import { SignatureV4 } from "@smithy/signature-v4";
import { env, exports } from "cloudflare:workers";
import { expect } from "vitest";
import type { Env } from "../../src/env";
import worker from "../../src/index";
import { CREDENTIALS, HOST, type Call, type Who } from "./worker-client";
import { encodeKey } from "./sigv4-oracle";
import { concatBytes } from "./sources";

export { CREDENTIALS, HOST, TENANT_A, TENANT_B, allowPublicPolicies, createBucket, seedIdentities, type Who } from "./worker-client";

export interface Send extends Call {
  /** "http" (default) or "https": the URL scheme the worker sees. */
  scheme?: "http" | "https";
  /** Bindings/vars to override for this request (routes through the worker module directly). */
  env?: Partial<Env>;
  signingDate?: Date;
  region?: string;
  credentials?: { accessKeyId: string; secretAccessKey: string };
  /** Signed value of x-amz-content-sha256 instead of the body's hash. */
  contentSha256?: string;
  /** Flip one hex digit of the signature after signing. */
  tamperSignature?: boolean;
  /** Body sent on the wire when it must differ from the body that was signed. */
  wireBody?: Uint8Array | string;
}

/** Query string as the SDK puts it on the wire (RFC 3986, sorted). */
function queryString(query: Record<string, string>): string {
  const enc = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase());
  return Object.keys(query)
    .sort()
    .map((k) => (query[k] === "" ? enc(k) : `${enc(k)}=${enc(query[k]!)}`))
    .join("&");
}

function pathOf(c: Call): string {
  return "/" + (c.bucket ?? "") + (c.key !== undefined ? "/" + encodeKey(c.key) : "");
}

async function sha256Hex(body: Uint8Array | string | undefined): Promise<string> {
  const bytes = typeof body === "string" ? new TextEncoder().encode(body) : (body ?? new Uint8Array(0));
  return toHex(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)));
}

export function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function signerFor(who: Who, s: Pick<Send, "region" | "credentials"> = {}): SignatureV4 {
  return new SignatureV4({ service: "s3", region: s.region ?? "us-east-1", credentials: s.credentials ?? CREDENTIALS[who], sha256: Sha256, uriEscapePath: false });
}

/** Sends a request to the worker (in-process), signed unless anonymous. */
export async function send(who: Who, c: Send): Promise<Response> {
  const path = pathOf(c);
  const query = c.query ?? {};
  const headers: Record<string, string> = { host: HOST, ...(c.headers ?? {}) };
  const wire = c.wireBody ?? c.body;
  // A Request handed straight to the worker module has no Content-Length of its own.
  if (wire !== undefined && c.method !== "GET" && c.method !== "HEAD" && !Object.keys(headers).some((k) => k.toLowerCase() === "content-length")) {
    headers["content-length"] = String(typeof wire === "string" ? utf8(wire).byteLength : wire.byteLength);
  }
  if (!c.anonymous) {
    headers["x-amz-content-sha256"] = c.contentSha256 ?? (c.unsigned ? "UNSIGNED-PAYLOAD" : await sha256Hex(c.body));
    const signed = await signerFor(who, c).sign(
      { method: c.method, protocol: `${c.scheme ?? "http"}:`, hostname: HOST, path, query, headers, body: c.body },
      c.signingDate ? { signingDate: c.signingDate } : {},
    );
    Object.assign(headers, signed.headers);
    if (c.tamperSignature) headers["authorization"] = tamper(headers["authorization"]!);
  }
  const h = new Headers();
  for (const [k, v] of Object.entries(headers)) if (k !== "host") h.set(k, v);
  const qs = queryString(query);
  const request = new Request(`${c.scheme ?? "http"}://${HOST}${path}${qs ? "?" + qs : ""}`, {
    method: c.method,
    headers: h,
    body: c.method === "GET" || c.method === "HEAD" ? undefined : wire,
  });
  return dispatch(request, c.env);
}

/** Presigned URL (query-string SigV4, UNSIGNED-PAYLOAD) as @aws-sdk/s3-request-presigner makes it. */
export async function presignedUrl(who: Who, c: Send & { expiresIn?: number }): Promise<string> {
  const path = pathOf(c);
  const signed = await signerFor(who, c).presign(
    { method: c.method, protocol: `${c.scheme ?? "http"}:`, hostname: HOST, path, query: c.query ?? {}, headers: { host: HOST, "x-amz-content-sha256": "UNSIGNED-PAYLOAD", ...(c.headers ?? {}) } },
    { expiresIn: c.expiresIn ?? 900, ...(c.signingDate ? { signingDate: c.signingDate } : {}) },
  );
  const qs = queryString(signed.query as Record<string, string>);
  return `${c.scheme ?? "http"}://${HOST}${path}?${qs}`;
}

/** Fetches a URL against the worker (in-process). */
export function fetchWorker(url: string, init: RequestInit = {}, overrides?: Partial<Env>): Promise<Response> {
  return dispatch(new Request(url, init), overrides);
}

async function dispatch(request: Request, overrides?: Partial<Env>): Promise<Response> {
  if (!overrides) return (exports as unknown as { default: Fetcher }).default.fetch(request);
  const ctx = { waitUntil() {}, passThroughOnException() {}, props: {} } as unknown as ExecutionContext;
  return worker.fetch(request, { ...env, ...overrides } as Env, ctx);
}

function tamper(authorization: string): string {
  return authorization.replace(/Signature=([0-9a-f])/, (_m, d: string) => `Signature=${d === "0" ? "1" : "0"}`);
}

/** Reads a response body to its end; reports whether the stream errored (an aborted body). */
export async function readFully(response: Response): Promise<{ bytes: Uint8Array; errored: boolean }> {
  const pieces: Uint8Array[] = [];
  let errored = false;
  if (response.body) {
    const reader = response.body.getReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        pieces.push(value);
      }
    } catch {
      errored = true;
    }
  }
  const bytes = new Uint8Array(pieces.reduce((n, p) => n + p.byteLength, 0));
  let offset = 0;
  for (const p of pieces) {
    bytes.set(p, offset);
    offset += p.byteLength;
  }
  return { bytes, errored };
}

export interface S3ErrorBody {
  status: number;
  code: string | null;
  message: string | null;
  resource: string | null;
  requestId: string | null;
  headerRequestId: string | null;
  text: string;
}

/** Reads an error response; checks it is S3 XML carrying Code/Message/Resource/RequestId. */
export async function s3Error(response: Response): Promise<S3ErrorBody> {
  const text = await response.text();
  return {
    status: response.status,
    code: xmlValue(text, "Code"),
    message: xmlValue(text, "Message"),
    resource: xmlValue(text, "Resource"),
    requestId: xmlValue(text, "RequestId"),
    headerRequestId: response.headers.get("x-amz-request-id"),
    text,
  };
}

/** Asserts an S3 error by HTTP status and code, and that the body is a complete S3 error document. */
export async function expectError(response: Response | Promise<Response>, status: number, code: string): Promise<S3ErrorBody> {
  const r = await response;
  const e = await s3Error(r);
  expect({ status: e.status, code: e.code }, e.text).toEqual({ status, code });
  expect(e.text.startsWith('<?xml version="1.0" encoding="UTF-8"?>')).toBe(true);
  expect(r.headers.get("content-type")).toBe("application/xml");
  expect(e.message).toBeTruthy();
  expect(e.resource).not.toBeNull();
  expect(e.requestId).toMatch(/^[0-9A-F]{16}$/);
  expect(e.headerRequestId).toBe(e.requestId);
  return e;
}

const ENTITIES: Record<string, string> = { "&lt;": "<", "&gt;": ">", "&amp;": "&", "&quot;": '"', "&apos;": "'" };

function unescapeXml(s: string): string {
  return s.replace(/&(lt|gt|amp|quot|apos);|&#x([0-9A-Fa-f]+);|&#(\d+);/g, (m, _n, hex: string | undefined, dec: string | undefined) =>
    hex ? String.fromCodePoint(parseInt(hex, 16)) : dec ? String.fromCodePoint(Number(dec)) : ENTITIES[m]!,
  );
}

/** Text of every <tag>…</tag> (direct text only; good enough for S3's flat documents). */
export function xmlValues(text: string, tag: string): string[] {
  const re = new RegExp(`<${tag}>([^<]*)</${tag}>|<${tag}/>`, "g");
  return Array.from(text.matchAll(re), (m) => unescapeXml(m[1] ?? ""));
}

export function xmlValue(text: string, tag: string): string | null {
  return xmlValues(text, tag)[0] ?? null;
}

/** Inner XML of every <tag>…</tag> block (e.g. each <Contents>). */
export function xmlBlocks(text: string, tag: string): string[] {
  const re = new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`, "g");
  return Array.from(text.matchAll(re), (m) => m[1]!);
}

export const utf8 = (s: string) => new TextEncoder().encode(s);

export async function md5Base64(body: Uint8Array | string): Promise<string> {
  const bytes = typeof body === "string" ? utf8(body) : body;
  const digest = new Uint8Array(await crypto.subtle.digest("MD5", bytes));
  return btoa(String.fromCharCode(...digest));
}

// ---- raw R2 -------------------------------------------------------------------------------

export interface RawObject {
  body: Uint8Array;
  customMetadata: Record<string, string>;
  httpMetadata: R2HTTPMetadata;
}

export async function rawGet(bucket: string, key: string): Promise<RawObject | null> {
  const object = await env.OBJECTS.get(`${bucket}/${key}`);
  if (!object) return null;
  return { body: new Uint8Array(await object.arrayBuffer()), customMetadata: { ...(object.customMetadata ?? {}) }, httpMetadata: { ...object.httpMetadata } };
}

export async function rawPut(bucket: string, key: string, raw: RawObject): Promise<void> {
  await env.OBJECTS.put(`${bucket}/${key}`, raw.body, { customMetadata: raw.customMetadata, httpMetadata: raw.httpMetadata });
}

/** True when `needle` occurs anywhere in `hay`. */
export function containsBytes(hay: Uint8Array, needle: Uint8Array): boolean {
  if (needle.length === 0) return true;
  const first = needle[0]!;
  outer: for (let i = hay.indexOf(first); i >= 0 && i <= hay.length - needle.length; i = hay.indexOf(first, i + 1)) {
    for (let j = 1; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}

let counter = 0;
/** A bucket name unique within the run (test files share one D1/R2). */
export function uniqueBucket(prefix: string): string {
  counter++;
  return `${prefix}-${Date.now().toString(36)}-${counter}-${Math.random().toString(36).slice(2, 6)}`;
}

/** Fast byte equality (vitest's deep equality walks large arrays element by element). */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** CRC-32 (IEEE), base64 as in x-amz-checksum-crc32; written here so tests do not use src/checksum as their own oracle. */
export function crc32Base64(data: Uint8Array): string {
  let crc = 0xffffffff;
  for (const byte of data) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1;
  }
  crc = (crc ^ 0xffffffff) >>> 0;
  return btoa(String.fromCharCode(crc >>> 24, (crc >>> 16) & 0xff, (crc >>> 8) & 0xff, crc & 0xff));
}

// ---- aws-chunked uploads -------------------------------------------------------------------

const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

export interface ChunkedPut {
  bucket: string;
  key: string;
  payload: Uint8Array;
  chunkSize: number;
  mode: "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" | "STREAMING-UNSIGNED-PAYLOAD-TRAILER";
  /** STREAMING-UNSIGNED-PAYLOAD-TRAILER: the x-amz-checksum-crc32 trailer value to send. */
  crc32Trailer?: string;
  /** Signed mode: flip a byte of this chunk after it was signed. */
  corruptChunk?: number;
  headers?: Record<string, string>;
}

/**
 * PutObject with an aws-chunked body as the SDKs send it: per-chunk signatures chained from
 * the header signature (signed mode), or unsigned chunks with a CRC32 trailer (SDK v3's
 * default). Chunk signatures follow the AWS documentation; strings are signed with smithy.
 */
export async function putChunked(who: Who, p: ChunkedPut): Promise<Response> {
  const date = new Date();
  const signer = signerFor(who);
  const enc = new TextEncoder();
  const sizes: number[] = [];
  for (let left = p.payload.byteLength; left > 0; left -= p.chunkSize) sizes.push(Math.min(p.chunkSize, left));
  const signedMode = p.mode === "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
  const framing = (size: number) => size.toString(16).length + (signedMode ? ";chunk-signature=".length + 64 : 0) + 2 + (size > 0 ? size + 2 : 0);
  let encodedLength = [...sizes, 0].reduce((n, s) => n + framing(s), 0) + 2;
  const trailerLine = p.crc32Trailer !== undefined ? `x-amz-checksum-crc32:${p.crc32Trailer}\r\n` : "";
  encodedLength += trailerLine.length;

  const headers: Record<string, string> = {
    host: HOST,
    "content-encoding": "aws-chunked",
    "x-amz-decoded-content-length": String(p.payload.byteLength),
    "content-length": String(encodedLength),
    "x-amz-content-sha256": p.mode,
    ...(p.crc32Trailer !== undefined ? { "x-amz-trailer": "x-amz-checksum-crc32" } : {}),
    ...(p.headers ?? {}),
  };
  const path = `/${p.bucket}/${encodeKey(p.key)}`;
  const signed = await signer.sign({ method: "PUT", protocol: "http:", hostname: HOST, path, query: {}, headers }, { signingDate: date });
  const authorization = signed.headers["authorization"]!;
  const amzDate = signed.headers["x-amz-date"]!;
  const scope = `${amzDate.slice(0, 8)}/us-east-1/s3/aws4_request`;
  let previous = /Signature=([0-9a-f]{64})/.exec(authorization)![1]!;

  const parts: Uint8Array[] = [];
  let offset = 0;
  for (const [index, size] of [...sizes, 0].entries()) {
    const data = p.payload.slice(offset, offset + size);
    offset += size;
    let header = `${size.toString(16)}\r\n`;
    if (signedMode) {
      const sts = `AWS4-HMAC-SHA256-PAYLOAD\n${amzDate}\n${scope}\n${previous}\n${EMPTY_SHA256}\n${await sha256Hex(data)}`;
      previous = await signer.sign(sts, { signingDate: date });
      header = `${size.toString(16)};chunk-signature=${previous}\r\n`;
    }
    if (index === p.corruptChunk && size > 0) data[size >> 1]! ^= 0x01;
    parts.push(enc.encode(header));
    if (size > 0) parts.push(data, enc.encode("\r\n"));
  }
  if (trailerLine) parts.push(enc.encode(trailerLine));
  parts.push(enc.encode("\r\n"));
  const body = concatBytes(parts);
  if (body.byteLength !== encodedLength) throw new Error(`aws-chunked length ${body.byteLength} != ${encodedLength}`);
  const h = new Headers();
  for (const [k, v] of Object.entries(signed.headers)) if (k !== "host") h.set(k, v);
  return dispatch(new Request(`http://${HOST}${path}`, { method: "PUT", headers: h, body }));
}
