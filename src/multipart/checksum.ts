import { CHECKSUMS, type ChecksumAlgorithm } from "../checksum";
import { Errors } from "../errors";
import { toBase64 } from "../util/bytes";
import type { ChecksumType } from "./store";

/**
 * Checksums of completed multipart objects, as S3 defines them:
 * - COMPOSITE: the algorithm over the concatenated binary part checksums, "<b64>-<parts>";
 * - FULL_OBJECT (CRC algorithms only): the CRC of the whole object, obtained by combining
 *   the part CRCs — the part bodies are long gone by the time the upload completes.
 */
const CRC: Partial<Record<ChecksumAlgorithm, { width: number; poly: bigint }>> = {
  // Reflected polynomials; all three use init = xorout = all ones, for which
  // crc(A‖B) = crc(A)·x^(8|B|) mod P ⊕ crc(B) (zlib's crc32_combine).
  CRC32: { width: 32, poly: 0xedb88320n },
  CRC32C: { width: 32, poly: 0x82f63b78n },
  CRC64NVME: { width: 64, poly: 0x9a6c9329ac4bc9b5n },
};

export function defaultChecksumType(algorithm: ChecksumAlgorithm): ChecksumType {
  return algorithm === "CRC64NVME" ? "FULL_OBJECT" : "COMPOSITE";
}

/** S3's rules for x-amz-checksum-type at CreateMultipartUpload. */
export function assertChecksumType(algorithm: ChecksumAlgorithm, type: ChecksumType): void {
  if (type === "FULL_OBJECT" && !CRC[algorithm]) {
    throw Errors.InvalidRequest({}, `The FULL_OBJECT checksum type cannot be used with the ${algorithm.toLowerCase()} checksum algorithm.`);
  }
  if (type === "COMPOSITE" && algorithm === "CRC64NVME") {
    throw Errors.InvalidRequest({}, "The COMPOSITE checksum type cannot be used with the crc64nvme checksum algorithm.");
  }
}

/** The object's checksum value from its parts' digests (in part order) and lengths. */
export async function objectChecksum(algorithm: ChecksumAlgorithm, type: ChecksumType, parts: Array<{ digest: Uint8Array; length: number }>): Promise<string> {
  if (type === "COMPOSITE") {
    const hasher = CHECKSUMS[algorithm].create();
    for (const part of parts) hasher.update(part.digest);
    return `${toBase64(await hasher.digest())}-${parts.length}`;
  }
  const crc = CRC[algorithm]!;
  let value = toBig(parts[0]!.digest);
  for (const part of parts.slice(1)) value = combine(crc, value, toBig(part.digest), part.length);
  return toBase64(fromBig(value, crc.width / 8));
}

/** crc(A‖B) from crc(A), crc(B) and |B|. */
export function combine(crc: { width: number; poly: bigint }, a: bigint, b: bigint, lengthB: number): bigint {
  return multModP(crc, xPow8n(crc, lengthB), a) ^ b;
}

/** Product of two polynomials modulo P, in the reflected bit order CRCs use. */
function multModP(crc: { width: number; poly: bigint }, a: bigint, b: bigint): bigint {
  let m = 1n << BigInt(crc.width - 1);
  let p = 0n;
  while (m !== 0n) {
    if (a & m) p ^= b;
    m >>= 1n;
    b = b & 1n ? (b >> 1n) ^ crc.poly : b >> 1n;
  }
  return p;
}

/** x^(8·n) mod P by repeated squaring: x^(2^k) for k = 3, 4, … multiplied in per bit of n. */
function xPow8n(crc: { width: number; poly: bigint }, n: number): bigint {
  let result = 1n << BigInt(crc.width - 1); // x^0
  let square = 1n << BigInt(crc.width - 2); // x^1
  for (let k = 0; k < 3; k++) square = multModP(crc, square, square); // x^8
  for (let rest = BigInt(n); rest > 0n; rest >>= 1n) {
    if (rest & 1n) result = multModP(crc, square, result);
    square = multModP(crc, square, square);
  }
  return result;
}

function toBig(bytes: Uint8Array): bigint {
  let v = 0n;
  for (const b of bytes) v = (v << 8n) | BigInt(b);
  return v;
}

function fromBig(value: bigint, size: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = size - 1; i >= 0; i--) {
    out[i] = Number(value & 0xffn);
    value >>= 8n;
  }
  return out;
}
