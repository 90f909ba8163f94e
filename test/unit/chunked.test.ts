import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { WireReader } from "../../src/auth/wire-reader";
import { AwsChunkedDecoder, indexOfCrlf, type AwsChunkedOptions, type ChunkSigning } from "../../src/auth/chunked";
import { signingKey } from "../../src/auth/sigv4";
import { drain, encodeAwsChunked, firstDifference, piecewiseStream, randomBytes, splitSizes, type ChunkSigner, type EncodeOptions, type Mode } from "../support/chunked-encoder";
import { REGION, SECRET, expectS3Error } from "../support/sigv4-oracle";

const DATE = new Date("2026-11-27T12:00:00Z");
const DATETIME = "20261127T120000Z";
const SCOPE = `20261127/${REGION}/s3/aws4_request`;
const SEED = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";
const ENC_SIGNER: ChunkSigner = { date: DATE, datetime: DATETIME, scope: SCOPE, seed: SEED };

async function decoderSigning(seed = SEED): Promise<ChunkSigning> {
  return { signingKey: await signingKey(SECRET, "20261127", REGION, "s3"), datetime: DATETIME, scope: SCOPE, seedSignature: seed };
}

const MODES: Mode[] = [
  "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
  "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
  "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
  "STREAMING-UNSIGNED-PAYLOAD",
];
const isSigned = (m: Mode) => m.startsWith("STREAMING-AWS4");
const hasTrailer = (m: Mode) => m.endsWith("-TRAILER");
const TRAILER: [string, string] = ["x-amz-checksum-crc32", "AAAAAA=="];

interface Built {
  wire: Uint8Array;
  payload: Uint8Array;
  options: AwsChunkedOptions;
}

async function build(mode: Mode, payload: Uint8Array, chunks: number[], extra: Partial<EncodeOptions> = {}): Promise<Built> {
  const wire = await encodeAwsChunked(payload, {
    mode,
    chunks,
    signing: isSigned(mode) ? ENC_SIGNER : undefined,
    trailers: hasTrailer(mode) ? [TRAILER] : undefined,
    ...extra,
  });
  const options: AwsChunkedOptions = {
    mode,
    decodedLength: payload.byteLength,
    signing: isSigned(mode) ? await decoderSigning() : undefined,
    trailerNames: hasTrailer(mode) ? [TRAILER[0]] : [],
  };
  return { wire, payload, options };
}

function decoder(wire: Uint8Array, options: AwsChunkedOptions, pieces: number[] = [65536], type: "bytes" | "default" = "default") {
  return new AwsChunkedDecoder(new WireReader(piecewiseStream(wire, pieces, type)), options);
}

const decode = (b: Built, pieces?: number[], type?: "bytes" | "default", max?: number) => drain(decoder(b.wire, b.options, pieces, type), max);

/** Replaces the first occurrence of `from` in the encoded body (as text) with `to`. */
function patch(wire: Uint8Array, from: string, to: string): Uint8Array {
  const text = new TextDecoder("latin1").decode(wire);
  const at = text.indexOf(from);
  if (at < 0) throw new Error(`"${from}" not in body`);
  const out = new Uint8Array(wire.byteLength - from.length + to.length);
  out.set(wire.subarray(0, at));
  out.set(new TextEncoder().encode(to), at);
  out.set(wire.subarray(at + from.length), at + to.length);
  return out;
}

function flipByte(wire: Uint8Array, at: number): Uint8Array {
  const out = wire.slice();
  out[at]! ^= 0x01;
  return out;
}

/** Chunk signatures in order of appearance. */
const chunkSignatures = (wire: Uint8Array) => [...new TextDecoder("latin1").decode(wire).matchAll(/chunk-signature=([0-9a-f]{64})/g)].map((m) => m[1]!);

