import { IntegrityError } from "./errors";
import { SALT_SIZE } from "./format";
import { concatBytes, toBase64 } from "../util/bytes";
import { CUSTOMER_SALT_SIZE, type CustomerKeyRecord } from "./customer-key";

/**
 * The per-object crypto envelope kept in R2 custom metadata (FORMAT.md, "Envelope").
 * Stored as compact JSON under ENVELOPE_KEY; user metadata sits beside it under
 * "x-amz-meta-<name>", so client metadata can never collide with a reserved name.
 */
export const ENVELOPE_KEY = "sse-envelope";
export const USER_META_PREFIX = "x-amz-meta-";

/** SSE-KMS, SSE-S3, and SSE-C (customer-provided key; S3 reports its algorithm as AES256). */
export type SseMode = "aws:kms" | "AES256" | "SSE-C";

export type Layout =
  | { kind: "single"; salt: Uint8Array }
  /** Multipart: parts are separate streams; the manifest (part lengths and salts) is hashed. */
  | { kind: "multipart"; parts: number; manifestHash: Uint8Array };

/** HTTP system metadata, verbatim as the client sent it. */
export interface HttpMetadata {
  contentType?: string;
  contentEncoding?: string;
  contentDisposition?: string;
  contentLanguage?: string;
  cacheControl?: string;
  expires?: string;
}

export const HTTP_FIELDS = ["contentType", "contentEncoding", "contentDisposition", "contentLanguage", "cacheControl", "expires"] as const;

export interface Envelope {
  version: 1;
  mode: SseMode;
  /** CMK ARN and key version; "" and 0 for SSE-C, whose data key is wrapped under the customer's key. */
  keyArn: string;
  keyVersion: number;
  masterVersion: number;
  wrappedKey: Uint8Array;
  length: number;
  layout: Layout;
  /** x-amz-server-side-encryption-context exactly as given (base64 JSON). */
  context?: string;
  bucketKeyEnabled: boolean;
  /** Sealed object facts derived from plaintext (ETag, checksum): see seal.ts. */
  sealed: Uint8Array;
  http: HttpMetadata;
  /**
   * The object's original upload time (epoch ms), recorded when the master-secret rewrap
   * job re-puts an object: R2 stamps every put with a new time, but S3's LastModified
   * must not move because a key was rewrapped. Absent on objects as first written.
   */
  lastModified?: number;
  /**
   * Single layout: the stream ends with a trailer record holding the object's checksum
   * (crypto/trailer.ts), so the stored size is E(n) + TRAILER_SIZE. Absent on objects
   * written before records existed, and on multipart-layout objects.
   */
  trailer?: true;
  /** SSE-C only: the KEK salt and key verifier (FORMAT.md, "SSE-C"). */
  customer?: CustomerKeyRecord;
  /**
   * The data key is wrapped under the KEK of the bucket's bucket key for the CMK version
   * (a CMK rooted in an external KMS; FORMAT.md §10), not the version's KEK. Absent on
   * every other object, and on external-CMK objects written before bucket keys.
   */
  externalBucketKey?: true;
  mac: Uint8Array;
}

export type UnsignedEnvelope = Omit<Envelope, "mac">;

/** Everything the MAC binds besides the envelope: where the object lives and its user metadata. */
export interface MacContext {
  bucket: string;
  key: string;
  userMetadata: Record<string, string>;
}

const encoder = new TextEncoder();
const MAC_DOMAIN = "s3-sse-gw/v1/object-mac";

/**
 * MAC input: each field as u32be(length) ‖ bytes, in a fixed order (FORMAT.md lists it).
 * Length-prefixing makes the encoding injective, so no two envelopes share an input.
 */
