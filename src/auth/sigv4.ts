/**
 * Server-side AWS Signature Version 4 (and legacy SigV2) verification.
 *
 * Signing libraries (aws4fetch, @smithy/signature-v4) only produce signatures for a
 * request they build; verifying a received request needs the canonical form of what
 * actually arrived (raw path and query as sent, header values as received, S3's
 * no-double-encoding rule), so canonicalisation is written out here. The arithmetic is
 * WebCrypto HMAC-SHA256 / SHA-256.
 *
 * Flow for a caller: parseAuth(request) → (v4) checkSigV4(request, auth, expected) before
 * looking the access key up → verifySigV4(request, auth, secret, expected).
 */
import { Errors } from "../errors";
import { toBase64, toHex, timingSafeEqualStrings, utf8 } from "../util/bytes";
import {
  formatAmzDate,
  hasPresignedV4,
  MAX_PRESIGN_EXPIRES,
  parseAmzDate,
  parseCredential,
  parsePresignedV2,
  parsePresignedV4,
  parseQuery,
  percentDecode,
  splitRawUrl,
  uriEncode,
  type QueryParam,
} from "./presign";

export const ALGORITHM = "AWS4-HMAC-SHA256";
export const UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD";
export const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
export const MAX_SKEW_MS = 15 * 60 * 1000;

export interface SigV4Auth {
  readonly kind: "header" | "query";
  readonly accessKeyId: string;
  /** The request time exactly as signed, "20130524T000000Z". */
  readonly datetime: string;
  /** The same instant in epoch ms. */
  readonly time: number;
  /** Credential scope pieces as the client sent them (checked by checkSigV4). */
  readonly dateStamp: string;
  readonly region: string;
  readonly service: string;
  readonly terminal: string;
  /** "20130524/us-east-1/s3/aws4_request". */
  readonly scope: string;
  /** Signed header names, lowercased, in the order the client listed them. */
  readonly signedHeaders: readonly string[];
  /** The SignedHeaders string exactly as sent (it is part of the canonical request). */
  readonly signedHeadersRaw: string;
  /** Lowercase hex. */
  readonly signature: string;
  /**
   * Payload hash line of the canonical request: the x-amz-content-sha256 header for header
   * auth (null if absent), X-Amz-Content-Sha256 or UNSIGNED-PAYLOAD for presigned URLs.
   */
  readonly payloadHash: string | null;
  /** X-Amz-Expires in seconds for presigned URLs, else null. */
  readonly expires: number | null;
  readonly securityToken: string | null;
}

export interface SigV2Auth {
  readonly kind: "v2";
  readonly via: "header" | "query";
  readonly accessKeyId: string;
  /** Base64 HMAC-SHA1 as sent. */
  readonly signature: string;
  /** Expires (epoch seconds) for query auth, else null. */
  readonly expires: number | null;
}

export interface AnonymousAuth {
  readonly kind: "anonymous";
}

export type ParsedAuth = SigV4Auth | SigV2Auth | AnonymousAuth;

export interface Expected {
  /** Region this endpoint answers for. */
  region: string;
  /** "s3" or "kms". */
  service: string;
  /** Server time in epoch ms (tests pin it). */
  now?: number;
  /**
   * Hex SHA-256 of the body, for services whose clients need not send x-amz-content-sha256
   * (KMS JSON): the caller hashes the small body itself. A header that disagrees is
   * XAmzContentSHA256Mismatch.
   */
  payloadHash?: string;
}

/** What the aws-chunked verifier and POST policy code need after a successful verify. */
export interface VerifiedSigV4 extends SigV4Auth {
  readonly signingKey: CryptoKey;
  /** The seed signature that chunk signatures chain from (= signature). */
  readonly seedSignature: string;
  readonly canonicalRequest: string;
  readonly stringToSign: string;
}

const headerMalformed = (detail: string, details?: Record<string, string>) =>
  Errors.AuthorizationHeaderMalformed(details, `The authorization header is malformed; ${detail}`);

