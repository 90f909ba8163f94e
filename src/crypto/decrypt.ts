import { timingSafeEqual } from "../util/bytes";
import { ExactReader } from "../util/exact-reader";
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
    const read = reader.read((last - first) * ENCRYPTED_CHUNK_SIZE + sealedSize(last));
    read.catch(() => {}); // observed when awaited; avoid an unhandled rejection meanwhile
    return { first, last, read };
  };

  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        // Set-up happens in the first pull, not in start(): workerd may pull before an
        // async start() settles, and two readers racing on one stream would interleave.
        if (!key) {
          key = await deriveStreamKey(dataKey, plan.header.salt, plan.header.partNumber, length);
          if (plan.includesHeader) {
            const stored = await reader.read(HEADER_SIZE);
            if (!timingSafeEqual(stored, headerBytes)) throw new IntegrityError("stream header does not match its metadata");
          }
        }
        // Every planned chunk is authenticated, even when it contributes no bytes (an
        // empty object still has its sealed final chunk).
        if (next > plan.lastChunk) {
          await finish(controller);
          return;
        }
        const step = prefetch ?? readStep(next);
        const sealed = await step.read;
        next = step.last + 1;
        prefetch = next <= plan.lastChunk ? readStep(next) : null;
        const expected = (step.last - step.first) * ENCRYPTED_CHUNK_SIZE + sealedSize(step.last);
        if (sealed.byteLength !== expected) throw new IntegrityError(`chunks ${step.first}-${step.last} are truncated`);

        const plain = new Uint8Array((step.last - step.first) * CHUNK_SIZE + chunkPlainLength(step.last, length));
        for (let index = step.first; index <= step.last; index++) {
          const at = (index - step.first) * ENCRYPTED_CHUNK_SIZE;
          let opened: ArrayBuffer;
          try {
            opened = await crypto.subtle.decrypt(
              { name: "AES-GCM", iv: chunkNonce(index, index === count - 1), additionalData: headerBytes },
              key,
              sealed.subarray(at, at + sealedSize(index)),
            );
          } catch {
            throw new IntegrityError(`chunk ${index} failed authentication`);
          }
          plain.set(new Uint8Array(opened), (index - step.first) * CHUNK_SIZE);
        }
        const start = Math.min(skip, plain.byteLength);
        skip -= start;
        const piece = plain.subarray(start, start + Math.min(remaining, plain.byteLength - start));
        remaining -= piece.byteLength;
        // The last piece waits for the end checks (and the trailer record's tag), so a
        // response never carries the whole plaintext of an object whose end is damaged.
        if (next > plan.lastChunk) await finish(controller, piece);
        else if (piece.byteLength > 0) controller.enqueue(piece);
      },
      cancel(reason) {
        return reader.cancel(reason);
      },
    },
    { highWaterMark: 2 },
  );

  async function finish(controller: ReadableStreamDefaultController<Uint8Array>, last?: Uint8Array) {
    if (remaining !== 0) throw new IntegrityError("stream ended before the requested range");
    // A full read must meet the end of the stored object right after the final chunk (or
    // after the trailer record, itself authenticated here): no truncation, no extension.
    // A ranged read through the final chunk ends there: the object's stored size was
    // already checked against its authenticated length, and its R2 range may stop before
    // the record.
    if (plan.lastChunk === count - 1 && (plan.includesHeader || !plan.trailer)) {
      if (plan.trailer) {
        const record = await reader.read(TRAILER_SIZE);
        if (!plan.knownTrailer || !timingSafeEqual(plan.knownTrailer, record)) plan.onTrailer?.(record, await openTrailer(key!, headerBytes, record));
      }
      const extra = await reader.read(1);
      if (extra.byteLength !== 0) throw new IntegrityError(plan.trailer ? "bytes after the trailer record" : "bytes after the final chunk");
    } else {
      await reader.cancel();
    }
    if (last && last.byteLength > 0) controller.enqueue(last);
    controller.close();
  }
}
