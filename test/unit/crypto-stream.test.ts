import { describe, expect, it } from "vitest";
import { decryptBytes, decryptingStream, type DecryptPlan } from "../../src/crypto/decrypt";
import { encryptingStream } from "../../src/crypto/encrypt";
import { IntegrityError } from "../../src/crypto/errors";
import { CHUNK_SIZE, CHUNKS_PER_STEP, HEADER_SIZE, chunkSpan, encryptedSize, plaintextSize, chunkCount, type StreamHeader } from "../../src/crypto/format";
import { importHkdf, randomBytes } from "../../src/crypto/keys";
import { TRAILER_SIZE } from "../../src/crypto/trailer";
import { bytesSource, collect, concatBytes, pseudoRandom, streamOf } from "../support/sources";

const sameBytes = (a: Uint8Array, b: Uint8Array) => a.byteLength === b.byteLength && a.every((x, i) => x === b[i]);

async function setup(length: number, seed = 7) {
  const dataKey = await importHkdf(randomBytes(32));
  const header: StreamHeader = { partNumber: 0, length, salt: randomBytes(16) };
  const plain = pseudoRandom(length, seed);
  const stored = await collect(encryptingStream(bytesSource(plain), dataKey, header));
  return { dataKey, header, plain, stored };
}

function fullPlan(header: StreamHeader): DecryptPlan {
  return { header, includesHeader: true, firstChunk: 0, lastChunk: chunkCount(header.length) - 1, skip: 0, take: header.length };
}

function rangePlan(header: StreamHeader, first: number, last: number) {
  const span = chunkSpan(first, last, header.length);
  const plan: DecryptPlan = { header, includesHeader: false, firstChunk: span.firstChunk, lastChunk: span.lastChunk, skip: span.skip, take: last - first + 1 };
  return { span, plan };
}

describe("size arithmetic", () => {
  it.each([0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE, 5_000_000])("E(%i) is invertible", (n) => {
    expect(encryptedSize(n)).toBe(HEADER_SIZE + n + 16 * Math.max(1, Math.ceil(n / CHUNK_SIZE)));
    expect(plaintextSize(encryptedSize(n))).toBe(n);
  });
  it("rejects sizes no plaintext maps to", () => {
    expect(plaintextSize(HEADER_SIZE)).toBe(-1);
    expect(plaintextSize(HEADER_SIZE + 15)).toBe(-1);
    expect(plaintextSize(HEADER_SIZE + CHUNK_SIZE + 16 + 10)).toBe(-1);
  });
});

describe("stream encryption", () => {
  it.each([0, 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE + 5])("round-trips %i bytes", async (n) => {
    const { dataKey, header, plain, stored } = await setup(n);
    expect(stored.byteLength).toBe(encryptedSize(n));
    const out = await collect(decryptingStream(streamOf(stored, 4096), dataKey, fullPlan(header)));
    expect(out).toEqual(plain);
    expect(await decryptBytes(stored, dataKey, fullPlan(header))).toEqual(plain);
  });

  it("never writes the plaintext into the stored bytes", async () => {
    const { plain, stored } = await setup(4 * CHUNK_SIZE);
    const needle = plain.subarray(1000, 1032);
    const hay = Array.from(stored).join(",");
    expect(hay.includes(Array.from(needle).join(","))).toBe(false);
  });

  it("decrypts ranges on and across chunk boundaries from the chunks they need", async () => {
    const n = 3 * CHUNK_SIZE + 100;
    const { dataKey, header, plain, stored } = await setup(n);
    const cases: Array<[number, number]> = [
      [0, 0], [CHUNK_SIZE - 1, CHUNK_SIZE], [CHUNK_SIZE, CHUNK_SIZE], [5, 2 * CHUNK_SIZE + 7], [n - 1, n - 1], [n - 100, n - 1], [0, n - 1],
    ];
    for (const [first, last] of cases) {
      const { span, plan } = rangePlan(header, first, last);
      expect(span.lastChunk - span.firstChunk).toBeLessThanOrEqual(Math.ceil((last - first + 1) / CHUNK_SIZE) + 1);
      const slice = stored.slice(span.offset, span.offset + span.size);
      const out = await collect(decryptingStream(streamOf(slice), dataKey, plan));
      expect(out).toEqual(plain.slice(first, last + 1));
      expect(await decryptBytes(slice, dataKey, plan), `in memory, ${first}-${last}`).toEqual(plain.slice(first, last + 1));
    }
  }, 30_000); // dozens of ranges; over 5 s on a loaded 2-core machine

  it("refuses a source that ends early or runs long", async () => {
    const dataKey = await importHkdf(randomBytes(32));
    const header = { partNumber: 0, length: 100, salt: randomBytes(16) };
    await expect(collect(encryptingStream(bytesSource(new Uint8Array(99)), dataKey, header))).rejects.toThrow(/expected 100/);
    await expect(collect(encryptingStream(bytesSource(new Uint8Array(101)), dataKey, header))).rejects.toThrow(/expected 100/);
  });
});