/**
 * Classifies the request's authentication and parses its syntax. Throws S3Error for
 * garbled or conflicting pieces; never looks at secrets or the clock.
 */
export function parseAuth(request: Request): ParsedAuth {
  const header = request.headers.get("authorization");
  const params = parseQuery(splitRawUrl(request.url).query);
  const queryV4 = hasPresignedV4(params);
  const queryV2 = params.some((p) => p.name === "AWSAccessKeyId" || p.name === "Signature");
  if (header !== null) {
    if (queryV4 || queryV2) {
      throw Errors.InvalidArgument(
        { ArgumentName: "Authorization", ArgumentValue: header },
        "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified",
      );
    }
    return parseAuthorizationHeader(request, header);
  }
  if (queryV4) return parseQueryV4(request, params);
  const v2 = parsePresignedV2(params);
  if (v2) return { kind: "v2", via: "query", ...v2 };
  return { kind: "anonymous" };
}

function parseAuthorizationHeader(request: Request, header: string): SigV4Auth | SigV2Auth {
  const v2 = /^AWS ([^:\s]+):(\S+)$/.exec(header.trim());
  if (v2) return { kind: "v2", via: "header", accessKeyId: v2[1]!, signature: v2[2]!, expires: null };
  const space = header.indexOf(" ");
  const algorithm = space < 0 ? header : header.slice(0, space);
  if (algorithm !== ALGORITHM) {
    throw Errors.InvalidArgument({ ArgumentName: "Authorization", ArgumentValue: header }, "Unsupported Authorization Type");
  }
  // Real clients differ: ", " (SDKs), "," (curl --aws-sigv4, some Go/Java), or spaces only.
  const fields = new Map<string, string>();
  for (const piece of header.slice(space + 1).split(/[\s,]+/)) {
    if (piece === "") continue;
    const eq = piece.indexOf("=");
    if (eq > 0) fields.set(piece.slice(0, eq), piece.slice(eq + 1));
  }
  const credential = fields.get("Credential");
  const signedHeadersRaw = fields.get("SignedHeaders");
  const signature = fields.get("Signature");
  if (!credential || !signedHeadersRaw || !signature) {
    throw headerMalformed("the authorization header requires three components: Credential, SignedHeaders, and Signature.");
  }
  const cred = parseCredential(credential);
  if (!cred) throw headerMalformed('the Credential is mal-formed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".');
  const { datetime, time } = requestTime(request);
  return {
    kind: "header",
    ...cred,
    datetime,
    time,
    scope: scopeOf(cred),
    signedHeaders: signedHeadersRaw.split(";").map((h) => h.toLowerCase()),
    signedHeadersRaw,
    signature: signature.toLowerCase(),
    payloadHash: request.headers.get("x-amz-content-sha256"),
    expires: null,
    securityToken: request.headers.get("x-amz-security-token"),
  };
}

/** x-amz-date, else a Date header in either ISO basic or HTTP-date form. */
function requestTime(request: Request): { datetime: string; time: number } {
  const amz = request.headers.get("x-amz-date");
  const date = request.headers.get("date");
  let time: number | null = null;
  if (amz !== null) time = parseAmzDate(amz);
  else if (date !== null) {
    time = parseAmzDate(date);
    if (time === null && /^[A-Za-z]{3}, \d{2} [A-Za-z]{3} \d{4} \d{2}:\d{2}:\d{2} GMT$/.test(date)) {
      const t = Date.parse(date);
      time = Number.isNaN(t) ? null : t;
    }
  }
  if (time === null) throw Errors.AccessDenied(undefined, "AWS authentication requires a valid Date or x-amz-date header");
  return { datetime: amz ?? formatAmzDate(time), time };
}

