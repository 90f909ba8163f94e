// The shapes a verified read produces: read.ts builds them, the readers of either layout
// (read-multipart.ts, copy-reencrypted.ts) and the S3 handlers use them.
import type { ChecksumType } from "../checksum";
import type { CustomerKey } from "../crypto/customer-key";
import type { Envelope, HttpMetadata, SseMode } from "../crypto/envelope";
import type { ObjectFacts } from "../crypto/facts";
import type { VerifiedMemo } from "./verified-memo";

/** What S3 says about an object: only ever built from authenticated metadata. */
export interface ObjectInfo {
  key: string;
  etag: string;
  size: number;
  lastModified: Date;
  mode: SseMode;
  keyArn: string;
  bucketKeyEnabled: boolean;
  context?: string;
  http: HttpMetadata;
  userMetadata: Record<string, string>;
  /** From the sealed facts, or the trailer record once read (readObject/statObject with checksum). */
  checksum?: { algorithm: string; value: string; type: ChecksumType };
  /** SSE-C: the key the object was read with (its MD5 is echoed in responses). */
  customerKey?: CustomerKey;
  /** The stored version (R2 etag and upload time): what the object's tag set is keyed by. */
  version: { r2Etag: string; uploaded: number };
}

/**
 * Called with the object's encryption mode before its keys are used (access rules). For an
 * SSE-C object it returns the request's customer key (or throws: no key, 400); for other
 * modes it returns nothing (or throws when the request wrongly carries a key).
 */
export type Gate = (mode: SseMode) => CustomerKey | void;

export interface Authenticated {
  info: ObjectInfo;
  envelope: Envelope;
  dataKey: CryptoKey;
  /** The sealed facts as opened: what a copy or a reseal carries over to the new envelope. */
  facts: Readonly<ObjectFacts>;
  /** What this verification proved, remembered on the data key (objects/verified-memo.ts). */
  memo?: VerifiedMemo;
}

export interface ObjectRead {
  info: ObjectInfo;
  /** The plaintext: streamed, or (a small object read whole) already decrypted and checked. */
  body: ReadableStream<Uint8Array> | Uint8Array;
  /** The plaintext span served when a range (or a part number) applied. */
  span?: { first: number; last: number };
  /** Number of parts of a multipart-layout object, when a part number was asked for. */
  partsCount?: number;
}
