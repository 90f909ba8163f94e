/**
 * The one way request bodies are read: an authenticated request becomes a BodySource
 * whose bytes are verified (payload SHA-256, Content-MD5, x-amz-checksum-* header or
 * trailer, aws-chunked signatures and lengths) as they stream, with every verdict given
 * before the end-of-body marker is returned. A caller that commits only after reading
 * the end therefore never commits an unverified body.
 */
import { checksumForHeader, createMd5, createSha256, parseChecksumAlgorithm, type ChecksumAlgorithm, type ChecksumInfo, type Hasher } from "../checksum";
import { Errors } from "../errors";
import { fromBase64, timingSafeEqual, toBase64, toHex } from "../util/bytes";
import { WireReader } from "./wire-reader";
import { AwsChunkedDecoder, hasTrailer, isSignedMode, isStreamingMode, type StreamingMode } from "./chunked";
import { UNSIGNED_PAYLOAD, type VerifiedSigV4 } from "./sigv4";

export interface BodySource {
  /** Decoded payload length, known up front (Content-Length, or x-amz-decoded-content-length for aws-chunked). null if unknown. */
  readonly length: number | null;
  /**
   * Reads up to `max` bytes into a fresh Uint8Array; returns fewer only at the end of the
   * body, an empty array at the end. Reaching the end runs every verification and throws
   * the S3Error before returning the empty array. Errors are sticky.
   */
  read(max: number): Promise<Uint8Array>;
  /** Digests computed on the way, complete once the end was reached. */
  readonly result: BodyResult;
  /** The algorithm of the checksum the client sent (header or trailer), verified at the end. */
  readonly checksumAlgorithm: ChecksumAlgorithm | undefined;
  cancel(reason?: unknown): Promise<void>;
}

export interface BodyResult {
  /** MD5 of the payload, when Content-MD5 was sent or computeMd5 was asked for. */
  md5?: Uint8Array;
  /** The checksum the client asked for (header or trailer), base64, for x-amz-checksum-* in responses. */
  checksum?: { algorithm: ChecksumAlgorithm; value: string };
}

export interface OpenBodyOptions {
  /** Compute MD5 even without Content-MD5 (ETags). It costs CPU, so only when needed. */
  computeMd5: boolean;
}

const EMPTY = new Uint8Array(0);
const HEX_SHA256 = /^[0-9a-fA-F]{64}$/;


/** A body without transfer encoding: bytes as they come, checked against Content-Length. */
class PlainDecoder {
  private delivered = 0;

  constructor(
    private readonly wire: WireReader,
    readonly length: number | null,
  ) {}

  async read(max: number): Promise<Uint8Array> {
    const want = this.length === null ? max : Math.min(max, this.length - this.delivered);
    let out: Uint8Array = new Uint8Array(want);
    let n = 0;
    const buffered = this.wire.peek();
    if (buffered.byteLength > 0) {
      n = Math.min(buffered.byteLength, want);
      out.set(buffered.subarray(0, n));
      this.wire.consume(n);
    }
    while (n < want) {
      const r = await this.wire.readInto(out, n, want - n);
      out = r.target; // even at the end: the read may have detached the old view
      if (r.got === 0) break;
      n += r.got;
    }
    this.delivered += n;
    if (n === 0 && this.length !== null) {
      // Content-Length reached: anything more is not ours; anything less is a short body.
      if (this.delivered < this.length) throw Errors.IncompleteBody();
      if (this.wire.peek().byteLength > 0 || (await this.wire.fill())) throw Errors.IncompleteBody(undefined, "The request body is longer than the Content-Length HTTP header.");
    }
    return n === out.byteLength ? out : out.subarray(0, n);
  }

  cancel(reason?: unknown): Promise<void> {
    return this.wire.cancel(reason);
  }
}

// ---- verification --------------------------------------------------------------------

interface Expectation {
  sha256?: string; // lowercase hex
  md5?: Uint8Array;
  checksum?: { info: ChecksumInfo; value: Uint8Array | null /* null: from the trailer */ };
}

class VerifiedBody implements BodySource {
  readonly result: BodyResult = {};
  private readonly sha256: Hasher | null;
  private readonly md5: Hasher | null;
  private readonly checksum: Hasher | null;
  private failure: unknown = null;
  private finished = false;

