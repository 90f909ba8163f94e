import { HTTP_FIELDS, type HttpMetadata } from "../crypto/envelope";
import type { ObjectInfo } from "../objects/object-info";
import { Errors } from "../errors";
import { sseResponseHeaders } from "./sse";

/** S3 limits user-defined metadata to 2 KB: the UTF-8 bytes of every name and value. */
export const MAX_USER_METADATA_BYTES = 2048;
const encoder = new TextEncoder();

const HTTP_HEADER: Record<(typeof HTTP_FIELDS)[number], string> = {
  contentType: "content-type",
  contentEncoding: "content-encoding",
  contentDisposition: "content-disposition",
  contentLanguage: "content-language",
  cacheControl: "cache-control",
  expires: "expires",
};

export function userMetadataFrom(headers: Headers): Record<string, string> {
  const meta: Record<string, string> = {};
  let size = 0;
  for (const [name, value] of headers) {
    if (!name.startsWith("x-amz-meta-")) continue;
    const short = name.slice("x-amz-meta-".length);
    meta[short] = value;
    size += encoder.encode(short).byteLength + encoder.encode(value).byteLength;
  }
  if (size > MAX_USER_METADATA_BYTES) throw Errors.MetadataTooLarge({ Size: String(size), MaxSizeAllowed: String(MAX_USER_METADATA_BYTES) });
  const stored = storedMetadataBytes(headers, meta);
  if (stored > R2_METADATA_LIMIT) {
    throw Errors.MetadataTooLarge(
      { Size: String(stored), MaxSizeAllowed: String(R2_METADATA_LIMIT) },
      "Your metadata headers exceed the maximum allowed metadata size (system and user metadata together, as stored with the object).",
    );
  }
  return meta;
}

/**
 * R2 refuses custom metadata over 8 KiB (names plus values) with an error that would
 * otherwise surface as a 500 after the body was read. An object's custom metadata is its
 * encryption envelope — fixed fields (key ARN, wrapped key, sealed facts, MAC, salt or
 * manifest hash: 430 bytes measured, under 600 with a SHA-256 checksum and a rewrap
 * date; allowance 768), the system metadata and the SSE-KMS context as JSON — plus each
 * user entry under "x-amz-meta-". Every object-creating request reads its user metadata
 * here, so the whole estimate (UTF-8 bytes, an upper bound) is checked here too.
 */
const R2_METADATA_LIMIT = 8192;
const ENVELOPE_FIXED_ALLOWANCE = 768;

function storedMetadataBytes(headers: Headers, userMetadata: Record<string, string>): number {
  const bytes = (s: string) => encoder.encode(s).byteLength;
  let total = ENVELOPE_FIXED_ALLOWANCE;
  for (const name of [...Object.values(HTTP_HEADER), "x-amz-server-side-encryption-context"]) {
    const value = headers.get(name);
    if (value !== null) total += bytes(JSON.stringify(value)) + 8; // + its short JSON key
  }
  for (const [name, value] of Object.entries(userMetadata)) total += "x-amz-meta-".length + bytes(name) + bytes(value);
  return total;
}

/**
 * System metadata from the request. The aws-chunked content coding is transport framing,
 * not a property of the object, so it is removed from Content-Encoding as S3 does.
 */
export function httpMetadataFrom(headers: Headers): HttpMetadata {
  const meta: HttpMetadata = {};
  for (const field of HTTP_FIELDS) {
    let value = headers.get(HTTP_HEADER[field]);
    if (field === "contentEncoding" && value !== null) {
      value = value
        .split(",")
        .map((v) => v.trim())
        .filter((v) => v !== "" && v.toLowerCase() !== "aws-chunked")
        .join(",");
      if (value === "") value = null;
    }
    if (value !== null) meta[field] = value;
  }
  return meta;
}

/** Headers describing an object on GET and HEAD. */
export function objectResponseHeaders(info: ObjectInfo, checksumMode: boolean): Headers {
  const headers = new Headers({
    ETag: `"${info.etag}"`,
    "Last-Modified": info.lastModified.toUTCString(),
    "Accept-Ranges": "bytes",
    "Content-Type": info.http.contentType ?? "binary/octet-stream",
    ...sseResponseHeaders(info),
  });
  for (const field of HTTP_FIELDS) {
    const value = info.http[field];
    if (value !== undefined && field !== "contentType") headers.set(HTTP_HEADER[field], value);
  }
  for (const [name, value] of Object.entries(info.userMetadata)) headers.set(`x-amz-meta-${name}`, value);
  if (checksumMode && info.checksum) {
    headers.set(`x-amz-checksum-${info.checksum.algorithm.toLowerCase()}`, info.checksum.value);
    headers.set("x-amz-checksum-type", info.checksum.type);
  }
  if (!headers.has("content-encoding") && COMPRESSIBLE.test(headers.get("content-type") ?? "")) {
    // Cloudflare (and Miniflare, which emulates it) gzips text-like responses on the fly
    // for clients that accept it, dropping Content-Length and changing the bytes a client
    // like rclone stores. An object body must arrive as stored: "identity" opts out.
    headers.set("Content-Encoding", "identity");
  }
  return headers;
}

/** Content types Cloudflare compresses on the fly (developers.cloudflare.com, "Content compression"). */
const COMPRESSIBLE =
  /^\s*(text\/|application\/([a-z0-9.+-]*\+)?(json|xml)\b|application\/(x-)?javascript|application\/(font|x-font|wasm|vnd\.ms-fontobject|x-httpd-cgi|x-perl|javascript-binast|manifest\+json|ld\+json|graphql\+json|geo\+json)|image\/(svg\+xml|x-icon|vnd\.microsoft\.icon)|font\/|multipart\/bag|multipart\/mixed)/i;

const OVERRIDES: Record<string, string> = {
  "response-content-type": "Content-Type",
  "response-content-language": "Content-Language",
  "response-expires": "Expires",
  "response-cache-control": "Cache-Control",
  "response-content-disposition": "Content-Disposition",
  "response-content-encoding": "Content-Encoding",
};

/** GET's response-* query overrides; S3 refuses them on anonymous requests. */
export function applyResponseOverrides(headers: Headers, query: URLSearchParams, anonymous: boolean): void {
  for (const [param, header] of Object.entries(OVERRIDES)) {
    const value = query.get(param);
    if (value === null) continue;
    if (anonymous) throw Errors.InvalidRequest({}, "Request specific response headers cannot be used for anonymous GET requests.");
    try {
      headers.set(header, value);
    } catch {
      // A decoded query value may hold what no header can (NUL, CR, LF): a client error, not a 500.
      throw Errors.InvalidArgument({ ArgumentName: param, ArgumentValue: value }, `Invalid value for ${param}: not a valid HTTP header value.`);
    }
  }
}
