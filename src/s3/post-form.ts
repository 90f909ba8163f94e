/**
 * Reads a POST Object multipart/form-data body the way S3 does: every part before the
 * one named `file` is a field (whatever its Content-Disposition says — some clients put a
 * filename on every part), field names are case-insensitive, and everything after the
 * file part is ignored.
 *
 * Parsing is multipasta's push parser (multipart framing, header parsing, RFC 5987
 * filenames); this module adds pull-based backpressure on top: one wire chunk is fed at
 * a time, only when the file's consumer asks for more, so the file streams with memory
 * bounded by about one chunk whatever its size. Fields are small and buffered, capped.
 */
import { decodeField, make, type MultipartError, type PartInfo } from "multipasta";
import { requestBodyLost } from "../auth/wire-reader";
import type { PlaintextSource } from "../crypto/encrypt";
import { Errors, S3Error } from "../errors";

/** S3's limit on the fields before the file (names + values). */
export const MAX_FIELD_BYTES = 20 * 1024;
/** Raw bytes allowed before the file part begins (part headers, preamble, fields). */
const MAX_PRE_FILE_WIRE_BYTES = 256 * 1024;
const MAX_FIELDS = 200;
/** Wire reads: whole chunks of this size (BYOB readAtLeast), fresh each time so parts may keep references. */
const WIRE_CHUNK = 64 * 1024;
/**
 * File bytes read ahead of the consumer (readAhead). 256 KiB and 1 MiB measured the same
 * (bench/post-object.mjs: RSS, time and CPU within noise), so the smaller bound.
 */
const READ_AHEAD = 256 * 1024;
/** After an error, read and discard at most this much of the rest so the client sees the response. */
const DRAIN_LIMIT = 1024 * 1024;
const DRAIN_MS = 10_000;

export interface FormField {
  /** As sent (for messages). */
  name: string;
  value: string;
}

export interface FormFile {
  /** The file part's filename parameter, if any (replaces ${filename} in the key). */
  filename: string | undefined;
  /** The file part's own Content-Type (S3 ignores it unless the form has no Content-Type field). */
  contentType: string | undefined;
  /** The file's bytes: read(max) returns up to max bytes, fewer only at the end, then empty arrays. */
  source: PlaintextSource;
  /**
   * What the form's Content-Length says of the file's length, once its first byte has been
   * read (null before that, and without a Content-Length). A hint only: fields or an
   * epilogue after the file make it shorter, which nothing before its end can tell.
   */
  lengthHint(): FileLengthHint | null;
}

/**
 * `expected`: the file's length when the form ends right after it with the closing
 * delimiter and a CRLF (`\r\n--<boundary>--\r\n`, what browsers, SDKs and curl send);
 * `max`: the most it can be (the shortest ending the parser accepts, `\r\n--<boundary>`
 * and one byte). The file is never longer than `max` when the body is Content-Length long.
 */
export interface FileLengthHint {
  expected: number;
  max: number;
}

export interface PostForm {
  /** Fields before the file, by lowercase name. */
  fields: Map<string, FormField>;
  file: FormFile | null;
}

export interface PostFormReader {
  /** Parses up to the start of the file part; the file then streams through `file.source`. */
  readFields(): Promise<PostForm>;
  /** Reads and discards (bounded) what the client still sends, so it sees our (error) response. */
  drain(): Promise<void>;
}

export function isFormPost(headers: Headers): boolean {
  return /^multipart\/form-data\s*(;|$)/i.test(headers.get("content-type") ?? "");
}

export function postFormReader(request: Request): PostFormReader {
  return new FormReader(request);
}

type Wire =
  | { kind: "byob"; reader: ReadableStreamBYOBReader & { readAtLeast(min: number, view: Uint8Array): Promise<ReadableStreamReadResult<Uint8Array>> } }
  | { kind: "default"; reader: ReadableStreamDefaultReader<Uint8Array> }
  | { kind: "none" };

class FormReader implements PostFormReader {
  private readonly wire: Wire;
  private readonly parser: { write(chunk: Uint8Array): void; end(): void };
  private readonly fields = new Map<string, FormField>();
  private fieldBytes = 0;
  private preFileBytes = 0;
  private failure: S3Error | null = null;
  private wireEnded = false;
  /** Content-Length as declared (null when absent or not a number), and bytes read so far. */
  private readonly declared: number | null;
  private received = 0;
  private fileInfo: PartInfo | null = null;
  private fileEnded = false;
  private readonly queue: Uint8Array[] = [];
  private queued = 0;
  /** A read-ahead in progress (readAhead), or null. */
  private filling: Promise<void> | null = null;
  /** The boundary's length (null when the Content-Type has none the parser would take). */
  private readonly boundaryLength: number | null;
  /** The wire chunk being parsed and the wire offset of its first byte. */
  private writing: { chunk: Uint8Array; at: number } | null = null;
  /** Wire offset of the file's first byte (known once the parser emits it). */
  private fileStart: number | null = null;