function parseQueryV4(request: Request, params: readonly QueryParam[]): SigV4Auth {
  const p = parsePresignedV4(params);
  return {
    kind: "query",
    accessKeyId: p.accessKeyId,
    datetime: p.datetime,
    time: p.time,
    dateStamp: p.dateStamp,
    region: p.region,
    service: p.service,
    terminal: p.terminal,
    scope: scopeOf(p),
    signedHeaders: p.signedHeaders.split(";").map((h) => h.toLowerCase()),
    signedHeadersRaw: p.signedHeaders,
    signature: p.signature.toLowerCase(),
    // A presigned URL signs UNSIGNED-PAYLOAD unless the signer committed to a value,
    // either in the URL or as a signed x-amz-content-sha256 header.
    payloadHash:
      p.contentSha256 ??
      (p.signedHeaders.toLowerCase().split(";").includes("x-amz-content-sha256") ? request.headers.get("x-amz-content-sha256") : null) ??
      UNSIGNED_PAYLOAD,
    expires: p.expires,
    securityToken: p.securityToken,
  };
}

const scopeOf = (c: { dateStamp: string; region: string; service: string; terminal: string }) =>
  `${c.dateStamp}/${c.region}/${c.service}/${c.terminal}`;

const isoSeconds = (t: number) => new Date(t).toISOString().replace(/\.\d{3}Z$/, "Z");

/**
 * Checks everything that needs neither the secret nor the body: credential scope against
 * the endpoint, that host and every x-amz-* header are signed, clock skew and expiry.
 * Cheap, so callers run it before the access-key lookup.
 */
export function checkSigV4(request: Request, auth: SigV4Auth, expected: Expected): void {
  const header = auth.kind === "header";
  const scopeError = (detail: string, details?: Record<string, string>) =>
    header
      ? headerMalformed(detail, details)
      : Errors.AuthorizationQueryParametersError(details, `Error parsing the X-Amz-Credential parameter; ${detail}`);
  const day = auth.datetime.slice(0, 8);
  if (auth.dateStamp !== day) {
    const detail = `Invalid credential date "${auth.dateStamp}". This date is not the same as X-Amz-Date: "${day}".`;
    throw header ? headerMalformed(detail) : Errors.AuthorizationQueryParametersError(undefined, detail);
  }
  if (auth.region !== expected.region) {
    throw scopeError(`the region '${auth.region}' is wrong; expecting '${expected.region}'`, { Region: expected.region });
  }
  if (auth.service !== expected.service) {
    throw scopeError(`incorrect service "${auth.service}". This endpoint belongs to "${expected.service}".`);
  }
  if (auth.terminal !== "aws4_request") {
    throw scopeError(`incorrect terminal "${auth.terminal}". This endpoint uses "aws4_request".`);
  }
  const unsigned = unsignedHeaders(request, auth);
  if (unsigned.length > 0) {
    throw Errors.AccessDenied({ HeadersNotSigned: unsigned.join(", ") }, "There were headers present in the request which were not signed");
  }
  const now = expected.now ?? Date.now();
  if (header) {
    if (Math.abs(now - auth.time) > MAX_SKEW_MS) {
      throw Errors.RequestTimeTooSkewed({
        RequestTime: request.headers.get("x-amz-date") ?? request.headers.get("date") ?? auth.datetime,
        ServerTime: isoSeconds(now),
        MaxAllowedSkewMilliseconds: String(MAX_SKEW_MS),
      });
    }
    if (auth.payloadHash === null && expected.service === "s3") {
      throw Errors.InvalidRequest(undefined, "Missing required header for this request: x-amz-content-sha256");
    }
  } else {
    // Without this bound a URL dated far in the future would stay valid indefinitely.
    if (auth.time - now > MAX_SKEW_MS) throw Errors.AccessDenied(undefined, "Request is not valid yet");
    const expiresAt = auth.time + (auth.expires ?? 0) * 1000;
    if (now > expiresAt) {
      throw Errors.AccessDenied(
        { "X-Amz-Expires": String(auth.expires), Expires: isoSeconds(expiresAt), ServerTime: isoSeconds(now) },
        "Request has expired",
      );
    }
  }
}

