import { IntegrityError } from "./errors";
import { seal, unseal } from "./keys";

/**
 * Object facts derived from the plaintext (ETag, the client's checksum). They would let
 * anyone with R2 access confirm a guessed plaintext, so they are sealed (AES-GCM under a
 * per-tenant key derived from the master secret) rather than stored in the clear. Listing
 * needs them for every object, so they do not depend on the per-object data key or the
 * CMK's state.
 */
export interface ObjectFacts {
  etag: string;
  checksum?: { algorithm: string; value: string };
  /**
   * The object's plaintext length (the envelope's `n`), sealed too so a listing can show
   * an authenticated size with the seal key alone — the envelope's MAC needs the data key.
   * Absent in part facts and in objects written before it was added.
   */
  length?: number;
  /**
   * Parts of an upload created without a checksum algorithm: the part's CRC64NVME
   * (base64), computed by the gateway so Complete can combine the object's full-object
   * CRC64NVME, as S3 gives every object one. Only in part facts.
   */
  crc64?: string;
  /**
   * The algorithm of the checksum kept in the object's trailer record (FORMAT.md §3a),
   * known before the body although its value is not: listings show it (S3's
   * ChecksumAlgorithm) without reading the record. Absent when `checksum` names it, and in
   * objects written before it was added.
   */
  trailerAlgorithm?: string;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function factsAad(bucket: string, key: string): Uint8Array {
  return encoder.encode(`s3-sse-gw/v1/facts\0${bucket}\0${key}`);
}

export function sealFacts(sealKey: CryptoKey, bucket: string, key: string, facts: ObjectFacts, iv?: Uint8Array): Promise<Uint8Array> {
  const doc: { e: string; c?: { a: string; v: string }; n?: number; d?: string; a?: string } = { e: facts.etag };
  if (facts.checksum) doc.c = { a: facts.checksum.algorithm, v: facts.checksum.value };
  if (facts.length !== undefined) doc.n = facts.length;
  if (facts.crc64 !== undefined) doc.d = facts.crc64;
  if (facts.trailerAlgorithm !== undefined) doc.a = facts.trailerAlgorithm;
  return seal(sealKey, encoder.encode(JSON.stringify(doc)), factsAad(bucket, key), iv);
}

export async function unsealFacts(sealKey: CryptoKey, bucket: string, key: string, sealed: Uint8Array): Promise<ObjectFacts> {
  let doc: { e?: unknown; c?: { a?: unknown; v?: unknown }; n?: unknown; d?: unknown; a?: unknown };
  try {
    doc = JSON.parse(decoder.decode(await unseal(sealKey, sealed, factsAad(bucket, key))));
  } catch {
    throw new IntegrityError("sealed object facts failed authentication");
  }
  if (typeof doc.e !== "string") throw new IntegrityError("sealed object facts are malformed");
  const facts: ObjectFacts = { etag: doc.e };
  if (doc.c && typeof doc.c.a === "string" && typeof doc.c.v === "string") facts.checksum = { algorithm: doc.c.a, value: doc.c.v };
  if (doc.n !== undefined) {
    if (typeof doc.n !== "number" || !Number.isSafeInteger(doc.n) || doc.n < 0) throw new IntegrityError("sealed object facts are malformed");
    facts.length = doc.n;
  }
  if (doc.d !== undefined) {
    if (typeof doc.d !== "string") throw new IntegrityError("sealed object facts are malformed");
    facts.crc64 = doc.d;
  }
  if (doc.a !== undefined) {
    if (typeof doc.a !== "string") throw new IntegrityError("sealed object facts are malformed");
    facts.trailerAlgorithm = doc.a;
  }
  return facts;
}
