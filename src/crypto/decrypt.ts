import { timingSafeEqual } from "../util/bytes";
import { ExactReader } from "../util/exact-reader";
import { IntegrityError } from "./errors";
import { HEADER_SIZE, TAG_SIZE, chunkCount, chunkNonce, chunkPlainLength, encodeHeader, type StreamHeader } from "./format";
import { deriveStreamKey } from "./keys";

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
}

/**
 * Decrypts whole chunks from `ciphertext` and emits the plaintext slice the plan asks for.
 * Any authentication failure, short read or trailing byte errors the stream instead of
 * closing it, so an HTTP response built on it is aborted, never ended cleanly.
 */
export function decryptingStream(ciphertext: ReadableStream<Uint8Array>, dataKey: CryptoKey, plan: DecryptPlan): ReadableStream<Uint8Array> {
  const reader = new ExactReader(ciphertext);
  const headerBytes = encodeHeader(plan.header);
  const count = chunkCount(plan.header.length);
  let key: CryptoKey | undefined;
  let index = plan.firstChunk;
  let skip = plan.skip;
  let remaining = plan.take;
  // The next chunk's read is started before the current chunk is decrypted, so storage
  // I/O overlaps decryption instead of alternating with it.
  let prefetch: Promise<Uint8Array> | null = null;
  const sealedSize = (i: number) => chunkPlainLength(i, plan.header.length) + TAG_SIZE;
  const readChunk = (i: number) => {
    const read = reader.read(sealedSize(i));
    read.catch(() => {}); // observed when awaited; avoid an unhandled rejection meanwhile
    return read;
  };

  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        // Set-up happens in the first pull, not in start(): workerd may pull before an
        // async start() settles, and two readers racing on one stream would interleave.
        if (!key) {
          key = await deriveStreamKey(dataKey, plan.header.salt, plan.header.partNumber, plan.header.length);
          if (plan.includesHeader) {
            const stored = await reader.read(HEADER_SIZE);
            if (!timingSafeEqual(stored, headerBytes)) throw new IntegrityError("stream header does not match its metadata");
          }
        }
        // Every planned chunk is authenticated, even when it contributes no bytes (an
        // empty object still has its sealed final chunk).
        if (index > plan.lastChunk) {
          await finish(controller);
          return;
        }
        const final = index === count - 1;
        const sealed = await (prefetch ?? readChunk(index));
        prefetch = index < plan.lastChunk ? readChunk(index + 1) : null;
        if (sealed.byteLength !== sealedSize(index)) throw new IntegrityError(`chunk ${index} is truncated`);
        let plain: Uint8Array;
        try {
          plain = new Uint8Array(
            await crypto.subtle.decrypt({ name: "AES-GCM", iv: chunkNonce(index, final), additionalData: headerBytes }, key!, sealed),
          );
        } catch {
          throw new IntegrityError(`chunk ${index} failed authentication`);
        }
        index++;
        const start = Math.min(skip, plain.byteLength);
        skip -= start;
        const piece = plain.subarray(start, start + Math.min(remaining, plain.byteLength - start));
        remaining -= piece.byteLength;
        if (piece.byteLength > 0) controller.enqueue(piece);
        if (index > plan.lastChunk) await finish(controller);
      },
      cancel(reason) {
        return reader.cancel(reason);
      },
    },
    { highWaterMark: 2 },
  );

  async function finish(controller: ReadableStreamDefaultController<Uint8Array>) {
    if (remaining !== 0) throw new IntegrityError("stream ended before the requested range");
    // A read through the final chunk must meet the end of the stored object: no extension.
    if (plan.lastChunk === count - 1) {
      const extra = await reader.read(1);
      if (extra.byteLength !== 0) throw new IntegrityError("bytes after the final chunk");
    } else {
      await reader.cancel();
    }
    controller.close();
  }
}