  constructor(
    private readonly inner: PlainDecoder | AwsChunkedDecoder,
    private readonly expect: Expectation,
    computeMd5: boolean,
  ) {
    this.sha256 = expect.sha256 ? createSha256() : null;
    this.md5 = expect.md5 || computeMd5 ? createMd5() : null;
    this.checksum = expect.checksum ? expect.checksum.info.create() : null;
  }

  get length(): number | null {
    return this.inner.length;
  }

  get checksumAlgorithm(): ChecksumAlgorithm | undefined {
    return this.expect.checksum?.info.algorithm;
  }

  async read(max: number): Promise<Uint8Array> {
    if (!(max > 0)) throw new RangeError("read(max) needs max > 0");
    if (this.failure) throw this.failure;
    if (this.finished) return EMPTY;
    try {
      const bytes = await this.inner.read(max);
      if (bytes.byteLength > 0) {
        this.sha256?.update(bytes);
        this.md5?.update(bytes);
        this.checksum?.update(bytes);
        return bytes;
      }
      await this.verify();
      this.finished = true;
      return EMPTY;
    } catch (e) {
      this.failure = e;
      // Stop pulling an upload we are going to refuse.
      await this.inner.cancel(e).catch(() => {});
      throw e;
    }
  }

  cancel(reason?: unknown): Promise<void> {
    return this.inner.cancel(reason);
  }

  private async verify(): Promise<void> {
    if (this.sha256) {
      const computed = toHex(await this.sha256.digest());
      if (computed !== this.expect.sha256) {
        throw Errors.XAmzContentSHA256Mismatch({ ClientComputedContentSHA256: this.expect.sha256!, S3ComputedContentSHA256: computed });
      }
    }
    if (this.md5) {
      this.result.md5 = await this.md5.digest();
      if (this.expect.md5 && !timingSafeEqual(this.result.md5, this.expect.md5)) throw Errors.BadDigest();
    }
    if (this.checksum && this.expect.checksum) {
      const { info } = this.expect.checksum;
      const computed = await this.checksum.digest();
      const claimed = this.expect.checksum.value ?? this.trailerChecksum(info);
      if (!timingSafeEqual(computed, claimed)) {
        throw Errors.BadDigest(undefined, `The ${info.algorithm} you specified did not match the calculated checksum.`);
      }
      this.result.checksum = { algorithm: info.algorithm, value: toBase64(computed) };
    }
  }

  private trailerChecksum(info: ChecksumInfo): Uint8Array {
    const raw = this.inner instanceof AwsChunkedDecoder ? this.inner.trailers.get(info.headerName) : undefined;
    const value = raw === undefined ? null : fromBase64(raw);
    if (!value || value.byteLength !== info.digestLength) {
      throw Errors.InvalidRequest(undefined, `Value for ${info.headerName} trailing header is invalid.`);
    }
    return value;
  }
}

// ---- request headers → expectations -----------------------------------------------------

const invalidContentSha256 = (value: string) =>
  Errors.InvalidArgument(
    { ArgumentName: "x-amz-content-sha256", ArgumentValue: value },
    "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER or a valid sha256 value.",
  );

const multipleChecksums = () =>
  Errors.InvalidRequest(undefined, "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.");

/**
 * What the payload line promises: the signed x-amz-content-sha256 for header auth, the
 * URL's value for presigned requests. Unsigned requests (anonymous, presigned, SigV2)
 * can still use the unsigned streaming encodings, announced by the header.
 */
function payloadClaim(request: Request, auth: VerifiedSigV4 | null): string {
  const header = request.headers.get("x-amz-content-sha256");
  if (auth?.kind === "header") {
    if (auth.payloadHash === null) throw Errors.InvalidRequest(undefined, "Missing required header for this request: x-amz-content-sha256");
    return auth.payloadHash;
  }
  // Signed streaming chains from a header signature; without one it cannot be verified.
  if (header !== null && isStreamingMode(header) && isSignedMode(header)) throw invalidContentSha256(header);
  const signedClaim = auth?.payloadHash ?? UNSIGNED_PAYLOAD;
  if (signedClaim === UNSIGNED_PAYLOAD && header !== null && isStreamingMode(header)) return header;
  // Anonymous requests have no signed hash to hold the body to.
  return auth ? signedClaim : UNSIGNED_PAYLOAD;
}