describe("aws-chunked decoding, every mode", () => {
  const payload = randomBytes(200_000);
  const chunks = [65536, 65536, 65536, 200_000 - 3 * 65536];

  for (const mode of MODES) {
    for (const type of ["default", "bytes"] as const) {
      it(`${mode}: ${type} stream in 1 B / 4 KiB / 64 KiB+3 pieces, odd read sizes`, async () => {
        const b = await build(mode, payload, chunks);
        for (const pieces of [[4096], [65539], [1, 4096, 7, 65539]]) {
          expect(firstDifference(await decode(b, pieces, type), payload)).toBeNull();
        }
        expect(firstDifference(await decode(b, [65536], type, 1000), payload)).toBeNull();
        expect(firstDifference(await decode(b, [65536], type, 1 << 20), payload)).toBeNull();
        // One byte at a time is slow for 200 KB; use a smaller body for it.
        const small = await build(mode, payload.subarray(0, 9_000), [8192, 808]);
        expect(firstDifference(await decode(small, [1], type, 777), small.payload)).toBeNull();
      });
    }

    it(`${mode}: empty payload`, async () => {
      const b = await build(mode, new Uint8Array(0), []);
      expect(firstDifference(await decode(b), new Uint8Array(0))).toBeNull();
    });

    it(`${mode}: truncation anywhere is IncompleteBody`, async () => {
      const b = await build(mode, randomBytes(20_000), [8192, 8192, 3616]);
      for (let cut = 0; cut < b.wire.byteLength; cut += cut < 100 || cut > b.wire.byteLength - 200 ? 1 : 997) {
        await expectS3Error(drain(decoder(b.wire.subarray(0, cut), b.options, [4096])), "IncompleteBody");
      }
    });

    it(`${mode}: extra bytes after the end, and a wrong decoded length, are refused`, async () => {
      const b = await build(mode, randomBytes(10_000), [8192, 1808]);
      const extended = new Uint8Array(b.wire.byteLength + 1);
      extended.set(b.wire);
      await expectS3Error(drain(decoder(extended, b.options)), "IncompleteBody");
      await expectS3Error(drain(decoder(b.wire, { ...b.options, decodedLength: 10_001 })), "IncompleteBody");
      await expectS3Error(drain(decoder(b.wire, { ...b.options, decodedLength: 9_999 })), "IncompleteBody");
    });

    it(`${mode}: a chunk size that disagrees with its data is refused`, async () => {
      const b = await build(mode, randomBytes(10_000), [8192, 1808]);
      await expectS3Error(drain(decoder(patch(b.wire, "2000", "2001"), b.options)), "IncompleteBody");
      // Anchored on the preceding CRLF so the pattern cannot hit a signature's hex digits.
      await expectS3Error(drain(decoder(patch(b.wire, "\r\n710", "\r\n70f"), b.options)), "IncompleteBody");
      await expectS3Error(drain(decoder(patch(b.wire, "2000", "2x00"), b.options)), "IncompleteBody");
    });
  }

  it("accepts uppercase hex sizes", async () => {
    for (const mode of MODES) {
      const b = await build(mode, randomBytes(30_000), [10_000, 20_000], { upperHex: true });
      expect(firstDifference(await decode(b), b.payload)).toBeNull();
    }
  });
});

describe("signed chunks", () => {
  const mode: Mode = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";

  it("a flipped data byte in any chunk, including the last, is SignatureDoesNotMatch", async () => {
    const b = await build(mode, randomBytes(20_000), [8192, 8192, 3616]);
    const text = new TextDecoder("latin1").decode(b.wire);
    const firstData = text.indexOf("\r\n") + 2;
    for (const at of [firstData, firstData + 8191, text.lastIndexOf("\r\n0;") - 1]) {
      await expectS3Error(drain(decoder(flipByte(b.wire, at), b.options)), "SignatureDoesNotMatch");
    }
  });

  it("any altered chunk signature (data chunks and the final one) is SignatureDoesNotMatch", async () => {
    const b = await build(mode, randomBytes(20_000), [8192, 8192, 3616]);
    for (const sig of chunkSignatures(b.wire)) {
      const altered = sig.slice(0, 10) + (sig[10] === "a" ? "b" : "a") + sig.slice(11);
      await expectS3Error(drain(decoder(patch(b.wire, sig, altered), b.options)), "SignatureDoesNotMatch");
    }
  });

  it("a different seed signature (another request's) breaks the chain at once", async () => {
    const b = await build(mode, randomBytes(9000), [9000]);
    const d = new AwsChunkedDecoder(new WireReader(piecewiseStream(b.wire, [65536])), { ...b.options, signing: await decoderSigning(SEED.replace("4f", "5f")) });
    await expectS3Error(drain(d), "SignatureDoesNotMatch");
  });

  it("swapping two equal-size chunks is SignatureDoesNotMatch (the chain fixes the order)", async () => {
    const payload = randomBytes(16384);
    const b = await build(mode, payload, [8192, 8192]);
    const swapped = new Uint8Array(16384);
    swapped.set(payload.subarray(8192));
    swapped.set(payload.subarray(0, 8192), 8192);
    const other = await build(mode, swapped, [8192, 8192]);
    // Take the second body's chunks but the first body's signatures: data no longer matches.
    let wire = other.wire;
    const [a1, a2] = chunkSignatures(b.wire);
    const [b1, b2] = chunkSignatures(other.wire);
    wire = patch(patch(wire, b1!, a1!), b2!, a2!);
    await expectS3Error(drain(decoder(wire, b.options)), "SignatureDoesNotMatch");
  });

  it("refuses a chunk under 8 KiB before the last, with Chunk and BadChunkSize", async () => {
    const b = await build(mode, randomBytes(20_000), [8192, 100, 11_708]);
    await expectS3Error(drain(decoder(b.wire, b.options)), "InvalidChunkSizeError", { Chunk: "2", BadChunkSize: "100" });
    // The same split is fine unsigned: SDK v3 sends stream pieces as they come.
    const u = await build("STREAMING-UNSIGNED-PAYLOAD-TRAILER", b.payload, [8192, 100, 11_708]);
    expect(firstDifference(await decode(u), b.payload)).toBeNull();
  });

  it("requires the chunk-signature extension", async () => {
    const b = await build(mode, randomBytes(9000), [9000]);
    await expectS3Error(drain(decoder(patch(b.wire, ";chunk-signature=", ";chunk-signatur="), b.options)), "IncompleteBody");
  });
});