export function macInput(envelope: UnsignedEnvelope, ctx: MacContext): Uint8Array {
  const fields: Array<string | Uint8Array> = [
    MAC_DOMAIN,
    ctx.bucket,
    ctx.key,
    String(envelope.version),
    envelope.mode,
    // SSE-C has no CMK: its salt and verifier take the ARN's and key version's places
    // (the mode, field 5, tells which), so they are under the MAC too.
    envelope.customer ? envelope.customer.salt : envelope.keyArn,
    envelope.customer ? envelope.customer.verifier : String(envelope.keyVersion),
    String(envelope.masterVersion),
    envelope.wrappedKey,
    String(envelope.length),
  ];
  if (envelope.layout.kind === "single") fields.push("single", envelope.layout.salt);
  else fields.push("multipart", String(envelope.layout.parts), envelope.layout.manifestHash);
  fields.push(envelope.context ?? "", envelope.bucketKeyEnabled ? "1" : "0", envelope.sealed);
  for (const name of HTTP_FIELDS) fields.push(envelope.http[name] ?? "");
  const names = Object.keys(ctx.userMetadata).sort();
  fields.push(String(names.length));
  for (const name of names) fields.push(name, ctx.userMetadata[name]!);
  // Optional trailing field: the count above delimits the metadata, so inputs with and
  // without it never collide, and envelopes written before it existed verify unchanged.
  if (envelope.lastModified !== undefined) fields.push("lm", String(envelope.lastModified));
  // Another optional trailing field: its label differs from "lm", so no two inputs collide.
  if (envelope.trailer) fields.push("r", "1");
  // And another, labelled "bk": where the KEK comes from is under the MAC too.
  if (envelope.externalBucketKey) fields.push("bk", "1");

  const parts: Uint8Array[] = [];
  for (const field of fields) {
    const bytes = typeof field === "string" ? encoder.encode(field) : field;
    const len = new Uint8Array(4);
    new DataView(len.buffer).setUint32(0, bytes.byteLength);
    parts.push(len, bytes);
  }
  return concatBytes(parts);
}

export async function signEnvelope(macKey: CryptoKey, envelope: UnsignedEnvelope, ctx: MacContext): Promise<Envelope> {
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", macKey, macInput(envelope, ctx)));
  return { ...envelope, mac };
}

/** Constant-time check (crypto.subtle.verify); throws IntegrityError on any mismatch. */
export async function verifyEnvelope(macKey: CryptoKey, envelope: Envelope, ctx: MacContext): Promise<void> {
  const ok = await crypto.subtle.verify("HMAC", macKey, envelope.mac, macInput(envelope, ctx));
  if (!ok) throw new IntegrityError("object metadata failed authentication");
}

// ---- storage encoding -------------------------------------------------------------

interface StoredEnvelope {
  v: number;
  m: string;
  k?: string;
  kv?: number;
  x?: string;
  y?: string;
  mv: number;
  w: string;
  n: number;
  s?: string;
  p?: { c: number; h: string };
  c?: string;
  b?: 1;
  e: string;
  h?: Record<string, string>;
  lm?: number;
  r?: 1;
  bk?: 1;
  t: string;
}

const HTTP_SHORT: Record<(typeof HTTP_FIELDS)[number], string> = {
  contentType: "ct",
  contentEncoding: "ce",
  contentDisposition: "cd",
  contentLanguage: "cl",
  cacheControl: "cc",
  expires: "ex",
};

export function encodeEnvelope(envelope: Envelope): string {
  const stored: StoredEnvelope = {
    v: envelope.version,
    m: envelope.mode,
    ...(envelope.customer
      ? { x: toBase64(envelope.customer.salt), y: toBase64(envelope.customer.verifier) }
      : { k: envelope.keyArn, kv: envelope.keyVersion }),
    mv: envelope.masterVersion,
    w: toBase64(envelope.wrappedKey),
    n: envelope.length,
    e: toBase64(envelope.sealed),
    t: toBase64(envelope.mac),
  };
  if (envelope.layout.kind === "single") stored.s = toBase64(envelope.layout.salt);
  else stored.p = { c: envelope.layout.parts, h: toBase64(envelope.layout.manifestHash) };
  if (envelope.context !== undefined) stored.c = envelope.context;
  if (envelope.bucketKeyEnabled) stored.b = 1;
  const h: Record<string, string> = {};
  for (const name of HTTP_FIELDS) {
    const value = envelope.http[name];
    if (value !== undefined) h[HTTP_SHORT[name]] = value;
  }
  if (Object.keys(h).length > 0) stored.h = h;
  if (envelope.lastModified !== undefined) stored.lm = envelope.lastModified;
  if (envelope.trailer) stored.r = 1;
  if (envelope.externalBucketKey) stored.bk = 1;
  return JSON.stringify(stored);
}

