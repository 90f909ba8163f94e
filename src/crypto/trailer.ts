/**
 * The trailer record (FORMAT.md §3a): a fixed-size AES-256-GCM record stored right after
 * a single-layout stream's final chunk, holding the object's checksum.
 *
 * Why in the object and not in R2 metadata or D1: a checksum sent as an aws-chunked
 * trailer — or computed by the gateway — is known only once the body has ended, while R2
 * takes custom metadata before the first byte. Appending it to the stored bytes keeps it
 * atomic with the object (no crash window), authenticated by the object's own keys, and
 * costs no D1 query on any request. The envelope says whether the record is present
 * (`r`, under the MAC), so objects written before it read unchanged.
 *
 * The record is sealed under the stream's own key (STREAMKEY: unique per stream by its
 * salt) with a nonce no chunk uses (chunk nonces begin 00 00 00, the record's 01), so
 * neither the key nor any (key, nonce) pair is shared with anything else.
 */
import { CHECKSUMS, type ChecksumAlgorithm, type StoredChecksum } from "../checksum";
import { fromBase64, toBase64 } from "../util/bytes";
import { IntegrityError } from "./errors";
import { TAG_SIZE } from "./format";

/** Plaintext: algorithm id ‖ type id ‖ value length ‖ 0x00 ‖ value padded with zeros to 32 bytes. */
export const TRAILER_PLAIN_SIZE = 4 + 32;
/** Stored bytes of the record: its plaintext plus the GCM tag. */
export const TRAILER_SIZE = TRAILER_PLAIN_SIZE + TAG_SIZE;


const ALGORITHM_IDS: Record<ChecksumAlgorithm, number> = { CRC32: 1, CRC32C: 2, CRC64NVME: 3, SHA1: 4, SHA256: 5 };
const ALGORITHMS = Object.fromEntries(Object.entries(ALGORITHM_IDS).map(([name, id]) => [id, name])) as Record<number, ChecksumAlgorithm>;
/** A single stream's checksum is always of the whole object; 2 (COMPOSITE) is reserved for future layouts. */
const FULL_OBJECT = 1;

const AAD_LABEL = new TextEncoder().encode("s3-sse-gw/v1/trailer\0");

/** 01 ‖ eleven zero bytes: chunk nonces all start with 00, so this one is never a chunk's. */
export function trailerNonce(): Uint8Array {
  const nonce = new Uint8Array(12);
  nonce[0] = 1;
  return nonce;
}

function aad(header: Uint8Array): Uint8Array {
  const out = new Uint8Array(AAD_LABEL.byteLength + header.byteLength);
  out.set(AAD_LABEL);
  out.set(header, AAD_LABEL.byteLength);
  return out;
}

export function encodeTrailer(checksum: StoredChecksum): Uint8Array {
  const value = fromBase64(checksum.value);
  const info = CHECKSUMS[checksum.algorithm];
  if (checksum.type !== "FULL_OBJECT" || !value || value.byteLength !== info.digestLength) throw new Error("a trailer record holds one full-object checksum");
  const plain = new Uint8Array(TRAILER_PLAIN_SIZE);
  plain[0] = ALGORITHM_IDS[checksum.algorithm];
  plain[1] = FULL_OBJECT;
  plain[2] = value.byteLength;
  plain.set(value, 4);
  return plain;
}

export function decodeTrailer(plain: Uint8Array): StoredChecksum {
  const algorithm = ALGORITHMS[plain[0]!];
  const length = plain[2]!;
  const bad = !algorithm || plain.byteLength !== TRAILER_PLAIN_SIZE || plain[1] !== FULL_OBJECT || plain[3] !== 0 || length !== CHECKSUMS[algorithm].digestLength;
  // Padding must be zero: only one stored spelling per value.
  if (bad || plain.subarray(4 + length).some((b) => b !== 0)) throw new IntegrityError("trailer record is malformed");
  return { algorithm: algorithm!, value: toBase64(plain.slice(4, 4 + length)), type: "FULL_OBJECT" };
}

/** Seals a record for the stream whose 32-byte header is `header`, under its stream key. */
export async function sealTrailer(streamKey: CryptoKey, header: Uint8Array, checksum: StoredChecksum): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv: trailerNonce(), additionalData: aad(header) }, streamKey, encodeTrailer(checksum)));
}

export async function openTrailer(streamKey: CryptoKey, header: Uint8Array, sealed: Uint8Array): Promise<StoredChecksum> {
  if (sealed.byteLength !== TRAILER_SIZE) throw new IntegrityError("trailer record is truncated");
  let plain: ArrayBuffer;
  try {
    plain = await crypto.subtle.decrypt({ name: "AES-GCM", iv: trailerNonce(), additionalData: aad(header) }, streamKey, sealed);
  } catch {
    throw new IntegrityError("trailer record failed authentication");
  }
  return decodeTrailer(new Uint8Array(plain));
}