function headerChecksum(request: Request): { info: ChecksumInfo; value: Uint8Array } | null {
  let found: { info: ChecksumInfo; value: Uint8Array } | null = null;
  for (const [name, raw] of request.headers) {
    const info = checksumForHeader(name);
    if (!info) continue;
    if (found) throw multipleChecksums();
    const value = fromBase64(raw.trim());
    if (!value || value.byteLength !== info.digestLength) throw Errors.InvalidRequest(undefined, `Value for ${info.headerName} header is invalid.`);
    found = { info, value };
  }
  return found;
}

function trailerNames(request: Request, mode: StreamingMode | null): string[] {
  const header = request.headers.get("x-amz-trailer");
  const names = (header ?? "").split(",").map((n) => n.trim().toLowerCase()).filter((n) => n !== "");
  if (names.length === 0) return [];
  if (!mode || !hasTrailer(mode) || names.some((n) => !checksumForHeader(n))) {
    throw Errors.InvalidRequest(undefined, "The value specified in the x-amz-trailer header is not supported");
  }
  if (names.length > 1) throw multipleChecksums();
  return names;
}

function contentLength(request: Request): number | null {
  const raw = request.headers.get("content-length");
  return raw !== null && /^\d+$/.test(raw) ? Number(raw) : null;
}

/**
 * Turns an authenticated request into a verified byte source. `auth` is the verified
 * SigV4 result, or null for anonymous (and SigV2) requests, which carry no payload hash.
 * Throws S3Error at once for header problems (bad digests, conflicting checksums, missing
 * lengths); body problems surface from read().
 */
export function openBody(request: Request, auth: VerifiedSigV4 | null, options: OpenBodyOptions): BodySource {
  const claim = payloadClaim(request, auth);
  const mode = isStreamingMode(claim) ? claim : null;
  if (!mode && claim !== UNSIGNED_PAYLOAD && !HEX_SHA256.test(claim)) throw invalidContentSha256(claim);
  if (mode && isSignedMode(mode) && auth?.kind !== "header") throw invalidContentSha256(claim);

  const expect: Expectation = {};
  if (!mode && claim !== UNSIGNED_PAYLOAD) expect.sha256 = claim.toLowerCase();

  const md5Header = request.headers.get("content-md5");
  if (md5Header !== null) {
    const md5 = fromBase64(md5Header.trim());
    if (!md5 || md5.byteLength !== 16) throw Errors.InvalidDigest();
    expect.md5 = md5;
  }

  const trailers = trailerNames(request, mode);
  const fromHeader = headerChecksum(request);
  if (fromHeader && trailers.length > 0) throw multipleChecksums();
  if (fromHeader) expect.checksum = fromHeader;
  else if (trailers.length > 0) expect.checksum = { info: checksumForHeader(trailers[0]!)!, value: null };
  checkSdkAlgorithm(request, expect.checksum?.info.algorithm);

  const wire = new WireReader(request.body);
  if (!mode) return new VerifiedBody(new PlainDecoder(wire, contentLength(request)), expect, options.computeMd5);

  // Some clients omit Content-Encoding: aws-chunked; the decoded length header is then
  // the reliable sign of the encoding, and it is required in any case.
  const decodedRaw = request.headers.get("x-amz-decoded-content-length");
  if (decodedRaw === null) throw Errors.MissingContentLength();
  if (!/^\d+$/.test(decodedRaw)) {
    throw Errors.InvalidArgument({ ArgumentName: "x-amz-decoded-content-length", ArgumentValue: decodedRaw }, "x-amz-decoded-content-length must be a non-negative integer");
  }
  const decoder = new AwsChunkedDecoder(wire, {
    mode,
    decodedLength: Number(decodedRaw),
    signing: auth ?? undefined,
    trailerNames: trailers,
  });
  return new VerifiedBody(decoder, expect, options.computeMd5);
}

/** x-amz-sdk-checksum-algorithm must name the checksum actually sent. */
function checkSdkAlgorithm(request: Request, sent: ChecksumAlgorithm | undefined): void {
  const raw = request.headers.get("x-amz-sdk-checksum-algorithm");
  if (raw === null) return;
  const alg = parseChecksumAlgorithm(raw);
  if (!alg || (sent && alg !== sent)) throw Errors.InvalidRequest(undefined, "Value for x-amz-sdk-checksum-algorithm header is invalid.");
  if (!sent) {
    throw Errors.InvalidRequest(undefined, "x-amz-sdk-checksum-algorithm specified, but no corresponding x-amz-checksum-* or x-amz-trailer headers were found.");
  }
}
