/**
 * Query-string authentication: the raw query parser shared by presigned-URL parsing and
 * the canonical query, plus parsing of SigV4 presigned (X-Amz-*) and SigV2 query
 * (AWSAccessKeyId/Signature/Expires) parameters. Syntax only; scope, time and signature
 * checks live in sigv4.ts.
 */
import { Errors } from "../errors";
import { fromUtf8, utf8 } from "../util/bytes";

/** One query parameter, kept as decoded bytes so re-encoding is exact even for non-UTF-8. */
export interface QueryParam {
  /** Decoded name, for lookups (lossy if the bytes are not UTF-8). */
  readonly name: string;
  readonly value: string;
  readonly nameBytes: Uint8Array;
  readonly valueBytes: Uint8Array;
  /** False for `?uploads` (no "="): AWS signs it as `uploads=`. */
  readonly hasValue: boolean;
}

/** Splits the raw path and query out of a request URL without any WHATWG normalisation. */
export function splitRawUrl(url: string): { path: string; query: string } {
  const scheme = url.indexOf("://");
  const pathStart = url.indexOf("/", scheme < 0 ? 0 : scheme + 3);
  if (pathStart < 0) {
    const q = url.indexOf("?");
    return { path: "/", query: q < 0 ? "" : url.slice(q + 1).split("#")[0]! };
  }
  const rest = url.slice(pathStart).split("#")[0]!;
  const q = rest.indexOf("?");
  return q < 0 ? { path: rest, query: "" } : { path: rest.slice(0, q), query: rest.slice(q + 1) };
}

const hexValue = (b: number): number =>
  b >= 0x30 && b <= 0x39 ? b - 0x30 : b >= 0x41 && b <= 0x46 ? b - 0x37 : b >= 0x61 && b <= 0x66 ? b - 0x57 : -1;

/**
 * Percent-decodes to bytes. A "%" not followed by two hex digits stays a literal "%"
 * (S3 accepts such keys). `plusAsSpace` applies to query strings only: in a path "+" is a
 * literal plus, in a query AWS reads it as a space (form encoding).
 */
export function percentDecode(raw: string, plusAsSpace: boolean): Uint8Array {
  const src = utf8(raw);
  // Nothing to decode (most paths): the bytes as they are, without the copy loop.
  if (raw.indexOf("%") < 0 && !(plusAsSpace && raw.indexOf("+") >= 0)) return src;
  const out = new Uint8Array(src.length);
  let n = 0;
  for (let i = 0; i < src.length; i++) {
    const b = src[i]!;
    if (b === 0x25 && i + 2 < src.length) {
      const hi = hexValue(src[i + 1]!);
      const lo = hexValue(src[i + 2]!);
      if (hi >= 0 && lo >= 0) {
        out[n++] = (hi << 4) | lo;
        i += 2;
        continue;
      }
    }
    out[n++] = plusAsSpace && b === 0x2b ? 0x20 : b;
  }
  return out.subarray(0, n);
}

const UPPER_HEX = "0123456789ABCDEF";
const isUnreserved = (b: number): boolean =>
  (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || (b >= 0x30 && b <= 0x39) || b === 0x2d || b === 0x2e || b === 0x5f || b === 0x7e;

/** RFC 3986 strict encoding as SigV4 defines it: unreserved kept, all else %XX uppercase. */
export function uriEncode(bytes: Uint8Array, keepSlash: boolean): string {
  let out = "";
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (isUnreserved(b) || (keepSlash && b === 0x2f)) out += String.fromCharCode(b);
    else out += "%" + UPPER_HEX[b >> 4] + UPPER_HEX[b & 15];
  }
  return out;
}

/**
 * Parses a raw query string (no leading "?"). Empty segments ("a&&b") are dropped.
 * A request's query is parsed by authentication, the canonical request and the header
 * hoisting in turn: the last answer is kept (the params are frozen, so sharing is safe).
 */
export function parseQuery(raw: string): readonly QueryParam[] {
  if (lastQuery?.raw === raw) return lastQuery.params;
  const params: QueryParam[] = [];
  for (const part of raw === "" ? [] : raw.split("&")) {
    if (part === "") continue;
    const eq = part.indexOf("=");
    const [name, nameBytes] = decodeComponent(eq < 0 ? part : part.slice(0, eq));
    const [value, valueBytes] = decodeComponent(eq < 0 ? "" : part.slice(eq + 1));
    params.push(Object.freeze({ name, value, nameBytes, valueBytes, hasValue: eq >= 0 }));
  }
  Object.freeze(params);
  lastQuery = { raw, params };
  return params;
}

let lastQuery: { raw: string; params: readonly QueryParam[] } | undefined;

/** A query component as text and bytes: most have nothing to decode (no "%", no "+"). */
function decodeComponent(raw: string): [string, Uint8Array] {
  if (raw.indexOf("%") < 0 && raw.indexOf("+") < 0) return [raw, utf8(raw)];
  const bytes = percentDecode(raw, true);
  return [fromUtf8(bytes), bytes];
}

