/**
 * Server-side signing for the upload page: a presigned POST (policy + SigV4 signature,
 * the same shape @aws-sdk/s3-presigned-post produces) and a presigned GET URL. Secrets
 * stay in the worker; the browser only ever sees signed, expiring grants.
 */
import { signPostPolicyV4 } from "../auth/post-policy";
import { formatAmzDate, uriEncode } from "../auth/presign";
import { ALGORITHM, buildCanonicalRequest, hmacHex, sha256Hex, signingKey, stringToSignV4, UNSIGNED_PAYLOAD } from "../auth/sigv4";
import { toBase64, utf8 } from "../util/bytes";

export interface Signer {
  accessKeyId: string;
  secret: string;
  region: string;
}

export interface PresignedPost {
  url: string;
  fields: Record<string, string>;
}

export interface PostGrant {
  /** Origin of the endpoint, e.g. "https://s3.example.com". */
  origin: string;
  bucket: string;
  /** The key template, e.g. "page-uploads/2026-01-01/ab12/${filename}". */
  key: string;
  /** Conditions beyond bucket, key prefix and the signature fields (content-length-range...). */
  conditions: unknown[];
  /** Fields the form must carry (each also becomes an exact-match condition). */
  fields: Record<string, string>;
  expiresInSeconds: number;
  now?: number;
}

/** A presigned POST form: fields to send (before the file) and the URL to send them to. */
export async function presignPost(signer: Signer, grant: PostGrant): Promise<PresignedPost> {
  const now = grant.now ?? Date.now();
  const datetime = formatAmzDate(now);
  const credential = `${signer.accessKeyId}/${datetime.slice(0, 8)}/${signer.region}/s3/aws4_request`;
  const fields: Record<string, string> = {
    ...grant.fields,
    bucket: grant.bucket,
    "X-Amz-Algorithm": ALGORITHM,
    "X-Amz-Credential": credential,
    "X-Amz-Date": datetime,
  };
  const conditions: unknown[] = [...Object.entries(fields).map(([k, v]) => ({ [k]: v })), ...grant.conditions];
  const template = grant.key.lastIndexOf("${filename}");
  conditions.push(template >= 0 ? ["starts-with", "$key", grant.key.slice(0, template)] : { key: grant.key });
  const expiration = new Date(now + grant.expiresInSeconds * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
  const policy = toBase64(utf8(JSON.stringify({ expiration, conditions })));
  const signature = await signPostPolicyV4(policy, signer.secret, datetime.slice(0, 8), signer.region);
  return { url: `${grant.origin}/${grant.bucket}`, fields: { ...fields, key: grant.key, Policy: policy, "X-Amz-Signature": signature } };
}

/** What a presigned URL authorises: one method on one object, with these query parameters and headers. */
export interface PresignTarget {
  method: "GET" | "PUT" | "POST" | "DELETE";
  origin: string;
  bucket: string;
  key: string;
  /** Operation parameters (uploads, uploadId, partNumber, response-*), signed with the rest. */
  query?: ReadonlyArray<readonly [string, string]>;
  /** Headers the request must carry with exactly these values (e.g. content-length), signed. */
  headers?: Readonly<Record<string, string>>;
  expiresInSeconds: number;
  now?: number;
}

/**
 * A path-style SigV4 query-presigned URL (host and `headers` signed, UNSIGNED-PAYLOAD), as
 * the SDKs' presigners build them. Signing content-length pins a part's exact size.
 */
export async function presignUrl(signer: Signer, target: PresignTarget): Promise<string> {
  const url = new URL(target.origin);
  const datetime = formatAmzDate(target.now ?? Date.now());
  const scope = `${datetime.slice(0, 8)}/${signer.region}/s3/aws4_request`;
  const path = `/${target.bucket}/${uriEncode(utf8(target.key), true)}`;
  const headers = new Map<string, string>([["host", url.host]]);
  for (const [name, value] of Object.entries(target.headers ?? {})) headers.set(name.toLowerCase(), value.trim());
  const signedNames = [...headers.keys()].sort();
  const signedHeaders = signedNames.join(";");
  const params: Array<readonly [string, string]> = [
    ["X-Amz-Algorithm", ALGORITHM],
    ["X-Amz-Credential", `${signer.accessKeyId}/${scope}`],
    ["X-Amz-Date", datetime],
    ["X-Amz-Expires", String(target.expiresInSeconds)],
    ["X-Amz-SignedHeaders", signedHeaders],
    ...(target.query ?? []),
  ];
  const encoded = params.map(([k, v]) => [uriEncode(utf8(k), false), uriEncode(utf8(v), false)] as const).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const query = encoded.map(([k, v]) => `${k}=${v}`).join("&");
  const canonicalHeaders = signedNames.map((name) => `${name}:${headers.get(name)!}\n`).join("");
  const canonical = buildCanonicalRequest(target.method, path, query, canonicalHeaders, signedHeaders, UNSIGNED_PAYLOAD);
  const signature = await hmacHex(await signingKey(signer.secret, datetime.slice(0, 8), signer.region, "s3"), stringToSignV4(datetime, scope, await sha256Hex(canonical)));
  return `${url.origin}${path}?${query}&X-Amz-Signature=${signature}`;
}

/** A path-style presigned GET URL (SigV4 query, host signed, UNSIGNED-PAYLOAD). */
export function presignGet(
  signer: Signer,
  target: { origin: string; bucket: string; key: string; expiresInSeconds: number; responseContentDisposition?: string; now?: number },
): Promise<string> {
  const query: Array<[string, string]> = target.responseContentDisposition ? [["response-content-disposition", target.responseContentDisposition]] : [];
  return presignUrl(signer, { method: "GET", origin: target.origin, bucket: target.bucket, key: target.key, query, expiresInSeconds: target.expiresInSeconds, now: target.now });
}