  constructor(request: Request) {
    this.wire = openWire(request.body);
    const length = request.headers.get("content-length");
    this.declared = length !== null && /^\d+$/.test(length) ? Number(length) : null;
    this.boundaryLength = byteLength(boundaryOf(request.headers.get("content-type") ?? ""));
    this.parser = make({
      headers: { "content-type": request.headers.get("content-type") ?? "" },
      isFile: (info) => info.name.toLowerCase() === "file",
      maxFieldSize: MAX_FIELD_BYTES,
      maxParts: MAX_FIELDS + 1,
      onField: (info, value) => this.onField(info, value),
      onFile: (info) => this.onFile(info),
      onError: (error) => this.onError(error),
      onDone: () => {},
    });
  }

  // ---- parser callbacks (synchronous, from inside parser.write) -------------------------

  private onField(info: PartInfo | undefined, value: Uint8Array): void {
    // multipasta reports a part whose header block runs into the next boundary as a field
    // without any info (seen with multipasta 0.2.8): a malformed body, not a 500.
    if (!info) return this.fail(Errors.MalformedPOSTRequest());
    if (this.fileInfo) return; // after the file: ignored, as S3 does
    const name = info.name;
    const lower = name.toLowerCase();
    this.fieldBytes += name.length + value.byteLength;
    if (this.fieldBytes > MAX_FIELD_BYTES) return this.fail(Errors.MaxPostPreDataLengthExceededError());
    if (this.fields.has(lower) && !lower.startsWith("x-ignore-")) {
      return this.fail(Errors.InvalidArgument({ ArgumentName: name, ArgumentValue: "" }, `The form field '${name}' appears more than once.`));
    }
    this.fields.set(lower, { name, value: decodeField(info, value) });
  }

  private onFile(info: PartInfo): (chunk: Uint8Array | null) => void {
    if (this.fileInfo) return () => {}; // a second "file" after the first: ignored
    this.fileInfo = info;
    return (chunk) => {
      if (this.fileEnded) return;
      if (chunk === null) this.fileEnded = true;
      else if (chunk.byteLength > 0) {
        if (this.fileStart === null) this.fileStart = this.wireOffsetOf(chunk);
        this.queue.push(chunk);
        this.queued += chunk.byteLength;
      }
    };
  }

  /**
   * Where `emitted` (a view multipasta hands out) starts on the wire. multipasta (0.2.8)
   * emits views of the chunk it was given, or of a new array joining the few bytes it held
   * back (a possible boundary prefix) with that chunk. Only a hint depends on this: when
   * it is off, the file's length is guessed wrong and the writer takes its slower, still
   * exact, path (objects/write-streamed-multipart.ts).
   */
  private wireOffsetOf(emitted: Uint8Array): number | null {
    const current = this.writing;
    if (!current) return null;
    const { chunk, at } = current;
    const offset =
      emitted.buffer === chunk.buffer
        ? at + (emitted.byteOffset - chunk.byteOffset)
        : at - (emitted.buffer.byteLength - chunk.byteLength) + emitted.byteOffset;
    return Number.isSafeInteger(offset) && offset >= 0 && offset <= at + chunk.byteLength ? offset : null;
  }

  private onError(error: MultipartError): void {
    if (this.fileEnded) return; // trouble after the file is none of our business
    if (error._tag === "ReachedLimit") return this.fail(error.limit === "MaxFieldSize" || error.limit === "MaxParts" ? Errors.MaxPostPreDataLengthExceededError() : Errors.MalformedPOSTRequest());
    this.fail(Errors.MalformedPOSTRequest());
  }

  private fail(error: S3Error): void {
    this.failure ??= error;
  }

  // ---- pulling ----------------------------------------------------------------------------

  /** Feeds one wire chunk to the parser; false once the wire has ended. */
  private async pump(): Promise<boolean> {
    if (this.wireEnded) return false;
    let chunk: Uint8Array | null;
    try {
      chunk = await readWire(this.wire);
    } catch (error) {
      // The client went away mid-form (as on PUT, src/auth/body.ts): 400 IncompleteBody,
      // not a 500. Nothing is stored: the file's end, and so the commit, is never reached.
      this.wireEnded = true;
      const lost = requestBodyLost(error);
      this.fail(lost);
      throw lost;
    }
    if (chunk === null) {
      this.wireEnded = true;
      // Fewer bytes than Content-Length promised: the client went away (a service binding
      // or proxy may end the stream instead of failing it), not a malformed form.
      if (this.declared !== null && this.received < this.declared) this.fail(Errors.IncompleteBody());
      this.parser.end();
      return false;
    }
    this.writing = { chunk, at: this.received };
    this.received += chunk.byteLength;
    if (!this.fileInfo) {
      this.preFileBytes += chunk.byteLength;
      if (this.preFileBytes > MAX_PRE_FILE_WIRE_BYTES + WIRE_CHUNK) this.fail(Errors.MaxPostPreDataLengthExceededError());
    }
    this.parser.write(chunk);
    this.writing = null;
    return true;
  }

  private lengthHint(): FileLengthHint | null {
    if (this.declared === null || this.fileStart === null || this.boundaryLength === null) return null;
    const room = this.declared - this.fileStart;
    // "\r\n--" + boundary + "--\r\n" after the file; at least "\r\n--" + boundary + 1 byte.
    const expected = room - (8 + this.boundaryLength);
    const max = room - (5 + this.boundaryLength);
    return max < 0 ? null : { expected: Math.max(0, expected), max };
  }

