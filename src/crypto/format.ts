/**
 * Stream format v1 constants and size arithmetic (FORMAT.md, "Stream layout").
 *
 * A stream is a 32-byte header followed by plaintext chunks of CHUNK_SIZE bytes (the last
 * one shorter, possibly empty), each sealed with AES-256-GCM and carrying a 16-byte tag.
 * Everything here is pure arithmetic so both the writer and ranged readers agree on it.
 */
export const FORMAT_VERSION = 1;
export const MAGIC = new Uint8Array([0x53, 0x47, 0x57, FORMAT_VERSION]); // "SGW" ‖ version
export const HEADER_SIZE = 32;
export const CHUNK_SIZE = 64 * 1024;
export const TAG_SIZE = 16;
export const SALT_SIZE = 16;
export const ENCRYPTED_CHUNK_SIZE = CHUNK_SIZE + TAG_SIZE;
/**
 * Chunks handled per stream step (1 MiB). The format's unit stays 64 KiB, but every
 * enqueue and read on a Workers stream has a fixed cost that dwarfs AES-GCM's on 64 KiB
 * (measured: 64 KiB pieces ≈ 280 MB/s through a FixedLengthStream, 1 MiB ≈ 600 MB/s), so
 * the stages move 16 chunks at a time. Memory per stream stays a few MiB. (A POST file
 * streamed part by part encrypts 4 chunks at a time instead: encryptingStream's
 * `buffering`, objects/write-streamed-multipart.ts says why.)
 */
export const CHUNKS_PER_STEP = 16;

/** Number of sealed chunks for a plaintext of `length` bytes (an empty plaintext has one). */
export function chunkCount(length: number): number {
  return Math.max(1, Math.ceil(length / CHUNK_SIZE));
}

/** E(L) = 32 + L + 16·max(1, ⌈L/65536⌉): known before the first byte is encrypted. */
export function encryptedSize(length: number): number {
  return HEADER_SIZE + length + TAG_SIZE * chunkCount(length);
}

/** Inverse of encryptedSize, or -1 when no plaintext length maps to `size`. */
export function plaintextSize(size: number): number {
  if (size < HEADER_SIZE + TAG_SIZE) return -1;
  const body = size - HEADER_SIZE;
  const full = Math.floor(body / ENCRYPTED_CHUNK_SIZE);
  const rest = body - full * ENCRYPTED_CHUNK_SIZE;
  let length: number;
  if (rest === 0) length = full * CHUNK_SIZE; // ends on a full chunk
  else if (rest > TAG_SIZE) length = full * CHUNK_SIZE + rest - TAG_SIZE;
  else if (rest === TAG_SIZE && full === 0) length = 0; // the empty stream
  else return -1;
  return encryptedSize(length) === size ? length : -1;
}

/** Plaintext length of chunk `index` in a stream of `length` bytes. */
export function chunkPlainLength(index: number, length: number): number {
  const last = chunkCount(length) - 1;
  return index < last ? CHUNK_SIZE : length - last * CHUNK_SIZE;
}

/** Offset of chunk `index` in the stored stream. Independent of the total length. */
export function chunkOffset(index: number): number {
  return HEADER_SIZE + index * ENCRYPTED_CHUNK_SIZE;
}

/**
 * The stored bytes a reader needs for plaintext bytes [first, last] (inclusive) of a
 * stream of `length` bytes: whole chunks only, one contiguous span.
 */
export interface ChunkSpan {
  firstChunk: number;
  lastChunk: number;
  /** Offset and length of the span in the stored stream. */
  offset: number;
  size: number;
  /** Plaintext bytes to drop from the first decrypted chunk. */
  skip: number;
}

export function chunkSpan(first: number, last: number, length: number): ChunkSpan {
  const firstChunk = Math.floor(first / CHUNK_SIZE);
  const lastChunk = Math.floor(last / CHUNK_SIZE);
  const offset = chunkOffset(firstChunk);
  const end = chunkOffset(lastChunk) + chunkPlainLength(lastChunk, length) + TAG_SIZE;
  return { firstChunk, lastChunk, offset, size: end - offset, skip: first - firstChunk * CHUNK_SIZE };
}

/**
 * 12-byte GCM nonce for chunk `index`: 0x000000 ‖ u64be(index) ‖ final flag. The stream key is
 * unique per stream (fresh salt), so a counter nonce never repeats under one key; the flag
 * makes truncation at a chunk boundary fail authentication.
 */
export function chunkNonce(index: number, final: boolean): Uint8Array {
  const nonce = new Uint8Array(12);
  const view = new DataView(nonce.buffer);
  view.setBigUint64(3, BigInt(index));
  nonce[11] = final ? 1 : 0;
  return nonce;
}

export interface StreamHeader {
  partNumber: number;
  length: number;
  salt: Uint8Array;
}

/** Header: magic+version (4) ‖ u32be part number ‖ u64be plaintext length ‖ salt (16). */
export function encodeHeader(header: StreamHeader): Uint8Array {
  if (header.salt.byteLength !== SALT_SIZE) throw new Error("salt must be 16 bytes");
  const out = new Uint8Array(HEADER_SIZE);
  const view = new DataView(out.buffer);
  out.set(MAGIC, 0);
  view.setUint32(4, header.partNumber);
  view.setBigUint64(8, BigInt(header.length));
  out.set(header.salt, 16);
  return out;
}
