import { LengthMismatchError } from "./errors";
import { CHUNK_SIZE, CHUNKS_PER_STEP, TAG_SIZE, chunkCount, chunkNonce, chunkPlainLength, encodeHeader, type StreamHeader } from "./format";
import { deriveStreamKey } from "./keys";
import { sealTrailer, TRAILER_SIZE } from "./trailer";
import type { StoredChecksum } from "../checksum";

/**
 * Where plaintext comes from: read(max) returns up to `max` bytes, fewer only at the end,
 * and an empty array once the end is reached — after running whatever verification the
 * source owes (digests, signatures), throwing if it fails. Request bodies implement it.
 */
export interface PlaintextSource {
  read(max: number): Promise<Uint8Array>;
  cancel(reason?: unknown): Promise<void>;
}

/**
 * How much an encrypting stream holds. Each pull reads `stepChunks` chunks of plaintext
 * (default CHUNKS_PER_STEP: 1 MiB) and enqueues them sealed as one piece; up to
 * `highWaterMark` pieces (default 2) wait in the stream's queue for the consumer. So a
 * stream holds about stepChunks × 64 KiB of plaintext plus (highWaterMark + 1) pieces of
 * ciphertext. Larger steps cost less CPU per byte (fewer stream operations); smaller ones
 * hold less, which matters where many streams run at once in one isolate (POST Object).
 */
export interface EncryptBuffering {
  stepChunks?: number;
  highWaterMark?: number;
}

/**
 * Encrypts `header.length` bytes from `source` into a stream of exactly
 * encryptedSize(header.length) bytes (pipe it through a FixedLengthStream into R2).
 *
 * The final chunk is sealed only after the source has reported its end, so a body whose
 * verification fails never produces a complete stream and R2 never commits it.
 *
 * With `trailer`, the stream is TRAILER_SIZE bytes longer: the checksum it returns — asked
 * for once the source has ended and verified — is sealed as the trailer record after the
 * final chunk (crypto/trailer.ts).
 *
 * `buffering` sets how much is held in memory, never the bytes produced: the stored stream
 * is the same whatever it says (the format's unit is the 64 KiB chunk).
 */
export function encryptingStream(
  source: PlaintextSource,
  dataKey: CryptoKey,
  header: StreamHeader,
  trailer?: () => Promise<StoredChecksum>,
  buffering: EncryptBuffering = {},
): ReadableStream<Uint8Array> {
  const stepChunks = buffering.stepChunks ?? CHUNKS_PER_STEP;
  const highWaterMark = buffering.highWaterMark ?? 2;
  if (!Number.isInteger(stepChunks) || stepChunks < 1) throw new RangeError(`stepChunks must be a positive integer, got ${stepChunks}`);
  if (!Number.isInteger(highWaterMark) || highWaterMark < 0) throw new RangeError(`highWaterMark must be a non-negative integer, got ${highWaterMark}`);
  const headerBytes = encodeHeader(header);
  const count = chunkCount(header.length);
  let key: CryptoKey | undefined;
  let next = 0;
  let received = 0;

  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        if (!key) {
          key = await deriveStreamKey(dataKey, header.salt, header.partNumber, header.length);
          controller.enqueue(headerBytes.slice());
          return;
        }
        const first = next;
        const last = Math.min(count - 1, first + stepChunks - 1);
        next = last + 1;
        const final = last === count - 1;
        const want = (last - first) * CHUNK_SIZE + chunkPlainLength(last, header.length);
        const plain = want === 0 ? new Uint8Array(0) : await source.read(want);
        received += plain.byteLength;
        if (plain.byteLength !== want) throw new LengthMismatchError(header.length, received);
        if (final) {
          // Drive the source to its end (and its verification) before sealing the last chunk.
          const extra = await source.read(1);
          if (extra.byteLength !== 0) throw new LengthMismatchError(header.length, received + extra.byteLength);
        }
        const record = final && trailer ? await sealTrailer(key, headerBytes, await trailer()) : null;
        const out = new Uint8Array(want + (last - first + 1) * TAG_SIZE + (record ? TRAILER_SIZE : 0));
        let offset = 0;
        for (let index = first; index <= last; index++) {
          const start = (index - first) * CHUNK_SIZE;
          const sealed = await crypto.subtle.encrypt(
            { name: "AES-GCM", iv: chunkNonce(index, index === count - 1), additionalData: headerBytes },
            key,
            plain.subarray(start, start + chunkPlainLength(index, header.length)),
          );
          out.set(new Uint8Array(sealed), offset);
          offset += sealed.byteLength;
        }
        if (record) out.set(record, offset);
        controller.enqueue(out);
        if (final) controller.close();
      },
      cancel(reason) {
        return source.cancel(reason);
      },
    },
    // By default two steps in flight: encryption overlaps the R2 write without unbounded buffering.
    { highWaterMark },
  );
}
