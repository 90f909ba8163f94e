/**
 * aws-chunked request bodies (Content-Encoding: aws-chunked), all streaming modes:
 *
 *   STREAMING-AWS4-HMAC-SHA256-PAYLOAD           size;chunk-signature=sig CRLF data CRLF ... 0;chunk-signature=sig CRLF CRLF
 *   STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER   same, then trailer lines and x-amz-trailer-signature:sig CRLF, CRLF
 *   STREAMING-UNSIGNED-PAYLOAD-TRAILER           size CRLF data CRLF ... 0 CRLF, trailer lines, CRLF
 *   STREAMING-UNSIGNED-PAYLOAD                   size CRLF data CRLF ... 0 CRLF CRLF
 *
 * A pull decoder: chunk data goes straight from the wire into the caller's output array
 * (through a 64 KiB lookahead, or by a direct BYOB read for large spans), so memory stays
 * at one lookahead plus the caller's read size whatever the chunk size. Each signed chunk
 * is hashed incrementally and its signature checked, chained from the seed signature,
 * as soon as its data ends; the trailer signature and the decoded length at the end.
 */
import { createSha256, type Hasher } from "../checksum";
import { Errors } from "../errors";
import { fromUtf8, timingSafeEqualStrings, toHex } from "../util/bytes";
import type { WireReader } from "./wire-reader";
import { EMPTY_SHA256, hmacHex } from "./sigv4";

export const STREAMING_MODES = [
  "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
  "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
  "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
  "STREAMING-UNSIGNED-PAYLOAD",
] as const;
export type StreamingMode = (typeof STREAMING_MODES)[number];

export const isStreamingMode = (value: string): value is StreamingMode => (STREAMING_MODES as readonly string[]).includes(value);
export const isSignedMode = (mode: StreamingMode): boolean => mode.startsWith("STREAMING-AWS4-HMAC-SHA256-PAYLOAD");
export const hasTrailer = (mode: StreamingMode): boolean => mode.endsWith("-TRAILER");

/** Signing material from a verified SigV4 header (see VerifiedSigV4). */
export interface ChunkSigning {
  readonly signingKey: CryptoKey;
  readonly datetime: string;
  readonly scope: string;
  readonly seedSignature: string;
}

export interface AwsChunkedOptions {
  readonly mode: StreamingMode;
  /** x-amz-decoded-content-length. */
  readonly decodedLength: number;
  /** Required for the signed modes. */
  readonly signing?: ChunkSigning;
  /** Trailer names announced in x-amz-trailer, lowercased. */
  readonly trailerNames?: readonly string[];
  /**
   * S3 refuses signed chunks smaller than 8 KiB except the last. It enforces the same for
   * unsigned-trailer uploads, but AWS SDK v3 sends whatever pieces its input stream
   * yields there (small ones from network or browser streams), so we only apply the rule
   * to signed chunks, where each chunk costs an HMAC.
   */
  readonly minChunkSize?: number;
}

/** A chunk header or trailer line is < 200 bytes in practice; cap what we buffer. */
const MAX_LINE = 4096;
/** Spans at least this large bypass the lookahead and are read straight into the output. */
const DIRECT_READ_MIN = 16 * 1024;
const EMPTY = new Uint8Array(0);

const malformed = (what: string) => Errors.IncompleteBody(undefined, `The request body is not valid aws-chunked encoding: ${what}.`);
const incomplete = () => Errors.IncompleteBody();
const badTrailer = () => Errors.MalformedTrailerError();

export class AwsChunkedDecoder {
  /** Trailing headers received (lowercased names), complete once read() returned empty. */
  readonly trailers = new Map<string, string>();
  private state: "header" | "data" | "done" = "header";
  private chunkRemaining = 0;
  private chunkSignature = "";
  private chunkHasher: Hasher | null = null;
  private previousSignature: string;
  private chunkIndex = 0;
  private smallChunk: { index: number; size: number } | null = null;
  /** Decoded bytes delivered plus those announced by the current chunk header. */
  private announced = 0;
  private decoded = 0;
  private readonly signed: boolean;

  constructor(
    private readonly wire: WireReader,
    private readonly options: AwsChunkedOptions,
  ) {
    this.signed = isSignedMode(options.mode);
    if (this.signed && !options.signing) throw new Error("signed aws-chunked mode without signing material");
    this.previousSignature = options.signing?.seedSignature ?? "";
  }

  // A getter, so TypeScript does not narrow the state across the awaits in read().
  private get done(): boolean {
    return this.state === "done";
  }

  get length(): number {
    return this.options.decodedLength;
  }

  /**
   * Up to `max` decoded bytes; fewer only at the end; empty once the final chunk, the
   * trailers and every signature were verified and the wire is exhausted.
   */
  async read(max: number): Promise<Uint8Array> {
    if (!(max > 0)) throw new RangeError("read(max) needs max > 0");
    if (this.done) return EMPTY;
    const want = Math.max(0, Math.min(max, this.options.decodedLength - this.decoded));
    let out: Uint8Array = want === 0 ? EMPTY : new Uint8Array(want);
    let n = 0;
    while (!this.done) {
      if (this.state === "data") {
        if (n === want) break;
        const span = Math.min(this.chunkRemaining, want - n);
        let got: number;
        ({ out, got } = await this.readData(out, n, span));
        // Hashers consume synchronously (see Hasher), before the next read can detach `out`.
        this.chunkHasher?.update(out.subarray(n, n + got));
        n += got;
        this.decoded += got;
        this.chunkRemaining -= got;
        if (this.chunkRemaining === 0) await this.endChunk();
      } else {
        if (n === want && want > 0) break;
        await this.readChunkHeader();
      }
    }
    return n === out.length ? out : out.subarray(0, n);
  }