/** First value of a parameter, matched case-insensitively (clients vary in X-Amz-* case). */
export function queryValue(params: readonly QueryParam[], name: string): string | undefined {
  const lower = name.toLowerCase();
  return params.find((p) => p.name.toLowerCase() === lower)?.value;
}

/** "AK/20130524/us-east-1/s3/aws4_request" → parts; null if not five non-empty parts. */
export function parseCredential(value: string): { accessKeyId: string; dateStamp: string; region: string; service: string; terminal: string } | null {
  const parts = value.split("/");
  // Access key ids never contain "/", but take the scope from the right to be safe.
  if (parts.length < 5) return null;
  const [dateStamp, region, service, terminal] = parts.slice(-4) as [string, string, string, string];
  const accessKeyId = parts.slice(0, -4).join("/");
  if (!accessKeyId || !dateStamp || !region || !service || !terminal) return null;
  return { accessKeyId, dateStamp, region, service, terminal };
}

/** ISO 8601 basic "20130524T000000Z" → epoch ms, or null if malformed or not a real time. */
export function parseAmzDate(value: string): number | null {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  if (!m) return null;
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  const t = Date.UTC(y, mo - 1, d, h, mi, s);
  const back = new Date(t);
  // Reject 20130231T250000Z and friends, which Date.UTC would silently roll over.
  if (back.getUTCFullYear() !== y || back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d || back.getUTCHours() !== h || back.getUTCMinutes() !== mi) {
    return null;
  }
  return t;
}

/** Epoch ms → "20130524T000000Z". */
export function formatAmzDate(time: number): string {
  return new Date(time).toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
}

export const MAX_PRESIGN_EXPIRES = 604800;

export interface PresignedV4Params {
  accessKeyId: string;
  dateStamp: string;
  region: string;
  service: string;
  terminal: string;
  datetime: string;
  time: number;
  expires: number;
  signedHeaders: string;
  signature: string;
  securityToken: string | null;
  /** X-Amz-Content-Sha256 if the presigner put one in the URL (SDK v3 does: UNSIGNED-PAYLOAD). */
  contentSha256: string | null;
}

const queryError = (message?: string) => Errors.AuthorizationQueryParametersError(undefined, message);

/** True if the query carries SigV4 presigned parameters at all. */
export function hasPresignedV4(params: readonly QueryParam[]): boolean {
  return ["X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature"].some((n) => queryValue(params, n) !== undefined);
}

/** Parses SigV4 presigned parameters; throws AuthorizationQueryParametersError as S3 does. */
export function parsePresignedV4(params: readonly QueryParam[]): PresignedV4Params {
  const get = (n: string) => queryValue(params, n);
  const algorithm = get("X-Amz-Algorithm");
  const credential = get("X-Amz-Credential");
  const datetime = get("X-Amz-Date");
  const expiresText = get("X-Amz-Expires");
  const signedHeaders = get("X-Amz-SignedHeaders");
  const signature = get("X-Amz-Signature");
  if (algorithm === undefined || credential === undefined || datetime === undefined || expiresText === undefined || signedHeaders === undefined || signature === undefined) {
    throw queryError();
  }
  if (algorithm !== "AWS4-HMAC-SHA256") throw queryError('X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"');
  const cred = parseCredential(credential);
  if (!cred) {
    throw queryError('Error parsing the X-Amz-Credential parameter; the Credential is mal-formed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".');
  }
  const time = parseAmzDate(datetime);
  if (time === null) throw queryError("X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"");
  if (!/^\d+$/.test(expiresText)) {
    throw queryError(/^-\d+$/.test(expiresText) ? "X-Amz-Expires must be non-negative" : "X-Amz-Expires should be a number");
  }
  const expires = Number(expiresText);
  if (expires > MAX_PRESIGN_EXPIRES) {
    throw queryError(`X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires must be less than ${MAX_PRESIGN_EXPIRES} seconds`);
  }
  if (signedHeaders === "") throw queryError();
  return {
    ...cred,
    datetime,
    time,
    expires,
    signedHeaders,
    signature,
    securityToken: get("X-Amz-Security-Token") ?? null,
    contentSha256: get("X-Amz-Content-Sha256") ?? null,
  };
}

/** SigV2 query authentication (legacy presigned URLs): AWSAccessKeyId, Signature, Expires. */
export function parsePresignedV2(params: readonly QueryParam[]): { accessKeyId: string; signature: string; expires: number } | null {
  const accessKeyId = queryValue(params, "AWSAccessKeyId");
  const signature = queryValue(params, "Signature");
  const expires = queryValue(params, "Expires");
  if (accessKeyId === undefined && signature === undefined) return null;
  if (accessKeyId === undefined || signature === undefined || expires === undefined) {
    throw Errors.AccessDenied(undefined, "Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters");
  }
  if (!/^\d+$/.test(expires)) throw Errors.AccessDenied(undefined, "Invalid date (should be seconds since epoch): " + expires);
  return { accessKeyId, signature, expires: Number(expires) };
}