/**
 * S3 requires host and every x-amz-* header present to be signed (x-amzn-* are not AWS
 * headers; x-amz-content-sha256 is tolerated unsigned, as S3 does, since its value is the
 * canonical request's payload line anyway). Otherwise a holder of a presigned URL could
 * add x-amz-copy-source, x-amz-server-side-encryption, x-amz-meta-* ... unnoticed.
 */
function unsignedHeaders(request: Request, auth: SigV4Auth): string[] {
  const signed = new Set(auth.signedHeaders);
  const missing: string[] = [];
  if (!signed.has("host")) missing.push("host");
  for (const [name] of request.headers) {
    if (name.startsWith("x-amz-") && name !== "x-amz-content-sha256" && !signed.has(name)) missing.push(name);
  }
  return missing;
}

// ---- canonical request -------------------------------------------------------------

/**
 * Canonical URI candidates. S3 does not double-encode: its clients percent-encode each
 * segment once, RFC 3986 strict. The strict re-encoding of the decoded path is what a
 * correct client signed; the raw path is what a client that signed its own (looser or
 * lowercase-hex) encoding signed. Other services (KMS) use the generic rule: normalise
 * dot segments and encode the already-encoded path again.
 */
export function canonicalUris(rawPath: string, service: string): string[] {
  const path = rawPath === "" ? "/" : rawPath;
  if (service !== "s3") {
    const segments: string[] = [];
    for (const s of path.split("/")) {
      if (s === "" || s === ".") continue;
      if (s === "..") segments.pop();
      else segments.push(s);
    }
    const normalized = "/" + segments.join("/") + (segments.length > 0 && path.endsWith("/") ? "/" : "");
    return [uriEncode(utf8(normalized), true)];
  }
  const strict = uriEncode(percentDecode(path, false), true);
  return strict === path ? [strict] : [strict, path];
}

/** Canonical query: every parameter but X-Amz-Signature, strictly encoded, sorted. */
export function canonicalQuery(params: readonly QueryParam[], excludeSignature: boolean): string {
  const pairs: [string, string][] = [];
  for (const p of params) {
    if (excludeSignature && p.name.toLowerCase() === "x-amz-signature") continue;
    pairs.push([uriEncode(p.nameBytes, false), uriEncode(p.valueBytes, false)]);
  }
  // Encoded strings are ASCII, so code-unit order is byte order, as SigV4 sorts.
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return pairs.map(([n, v]) => `${n}=${v}`).join("&");
}

/** An HTTP field name (RFC 9110 token), lowercased as SignedHeaders lists them. */
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;

/**
 * Canonical header block. Values are trimmed with inner runs of spaces/tabs collapsed.
 * Repeated header lines reach a Worker already joined by ", " (Fetch semantics), so they
 * are canonicalised as that single joined value.
 */
export function canonicalHeaders(request: Request, signedHeaders: readonly string[], overrides: Readonly<Record<string, string>> = {}): string {
  let out = "";
  for (const name of signedHeaders) {
    // A signed name no header can have ("", "signedheaders=host") has no value; Headers.get
    // would throw on it, and the signature then simply does not match.
    let value = overrides[name] ?? (HEADER_NAME.test(name) ? request.headers.get(name) : null);
    if (value === null && name === "host") value = new URL(request.url).host;
    out += `${name}:${(value ?? "").trim().replace(/[ \t]+/g, " ")}\n`;
  }
  return out;
}

/**
 * The Workers runtime replaces the client's Accept-Encoding with its own ("br, gzip")
 * before the worker sees the request, so a client that signed the header (rclone signs
 * "gzip") cannot be verified against the value received. When accept-encoding is signed,
 * the values clients commonly send are tried as well; the header only steers response
 * compression, so accepting any of them grants nothing.
 */
const ACCEPT_ENCODING_CANDIDATES = ["gzip", "identity", "gzip, deflate", "gzip,deflate", "gzip, deflate, br", "br", "deflate", "*"];

