import { concatBytes, timingSafeEqual } from "../util/bytes";
import { BytesReader, ExactReader, type ExactSource } from "../util/exact-reader";
import { IntegrityError } from "./errors";
import { CHUNK_SIZE, CHUNKS_PER_STEP, ENCRYPTED_CHUNK_SIZE, HEADER_SIZE, TAG_SIZE, chunkCount, chunkNonce, chunkPlainLength, encodeHeader, type StreamHeader } from "./format";
import { deriveStreamKey } from "./keys";
import { openTrailer, TRAILER_SIZE } from "./trailer";
import type { StoredChecksum } from "../checksum";

/** What to read: `header` comes from MAC-verified metadata, never from the stored bytes. */
export interface DecryptPlan {
  header: StreamHeader;
  /** The ciphertext starts with the stored 32-byte header (a read from offset 0). */
  includesHeader: boolean;
  firstChunk: number;
  lastChunk: number;
  /** Plaintext bytes to drop from the first chunk, and to emit in total. */
  skip: number;
  take: number;
  /** The stream ends with a trailer record (envelope `r`): authenticated MAC-side, so trusted. */
  trailer?: boolean;
  /**
   * Record bytes the caller has already authenticated for this very stream (same data key,
   * salt and length): a stored record equal to them needs no second AES-GCM open.
   */
  knownTrailer?: Uint8Array;
  /** Told the record and its checksum once they authenticate here (the caller may remember them). */
  onTrailer?: (record: Uint8Array, checksum: StoredChecksum) => void;
}

/**
 * Decrypts whole chunks from `ciphertext` and emits the plaintext slice the plan asks for.
 * Any authentication failure, short read or trailing byte errors the stream instead of
 * closing it, so an HTTP response built on it is aborted, never ended cleanly.
 */
export function decryptingStream(ciphertext: ReadableStream<Uint8Array>, dataKey: CryptoKey, plan: DecryptPlan): ReadableStream<Uint8Array> {
  const reader = new ExactReader(ciphertext);
  const steps = planSteps(reader, dataKey, plan);
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const { piece, last } = await steps.next();
        if (piece.byteLength > 0) controller.enqueue(piece);
        if (last) controller.close();
      },
      cancel(reason) {
        return reader.cancel(reason);
      },
    },
    { highWaterMark: 2 },
  );
}

/**
 * The same plan over stored bytes already in memory (a small object, read whole): every
 * check decryptingStream makes, all of them before any plaintext is returned. Without a
 * stream a one-chunk object costs one AES-GCM call and no stream plumbing, and a damaged
 * one is refused before a response starts instead of aborting it.
 */
export async function decryptBytes(stored: Uint8Array, dataKey: CryptoKey, plan: DecryptPlan): Promise<Uint8Array> {
  const steps = planSteps(new BytesReader(stored), dataKey, plan);
  const pieces: Uint8Array[] = [];
  for (;;) {
    const { piece, last } = await steps.next();
    if (piece.byteLength > 0) pieces.push(piece);
    if (last) return pieces.length === 1 ? pieces[0]! : concatBytes(pieces);
  }
}

/**
 * The plan read one decryption step (up to CHUNKS_PER_STEP chunks) at a time. Each call
 * gives the step's plaintext piece; the last one comes only after the end checks (and the
 * trailer record's tag), so nobody gets the whole plaintext of an object whose end is damaged.
 */