/** Every field an envelope may carry (FORMAT.md §4); a reader refuses any other. */
const ENVELOPE_FIELDS = new Set(["v", "m", "k", "kv", "x", "y", "mv", "w", "n", "s", "p", "c", "b", "e", "h", "lm", "r", "bk", "t"]);
const HTTP_SHORT_NAMES = new Set(Object.values(HTTP_SHORT));

const isPlainObject = (x: unknown): x is Record<string, unknown> => typeof x === "object" && x !== null && !Array.isArray(x);

/**
 * Parses a stored envelope; any malformed field is an integrity failure, not a 500. What
 * the MAC does not cover is refused rather than ignored — fields it does not know, a
 * bucket-key flag other than 1, an empty context, base64 that is not canonical — so no
 * edit of the stored text decodes to the same values unless it only reorders fields.
 */
export function decodeEnvelope(text: string | undefined): Envelope {
  if (text === undefined) throw new IntegrityError("object has no encryption envelope");
  let s: StoredEnvelope;
  try {
    s = JSON.parse(text) as StoredEnvelope;
  } catch {
    throw new IntegrityError("encryption envelope is not valid JSON");
  }
  const bad = (what: string): never => {
    throw new IntegrityError(`encryption envelope has an invalid ${what}`);
  };
  if (!isPlainObject(s)) bad("document");
  for (const name of Object.keys(s)) if (!ENVELOPE_FIELDS.has(name)) bad("field");
  if (s.v !== 1) bad("version");
  if (s.m !== "aws:kms" && s.m !== "AES256" && s.m !== "SSE-C") bad("mode");
  let customer: CustomerKeyRecord | undefined;
  if (s.m === "SSE-C") {
    // No CMK; the salt and verifier instead. Context and bucket key are SSE-KMS notions.
    if (s.k !== undefined || s.kv !== undefined || s.c !== undefined || s.b !== undefined || s.bk !== undefined) bad("field");
    const salt = fromB64(s.x) ?? bad("customer key salt");
    const verifier = fromB64(s.y) ?? bad("customer key verifier");
    if (salt.byteLength !== CUSTOMER_SALT_SIZE) bad("customer key salt");
    if (verifier.byteLength !== 32) bad("customer key verifier");
    customer = { salt, verifier };
  } else {
    if (s.x !== undefined || s.y !== undefined) bad("field");
    if (typeof s.k !== "string") bad("key id");
    if (!isCount(s.kv) || s.kv < 1) bad("key version");
  }
  if (!isCount(s.mv) || s.mv < 1) bad("master version");
  if (!isCount(s.n)) bad("length");
  const wrappedKey = fromB64(s.w) ?? bad("wrapped key");
  if (wrappedKey.byteLength !== 40) bad("wrapped key");
  let layout: Layout;
  if (s.s !== undefined && s.p === undefined) {
    const salt = fromB64(s.s) ?? bad("salt");
    if (salt.byteLength !== SALT_SIZE) bad("salt");
    layout = { kind: "single", salt };
  } else if (s.p !== undefined && s.s === undefined && isPlainObject(s.p)) {
    if (Object.keys(s.p).some((name) => name !== "c" && name !== "h")) bad("layout");
    if (!isCount(s.p.c) || s.p.c < 1) bad("part count");
    const manifestHash = fromB64(s.p.h) ?? bad("manifest hash");
    if (manifestHash.byteLength !== 32) bad("manifest hash");
    layout = { kind: "multipart", parts: s.p.c, manifestHash };
  } else {
    return bad("layout");
  }
  // A context is never empty (sse.ts validates it), and the MAC encodes "" like no context.
  if (s.c !== undefined && (typeof s.c !== "string" || s.c === "")) bad("encryption context");
  if (s.b !== undefined && s.b !== 1) bad("bucket key flag");
  const http: HttpMetadata = {};
  if (s.h !== undefined) {
    if (!isPlainObject(s.h) || Object.keys(s.h).some((name) => !HTTP_SHORT_NAMES.has(name))) bad("http metadata");
    for (const name of HTTP_FIELDS) {
      const value = s.h[HTTP_SHORT[name]];
      if (value !== undefined) {
        if (typeof value !== "string") bad("http metadata");
        // The MAC encodes an empty value exactly like an absent one, so they must read the
        // same: otherwise an edit in R2 could add or drop an empty header undetected.
        if (value !== "") http[name] = value;
      }
    }
  }
  if (s.lm !== undefined && !isCount(s.lm)) bad("last-modified time");
  // Only the single layout has a stream to end with a record.
  if (s.r !== undefined && (s.r !== 1 || layout.kind !== "single")) bad("trailer flag");
  if (s.bk !== undefined && s.bk !== 1) bad("bucket key root flag");
  const sealed = fromB64(s.e) ?? bad("sealed facts");
  const mac = fromB64(s.t) ?? bad("mac");
  if (mac.byteLength !== 32) bad("mac");
  return {
    version: 1,
    mode: s.m as SseMode,
    keyArn: customer ? "" : s.k!,
    keyVersion: customer ? 0 : s.kv!,
    masterVersion: s.mv,
    wrappedKey,
    length: s.n,
    layout,
    ...(s.c !== undefined ? { context: s.c } : {}),
    bucketKeyEnabled: s.b === 1,
    sealed,
    http,
    ...(s.lm !== undefined ? { lastModified: s.lm } : {}),
    ...(s.r === 1 ? { trailer: true as const } : {}),
    ...(customer ? { customer } : {}),
    ...(s.bk === 1 ? { externalBucketKey: true as const } : {}),
    mac,
  };
}

