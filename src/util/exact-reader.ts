/**
 * Reads exact-size pieces from a byte stream. Uses workerd's BYOB `readAtLeast` when the
 * stream supports it (one copy into a buffer of the right size, large reads); otherwise
 * gathers pieces from a default reader.
 */
type ByobReader = ReadableStreamBYOBReader & {
  readAtLeast(minBytes: number, view: Uint8Array): Promise<ReadableStreamReadResult<Uint8Array>>;
};

/** Exact-size reads of stored bytes, from a stream or from memory. */
export interface ExactSource {
  /** Exactly `size` bytes, or fewer only when the bytes ended first. */
  read(size: number): Promise<Uint8Array>;
  cancel(reason?: unknown): Promise<void>;
}

export class ExactReader implements ExactSource {
  private byob: ByobReader | null = null;
  private plain: ReadableStreamDefaultReader<Uint8Array> | null = null;
  private leftover: Uint8Array | null = null;
  private ended = false;

  constructor(stream: ReadableStream<Uint8Array>) {
    try {
      this.byob = stream.getReader({ mode: "byob" }) as ByobReader;
    } catch {
      this.plain = stream.getReader();
    }
  }

  /** Returns exactly `size` bytes, or fewer only when the stream ended first. */
  async read(size: number): Promise<Uint8Array> {
    if (size === 0 || this.ended) return new Uint8Array(0);
    if (this.byob) {
      let buffer = new Uint8Array(size);
      let filled = 0;
      // readAtLeast may return early only at the end of the stream; loop for safety.
      while (filled < size) {
        const { value, done } = await this.byob.readAtLeast(size - filled, buffer.subarray(filled));
        if (value) {
          buffer = new Uint8Array(value.buffer, 0, size);
          filled += value.byteLength;
        }
        if (done) {
          this.ended = true;
          break;
        }
      }
      return filled === size ? buffer : buffer.slice(0, filled);
    }
    return this.readPlain(size);
  }

  private async readPlain(size: number): Promise<Uint8Array> {
    const out = new Uint8Array(size);
    let filled = 0;
    while (filled < size) {
      let piece = this.leftover;
      this.leftover = null;
      if (!piece) {
        const { value, done } = await this.plain!.read();
        if (done) {
          this.ended = true;
          break;
        }
        piece = value;
      }
      const take = Math.min(piece.byteLength, size - filled);
      out.set(piece.subarray(0, take), filled);
      filled += take;
      if (take < piece.byteLength) this.leftover = piece.subarray(take);
    }
    return filled === size ? out : out.slice(0, filled);
  }

  async cancel(reason?: unknown): Promise<void> {
    this.ended = true;
    await (this.byob ?? this.plain)?.cancel(reason).catch(() => {});
  }
}

/** ExactSource over bytes already in memory: views into them, never copies. */
export class BytesReader implements ExactSource {
  private at = 0;

  constructor(private readonly bytes: Uint8Array) {}

  read(size: number): Promise<Uint8Array> {
    const piece = this.bytes.subarray(this.at, this.at + size);
    this.at += piece.byteLength;
    return Promise.resolve(piece);
  }

  cancel(): Promise<void> {
    this.at = this.bytes.byteLength;
    return Promise.resolve();
  }
}
