/**
 * S3 flexible checksums: the algorithm names S3 uses, their x-amz-checksum-* headers and
 * digest sizes, and one factory so the body verifier can treat them uniformly.
 */
import { toBase64 } from "../util/bytes";
import { Crc32 } from "./crc32";
import { Crc32c } from "./crc32c";
import { Crc64Nvme } from "./crc64nvme";
import { createDigestHasher, type Hasher } from "./hasher";

export type { Hasher } from "./hasher";
export { createMd5, createSha256, createDigestHasher } from "./hasher";

export type ChecksumAlgorithm = "CRC32" | "CRC32C" | "CRC64NVME" | "SHA1" | "SHA256";

/** S3's x-amz-checksum-type: a checksum of the whole object, or of its parts' checksums ("<b64>-<parts>"). */
export type ChecksumType = "COMPOSITE" | "FULL_OBJECT";

/** A checksum kept with an object: base64 value ("<b64>-<parts>" when COMPOSITE). */
export interface StoredChecksum {
  algorithm: ChecksumAlgorithm;
  value: string;
  type: ChecksumType;
}

/** A composite value carries its part count ("<b64>-<n>"); a full-object one never does. */
export function checksumTypeOf(value: string): ChecksumType {
  return /-\d+$/.test(value) ? "COMPOSITE" : "FULL_OBJECT";
}

export interface ChecksumInfo {
  readonly algorithm: ChecksumAlgorithm;
  /** Lowercase header (and trailer) name, e.g. "x-amz-checksum-crc32". */
  readonly headerName: string;
  /** Digest size in bytes; a header value must decode to exactly this many. */
  readonly digestLength: number;
  create(): Hasher;
}

const info = (algorithm: ChecksumAlgorithm, digestLength: number, create: () => Hasher): ChecksumInfo => ({
  algorithm,
  headerName: `x-amz-checksum-${algorithm.toLowerCase()}`,
  digestLength,
  create,
});

export const CHECKSUMS: Readonly<Record<ChecksumAlgorithm, ChecksumInfo>> = {
  CRC32: info("CRC32", 4, () => new Crc32()),
  CRC32C: info("CRC32C", 4, () => new Crc32c()),
  CRC64NVME: info("CRC64NVME", 8, () => new Crc64Nvme()),
  SHA1: info("SHA1", 20, () => createDigestHasher("SHA-1")),
  SHA256: info("SHA256", 32, () => createDigestHasher("SHA-256")),
};

export const CHECKSUM_ALGORITHMS = Object.keys(CHECKSUMS) as ChecksumAlgorithm[];

/** "crc32" / "CRC32" (x-amz-sdk-checksum-algorithm, x-amz-checksum-algorithm) → algorithm. */
export function parseChecksumAlgorithm(value: string): ChecksumAlgorithm | undefined {
  const upper = value.trim().toUpperCase();
  return (CHECKSUM_ALGORITHMS as string[]).includes(upper) ? (upper as ChecksumAlgorithm) : undefined;
}

/** "x-amz-checksum-crc32" (any case) → "CRC32"; undefined for other headers. */
export function checksumForHeader(name: string): ChecksumInfo | undefined {
  const lower = name.toLowerCase();
  if (!lower.startsWith("x-amz-checksum-")) return undefined;
  const alg = parseChecksumAlgorithm(lower.slice("x-amz-checksum-".length));
  return alg ? CHECKSUMS[alg] : undefined;
}

/** One-shot base64 checksum of in-memory bytes (small payloads, tests, POST form fields). */
export async function checksumBase64(algorithm: ChecksumAlgorithm, data: Uint8Array): Promise<string> {
  const hasher = CHECKSUMS[algorithm].create();
  hasher.update(data);
  return toBase64(await hasher.digest());
}