function planSteps(source: ExactSource, dataKey: CryptoKey, plan: DecryptPlan): { next(): Promise<{ piece: Uint8Array; last: boolean }> } {
  const headerBytes = encodeHeader(plan.header);
  const length = plan.header.length;
  const count = chunkCount(length);
  let key: CryptoKey | undefined;
  let next = plan.firstChunk;
  let skip = plan.skip;
  let remaining = plan.take;
  // The next step's read is started before the current step is decrypted, so storage I/O
  // overlaps decryption instead of alternating with it.
  let prefetch: { first: number; last: number; read: Promise<Uint8Array> } | null = null;
  const sealedSize = (i: number) => chunkPlainLength(i, length) + TAG_SIZE;
  const readStep = (first: number) => {
    const last = Math.min(plan.lastChunk, first + CHUNKS_PER_STEP - 1);
    const read = source.read((last - first) * ENCRYPTED_CHUNK_SIZE + sealedSize(last));
    read.catch(() => {}); // observed when awaited; avoid an unhandled rejection meanwhile
    return { first, last, read };
  };

  return {
    async next() {
      // Set-up happens on the first step, not before: a stream's pull may come before an
      // async start() settles, and two readers racing on one source would interleave.
      if (!key) {
        key = await deriveStreamKey(dataKey, plan.header.salt, plan.header.partNumber, length);
        if (plan.includesHeader) {
          const stored = await source.read(HEADER_SIZE);
          if (!timingSafeEqual(stored, headerBytes)) throw new IntegrityError("stream header does not match its metadata");
        }
      }
      // Every planned chunk is authenticated, even when it contributes no bytes (an
      // empty object still has its sealed final chunk).
      if (next > plan.lastChunk) {
        await finish();
        return { piece: new Uint8Array(0), last: true };
      }
      const step = prefetch ?? readStep(next);
      const sealed = await step.read;
      next = step.last + 1;
      prefetch = next <= plan.lastChunk ? readStep(next) : null;
      const expected = (step.last - step.first) * ENCRYPTED_CHUNK_SIZE + sealedSize(step.last);
      if (sealed.byteLength !== expected) throw new IntegrityError(`chunks ${step.first}-${step.last} are truncated`);

      const plain = step.first === step.last ? await openChunk(key, sealed, step.first) : new Uint8Array((step.last - step.first) * CHUNK_SIZE + chunkPlainLength(step.last, length));
      if (step.first !== step.last) {
        for (let index = step.first; index <= step.last; index++) {
          const at = (index - step.first) * ENCRYPTED_CHUNK_SIZE;
          plain.set(await openChunk(key, sealed.subarray(at, at + sealedSize(index)), index), (index - step.first) * CHUNK_SIZE);
        }
      }
      const start = Math.min(skip, plain.byteLength);
      skip -= start;
      const piece = plain.subarray(start, start + Math.min(remaining, plain.byteLength - start));
      remaining -= piece.byteLength;
      if (next <= plan.lastChunk) return { piece, last: false };
      await finish();
      return { piece, last: true };
    },
  };

  async function openChunk(streamKey: CryptoKey, sealed: Uint8Array, index: number): Promise<Uint8Array> {
    try {
      return new Uint8Array(await crypto.subtle.decrypt({ name: "AES-GCM", iv: chunkNonce(index, index === count - 1), additionalData: headerBytes }, streamKey, sealed));
    } catch {
      throw new IntegrityError(`chunk ${index} failed authentication`);
    }
  }

  async function finish(): Promise<void> {
    if (remaining !== 0) throw new IntegrityError("stream ended before the requested range");
    // A full read must meet the end of the stored object right after the final chunk (or
    // after the trailer record, itself authenticated here): no truncation, no extension.
    // A ranged read through the final chunk ends there: the object's stored size was
    // already checked against its authenticated length, and its R2 range may stop before
    // the record.
    if (plan.lastChunk === count - 1 && (plan.includesHeader || !plan.trailer)) {
      if (plan.trailer) {
        const record = await source.read(TRAILER_SIZE);
        // Opened unless it is byte for byte the record already authenticated. (Not inside
        // `onTrailer?.(…)`: optional chaining would skip the open when nobody listens.)
        if (!plan.knownTrailer || !timingSafeEqual(plan.knownTrailer, record)) {
          const checksum = await openTrailer(key!, headerBytes, record);
          plan.onTrailer?.(record, checksum);
        }
      }
      const extra = await source.read(1);
      if (extra.byteLength !== 0) throw new IntegrityError(plan.trailer ? "bytes after the trailer record" : "bytes after the final chunk");
    } else {
      await source.cancel();
    }
  }
}
