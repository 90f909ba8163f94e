/**
 * Writes an object whose length is not known up front (a POST Object file part: the
 * multipart body's Content-Length includes fields, boundaries and whatever follows the
 * file). R2 needs a known length for a streamed put, and the stream format binds the
 * plaintext length into its header, so:
 *
 * - when the source's length hint says the object is larger than one buffer, it is
 *   streamed into the multipart layout (docs/multipart.md) without buffering, in parts of
 *   exactly STREAM_BUFFER_BYTES, each written with the length the hint predicts and fixed
 *   up afterwards when the source ends elsewhere (write-streamed-multipart.ts);
 * - otherwise read up to STREAM_BUFFER_BYTES; if the source ends within it, the length is
 *   now known and the object is an ordinary single-stream object (writeObject);
 * - otherwise (no hint, or a wrong one) the object is stored in the multipart layout from
 *   buffers: parts of exactly STREAM_BUFFER_BYTES each encrypted as their own stream, the
 *   last one shorter, plus the manifest — each part's length is known once its buffer is full.
 *
 * Every way gives the same object for the same bytes: an object of at most one buffer is
 * a single stream whose ETag is its MD5; a larger one has the same parts, so the same
 * ETag and checksum. Memory stays at about one buffer (plus one wire chunk) without a
 * hint, and at a few wire chunks with a right one, whatever the object's size.
 */
import { createMd5 } from "../checksum";
import type { PlaintextSource } from "../crypto/encrypt";
import type { ObjectFacts } from "../crypto/facts";
import { writeObject, type ObjectDeps, type WriteRequest, type WrittenObject } from "./write";

/** Plaintext buffered before deciding between a single stream and the multipart layout. */
export const STREAM_BUFFER_BYTES = 8 * 1024 * 1024;
export const READ_PIECE = 256 * 1024;

export interface StreamedWriteRequest extends Omit<WriteRequest, "source" | "length" | "facts"> {
  /** read(max): up to max bytes, an empty array at the end (after its own verification). */
  source: PlaintextSource;
  /**
   * Facts are decided once the source has ended and verified (e.g. a checksum field).
   * `md5` is the plaintext's MD5 when the object fit one buffer (the ETag S3 would give).
   */
  facts: (plain: { md5?: Uint8Array }) => ObjectFacts;
  /** Who uploads (recorded with a multipart-layout upload while it is in progress). */
  initiator?: { id: string; name: string };
}

/**
 * Stores an object that outgrew one buffer; `head` is the first buffer, which the source
 * continues after. The multipart layout module provides it (write-streamed-multipart.ts).
 */
export type LargeObjectWriter = (req: StreamedWriteRequest, head: BufferedPlaintextWithMore, partBytes: number) => Promise<WrittenObject>;

/**
 * What the source's framing says of its length: `expected` is the likely length, `max` a
 * bound it never exceeds. A hint only: the writer must be exact whatever the real length.
 */
export interface LengthHint {
  expected: number;
  max: number;
}

/**
 * Streams an object the hint says is larger than one buffer into the multipart layout,
 * with no buffer; `source` is the request's source with its first bytes put back.
 */
export type HintedLargeObjectWriter = (req: StreamedWriteRequest, hint: LengthHint, partBytes: number) => Promise<WrittenObject>;

/** Thrown when an object outgrows one buffer and the caller gave no large-object writer. */
export class StreamTooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`object larger than ${limit} bytes needs the multipart layout`);
  }
}

export interface StreamedWriteOptions {
  large?: LargeObjectWriter;
  /** Used instead of `large` when `lengthHint` (asked once the first bytes are read) predicts more than one buffer. */
  hintedLarge?: HintedLargeObjectWriter;
  lengthHint?: () => LengthHint | null;
  bufferBytes?: number;
}

export async function writeStreamed(deps: ObjectDeps, req: StreamedWriteRequest, options: StreamedWriteOptions = {}): Promise<WrittenObject> {
  const bufferBytes = options.bufferBytes ?? STREAM_BUFFER_BYTES;
  let source = req.source;
  if (options.hintedLarge && options.lengthHint) {
    // The hint is known once the source's first byte has been seen.
    const first = await source.read(READ_PIECE);
    // An empty read was the end (and ran the source's verification): never read past it.
    source = first.byteLength > 0 ? prepend(first, source) : endedSource(source);
    const hint = first.byteLength > 0 ? options.lengthHint() : null;
    if (hint && hint.expected > bufferBytes) return options.hintedLarge({ ...req, source }, hint, bufferBytes);
  }
  req = { ...req, source };
  const head = await readBuffer(req.source, bufferBytes);
  if (head.ended) {
    const md5 = createMd5();
    for (const piece of head.pieces) md5.update(piece);
    return writeObject(deps, { ...req, source: head.source(), length: head.length, facts: req.facts({ md5: await md5.digest() }) });
  }
  if (!options.large) {
    await req.source.cancel(new StreamTooLargeError(bufferBytes));
    throw new StreamTooLargeError(bufferBytes);
  }
  return options.large(req, head as BufferedPlaintextWithMore, bufferBytes);
}

