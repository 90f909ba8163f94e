/**
 * The one interface every body digest implements, and the native hashes behind it.
 *
 * MD5, SHA-1 and SHA-256 use workerd's `crypto.DigestStream`: native BoringSSL hashing
 * that, unlike `crypto.subtle.digest`, is incremental, so a body is hashed piece by piece
 * as it streams and never has to be held whole.
 */
export interface Hasher {
  /** Feeds bytes. The hasher consumes them before returning; the caller may reuse the array. */
  update(bytes: Uint8Array): void;
  /** Final digest; call once, after the last update. */
  digest(): Promise<Uint8Array>;
}

export type DigestAlgorithm = "MD5" | "SHA-1" | "SHA-256";

class DigestStreamHasher implements Hasher {
  private readonly stream: DigestStream;
  private readonly writer: WritableStreamDefaultWriter<ArrayBuffer | ArrayBufferView>;

  constructor(algorithm: DigestAlgorithm) {
    this.stream = new crypto.DigestStream(algorithm);
    this.writer = this.stream.getWriter();
  }

  update(bytes: Uint8Array): void {
    if (bytes.byteLength === 0) return;
    // DigestStream hashes synchronously inside write() (test/unit/checksum.test.ts pins
    // this down by detaching the buffer right after update), so awaiting each write would
    // only add a microtask hop per piece. A failed write also fails close(), where the
    // error surfaces; the catch here only keeps it from being reported as unhandled.
    this.writer.write(bytes).catch(() => {});
  }

  async digest(): Promise<Uint8Array> {
    await this.writer.close();
    return new Uint8Array(await this.stream.digest);
  }
}

export function createDigestHasher(algorithm: DigestAlgorithm): Hasher {
  return new DigestStreamHasher(algorithm);
}

export const createMd5 = (): Hasher => createDigestHasher("MD5");
export const createSha256 = (): Hasher => createDigestHasher("SHA-256");