  async cancel(reason?: unknown): Promise<void> {
    this.state = "done";
    await this.wire.cancel(reason);
  }

  /** Moves at least one byte (at most `span`) of chunk data into out[n..]. */
  private async readData(out: Uint8Array, n: number, span: number): Promise<{ out: Uint8Array; got: number }> {
    for (;;) {
      const buffered = this.wire.peek();
      if (buffered.byteLength > 0) {
        const got = Math.min(buffered.byteLength, span);
        out.set(buffered.subarray(0, got), n);
        this.wire.consume(got);
        return { out, got };
      }
      if (span >= DIRECT_READ_MIN) {
        const result = await this.wire.readInto(out, n, span);
        if (result.got === 0) throw incomplete();
        return { out: result.target, got: result.got };
      }
      if (!(await this.wire.fill())) throw incomplete();
    }
  }

  private async readLine(): Promise<string> {
    for (;;) {
      const buffered = this.wire.peek();
      const end = indexOfCrlf(buffered);
      if (end >= 0) {
        const line = fromUtf8(buffered.subarray(0, end));
        this.wire.consume(end + 2);
        return line;
      }
      if (buffered.byteLength > MAX_LINE) throw malformed("line too long");
      if (!(await this.wire.fill())) throw incomplete();
    }
  }

  private async readChunkHeader(): Promise<void> {
    const line = await this.readLine();
    const m = this.signed ? /^([0-9a-fA-F]{1,16});chunk-signature=([0-9a-f]{64})$/.exec(line) : /^([0-9a-fA-F]{1,16})(?:;.*)?$/.exec(line);
    if (!m) throw malformed("bad chunk header");
    const size = parseInt(m[1]!, 16);
    this.chunkIndex++;
    this.chunkSignature = m[2] ?? "";
    if (size === 0) return this.finish();
    const min = this.options.minChunkSize ?? 8192;
    if (this.signed && this.smallChunk) {
      throw Errors.InvalidChunkSizeError({ Chunk: String(this.smallChunk.index), BadChunkSize: String(this.smallChunk.size) });
    }
    if (size < min) this.smallChunk = { index: this.chunkIndex, size };
    // More data than x-amz-decoded-content-length announced: fail now, not after storing it.
    if (this.announced + size > this.options.decodedLength) throw incomplete();
    this.announced += size;
    this.chunkRemaining = size;
    this.chunkHasher = this.signed ? createSha256() : null;
    this.state = "data";
  }

  private async endChunk(): Promise<void> {
    await this.expectCrlf();
    if (this.signed) await this.verifyChunk(toHex(await this.chunkHasher!.digest()));
    this.chunkHasher = null;
    this.state = "header";
  }

  private async expectCrlf(): Promise<void> {
    while (this.wire.peek().byteLength < 2) {
      if (!(await this.wire.fill())) throw incomplete();
    }
    const b = this.wire.peek();
    if (b[0] !== 13 || b[1] !== 10) throw malformed("chunk data not followed by CRLF");
    this.wire.consume(2);
  }

  private async verifyChunk(dataHash: string): Promise<void> {
    const s = this.options.signing!;
    const stringToSign = `AWS4-HMAC-SHA256-PAYLOAD\n${s.datetime}\n${s.scope}\n${this.previousSignature}\n${EMPTY_SHA256}\n${dataHash}`;
    const expected = await hmacHex(s.signingKey, stringToSign);
    if (!timingSafeEqualStrings(expected, this.chunkSignature)) throw Errors.SignatureDoesNotMatch();
    this.previousSignature = this.chunkSignature;
  }

  /** After the zero-size chunk: its signature, trailers, the end of the wire, the length. */
  private async finish(): Promise<void> {
    if (this.signed) await this.verifyChunk(EMPTY_SHA256);
    if (hasTrailer(this.options.mode)) await this.readTrailers();
    else if ((await this.readLine()) !== "") throw malformed("data after the final chunk");
    if (this.wire.peek().byteLength > 0 || (await this.wire.fill())) throw malformed("data after the final chunk");
    if (this.decoded !== this.options.decodedLength) throw incomplete();
    this.state = "done";
  }

  private async readTrailers(): Promise<void> {
    const announced = new Set(this.options.trailerNames ?? []);
    const signedLines: string[] = [];
    let trailerSignature: string | null = null;
    for (;;) {
      const line = await this.readLine();
      if (line === "") break;
      if (trailerSignature !== null) throw badTrailer(); // the signature line comes last
      const colon = line.indexOf(":");
      if (colon <= 0) throw badTrailer();
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      if (this.signed && name === "x-amz-trailer-signature") {
        trailerSignature = value;
        continue;
      }
      if (!announced.has(name) || this.trailers.has(name)) throw badTrailer();
      this.trailers.set(name, value);
      signedLines.push(`${line}\n`);
    }
    for (const name of announced) if (!this.trailers.has(name)) throw incomplete();
    if (this.signed) {
      if (trailerSignature === null) throw incomplete();
      const s = this.options.signing!;
      const hash = toHex(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(signedLines.join(""))));
      const stringToSign = `AWS4-HMAC-SHA256-TRAILER\n${s.datetime}\n${s.scope}\n${this.previousSignature}\n${hash}`;
      if (!timingSafeEqualStrings(await hmacHex(s.signingKey, stringToSign), trailerSignature)) throw Errors.SignatureDoesNotMatch();
    }
  }
}

/** Index of the first CRLF, or -1 (also when the buffer ends in a lone CR). */
export function indexOfCrlf(bytes: Uint8Array): number {
  let i = bytes.indexOf(13);
  while (i >= 0 && i + 1 < bytes.byteLength) {
    if (bytes[i + 1] === 10) return i;
    i = bytes.indexOf(13, i + 1);
  }
  return -1;
}