export function canonicalHeaderCandidates(request: Request, signedHeaders: readonly string[]): string[] {
  const received = canonicalHeaders(request, signedHeaders);
  if (!signedHeaders.includes("accept-encoding")) return [received];
  const candidates = [received];
  for (const value of ACCEPT_ENCODING_CANDIDATES) {
    const text = canonicalHeaders(request, signedHeaders, { "accept-encoding": value });
    if (!candidates.includes(text)) candidates.push(text);
  }
  return candidates;
}

export function buildCanonicalRequest(method: string, uri: string, query: string, headers: string, signedHeadersRaw: string, payloadHash: string): string {
  return `${method}\n${uri}\n${query}\n${headers}\n${signedHeadersRaw}\n${payloadHash}`;
}

export async function sha256Hex(data: string | Uint8Array): Promise<string> {
  return toHex(await crypto.subtle.digest("SHA-256", typeof data === "string" ? utf8(data) : data));
}

export function stringToSignV4(datetime: string, scope: string, canonicalRequestHash: string): string {
  return `${ALGORITHM}\n${datetime}\n${scope}\n${canonicalRequestHash}`;
}

// ---- keys and HMAC -----------------------------------------------------------------

async function hmacRaw(key: Uint8Array, data: string): Promise<Uint8Array> {
  const k = await crypto.subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return new Uint8Array(await crypto.subtle.sign("HMAC", k, utf8(data)));
}

export async function hmacHex(key: CryptoKey, data: string | Uint8Array): Promise<string> {
  return toHex(await crypto.subtle.sign("HMAC", key, typeof data === "string" ? utf8(data) : data));
}

// Derivation costs four importKey+sign rounds; every request and every aws-chunked chunk
// of a day/region/service reuses the same key, so keep recent ones per isolate.
const KEY_CACHE_MAX = 256;
const keyCache = new Map<string, Promise<CryptoKey>>();