describe("encryption buffering (stepChunks, highWaterMark)", () => {
  const n = 9 * CHUNK_SIZE + 123;

  /** A bytesSource that records the size of every read it was asked for. */
  function countingSource(data: Uint8Array) {
    const inner = bytesSource(data);
    const asked: number[] = [];
    return { asked, source: { read: (max: number) => (asked.push(max), inner.read(max)), cancel: () => inner.cancel() } };
  }

  async function pieces(stream: ReadableStream<Uint8Array>): Promise<Uint8Array[]> {
    const out: Uint8Array[] = [];
    const reader = stream.getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return out;
      out.push(value);
    }
  }

  it("changes how the stream is cut, never its bytes (with and without a trailer)", async () => {
    const dataKey = await importHkdf(randomBytes(32));
    const header: StreamHeader = { partNumber: 3, length: n, salt: randomBytes(16) };
    const plain = pseudoRandom(n, 11);
    const trailer = async () => ({ algorithm: "CRC32" as const, value: "AAAAAA==", type: "FULL_OBJECT" as const });
    for (const withTrailer of [false, true]) {
      const reference = await collect(encryptingStream(bytesSource(plain), dataKey, header, withTrailer ? trailer : undefined));
      for (const buffering of [{ stepChunks: 1 }, { stepChunks: 3, highWaterMark: 0 }, { stepChunks: 4, highWaterMark: 1 }, { stepChunks: 64 }]) {
        const { asked, source } = countingSource(plain);
        const cut = await pieces(encryptingStream(source, dataKey, header, withTrailer ? trailer : undefined, buffering));
        expect(sameBytes(concatBytes(cut), reference), JSON.stringify(buffering)).toBe(true);
        // Every read asks for at most one step of plaintext, and every step but the last is whole.
        expect(Math.max(...asked)).toBeLessThanOrEqual(buffering.stepChunks * CHUNK_SIZE);
        const steps = cut.slice(1); // the header is enqueued on its own
        expect(steps.length).toBe(Math.ceil(chunkCount(n) / buffering.stepChunks));
        for (const step of steps.slice(0, -1)) expect(step.byteLength).toBe(buffering.stepChunks * (CHUNK_SIZE + 16));
      }
    }
  });

  it("defaults to CHUNKS_PER_STEP chunks a step", async () => {
    const length = (CHUNKS_PER_STEP + 1) * CHUNK_SIZE + 5;
    const header: StreamHeader = { partNumber: 0, length, salt: randomBytes(16) };
    const cut = await pieces(encryptingStream(bytesSource(pseudoRandom(length, 1)), await importHkdf(randomBytes(32)), header));
    expect(cut.map((p) => p.byteLength)).toEqual([HEADER_SIZE, CHUNKS_PER_STEP * (CHUNK_SIZE + 16), CHUNK_SIZE + 16 + 5 + 16]);
  });

  it("reads ahead of its consumer at most highWaterMark pieces (the header is the first)", async () => {
    const settle = () => new Promise((resolve) => setTimeout(resolve, 20));
    for (const highWaterMark of [0, 1, 2, 3]) {
      const { asked, source } = countingSource(pseudoRandom(n, 2));
      const header: StreamHeader = { partNumber: 0, length: n, salt: randomBytes(16) };
      const reader = encryptingStream(source, await importHkdf(randomBytes(32)), header, undefined, { stepChunks: 2, highWaterMark }).getReader();
      await settle();
      // Before any read the queue fills to highWaterMark pieces, the header being one.
      expect(asked.length, `highWaterMark ${highWaterMark}, nothing read yet`).toBe(Math.max(0, highWaterMark - 1));
      let consumed = -1; // steps handed to the consumer (the header is not one)
      for (;;) {
        const { done } = await reader.read();
        if (done) break;
        consumed++;
        await settle();
        // Each read of the source is one step (the last step's read(1) only checks for the
        // end); at most highWaterMark of them wait unconsumed.
        expect(asked.filter((max) => max > 1).length, `highWaterMark ${highWaterMark}, ${consumed} steps consumed`).toBeLessThanOrEqual(consumed + Math.max(1, highWaterMark));
      }
    }
  });

  it("refuses a step or queue that is not a whole number", async () => {
    const dataKey = await importHkdf(randomBytes(32));
    const header: StreamHeader = { partNumber: 0, length: 10, salt: randomBytes(16) };
    for (const buffering of [{ stepChunks: 0 }, { stepChunks: 1.5 }, { highWaterMark: -1 }]) {
      expect(() => encryptingStream(bytesSource(new Uint8Array(10)), dataKey, header, undefined, buffering)).toThrow(RangeError);
    }
  });
});

