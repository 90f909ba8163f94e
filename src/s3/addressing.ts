import { percentDecode, splitRawUrl } from "../auth/presign";
import { Errors } from "../errors";

export interface Address {
  bucket: string | null;
  /** Null for service- and bucket-level requests ("/bucket" and "/bucket/"). */
  key: string | null;
  style: "path" | "virtual";
}

const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Bucket and key of a request, path-style ("/bucket/key") or virtual-hosted
 * ("bucket.<BASE_DOMAIN>/key"). The key is decoded from the raw path: WHATWG URL
 * parsing would fold "%2F", "." segments and other bytes S3 keys may contain.
 */
export function parseAddress(request: Request, baseDomain: string): Address {
  const raw = splitRawUrl(request.url).path;
  let path: string;
  try {
    path = decoder.decode(percentDecode(raw, false));
  } catch {
    throw Errors.InvalidURI();
  }
  const host = (request.headers.get("host") ?? new URL(request.url).host).toLowerCase().replace(/:\d+$/, "");
  if (baseDomain && host !== baseDomain && host.endsWith("." + baseDomain)) {
    const bucket = host.slice(0, -baseDomain.length - 1);
    const key = path.length > 1 ? path.slice(1) : null;
    return { bucket, key, style: "virtual" };
  }
  const rest = path.startsWith("/") ? path.slice(1) : path;
  if (rest === "") return { bucket: null, key: null, style: "path" };
  const slash = rest.indexOf("/");
  if (slash < 0) return { bucket: rest, key: null, style: "path" };
  const key = rest.slice(slash + 1);
  return { bucket: rest.slice(0, slash), key: key === "" ? null : key, style: "path" };
}

/** S3's bucket naming rules (general purpose buckets). */
export function validBucketName(name: string): boolean {
  return (
    /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(name) &&
    !name.includes("..") &&
    !/^\d+\.\d+\.\d+\.\d+$/.test(name) &&
    !name.startsWith("xn--") &&
    !name.startsWith("sthree-") &&
    !name.endsWith("-s3alias") &&
    !name.endsWith("--ol-s3") &&
    !name.includes(".-") &&
    !name.includes("-.")
  );
}
