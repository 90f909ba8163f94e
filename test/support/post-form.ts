/**
 * Test-only builders for POST Object forms: a multipart/form-data encoder with full
 * control over part order, names and Content-Disposition, a policy encoder, and SigV4 /
 * SigV2 policy signing written out here with WebCrypto (independent of src/auth).
 */
export type Part =
  | { name: string; value: string; filename?: string; contentType?: string }
  | { name: string; file: Uint8Array | string; filename?: string; contentType?: string };

const encoder = new TextEncoder();

export function multipartBody(parts: readonly Part[], boundary = "----TestBoundary" + Math.random().toString(36).slice(2)): { body: Uint8Array; contentType: string } {
  const chunks: Uint8Array[] = [];
  for (const part of parts) {
    let head = `--${boundary}\r\nContent-Disposition: form-data; name="${part.name}"`;
    if (part.filename !== undefined) head += `; filename="${part.filename}"`;
    head += "\r\n";
    if (part.contentType) head += `Content-Type: ${part.contentType}\r\n`;
    chunks.push(encoder.encode(head + "\r\n"));
    const content = "file" in part ? part.file : part.value;
    chunks.push(typeof content === "string" ? encoder.encode(content) : content);
    chunks.push(encoder.encode("\r\n"));
  }
  chunks.push(encoder.encode(`--${boundary}--\r\n`));
  const total = chunks.reduce((n, c) => n + c.byteLength, 0);
  const body = new Uint8Array(total);
  let offset = 0;
  for (const c of chunks) {
    body.set(c, offset);
    offset += c.byteLength;
  }
  return { body, contentType: `multipart/form-data; boundary=${boundary}` };
}

export function encodePolicy(conditions: unknown[], expiresInMs = 3_600_000, now = Date.now()): string {
  const doc = { expiration: new Date(now + expiresInMs).toISOString(), conditions };
  return btoa(String.fromCharCode(...encoder.encode(JSON.stringify(doc))));
}

async function hmac(key: Uint8Array, data: string, hash: "SHA-256" | "SHA-1" = "SHA-256"): Promise<Uint8Array> {
  const k = await crypto.subtle.importKey("raw", key, { name: "HMAC", hash }, false, ["sign"]);
  return new Uint8Array(await crypto.subtle.sign("HMAC", k, encoder.encode(data)));
}

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

export function amzDate(now = new Date()): string {
  return now.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
}

/** The SigV4 fields for a policy: credential, algorithm, date (also needed as conditions). */
export function v4Fields(accessKeyId: string, date = amzDate(), region = "us-east-1"): Record<string, string> {
  return {
    "x-amz-algorithm": "AWS4-HMAC-SHA256",
    "x-amz-credential": `${accessKeyId}/${date.slice(0, 8)}/${region}/s3/aws4_request`,
    "x-amz-date": date,
  };
}

export async function signV4(policy: string, secret: string, date: string, region = "us-east-1"): Promise<string> {
  let key = await hmac(encoder.encode("AWS4" + secret), date.slice(0, 8));
  key = await hmac(key, region);
  key = await hmac(key, "s3");
  key = await hmac(key, "aws4_request");
  return hex(await hmac(key, policy));
}

export async function signV2(policy: string, secret: string): Promise<string> {
  return btoa(String.fromCharCode(...(await hmac(encoder.encode(secret), policy, "SHA-1"))));
}

/**
 * A signed browser-style form: the key, the policy's covered fields (bucket, SigV4 fields,
 * `fields`), the policy (those fields, any key, `conditions`), the signature, the file, and
 * any parts after the file.
 */
export async function signedForm(
  who: { accessKeyId: string; secretAccessKey: string },
  bucket: string,
  key: string,
  file: Uint8Array,
  extra: { fields?: Record<string, string>; conditions?: unknown[]; after?: Part[] } = {},
): Promise<Part[]> {
  const date = amzDate();
  const covered = { bucket, ...v4Fields(who.accessKeyId, date), ...(extra.fields ?? {}) };
  const policy = encodePolicy([...Object.entries(covered).map(([k, v]) => ({ [k]: v })), ["starts-with", "$key", ""], ...(extra.conditions ?? [])]);
  return [
    { name: "key", value: key },
    ...Object.entries(covered).map(([name, value]) => ({ name, value })),
    { name: "policy", value: policy },
    { name: "x-amz-signature", value: await signV4(policy, who.secretAccessKey, date) },
    { name: "file", file, filename: "big.bin" },
    ...(extra.after ?? []),
  ];
}
