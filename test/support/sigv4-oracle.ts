/**
 * Test-only signing with @smithy/signature-v4 — the AWS SDK's own signer — as an oracle
 * independent of src/auth, and conversion of its HttpRequest into a fetch Request.
 */
import { Sha256 } from "@aws-crypto/sha256-js";
import { SignatureV4 } from "@smithy/signature-v4";
import { expect } from "vitest";
import { S3Error } from "../../src/errors";

export const AK = "AKIAIOSFODNN7EXAMPLE";
export const SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
export const REGION = "us-east-1";
export const HOST = "gw.example.com";

export interface OracleRequest {
  method: string;
  /** Path as the client puts it on the wire (already encoded). */
  path: string;
  query?: Record<string, string | string[]>;
  headers?: Record<string, string>;
  body?: Uint8Array | string;
}

/** RFC 3986 encoding as the AWS SDKs do it (encodeURIComponent plus !'()*). */
export const strictEncode = (s: string) =>
  encodeURIComponent(s).replace(/[!'()*]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase());

/** SDK v3's S3 key encoding: each segment strictly encoded, "/" kept. */
export const encodeKey = (key: string) => key.split("/").map(strictEncode).join("/");

export function signer(service = "s3", region = REGION, uriEscapePath = service !== "s3"): SignatureV4 {
  return new SignatureV4({ service, region, credentials: { accessKeyId: AK, secretAccessKey: SECRET }, sha256: Sha256, uriEscapePath });
}

function smithyRequest(r: OracleRequest): { method: string; protocol: string; hostname: string; path: string; query: Record<string, string | string[]>; headers: Record<string, string>; body?: Uint8Array | string } {
  return {
    method: r.method,
    protocol: "https:",
    hostname: HOST,
    path: r.path,
    query: r.query ?? {},
    headers: { host: HOST, ...(r.headers ?? {}) },
    body: r.body,
  };
}

/** Serialises a query the way smithy's buildQueryString does (strict, repeated keys). */
export function serializeQuery(query: Record<string, string | string[] | null>, encode = strictEncode): string {
  const parts: string[] = [];
  for (const key of Object.keys(query).sort()) {
    const value = query[key];
    if (value === null || value === undefined) parts.push(encode(key));
    else for (const v of Array.isArray(value) ? value : [value]) parts.push(`${encode(key)}=${encode(v)}`);
  }
  return parts.join("&");
}

export function toFetch(
  signed: { method: string; path: string; query?: Record<string, string | string[] | null>; headers: Record<string, string> },
  body?: Uint8Array | string,
  encode = strictEncode,
): Request {
  const qs = serializeQuery(signed.query ?? {}, encode);
  const headers = new Headers();
  for (const [k, v] of Object.entries(signed.headers)) if (k.toLowerCase() !== "host") headers.set(k, v);
  return new Request(`https://${HOST}${signed.path}${qs ? "?" + qs : ""}`, {
    method: signed.method,
    headers,
    body: body === undefined || signed.method === "GET" || signed.method === "HEAD" ? undefined : body,
  });
}

/** Header-signs with smithy at `date`. */
export async function signHeader(r: OracleRequest, date: Date, s = signer()): Promise<Request> {
  const signed = await s.sign(smithyRequest(r), { signingDate: date });
  return toFetch(signed as never, r.body);
}

/** Presigns with smithy the way @aws-sdk/s3-request-presigner does (UNSIGNED-PAYLOAD). */
export async function presign(r: OracleRequest, date: Date, expiresIn = 3600, s = signer()): Promise<Request> {
  const req = smithyRequest(r);
  req.headers = { ...req.headers, "x-amz-content-sha256": "UNSIGNED-PAYLOAD" };
  const signed = await s.presign(req, { signingDate: date, expiresIn });
  return toFetch(signed as never, r.body);
}

/** Asserts that `work` rejects with an S3Error of `code` (and details containing `details`). */
export async function expectS3Error(work: Promise<unknown> | (() => unknown), code: string, details?: Record<string, string>, message?: string | RegExp): Promise<S3Error> {
  let error: unknown;
  try {
    await (typeof work === "function" ? work() : work);
  } catch (e) {
    error = e;
  }
  expect(error, `expected ${code}`).toBeInstanceOf(S3Error);
  const s3 = error as S3Error;
  expect(s3.code).toBe(code);
  if (details) expect(s3.details).toMatchObject(details);
  if (message !== undefined) expect(s3.message).toMatch(message);
  return s3;
}