/** kSigning = HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date), region), service), "aws4_request"). */
export function signingKey(secret: string, dateStamp: string, region: string, service: string): Promise<CryptoKey> {
  const id = `${dateStamp}\n${region}\n${service}\n${secret}`;
  const hit = keyCache.get(id);
  if (hit) {
    keyCache.delete(id); // re-insert: Map order is the LRU order
    keyCache.set(id, hit);
    return hit;
  }
  const derived = (async () => {
    let k = await hmacRaw(utf8("AWS4" + secret), dateStamp);
    k = await hmacRaw(k, region);
    k = await hmacRaw(k, service);
    k = await hmacRaw(k, "aws4_request");
    return crypto.subtle.importKey("raw", k, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  })();
  derived.catch(() => keyCache.delete(id));
  keyCache.set(id, derived);
  if (keyCache.size > KEY_CACHE_MAX) keyCache.delete(keyCache.keys().next().value!);
  return derived;
}

// ---- verification ------------------------------------------------------------------

/**
 * Verifies a SigV4 request (header or presigned). Runs checkSigV4 first, then tries at
 * most two canonical URIs (strict, then raw as received). Returns the signing material
 * the aws-chunked decoder chains from.
 */
export async function verifySigV4(request: Request, auth: SigV4Auth, secret: string, expected: Expected): Promise<VerifiedSigV4> {
  checkSigV4(request, auth, expected);
  const { path, query } = splitRawUrl(request.url);
  const cQuery = canonicalQuery(parseQuery(query), auth.kind === "query");
  const payloadHash = payloadLine(auth, expected);
  const key = await signingKey(secret, auth.dateStamp, auth.region, auth.service);
  let first: { canonicalRequest: string; stringToSign: string } | undefined;
  for (const cHeaders of canonicalHeaderCandidates(request, auth.signedHeaders)) {
    for (const uri of canonicalUris(path, expected.service)) {
      const canonicalRequest = buildCanonicalRequest(request.method, uri, cQuery, cHeaders, auth.signedHeadersRaw, payloadHash);
      const stringToSign = stringToSignV4(auth.datetime, auth.scope, await sha256Hex(canonicalRequest));
      const signature = await hmacHex(key, stringToSign);
      if (timingSafeEqualStrings(signature, auth.signature)) {
        return { ...auth, signingKey: key, seedSignature: auth.signature, canonicalRequest, stringToSign };
      }
      first ??= { canonicalRequest, stringToSign };
    }
  }
  // AWS echoes these so clients can debug; they hold no secret once an SSE-C key that was
  // signed as a header (or sent in the query) is blanked out.
  throw Errors.SignatureDoesNotMatch({
    AWSAccessKeyId: auth.accessKeyId,
    StringToSign: first!.stringToSign,
    SignatureProvided: auth.signature,
    CanonicalRequest: redactCustomerKeys(first!.canonicalRequest),
  });
}

/**
 * The canonical request with SSE-C key values replaced (header lines and query
 * parameters): the key must never be echoed. The StringToSign holds only its hash.
 */
export function redactCustomerKeys(canonicalRequest: string): string {
  return canonicalRequest
    .replace(/^(x-amz-(?:copy-source-)?server-side-encryption-customer-key):.*$/gm, "$1:<redacted>")
    .replace(/(^|&)(x-amz-(?:copy-source-)?server-side-encryption-customer-key)=[^&\n]*/gim, "$1$2=<redacted>");
}

/**
 * The canonical request's payload line. A caller that hashed the body itself (KMS) passes
 * that hash; a client-sent x-amz-content-sha256 must then agree with it, or the signature
 * would vouch for a body other than the one received.
 */
function payloadLine(auth: SigV4Auth, expected: Expected): string {
  const computed = expected.payloadHash?.toLowerCase();
  if (computed !== undefined) {
    // UNSIGNED-PAYLOAD is refused here too: such a signature would let anyone holding the
    // request replay it with another body inside the skew window.
    if (auth.payloadHash !== null && auth.payloadHash.toLowerCase() !== computed) {
      throw Errors.XAmzContentSHA256Mismatch({ ClientComputedContentSHA256: auth.payloadHash, S3ComputedContentSHA256: computed });
    }
    return auth.payloadHash ?? computed;
  }
  if (auth.payloadHash === null) throw Errors.InvalidRequest(undefined, "Missing required header for this request: x-amz-content-sha256");
  return auth.payloadHash;
}

// ---- SigV2 (legacy; needed by POST forms and old clients) --------------------------

/** Base64 HMAC-SHA1, the SigV2 signature (also signs SigV2 POST policies). */
export async function signV2(stringToSign: string, secret: string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", utf8(secret), { name: "HMAC", hash: "SHA-1" }, false, ["sign"]);
  return toBase64(new Uint8Array(await crypto.subtle.sign("HMAC", key, utf8(stringToSign))));
}

/** Query parameters that are part of the SigV2 CanonicalizedResource. */
const V2_SUBRESOURCES = new Set([
  "acl", "accelerate", "analytics", "cors", "delete", "encryption", "intelligent-tiering", "inventory", "legal-hold",
  "lifecycle", "location", "logging", "metrics", "notification", "object-lock", "partNumber", "policy", "publicAccessBlock",
  "replication", "requestPayment", "response-cache-control", "response-content-disposition", "response-content-encoding",
  "response-content-language", "response-content-type", "response-expires", "restore", "retention", "select", "select-type",
  "tagging", "torrent", "uploadId", "uploads", "versionId", "versioning", "versions", "website",
]);

/**
 * SigV2 StringToSign. `bucketPrefix` is "/bucket" for virtual-hosted requests (the bucket
 * is then not in the path) and "" for path-style.
 */
export function stringToSignV2(request: Request, auth: SigV2Auth, bucketPrefix = ""): string {
  const h = request.headers;
  const { path, query } = splitRawUrl(request.url);
  const amz = new Map([...h].filter(([n]) => n.startsWith("x-amz-")));
  // A SigV2 presigned URL carries the x-amz-* headers it signed (and Content-Type and
  // Content-MD5) in its query, as botocore's HmacV1QueryAuth puts them there; the worker
  // treats x-amz-* query parameters as headers (dispatch.ts), so they are signed here as
  // headers too — otherwise anyone holding the URL could add unsigned ones.
  const fromQuery = new Map<string, string>();
  if (auth.via === "query") {
    for (const p of parseQuery(query)) {
      const name = p.name.toLowerCase();
      if ((name.startsWith("x-amz-") || name === "content-type" || name === "content-md5") && !fromQuery.has(name)) fromQuery.set(name, p.value);
    }
    for (const [name, value] of fromQuery) if (name.startsWith("x-amz-") && !amz.has(name)) amz.set(name, value);
  }
  const amzBlock = [...amz]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([n, v]) => `${n}:${v.trim().replace(/\s+/g, " ")}\n`)
    .join("");
  const dateLine = auth.via === "query" ? String(auth.expires) : h.has("x-amz-date") ? "" : (h.get("date") ?? "");
  const sub = parseQuery(query)
    .filter((p) => V2_SUBRESOURCES.has(p.name))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((p) => (p.hasValue ? `${p.name}=${p.value}` : p.name));
  const resource = bucketPrefix + (path === "" ? "/" : path) + (sub.length ? "?" + sub.join("&") : "");
  const md5 = h.get("content-md5") ?? fromQuery.get("content-md5") ?? "";
  const type = h.get("content-type") ?? fromQuery.get("content-type") ?? "";
  return `${request.method}\n${md5}\n${type}\n${dateLine}\n${amzBlock}${resource}`;
}

