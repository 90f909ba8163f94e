/**
 * Byte helpers shared across the worker: hex, base64, UTF-8, concatenation and a
 * constant-time comparison. Decoders return null on malformed input instead of throwing,
 * because every caller maps "malformed" to its own S3 error.
 */

const HEX_TABLE: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Lowercase hex, the form SigV4 uses for hashes and signatures. */
export function toHex(bytes: Uint8Array | ArrayBuffer): string {
  const view = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  let out = "";
  for (let i = 0; i < view.length; i++) out += HEX_TABLE[view[i]!];
  return out;
}

/** Parses hex (either case); null unless the string is an even number of hex digits. */
export function fromHex(text: string): Uint8Array | null {
  if (text.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(text)) return null;
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/** Standard base64 with padding (S3 checksum headers, Content-MD5, ETag helpers). */
export function toBase64(bytes: Uint8Array): string {
  let binary = "";
  // String.fromCharCode with spread arguments overflows the stack on large inputs.
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

/**
 * Strict standard base64 (padding required, no whitespace, no URL alphabet): S3 rejects
 * anything else in Content-MD5 and x-amz-checksum-* headers, so we do too.
 */
export function fromBase64(text: string): Uint8Array | null {
  if (text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(text)) return null;
  const binary = atob(text);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
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
