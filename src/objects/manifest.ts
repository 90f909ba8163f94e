import { IntegrityError } from "../crypto/errors";
import { SALT_SIZE } from "../crypto/format";
import { fromBase64, timingSafeEqual, toBase64 } from "../util/bytes";
import { PARTS_ROOT } from "./parts";

/**
 * The body of a multipart-layout object (docs/multipart.md, "Manifest"): which part
 * streams make up the object, in order. The object's envelope carries the SHA-256 of
 * these exact bytes, the part count and the total length, all under the envelope MAC, so
 * the manifest cannot be edited, and no part dropped, reordered or swapped, without the
 * MAC key. Each part stream authenticates itself against (part number, length, salt)
 * taken from here.
 */
export interface ManifestPart {
  /** The part number the client uploaded it as (in the stream header and stream key). */
  number: number;
  /** Plaintext length. */
  length: number;
  salt: Uint8Array;
  /** R2 key of the part stream ("_mpu/<upload>/<part>/<attempt>"). */
  r2Key: string;
}

export interface Manifest {
  uploadId: string;
  parts: ManifestPart[];
  /** The parts' checksums, sealed (part-checksums.ts): uploads created with a checksum algorithm. */
  checksums?: Uint8Array;
}

/** 10,000 parts at ~110 bytes each fit comfortably; anything larger is not ours. */
export const MAX_MANIFEST_BYTES = 2 * 1024 * 1024;
const MAX_PARTS = 10_000;

interface StoredManifest {
  v: 1;
  u: string;
  p: Array<{ n: number; l: number; s: string; k: string }>;
  c?: string;
}

export function encodeManifest(manifest: Manifest): Uint8Array {
  const stored: StoredManifest = {
    v: 1,
    u: manifest.uploadId,
    p: manifest.parts.map((p) => ({ n: p.number, l: p.length, s: toBase64(p.salt), k: p.r2Key })),
    ...(manifest.checksums ? { c: toBase64(manifest.checksums) } : {}),
  };
  return new TextEncoder().encode(JSON.stringify(stored));
}

export async function manifestHash(bytes: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

/**
 * Parses manifest bytes after checking them against the authenticated envelope: the hash
 * first (nothing unauthenticated is interpreted), then the shape, the part count, strictly
 * ascending part numbers and the total length. Any mismatch is an IntegrityError.
 */
export async function decodeManifest(bytes: Uint8Array, expected: { hash: Uint8Array; parts: number; length: number }): Promise<Manifest> {
  if (!timingSafeEqual(await manifestHash(bytes), expected.hash)) throw new IntegrityError("multipart manifest does not match its envelope");
  const bad = (what: string): never => {
    throw new IntegrityError(`multipart manifest has an invalid ${what}`);
  };
  let stored: StoredManifest;
  try {
    stored = JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes)) as StoredManifest;
  } catch {
    return bad("encoding");
  }
  if (!stored || stored.v !== 1 || typeof stored.u !== "string" || !Array.isArray(stored.p)) bad("document");
  if (stored.p.length !== expected.parts || stored.p.length === 0 || stored.p.length > MAX_PARTS) bad("part count");
  const prefix = `${PARTS_ROOT}${stored.u}/`;
  const parts: ManifestPart[] = [];
  let total = 0;
  let previous = 0;
  for (const entry of stored.p) {
    if (!entry || typeof entry !== "object") bad("part");
    const { n, l, s, k } = entry;
    if (!Number.isSafeInteger(n) || n <= previous || n > MAX_PARTS) bad("part number");
    if (!Number.isSafeInteger(l) || l < 0) bad("part length");
    const salt = typeof s === "string" ? fromBase64(s) : null;
    if (!salt || salt.byteLength !== SALT_SIZE) bad("part salt");
    if (typeof k !== "string" || !k.startsWith(prefix)) bad("part location");
    previous = n;
    total += l;
    parts.push({ number: n, length: l, salt: salt!, r2Key: k });
  }
  if (total !== expected.length) bad("total length");
  let checksums: Uint8Array | null = null;
  if (stored.c !== undefined) {
    checksums = typeof stored.c === "string" ? fromBase64(stored.c) : null;
    if (!checksums || checksums.byteLength < 28) bad("part checksums");
  }
  return { uploadId: stored.u, parts, ...(checksums ? { checksums } : {}) };
}

/** Plaintext offset of every part (offsets[i] = sum of the lengths before part i). */
export function partOffsets(manifest: Manifest): number[] {
  const offsets: number[] = [];
  let at = 0;
  for (const part of manifest.parts) {
    offsets.push(at);
    at += part.length;
  }
  return offsets;
}