/** Verifies SigV2 header or query auth, including skew (header) and expiry (query). */
export async function verifySigV2(request: Request, auth: SigV2Auth, secret: string, options: { bucketPrefix?: string; now?: number } = {}): Promise<void> {
  const now = options.now ?? Date.now();
  if (auth.via === "query") {
    const expiresAt = (auth.expires ?? 0) * 1000;
    if (now > expiresAt) throw Errors.AccessDenied({ Expires: isoSeconds(expiresAt), ServerTime: isoSeconds(now) }, "Request has expired");
    // SigV2 URLs carry an absolute expiry and S3 itself sets no bound on it, so a leaked URL
    // would be valid for years. We bound it as SigV4 is bound (X-Amz-Expires ≤ 604800 s,
    // measured from a signing time that may be up to the skew allowance ahead of ours). The
    // answer is SigV4's for the same fault — 400 AuthorizationQueryParametersError, a
    // malformed query — not 403 "Request has expired": the URL has not expired, and a
    // client shown "expired" would re-sign with the same far date.
    if (expiresAt - now > MAX_PRESIGN_EXPIRES * 1000 + MAX_SKEW_MS) {
      // (No Expires field: a far enough value is no date toISOString can write.)
      throw Errors.AuthorizationQueryParametersError(
        { ServerTime: isoSeconds(now) },
        `Expires must be less than a week (in seconds) from now; that is, the given Expires must be less than ${MAX_PRESIGN_EXPIRES} seconds after the request time`,
      );
    }
  } else {
    const raw = request.headers.get("x-amz-date") ?? request.headers.get("date");
    const t = raw === null ? NaN : Date.parse(raw);
    if (Number.isNaN(t)) throw Errors.AccessDenied(undefined, "AWS authentication requires a valid Date or x-amz-date header");
    if (Math.abs(now - t) > MAX_SKEW_MS) {
      throw Errors.RequestTimeTooSkewed({ RequestTime: raw!, ServerTime: isoSeconds(now), MaxAllowedSkewMilliseconds: String(MAX_SKEW_MS) });
    }
  }
  const stringToSign = stringToSignV2(request, auth, options.bucketPrefix);
  if (!timingSafeEqualStrings(await signV2(stringToSign, secret), auth.signature)) {
    throw Errors.SignatureDoesNotMatch({ AWSAccessKeyId: auth.accessKeyId, StringToSign: redactCustomerKeys(stringToSign), SignatureProvided: auth.signature });
  }
}
