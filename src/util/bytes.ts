/**
 * Byte helpers shared across the worker: hex, base64, UTF-8, concatenation and a
 * constant-time comparison. Decoders return null on malformed input instead of throwing,
 * because every caller maps "malformed" to its own S3 error.
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder();

// Hex and base64 use V8's native Uint8Array methods (workerd has them): the JS loops they
// replace showed up in per-request profiles (issue 18), run on every ETag, envelope field
// and signature.

/** Lowercase hex, the form SigV4 uses for hashes and signatures. */
export function toHex(bytes: Uint8Array | ArrayBuffer): string {
  return (bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes)).toHex();
}

/** Parses hex (either case); null unless the string is an even number of hex digits. */
export function fromHex(text: string): Uint8Array | null {
  if (text.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(text)) return null;
  return Uint8Array.fromHex(text);
}

/** Standard base64 with padding (S3 checksum headers, Content-MD5, ETag helpers). */
export function toBase64(bytes: Uint8Array): string {
  return bytes.toBase64();
}

/**
 * Strict standard base64 (padding required, no whitespace, no URL alphabet): S3 rejects
 * anything else in Content-MD5 and x-amz-checksum-* headers, so we do too.
 */
export function fromBase64(text: string): Uint8Array | null {
  if (text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(text)) return null;
  return Uint8Array.fromBase64(text);
}

export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}

export function fromUtf8(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let total = 0;
  for (const p of parts) total += p.byteLength;
  const out = new Uint8Array(total);
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.byteLength;
  }
  return out;
}

/**
 * Constant-time equality for secrets-derived values (signatures, MACs, digests). Lengths
 * are not secret (they are fixed per algorithm), so a length mismatch returns early.
 */
export function timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  // workerd's native comparison; it throws on unequal lengths, which we excluded above.
  return crypto.subtle.timingSafeEqual(a, b);
}

/** Constant-time comparison of two strings by their UTF-8 bytes (hex/base64 signatures). */
export function timingSafeEqualStrings(a: string, b: string): boolean {
  return timingSafeEqual(utf8(a), utf8(b));
}