describe("tamper detection", () => {
  const n = 3 * CHUNK_SIZE + 10;
  const encChunk = CHUNK_SIZE + 16;
  /** Spans two decryption steps (CHUNKS_PER_STEP chunks each), so a prefix can be emitted before a failure. */
  const long = (CHUNKS_PER_STEP + 4) * CHUNK_SIZE + 10;
  const chunkAt = (i: number) => HEADER_SIZE + i * encChunk;

  /**
   * Reads the stream to its end or error. It must error with IntegrityError, and what it
   * emitted must be authenticated plaintext only: the true plaintext from `from` (the read's
   * start) up to a chunk boundary (or the end of the object), holding no byte of chunk
   * `firstBad` (the first chunk that cannot authenticate) or after it.
   */
  async function expectRefused(stream: ReadableStream<Uint8Array>, plain: Uint8Array, firstBad: number, from = 0): Promise<Uint8Array> {
    const emitted: Uint8Array[] = [];
    const reader = stream.getReader();
    let error: unknown = null;
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        emitted.push(value);
      }
    } catch (e) {
      error = e;
    }
    expect(error, "the stream ended cleanly").toBeInstanceOf(IntegrityError);
    const out = concatBytes(emitted);
    const end = from + out.byteLength;
    if (out.byteLength > 0) expect(end % CHUNK_SIZE === 0 || end === plain.byteLength, `emitted up to ${end}: not a chunk boundary`).toBe(true);
    expect(end, "bytes of a chunk that failed authentication were emitted").toBeLessThanOrEqual(Math.max(from, Math.min(firstBad * CHUNK_SIZE, plain.byteLength)));
    expect(sameBytes(out, plain.subarray(from, end)), "emitted bytes are not the plaintext").toBe(true);
    return out;
  }

  async function refuses(mutate: (stored: Uint8Array) => Uint8Array, o: { firstBad: number; length?: number; plan?: (h: StreamHeader) => DecryptPlan }): Promise<Uint8Array> {
    const { dataKey, header, plain, stored } = await setup(o.length ?? n);
    const tampered = mutate(stored.slice());
    // In memory: the same refusal, with no plaintext at all.
    await expect(decryptBytes(tampered, dataKey, (o.plan ?? fullPlan)(header))).rejects.toBeInstanceOf(IntegrityError);
    return expectRefused(decryptingStream(streamOf(tampered), dataKey, (o.plan ?? fullPlan)(header)), plain, o.firstBad);
  }

  it("flipped header bit", () => refuses((s) => ((s[5]! ^= 1), s), { firstBad: 0 }));
  it("flipped ciphertext bit", () => refuses((s) => ((s[HEADER_SIZE + 10]! ^= 0x80), s), { firstBad: 0 }));
  it("flipped tag bit", () => refuses((s) => ((s[HEADER_SIZE + encChunk - 1]! ^= 1), s), { firstBad: 0 }));
  it("swapped chunks", () =>
    refuses((s) => {
      const a = s.slice(HEADER_SIZE, HEADER_SIZE + encChunk);
      const b = s.slice(HEADER_SIZE + encChunk, HEADER_SIZE + 2 * encChunk);
      s.set(b, HEADER_SIZE);
      s.set(a, HEADER_SIZE + encChunk);
      return s;
    }, { firstBad: 0 }));
  it("dropped chunk", () => refuses((s) => new Uint8Array([...s.subarray(0, HEADER_SIZE + encChunk), ...s.subarray(HEADER_SIZE + 2 * encChunk)]), { firstBad: 1 }));
  it("duplicated chunk", () => refuses((s) => new Uint8Array([...s.subarray(0, HEADER_SIZE + 2 * encChunk), ...s.subarray(HEADER_SIZE + encChunk)]), { firstBad: 2 }));
  it("truncated at a chunk boundary", () => refuses((s) => s.subarray(0, HEADER_SIZE + 3 * encChunk), { firstBad: 3 }));
  // Every chunk authenticates; the stream still errors (nothing may follow the final chunk).
  it("appended bytes", () => refuses((s) => new Uint8Array([...s, 0]), { firstBad: chunkCount(n) }));
  it("chunks spliced from another object of the same key", async () => {
    const dataKey = await importHkdf(randomBytes(32));
    const h1 = { partNumber: 0, length: n, salt: randomBytes(16) };
    const h2 = { partNumber: 0, length: n, salt: randomBytes(16) };
    const p1 = pseudoRandom(n, 1);
    const s1 = await collect(encryptingStream(bytesSource(p1), dataKey, h1));
    const s2 = await collect(encryptingStream(bytesSource(pseudoRandom(n, 2)), dataKey, h2));
    s1.set(s2.subarray(HEADER_SIZE + encChunk, HEADER_SIZE + 2 * encChunk), HEADER_SIZE + encChunk);
    await expectRefused(decryptingStream(streamOf(s1), dataKey, fullPlan(h1)), p1, 1);
    await expect(decryptBytes(s1, dataKey, fullPlan(h1))).rejects.toBeInstanceOf(IntegrityError);
  });

  describe("a trailer record, read from a stream and from memory alike", () => {
    const checksum = { algorithm: "CRC32" as const, value: "AAECAw==", type: "FULL_OBJECT" as const };
    async function withRecord(length: number) {
      const dataKey = await importHkdf(randomBytes(32));
      const header: StreamHeader = { partNumber: 0, length, salt: randomBytes(16) };
      const plain = pseudoRandom(length, 5);
      const stored = await collect(encryptingStream(bytesSource(plain), dataKey, header, async () => checksum));
      const plan = (extra: Partial<DecryptPlan> = {}): DecryptPlan => ({ ...fullPlan(header), trailer: true, ...extra });
      const streamed = (bytes: Uint8Array, p: DecryptPlan) => collect(decryptingStream(streamOf(bytes), dataKey, p));
      const inMemory = (bytes: Uint8Array, p: DecryptPlan) => decryptBytes(bytes, dataKey, p);
      const both = async (bytes: Uint8Array, p: DecryptPlan) => [await streamed(bytes, p), await inMemory(bytes, p)];
      return { plain, stored, plan, both, streamed, inMemory, record: stored.slice(stored.byteLength - TRAILER_SIZE) };
    }

    it.each([0, 10, CHUNK_SIZE + 3])("opens the record once and reports it (%i bytes)", async (length) => {
      const { plain, stored, plan, both, record } = await withRecord(length);
      const told: unknown[] = [];
      for (const out of await both(stored, plan({ onTrailer: (r, c) => told.push([r, c]) }))) expect(out).toEqual(plain);
      expect(told).toEqual([[record, checksum], [record, checksum]]);
    });

    it("a record equal to the one already authenticated is not opened again; a different one is, and must authenticate", async () => {
      const { plain, stored, plan, both, streamed, inMemory, record } = await withRecord(100);
      const told: unknown[] = [];
      for (const out of await both(stored, plan({ knownTrailer: record, onTrailer: () => told.push(1) }))) expect(out).toEqual(plain);
      expect(told).toEqual([]);
      const flipped = stored.slice();
      flipped[flipped.byteLength - 1]! ^= 1;
      const known = plan({ knownTrailer: record });
      for (const bad of [flipped, stored.subarray(0, stored.byteLength - 1), new Uint8Array([...stored, 0])]) {
        await expect(streamed(bad, known)).rejects.toBeInstanceOf(IntegrityError);
        await expect(inMemory(bad, known)).rejects.toBeInstanceOf(IntegrityError);
      }
    });
  });
  it("a wrong length in the authenticated header", () =>
    refuses((s) => s, { firstBad: 0, plan: (h) => ({ ...fullPlan(h), header: { ...h, length: h.length - 1 }, take: h.length - 1 }) }));

  describe("past the first decryption step: the verified steps before the failure, nothing of the failing one", () => {
    const bad = CHUNKS_PER_STEP + 2;
    it("flipped ciphertext bit in a later chunk", async () => {
      const out = await refuses((s) => ((s[chunkAt(bad) + 100]! ^= 1), s), { length: long, firstBad: bad });
      expect(out.byteLength).toBe(CHUNKS_PER_STEP * CHUNK_SIZE);
    });
    it("a later chunk dropped, and the object truncated inside a later chunk", async () => {
      await refuses((s) => new Uint8Array([...s.subarray(0, chunkAt(bad)), ...s.subarray(chunkAt(bad + 1))]), { length: long, firstBad: bad });
      await refuses((s) => s.subarray(0, chunkAt(bad) + 7), { length: long, firstBad: bad });
    });
    it("truncated after the last full chunk (the short final chunk missing)", () =>
      refuses((s) => s.subarray(0, chunkAt(CHUNKS_PER_STEP + 4)), { length: long, firstBad: CHUNKS_PER_STEP + 4 }));
    it("a ranged read starting inside the first step", async () => {
      const { dataKey, header, plain, stored } = await setup(long);
      const tampered = stored.slice();
      tampered[chunkAt(bad) + 5]! ^= 1;
      const first = CHUNK_SIZE + 5;
      const { span, plan } = rangePlan(header, first, long - 1);
      const out = await expectRefused(decryptingStream(streamOf(tampered.slice(span.offset, span.offset + span.size)), dataKey, plan), plain, bad, first);
      // The read's first step is chunks 1..CHUNKS_PER_STEP: all verified, all emitted.
      expect(out.byteLength).toBe((1 + CHUNKS_PER_STEP) * CHUNK_SIZE - first);
    });
  });
});
