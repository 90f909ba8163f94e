/**
 * Receipts: what the page's grant step hands the browser so that later steps (a download
 * link, the parts of a multipart upload) apply only to what that grant created. A receipt
 * is `<base64url JSON claims>.<base64url HMAC-SHA256>`; the HMAC key is derived (HKDF)
 * from the master secret new writes use and the page's access key id, so neither a
 * visitor nor another deployment can mint one, and changing the page's key voids them.
 */
import type { Env } from "../env";
import { importHkdf, info } from "../crypto/keys";
import { keyringFor } from "../kms/keyring";
import { fromUtf8, timingSafeEqual, utf8 } from "../util/bytes";

const LABEL = "s3-sse-gw/v1/upload-page-receipt";
/** Long enough to finish or resume a large upload the same day. */
export const RECEIPT_TTL_SECONDS = 24 * 60 * 60;

export interface ReceiptClaims {
  /** Bucket the grant writes into. */
  b: string;
  /** Key prefix the grant may write (unique per grant): every key under it is the grant's. */
  p: string;
  /** Expiry, Unix seconds. */
  e: number;
  /** Multipart only: the exact key, the upload id, the file size and the part size. */
  k?: string;
  u?: string;
  s?: number;
  ps?: number;
}

async function receiptKey(env: Env, accessKeyId: string): Promise<CryptoKey> {
  const keyring = keyringFor(env);
  const base = await importHkdf(keyring.secret(keyring.writeVersion));
  return crypto.subtle.deriveKey(
    { name: "HKDF", hash: "SHA-256", salt: new Uint8Array(0), info: info(LABEL, accessKeyId) },
    base,
    { name: "HMAC", hash: "SHA-256", length: 256 },
    false,
    ["sign"],
  );
}

export async function issueReceipt(env: Env, accessKeyId: string, claims: Omit<ReceiptClaims, "e">, now = Date.now()): Promise<string> {
  const payload = base64url(utf8(JSON.stringify({ ...claims, e: Math.floor(now / 1000) + RECEIPT_TTL_SECONDS })));
  const mac = await crypto.subtle.sign("HMAC", await receiptKey(env, accessKeyId), utf8(payload));
  return `${payload}.${base64url(new Uint8Array(mac))}`;
}

/** The receipt's claims if its MAC is ours and it has not expired; null otherwise. */
export async function verifyReceipt(env: Env, accessKeyId: string, receipt: unknown, now = Date.now()): Promise<ReceiptClaims | null> {
  if (typeof receipt !== "string" || receipt.length > 4096) return null;
  const [payload, mac, extra] = receipt.split(".");
  if (payload === undefined || mac === undefined || extra !== undefined) return null;
  const given = fromBase64url(mac);
  if (!given) return null;
  const expected = new Uint8Array(await crypto.subtle.sign("HMAC", await receiptKey(env, accessKeyId), utf8(payload)));
  if (!timingSafeEqual(given, expected)) return null;
  const bytes = fromBase64url(payload);
  if (!bytes) return null;
  let claims: ReceiptClaims;
  try {
    claims = JSON.parse(fromUtf8(bytes)) as ReceiptClaims;
  } catch {
    return null;
  }
  if (typeof claims.e !== "number" || claims.e * 1000 <= now) return null;
  if (typeof claims.b !== "string" || typeof claims.p !== "string") return null;
  return claims;
}

function base64url(bytes: Uint8Array): string {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function fromBase64url(text: string): Uint8Array | null {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) return null;
  try {
    const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
    return Uint8Array.from(binary, (c) => c.charCodeAt(0));
  } catch {
    return null;
  }
}