  async readFields(): Promise<PostForm> {
    while (!this.fileInfo && !this.failure) {
      if (!(await this.pump())) break;
    }
    if (this.failure) throw this.failure;
    return { fields: this.fields, file: this.fileInfo ? this.fileOf(this.fileInfo) : null };
  }

  private fileOf(info: PartInfo): FormFile {
    const contentType = info.headers["content-type"];
    return {
      filename: info.filename,
      contentType: typeof contentType === "string" ? contentType : undefined,
      source: { read: (max) => this.readFile(max), cancel: (reason) => this.cancel(reason) },
      lengthHint: () => this.lengthHint(),
    };
  }

  private async readFile(max: number): Promise<Uint8Array> {
    // A read-ahead still pumping owns the wire: let it finish its chunk first.
    if (this.filling) await this.filling;
    while (this.queued < max && !this.fileEnded) {
      if (this.failure) throw this.failure;
      if (!(await this.pump()) && !this.fileEnded) {
        // The body ended inside the file part (no closing boundary): never store it.
        throw this.failure ?? Errors.MalformedPOSTRequest();
      }
    }
    if (this.failure && !this.fileEnded) throw this.failure;
    const take = Math.min(max, this.queued);
    if (take === 0) return new Uint8Array(0);
    const out = this.queue[0]!.byteLength >= take ? this.takeFromHead(take) : this.gather(take);
    this.readAhead();
    return out;
  }

  /**
   * Keeps up to READ_AHEAD bytes of the file queued while the consumer encrypts and
   * writes what it was given, so the client's upload and the write into R2 overlap (a
   * streamed part has no other buffer to overlap with). Bounded: memory stays at about
   * READ_AHEAD plus one wire chunk. Its errors are recorded (`failure`) for the next read.
   */
  private readAhead(): void {
    if (this.filling || this.fileEnded || this.wireEnded || this.failure || this.queued >= READ_AHEAD) return;
    this.filling = (async () => {
      try {
        while (!this.fileEnded && !this.failure && this.queued < READ_AHEAD) {
          if (!(await this.pump())) break;
        }
      } catch {
        // pump() recorded the failure; the next read throws it.
      } finally {
        this.filling = null;
      }
    })();
  }

  private takeFromHead(n: number): Uint8Array {
    const head = this.queue[0]!;
    this.queued -= n;
    if (head.byteLength === n) {
      this.queue.shift();
      return head;
    }
    this.queue[0] = head.subarray(n);
    return head.subarray(0, n);
  }

  private gather(n: number): Uint8Array {
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      const piece = this.takeFromHead(Math.min(n - filled, this.queue[0]!.byteLength));
      out.set(piece, filled);
      filled += piece.byteLength;
    }
    return out;
  }

  private async cancel(reason?: unknown): Promise<void> {
    this.fail(reason instanceof S3Error ? reason : Errors.MalformedPOSTRequest());
    this.queue.length = 0;
    this.queued = 0;
  }

  async drain(): Promise<void> {
    if (this.filling) await this.filling;
    this.queue.length = 0;
    let drained = 0;
    const deadline = Date.now() + DRAIN_MS;
    while (!this.wireEnded && drained < DRAIN_LIMIT && Date.now() < deadline) {
      const chunk = await readWire(this.wire).catch(() => null);
      if (chunk === null) {
        this.wireEnded = true;
        break;
      }
      drained += chunk.byteLength;
    }
    if (!this.wireEnded) await cancelWire(this.wire);
  }
}

function byteLength(text: string | null): number | null {
  return text === null ? null : new TextEncoder().encode(text).byteLength;
}

/** The boundary parameter as multipasta reads it (quoted or not), or null. */
function boundaryOf(contentType: string): string | null {
  const match = /;\s*boundary\s*=\s*(?:"([^"]*)"|([^;\s]+))/i.exec(contentType);
  const value = match?.[1] ?? match?.[2];
  return value ? value : null;
}

function openWire(body: ReadableStream<Uint8Array> | null): Wire {
  if (!body) return { kind: "none" };
  try {
    return { kind: "byob", reader: body.getReader({ mode: "byob" }) as Extract<Wire, { kind: "byob" }>["reader"] };
  } catch {
    return { kind: "default", reader: body.getReader() };
  }
}

async function readWire(wire: Wire): Promise<Uint8Array | null> {
  if (wire.kind === "none") return null;
  if (wire.kind === "byob") {
    const { value, done } = await wire.reader.readAtLeast(WIRE_CHUNK, new Uint8Array(WIRE_CHUNK));
    if (value && value.byteLength > 0) return value;
    return done ? null : readWire(wire);
  }
  const { value, done } = await wire.reader.read();
  if (done) return null;
  return value && value.byteLength > 0 ? value : readWire(wire);
}

async function cancelWire(wire: Wire): Promise<void> {
  if (wire.kind !== "none") await wire.reader.cancel().catch(() => {});
}
