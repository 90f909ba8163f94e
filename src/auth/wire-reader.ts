import { Errors, S3Error } from "../errors";

type ByobReader = ReadableStreamBYOBReader & {
  readAtLeast<T extends ArrayBufferView>(minElements: number, view: T): Promise<ReadableStreamReadResult<T>>;
};

/**
 * A read of the request body that fails is the client's connection going away (the body
 * comes from nowhere else): the request ends as 400 IncompleteBody, logged as such rather
 * than as an internal error. Nothing was stored: the final chunk is sealed only after the
 * whole body has been read.
 */
async function offTheWire<T>(read: Promise<T>): Promise<T> {
  try {
    return await read;
  } catch (error) {
    throw requestBodyLost(error);
  }
}

/** The S3 error for a failed read of the request body (logged once, as request-body-lost). */
export function requestBodyLost(error: unknown): S3Error {
  if (error instanceof S3Error) return error;
  console.log(JSON.stringify({ event: "request-body-lost", message: error instanceof Error ? error.message : String(error) }));
  return Errors.IncompleteBody();
}

/**
 * Buffered reader over a request body stream. workerd's default reader hands out 4 KiB
 * pieces; a BYOB reader with readAtLeast fills large views in one call (2-4x ingress), so
 * BYOB is used whenever the stream supports it. The lookahead buffer serves line parsing
 * (aws-chunked headers); large spans go straight into the caller's array (readInto).
 */
export class WireReader {
  private byob: ByobReader | null = null;
  private plain: ReadableStreamDefaultReader<Uint8Array> | null = null;
  private buf: Uint8Array;
  private start = 0;
  private end = 0;
  private ended: boolean;
  /** Bytes taken off the wire so far. */
  received = 0;

  constructor(stream: ReadableStream<Uint8Array> | null, lookahead = 64 * 1024) {
    this.buf = new Uint8Array(lookahead);
    this.ended = stream === null;
    if (stream) {
      try {
        this.byob = stream.getReader({ mode: "byob" }) as ByobReader;
      } catch {
        this.plain = stream.getReader();
      }
    }
  }

  /** Buffered, unconsumed bytes. Valid until the next await on this reader. */
  peek(): Uint8Array {
    return this.buf.subarray(this.start, this.end);
  }

  consume(n: number): void {
    this.start += n;
  }

  /** Reads more into the lookahead; false at the end of the stream (nothing added). */
  async fill(): Promise<boolean> {
    if (this.start === this.end) this.start = this.end = 0;
    if (this.ended) return false;
    if (this.byob) {
      if (this.end === this.buf.byteLength) this.compact();
      const { value, done } = await offTheWire(this.byob.readAtLeast(1, this.buf.subarray(this.end)));
      if (value) {
        // BYOB transfers the buffer: keep using the memory it returned.
        this.buf = new Uint8Array(value.buffer, 0, value.buffer.byteLength);
        this.end += value.byteLength;
        this.received += value.byteLength;
      }
      if (done) this.ended = true;
      return (value?.byteLength ?? 0) > 0;
    }
    const { value, done } = await offTheWire(this.plain!.read());
    if (done || !value) {
      this.ended = true;
      return false;
    }
    this.received += value.byteLength;
    this.append(value);
    return value.byteLength > 0 || this.fill();
  }

  /**
   * Reads at least `min` bytes (fewer only at the end) straight into target[offset..
   * offset+min]. The lookahead must be empty. Returns the target re-wrapped: a BYOB read
   * transfers its buffer, detaching the array passed in.
   */
  async readInto(target: Uint8Array, offset: number, min: number): Promise<{ target: Uint8Array; got: number }> {
    if (this.start !== this.end) throw new Error("readInto with buffered bytes");
    if (this.ended || min === 0) return { target, got: 0 };
    if (this.byob) {
      // Read these before the transfer: a detached array reports offset and length 0.
      const { byteOffset, byteLength } = target;
      const { value, done } = await offTheWire(this.byob.readAtLeast(min, target.subarray(offset, offset + min)));
      if (done) this.ended = true;
      if (!value) return { target, got: 0 };
      this.received += value.byteLength;
      return { target: new Uint8Array(value.buffer, byteOffset, byteLength), got: value.byteLength };
    }
    let got = 0;
    while (got < min) {
      const { value, done } = await offTheWire(this.plain!.read());
      if (done || !value) {
        this.ended = true;
        break;
      }
      this.received += value.byteLength;
      const take = Math.min(value.byteLength, min - got);
      target.set(value.subarray(0, take), offset + got);
      got += take;
      if (take < value.byteLength) this.append(value.subarray(take));
    }
    return { target, got };
  }

  async cancel(reason?: unknown): Promise<void> {
    this.ended = true;
    await (this.byob ?? this.plain)?.cancel(reason).catch(() => {});
  }

  private compact(): void {
    this.buf.copyWithin(0, this.start, this.end);
    this.end -= this.start;
    this.start = 0;
  }

  /** Default-reader path: pieces of any size are appended, growing the lookahead if needed. */
  private append(piece: Uint8Array): void {
    if (this.end + piece.byteLength > this.buf.byteLength) {
      this.compact();
      if (this.end + piece.byteLength > this.buf.byteLength) {
        const bigger = new Uint8Array(Math.max(this.buf.byteLength * 2, this.end + piece.byteLength));
        bigger.set(this.buf.subarray(0, this.end));
        this.buf = bigger;
      }
    }
    this.buf.set(piece, this.end);
    this.end += piece.byteLength;
  }
}
