import type { PlaintextSource } from "../../src/crypto/encrypt";

/** A PlaintextSource over bytes in memory, for tests. */
export function bytesSource(data: Uint8Array): PlaintextSource {
  let offset = 0;
  return {
    async read(max) {
      const piece = data.slice(offset, offset + max);
      offset += piece.byteLength;
      return piece;
    },
    async cancel() {},
  };
}

export async function collect(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const pieces: Uint8Array[] = [];
  const reader = stream.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    pieces.push(value);
  }
  return concatBytes(pieces);
}

/** The tests' own byte concatenation (kept apart from src so test oracles do not share code with what they check). */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

export function streamOf(data: Uint8Array, pieceSize = 65536): ReadableStream<Uint8Array> {
  let offset = 0;
  return new ReadableStream({
    pull(controller) {
      if (offset >= data.byteLength) return controller.close();
      controller.enqueue(data.slice(offset, offset + pieceSize));
      offset += pieceSize;
    },
  });
}

export function pseudoRandom(length: number, seed = 1): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}
