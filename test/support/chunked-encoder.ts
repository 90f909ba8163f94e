/**
 * Test-only aws-chunked encoder, written from the AWS documentation and independent of
 * src/auth/chunked.ts: hashes with @aws-crypto/sha256-js and signs with @smithy's
 * signString, so a shared misunderstanding would need two independent mistakes.
 */
import { Sha256 } from "@aws-crypto/sha256-js";
import { REGION, signer } from "./sigv4-oracle";
import { concatBytes } from "./sources";

const EMPTY_HASH = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const enc = new TextEncoder();

async function sha256Hex(data: Uint8Array | string): Promise<string> {
  const h = new Sha256();
  h.update(typeof data === "string" ? enc.encode(data) : data);
  return [...(await h.digest())].map((b) => b.toString(16).padStart(2, "0")).join("");
}

export type Mode =
  | "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
  | "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
  | "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
  | "STREAMING-UNSIGNED-PAYLOAD";

export interface ChunkSigner {
  date: Date;
  /** "20261127T120000Z" */
  datetime: string;
  scope: string;
  seed: string;
}

export interface EncodeOptions {
  mode: Mode;
  /** Sizes of the data chunks in order (the zero-size final chunk is added). */
  chunks: number[];
  /** Trailer lines, in order, as name → value. */
  trailers?: [string, string][];
  signing?: ChunkSigner;
  /** Hex case of chunk sizes (clients differ). */
  upperHex?: boolean;
}

export function splitSizes(total: number, chunkSize: number): number[] {
  const sizes: number[] = [];
  for (let left = total; left > 0; left -= chunkSize) sizes.push(Math.min(chunkSize, left));
  return sizes;
}

const signed = (mode: Mode) => mode.startsWith("STREAMING-AWS4");

/** Encodes `payload` as an aws-chunked body. */
export async function encodeAwsChunked(payload: Uint8Array, o: EncodeOptions): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  const sign = signed(o.mode);
  if (sign && !o.signing) throw new Error("signing material required");
  const s = signer();
  let previous = o.signing?.seed ?? "";
  const chunkSig = async (data: Uint8Array) => {
    const sts = `AWS4-HMAC-SHA256-PAYLOAD\n${o.signing!.datetime}\n${o.signing!.scope}\n${previous}\n${EMPTY_HASH}\n${await sha256Hex(data)}`;
    previous = await s.sign(sts, { signingDate: o.signing!.date, signingRegion: REGION });
    return previous;
  };
  let offset = 0;
  for (const size of [...o.chunks, 0]) {
    const data = payload.subarray(offset, offset + size);
    offset += size;
    let hex = size.toString(16);
    if (o.upperHex) hex = hex.toUpperCase();
    const header = sign ? `${hex};chunk-signature=${await chunkSig(data)}\r\n` : `${hex}\r\n`;
    parts.push(enc.encode(header));
    if (size > 0) parts.push(data, enc.encode("\r\n"));
  }
  if (offset !== payload.byteLength) throw new Error("chunk sizes do not cover the payload");
  if (o.mode.endsWith("-TRAILER")) {
    const lines = (o.trailers ?? []).map(([n, v]) => `${n}:${v}`);
    for (const line of lines) parts.push(enc.encode(`${line}\r\n`));
    if (sign) {
      const sts = `AWS4-HMAC-SHA256-TRAILER\n${o.signing!.datetime}\n${o.signing!.scope}\n${previous}\n${await sha256Hex(lines.map((l) => l + "\n").join(""))}`;
      parts.push(enc.encode(`x-amz-trailer-signature:${await s.sign(sts, { signingDate: o.signing!.date, signingRegion: REGION })}\r\n`));
    }
  }
  parts.push(enc.encode("\r\n"));
  return concatBytes(parts);
}

/**
 * A body stream that hands out `bytes` in pieces of the given sizes (cycled). `bytes`
 * streams support BYOB readers; default ones make the reader fall back.
 */
export function piecewiseStream(bytes: Uint8Array, pieceSizes: number[], type: "bytes" | "default" = "default"): ReadableStream<Uint8Array> {
  let offset = 0;
  let i = 0;
  const next = () => {
    const size = pieceSizes[i++ % pieceSizes.length]!;
    const piece = bytes.slice(offset, offset + size);
    offset += piece.byteLength;
    return piece;
  };
  if (type === "bytes") {
    return new ReadableStream({
      type: "bytes",
      pull(controller) {
        if (offset >= bytes.byteLength) return controller.close();
        controller.enqueue(next());
      },
    }) as ReadableStream<Uint8Array>;
  }
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (offset >= bytes.byteLength) return controller.close();
      controller.enqueue(next());
    },
  });
}

export function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(out.subarray(i, Math.min(n, i + 65536)));
  return out;
}

/** Reads a pull source to the end, `max` bytes at a time. */
export async function drain(source: { read(max: number): Promise<Uint8Array> }, max = 65536): Promise<Uint8Array> {
  const pieces: Uint8Array[] = [];
  let short = false;
  for (;;) {
    const piece = await source.read(max);
    if (piece.byteLength === 0) break;
    if (piece.byteLength > max) throw new Error("read returned more than max");
    // The BodySource contract: a short read only at the end of the body.
    if (short) throw new Error("short read before the end");
    short = piece.byteLength < max;
    pieces.push(piece);
  }
  const out = new Uint8Array(pieces.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of pieces) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

/**
 * Fast byte equality for large arrays (vitest's deep toEqual walks element by element,
 * ~1 s per MB); reports the first differing offset.
 */
export function firstDifference(a: Uint8Array, b: Uint8Array): number | null {
  const n = Math.min(a.byteLength, b.byteLength);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.byteLength === b.byteLength ? null : n;
}
