import { Errors } from "../errors";

/** Query parameters shared by every S3 listing (objects, versions, uploads, parts). */

/** max-keys / max-uploads / max-parts: 0..1000 (larger values are capped, as S3 does). */
export function listLimit(query: URLSearchParams, name: string): number {
  const raw = query.get(name);
  if (raw === null || raw === "") return 1000;
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(Number(raw))) {
    throw Errors.InvalidArgument({ ArgumentName: name, ArgumentValue: raw }, `Provided ${name} not an integer or within integer range`);
  }
  return Math.min(Number(raw), 1000);
}

export function encodingType(query: URLSearchParams): "url" | undefined {
  const raw = query.get("encoding-type");
  if (raw === null) return undefined;
  if (raw.toLowerCase() !== "url") throw Errors.InvalidArgument({ ArgumentName: "encoding-type", ArgumentValue: raw }, "Invalid Encoding Method specified in Request");
  return "url";
}

/**
 * S3's encoding-type=url: percent-encoded, "/" kept, and a space written as "+" (form
 * encoding, as S3 answers: "a b.txt" lists as "a+b.txt", a literal "+" as "%2B"); clients
 * decode with unquote_plus (botocore) or the equivalent.
 */
export function keyEncoder(type: "url" | undefined): (s: string) => string {
  return type ? (s) => encodeURIComponent(s).replace(/%2F/g, "/").replace(/%20/g, "+") : (s) => s;
}