describe("trailers", () => {
  it("signed trailer: a changed value or trailer signature is SignatureDoesNotMatch", async () => {
    const mode: Mode = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER";
    const b = await build(mode, randomBytes(9000), [9000]);
    const d = decoder(b.wire, b.options);
    await drain(d);
    expect(d.trailers.get("x-amz-checksum-crc32")).toBe("AAAAAA==");
    await expectS3Error(drain(decoder(patch(b.wire, "AAAAAA==", "AAAAAB=="), b.options)), "SignatureDoesNotMatch");
    const sig = /x-amz-trailer-signature:([0-9a-f]{64})/.exec(new TextDecoder().decode(b.wire))![1]!;
    await expectS3Error(drain(decoder(patch(b.wire, sig, sig.replace(/^./, (c) => (c === "0" ? "1" : "0"))), b.options)), "SignatureDoesNotMatch");
    await expectS3Error(drain(decoder(patch(b.wire, `x-amz-trailer-signature:${sig}\r\n`, ""), b.options)), "IncompleteBody");
  });

  for (const mode of ["STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER", "STREAMING-UNSIGNED-PAYLOAD-TRAILER"] as const) {
    it(`${mode}: only announced trailers, all of them, well-formed`, async () => {
      const payload = randomBytes(9000);
      const other = await build(mode, payload, [9000], { trailers: [["x-amz-checksum-sha256", "x"]] });
      await expectS3Error(drain(decoder(other.wire, other.options)), "MalformedTrailerError");
      const none = await build(mode, payload, [9000], { trailers: [] });
      await expectS3Error(drain(decoder(none.wire, none.options)), "IncompleteBody");
      const twice = await build(mode, payload, [9000], { trailers: [TRAILER, TRAILER] });
      await expectS3Error(drain(decoder(twice.wire, twice.options)), "MalformedTrailerError");
      const garbled = await build(mode, payload, [9000], { trailers: [["", "x"]] });
      await expectS3Error(drain(decoder(garbled.wire, garbled.options)), "MalformedTrailerError");
      // Whitespace around the colon is tolerated (AWS accepts it too).
      const spaced = await build(mode, payload, [9000], { trailers: [["x-amz-checksum-crc32 ", " AAAAAA=="]] });
      const d = decoder(spaced.wire, spaced.options);
      expect(firstDifference(await drain(d), payload)).toBeNull();
      expect(d.trailers.get("x-amz-checksum-crc32")).toBe("AAAAAA==");
    });
  }

  it("unsigned modes ignore chunk extensions", async () => {
    const b = await build("STREAMING-UNSIGNED-PAYLOAD-TRAILER", randomBytes(100), [100]);
    expect(await decode({ ...b, wire: patch(b.wire, "64\r\n", "64;ext=1\r\n") })).toEqual(b.payload);
  });
});

describe("helpers", () => {
  it("indexOfCrlf skips lone CRs and waits for a split CRLF", () => {
    const t = (s: string) => indexOfCrlf(new TextEncoder().encode(s));
    expect(t("ab\r\n")).toBe(2);
    expect(t("a\rb\r\n")).toBe(3);
    expect(t("ab\r")).toBe(-1);
    expect(t("")).toBe(-1);
  });
});

describe("property: random payloads, random chunk splits, random piece sizes", () => {
  it("decode to the same bytes in every mode", async () => {
    const signing = await decoderSigning();
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 30_000, size: "large" }),
        fc.array(fc.integer({ min: 1, max: 12_000 }), { minLength: 1, maxLength: 6 }),
        fc.array(fc.integer({ min: 1, max: 70_000 }), { minLength: 1, maxLength: 4 }),
        fc.constantFrom(...MODES),
        fc.constantFrom<"bytes" | "default">("bytes", "default"),
        fc.integer({ min: 1, max: 100_000 }),
        async (payload, cuts, pieces, mode, type, max) => {
          const chunks: number[] = [];
          let left = payload.byteLength;
          for (let i = 0; left > 0; i++) {
            const size = Math.min(left, cuts[i % cuts.length]!);
            chunks.push(size);
            left -= size;
          }
          const b = await build(mode, payload, chunks);
          // Arbitrary splits include small signed chunks; the size rule is tested above.
          const d = new AwsChunkedDecoder(new WireReader(piecewiseStream(b.wire, pieces, type)), { ...b.options, signing: isSigned(mode) ? signing : undefined, minChunkSize: 1 });
          expect(firstDifference(await drain(d, max), payload)).toBeNull();
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe("splitSizes helper", () => {
  it("covers the payload", () => {
    expect(splitSizes(10, 4)).toEqual([4, 4, 2]);
  });
});
