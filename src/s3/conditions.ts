import { Errors, notModified } from "../errors";

/** Conditional request headers (RFC 7232 as S3 applies them) for GET, HEAD and copy sources. */
export interface Validators {
  etag: string;
  lastModified: Date;
}

function etagList(value: string): string[] {
  return value.split(",").map((t) => t.trim().replace(/^W\//, "").replace(/^"(.*)"$/, "$1"));
}

function matches(value: string, etag: string): boolean {
  return etagList(value).some((t) => t === "*" || t === etag);
}

/** Dates compare at one-second precision (Last-Modified has no fraction). */
function modifiedSince(lastModified: Date, header: string): boolean | undefined {
  const since = Date.parse(header);
  if (Number.isNaN(since)) return undefined;
  return Math.floor(lastModified.getTime() / 1000) > Math.floor(since / 1000);
}

export interface ConditionHeaders {
  ifMatch: string | null;
  ifNoneMatch: string | null;
  ifModifiedSince: string | null;
  ifUnmodifiedSince: string | null;
}

export function readConditions(headers: Headers, prefix = ""): ConditionHeaders {
  return {
    ifMatch: headers.get(`${prefix}if-match`),
    ifNoneMatch: headers.get(`${prefix}if-none-match`),
    ifModifiedSince: headers.get(`${prefix}if-modified-since`),
    ifUnmodifiedSince: headers.get(`${prefix}if-unmodified-since`),
  };
}

/**
 * Throws 412 PreconditionFailed or 304 Not Modified as S3 does: If-Match (else
 * If-Unmodified-Since) decides 412; then If-None-Match (else If-Modified-Since) decides
 * 304 for reads. `forCopy` answers 412 where a read would answer 304.
 */
export function evaluateConditions(c: ConditionHeaders, v: Validators, forCopy = false): void {
  const validatorHeaders = { ETag: `"${v.etag}"`, "Last-Modified": v.lastModified.toUTCString() };
  if (c.ifMatch !== null) {
    if (!matches(c.ifMatch, v.etag)) throw Errors.PreconditionFailed({ Condition: forCopy ? "x-amz-copy-source-If-Match" : "If-Match" });
  } else if (c.ifUnmodifiedSince !== null && modifiedSince(v.lastModified, c.ifUnmodifiedSince) === true) {
    throw Errors.PreconditionFailed({ Condition: forCopy ? "x-amz-copy-source-If-Unmodified-Since" : "If-Unmodified-Since" });
  }
  if (c.ifNoneMatch !== null) {
    if (matches(c.ifNoneMatch, v.etag)) {
      if (forCopy) throw Errors.PreconditionFailed({ Condition: "x-amz-copy-source-If-None-Match" });
      throw notModified(validatorHeaders);
    }
  } else if (c.ifModifiedSince !== null && modifiedSince(v.lastModified, c.ifModifiedSince) === false) {
    if (forCopy) throw Errors.PreconditionFailed({ Condition: "x-amz-copy-source-If-Modified-Since" });
    throw notModified(validatorHeaders);
  }
}