/** Splits R2 custom metadata into the envelope text and the client's user metadata. */
export function splitCustomMetadata(custom: Record<string, string> | undefined): {
  envelope: string | undefined;
  userMetadata: Record<string, string>;
  unknown: string[];
} {
  const userMetadata: Record<string, string> = {};
  const unknown: string[] = [];
  let envelope: string | undefined;
  for (const [name, value] of Object.entries(custom ?? {})) {
    if (name === ENVELOPE_KEY) envelope = value;
    else if (name.startsWith(USER_META_PREFIX)) userMetadata[name.slice(USER_META_PREFIX.length)] = value;
    else unknown.push(name);
  }
  return { envelope, userMetadata, unknown };
}

export function joinCustomMetadata(envelope: Envelope, userMetadata: Record<string, string>): Record<string, string> {
  const custom: Record<string, string> = { [ENVELOPE_KEY]: encodeEnvelope(envelope) };
  for (const [name, value] of Object.entries(userMetadata)) custom[USER_META_PREFIX + name] = value;
  return custom;
}

function isCount(n: unknown): n is number {
  return typeof n === "number" && Number.isSafeInteger(n) && n >= 0;
}

/** Canonical base64 only: another spelling of the same bytes (unused low bits set) is refused. */
function fromB64(text: unknown): Uint8Array | undefined {
  if (typeof text !== "string") return undefined;
  let bytes: Uint8Array;
  try {
    bytes = Uint8Array.fromBase64(text);
  } catch {
    return undefined;
  }
  // Only the canonical spelling (padded, no whitespace, zero padding bits) round-trips, so
  // no pattern check is needed first (it cost more than the decode in small-GET profiles).
  return toBase64(bytes) === text ? bytes : undefined;
}