/** Plaintext held in memory as the pieces the source returned (no copy into one array). */
export class BufferedPlaintext {
  constructor(
    readonly pieces: Uint8Array[],
    readonly length: number,
    /** True when the source ended within the buffer. */
    readonly ended: boolean,
  ) {}

  /** A PlaintextSource over the pieces: read(max) returns max bytes, fewer only at the end. */
  source(): PlaintextSource {
    const pieces = this.pieces.slice();
    let index = 0;
    let offset = 0;
    return {
      async read(max: number): Promise<Uint8Array> {
        const first = pieces[index];
        if (!first) return new Uint8Array(0);
        if (first.byteLength - offset >= max) {
          const out = first.subarray(offset, offset + max);
          offset += max;
          if (offset === first.byteLength) {
            index++;
            offset = 0;
          }
          return out;
        }
        const out = new Uint8Array(max);
        let filled = 0;
        while (filled < max && index < pieces.length) {
          const piece = pieces[index]!;
          const take = Math.min(max - filled, piece.byteLength - offset);
          out.set(piece.subarray(offset, offset + take), filled);
          filled += take;
          offset += take;
          if (offset === piece.byteLength) {
            index++;
            offset = 0;
          }
        }
        return filled === max ? out : out.subarray(0, filled);
      },
      async cancel() {
        pieces.length = 0;
      },
    };
  }
}

/**
 * Reads until `limit` bytes are buffered or the source ends. Exactly `limit` bytes with
 * the source not yet at its end is "not ended": the caller must keep reading.
 */
export async function readBuffer(source: PlaintextSource, limit: number): Promise<BufferedPlaintext> {
  const pieces: Uint8Array[] = [];
  let length = 0;
  while (length < limit) {
    const piece = await source.read(Math.min(READ_PIECE, limit - length));
    if (piece.byteLength === 0) return new BufferedPlaintext(pieces, length, true);
    pieces.push(piece);
    length += piece.byteLength;
  }
  // Full: only an empty read tells a source that ends exactly here (and runs its final
  // verification) from a longer one. A non-empty read is pushed back by the caller via `more`.
  const next = await source.read(1);
  if (next.byteLength === 0) return new BufferedPlaintext(pieces, length, true);
  return new BufferedPlaintextWithMore(pieces, length, next);
}

/** A full buffer plus the first byte of what follows (read to learn the source had not ended). */
export class BufferedPlaintextWithMore extends BufferedPlaintext {
  constructor(
    pieces: Uint8Array[],
    length: number,
    readonly more: Uint8Array,
  ) {
    super(pieces, length, false);
  }
}

/** A source already read to its end: only empty reads from here. */
function endedSource(source: PlaintextSource): PlaintextSource {
  return { read: async () => new Uint8Array(0), cancel: (reason) => source.cancel(reason) };
}

/**
 * `source` with `first` put back in front of it. Once `source` has returned its empty
 * read (its end, after its verification) it is never read again: a second empty read
 * would run the verification twice (a SHA-256 digest twice fails).
 */
export function prepend(first: Uint8Array, source: PlaintextSource): PlaintextSource {
  let pending: Uint8Array | null = first.byteLength > 0 ? first : null;
  let ended = false;
  return {
    async read(max: number): Promise<Uint8Array> {
      if (ended) return new Uint8Array(0);
      if (!pending) {
        const bytes = await source.read(max);
        if (bytes.byteLength === 0) ended = true;
        return bytes;
      }
      if (pending.byteLength >= max) {
        const out = pending.subarray(0, max);
        pending = pending.byteLength > max ? pending.subarray(max) : null;
        return out;
      }
      const head = pending;
      pending = null;
      const tail = await source.read(max - head.byteLength);
      if (tail.byteLength === 0) {
        ended = true;
        return head;
      }
      const out = new Uint8Array(head.byteLength + tail.byteLength);
      out.set(head);
      out.set(tail, head.byteLength);
      return out;
    },
    cancel: (reason) => source.cancel(reason),
  };
}
